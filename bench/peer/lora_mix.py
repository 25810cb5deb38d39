#!/usr/bin/env python3
"""Streams that ask for different LoRA scales at once, troupe and llama-server side by side.

llama.cpp applies adapters to a whole context, so neither server decodes two sets of scales in
one step: troupe's sets take turns a step each, llama-server decodes the set of its first busy
slot and holds the others back. This measures what that costs: N greedy streams of the same
length, all with one set, then half with another, per server, rounds alternated; output
tokens/s, and each half's mean time to first token and to its last token.

    bench/peer/lora_mix.py MODEL.gguf ADAPTER_A.gguf ADAPTER_B.gguf [STREAMS] [ROUNDS]
"""
import concurrent.futures
import statistics
import sys
import time

from peer_server import LLAMA_SERVER, TROUPE, WORDS, post, quiet, serving

TOKENS = 64


def one(url, i, lora):
    prompt = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(24))
    body = {"prompt": prompt, "temperature": 0, "n_predict": TOKENS, "ignore_eos": True,
            "cache_prompt": False, "lora": lora, "stream": False}
    t0 = time.monotonic()
    r = post(url + "/completion", body)
    return time.monotonic() - t0, r["timings"]["prompt_ms"] / 1000.0, r["tokens_predicted"]


def run(url, streams, mixed):
    sets = [[{"id": 0, "scale": 1}], [{"id": 1, "scale": 1}]]
    loras = [sets[i % 2] if mixed else sets[0] for i in range(streams)]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        done = list(pool.map(lambda i: one(url, i, loras[i]), range(streams)))
    wall = time.monotonic() - t0
    tokens = sum(d[2] for d in done)
    halves = [[d for i, d in enumerate(done) if i % 2 == h] for h in (0, 1)]
    return {"tok/s": tokens / wall,
            "ttft": [statistics.mean(d[1] for d in h) for h in halves],
            "last": [statistics.mean(d[0] for d in h) for h in halves]}


def main():
    model, a, b = sys.argv[1:4]
    streams = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    common = ["-m", model, "-t", "2", "-c", str(1024 * streams), "--host", "127.0.0.1",
              "--lora", a, "--lora", b]
    servers = {
        "troupe": quiet(TROUPE, "serve", *common, "--parallel", str(streams)),
        "llama-server": quiet(LLAMA_SERVER, *common, "-np", str(streams)),
    }
    print(f"{streams} streams of {TOKENS} tokens, 2 threads; per round: output tok/s, mean TTFT "
          f"(s) and mean time to the last token (s) of the even / odd streams")
    print("| round | server | one set | two sets (odd streams: B) |\n|---|---|---|---|")
    for rnd in range(rounds):
        order = list(servers.items()) if rnd % 2 == 0 else list(servers.items())[::-1]
        for name, start in order:
            with serving(start) as url:
                run(url, streams, False)  # warm-up
                same, mixed = run(url, streams, False), run(url, streams, True)
            cell = lambda r: (f"{r['tok/s']:.1f} tok/s; TTFT {r['ttft'][0]:.2f} / "
                              f"{r['ttft'][1]:.2f}; last {r['last'][0]:.2f} / {r['last'][1]:.2f}")
            print(f"| {rnd + 1} | {name} | {cell(same)} | {cell(mixed)} |", flush=True)


if __name__ == "__main__":
    main()
