#!/usr/bin/env python3
"""Self-speculative decoding by n-gram lookup (`--spec-type ngram-simple`) side by side: troupe
and llama-server with the same flags, and each without speculation, same model, client and
prompts, servers alternated (the order rotates every round).

  usage: bench/peer/speculative.py [--model M] [--rounds 3] [--requests 4] [--tokens 256]
         [--size-n 12] [--size-m 48] [--streams 1] [--prediction]
         [--draft MODEL [--draft-max 3]] [--llama-server PATH] [--troupe PATH]

Each round and server: --requests greedy, non-streamed /v1/completions of --tokens tokens
(ignoring end of generation), --streams of them at a time, each prompt a short passage of
random words (its own per request, the same on every server). The figure is output tokens
per second over the wall time of all of a round's requests. With random weights, what
speculation gains comes from the greedy answer's own cycles (it repeats its recent tokens, as
a random model does), not from copying the prompt: the acceptance column says how much of
the answer the drafts supplied on each server.

--prediction: OpenAI's Predicted Outputs instead, no --spec-type on either server. Each request
is first asked once unmeasured; the measured request then sends that answer, its middle fifth
replaced by other words (an edit), as `prediction`. llama-server does not read the field (its
figure is its plain decoding); troupe drafts from it. Sides: troupe, llama-server, and troupe
without the prediction.

--draft MODEL: a draft model instead of the lookup (`--spec-type draft-simple -md MODEL
--spec-draft-n-max N`, the same flags on both servers), e.g. the target's own weights
quantized (`troupe mkmodel` with the same shape and seed and another --type). Two more
sides: troupe decoding every drafted token (`--spec-draft-policy all`, llama-server's way),
and llama-server with `--poll 0` (its draft context has a threadpool of its own, whose
workers otherwise spin while the target's compute, and the other way round).
"""
import argparse
import concurrent.futures
import random
import statistics
import subprocess
import time

from peer_server import LLAMA_SERVER, TROUPE, WORDS, metric, post, serving


def start(side, args, port):
    common = ["-m", args.model, "--port", str(port), "-t", "2", "-c", str(4096 * args.streams)]
    if args.draft:
        spec = ["--spec-type", "draft-simple", "-md", args.draft, "--spec-draft-n-max",
                str(args.draft_max)]
    else:
        spec = ["--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", str(args.size_n),
                "--spec-ngram-simple-size-m", str(args.size_m)]
    spec = spec if " spec" in side else []
    if side.endswith(" all"):  # troupe: every drafted token decoded, as llama-server does
        spec += ["--spec-draft-policy", "all"]
    if side.endswith(" poll0"):  # llama-server: its two threadpools do not spin at each other
        spec += ["--poll", "0"]
    if side.startswith("llama-server"):
        cmd = [args.llama_server, *common, "-np", str(args.streams), "--kv-unified", *spec]
    else:
        cmd = [args.troupe, "serve", *common, "--parallel", str(args.streams), "--kv-unified",
               "--alias", "m", *spec]
    log = open(f"/tmp/speculative-{side.replace(' ', '-')}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def prompts(seed, n):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(n)]


def run(side, args, seed):
    with serving(lambda port: start(side, args, port)) as url:
        # One warm-up request: the first decode of a fresh process pays for page faults.
        post(url + "/v1/completions", {"model": "m", "prompt": "warm up", "max_tokens": 8,
                                       "temperature": 0})
        troupe = side.startswith("troupe")
        before = metric(url, "troupe_spec_accepted_tokens_total") if troupe else 0.0

        body = lambda prompt: {"model": "m", "prompt": prompt, "max_tokens": args.tokens,
                               "temperature": 0, "ignore_eos": True}
        predictions = {}
        if args.prediction:  # every side asks first: the measured prompts are cached alike
            rng = random.Random(seed)
            for prompt in prompts(seed, args.requests):
                text = post(url + "/v1/completions", body(prompt))["choices"][0]["text"]
                a, b = len(text) * 2 // 5, len(text) * 3 // 5
                edit = " ".join(rng.choice(WORDS) for _ in range(max(1, (b - a) // 6)))
                predictions[prompt] = text[:a] + edit + text[b:]
            before = metric(url, "troupe_spec_accepted_tokens_total") if troupe else 0.0

        def one(prompt):
            req = body(prompt)
            if prompt in predictions and not side.endswith("no prediction"):
                req["prediction"] = {"type": "content", "content": predictions[prompt]}
            r = post(url + "/v1/completions", req)
            timings = r.get("timings", {})
            return r["usage"]["completion_tokens"], timings.get("draft_n_accepted", 0)

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.streams) as pool:
            done = list(pool.map(one, prompts(seed, args.requests)))
        wall = time.perf_counter() - t0
        tokens = sum(n for n, _ in done)
        if troupe:
            accepted = metric(url, "troupe_spec_accepted_tokens_total") - before
        else:
            accepted = sum(a for _, a in done)
        return tokens / wall, accepted / tokens


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="/tmp/small-f16.gguf")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=4)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--size-n", type=int, default=12)
    p.add_argument("--size-m", type=int, default=48)
    p.add_argument("--prediction", action="store_true")
    p.add_argument("--draft", help="a draft model: draft-simple instead of ngram-simple")
    p.add_argument("--draft-max", type=int, default=3)
    p.add_argument("--troupe", default=TROUPE)
    p.add_argument("--llama-server", default=LLAMA_SERVER)
    args = p.parse_args()
    sides = ["troupe spec", "llama-server spec", "troupe", "llama-server"]
    if args.draft:
        sides = ["troupe spec", "llama-server spec", "troupe spec all", "llama-server spec poll0",
                 "troupe", "llama-server"]
    if args.prediction:
        sides = ["troupe", "llama-server", "troupe no prediction"]
    print(f"load before: {open('/proc/loadavg').read().split()[:3]}")
    results = {s: [] for s in sides}
    for r in range(args.rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        for side in order:
            tps, acc = run(side, args, seed=2000 + r)
            results[side].append((tps, acc))
            print(f"round {r + 1} {side}: {tps:.1f} tok/s, drafts supplied {acc * 100:.0f} % "
                  f"of the answer", flush=True)
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")
    print("\n| server | out tok/s (per round) | median | drafts supplied, median |")
    print("|---|---|---|---|")
    for side in sides:
        per = ", ".join(f"{t:.1f}" for t, _ in results[side])
        med = statistics.median(t for t, _ in results[side])
        acc = statistics.median(a for _, a in results[side])
        print(f"| {side} | {per} | {med:.1f} | {acc * 100:.0f} % |")
    pairs = [("troupe", "llama-server") if args.prediction else ("troupe spec",
                                                                   "llama-server spec")]
    if args.draft:
        pairs += [("troupe spec", "llama-server spec poll0"),
                  ("troupe spec all", "llama-server spec poll0"), ("troupe spec", "troupe")]
    for mine, peer in pairs:
        ratio = [a[0] / b[0] for a, b in zip(results[mine], results[peer])]
        print(f"{mine} / {peer}, per round: "
              f"{', '.join(f'{x:.2f}' for x in ratio)}; median {statistics.median(ratio):.2f}")


if __name__ == "__main__":
    main()
