#!/usr/bin/env python3
"""Two troupe binaries side by side on speculative decoding: each with and without the
speculation flags of speculative.py (a draft model, or the n-gram lookup without --draft),
the binaries' order and the sides' order alternating every round, same prompts per round.
For a change to the drafting policy: build the binary before and after, then

  usage: bench/peer/troupe_ab.py A_BINARY B_BINARY [--model M] [--draft D] [--rounds 4]
         [--requests 2] [--tokens 128]

Prints each round and, per binary, speculation / none per round and its median.
"""
import argparse
import os
import statistics

import speculative as sp


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--model", default="/tmp/small-f16.gguf")
    p.add_argument("--draft")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--requests", type=int, default=2)
    p.add_argument("--tokens", type=int, default=128)
    args = p.parse_args()
    names = {args.a: os.path.basename(args.a), args.b: os.path.basename(args.b)}
    print(f"load before: {open('/proc/loadavg').read().split()[:3]}")
    res = {}
    for r in range(args.rounds):
        binaries = [args.a, args.b] if r % 2 == 0 else [args.b, args.a]
        sides = ["troupe spec", "troupe"] if r % 2 == 0 else ["troupe", "troupe spec"]
        for binary in binaries:
            for side in sides:
                run_args = argparse.Namespace(
                    model=args.model, draft=args.draft, draft_max=3, streams=1,
                    requests=args.requests, tokens=args.tokens, size_n=12, size_m=48,
                    prediction=False, troupe=binary, llama_server=sp.LLAMA_SERVER)
                tps, acc = sp.run(side, run_args, seed=3000 + r)
                res.setdefault((binary, side), []).append((tps, acc))
                print(f"round {r + 1} {names[binary]} {side}: {tps:.1f} tok/s, drafts supplied "
                      f"{acc * 100:.0f} %", flush=True)
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")
    for binary in (args.a, args.b):
        spec = [t for t, _ in res[(binary, "troupe spec")]]
        plain = [t for t, _ in res[(binary, "troupe")]]
        ratios = [a / b for a, b in zip(spec, plain)]
        print(f"{names[binary]}: spec {', '.join(f'{x:.1f}' for x in spec)}; without "
              f"{', '.join(f'{x:.1f}' for x in plain)}; spec / without "
              f"{', '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.2f}; "
              f"drafts supplied {', '.join(f'{a * 100:.0f} %' for _, a in res[(binary, 'troupe spec')])}")


if __name__ == "__main__":
    main()
