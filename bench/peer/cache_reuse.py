#!/usr/bin/env python3
"""Chunk reuse (`--cache-reuse N`), side by side: `troupe serve` and llama-server on the same
model, one slot each, fed the prompts an editor's fill-in-the-middle plugin sends (llama.vscode
keeps a ring of context chunks before the text around the cursor): each request drops the
ring's oldest chunk, adds a new one at its end and changes the cursor's text. With chunk reuse
the chunks that stayed keep their cells, moved down into place; without it all but the first
chunk's tokens are computed again.

For each server, with and without `--cache-reuse`, in alternating order: the prompt tokens each
request computed (`timings.prompt_n`), its prompt time (`timings.prompt_ms`) and its whole
latency (median over the requests after the first, which fills the slot), and what the
server's `/completion` answered as cached (`timings.cache_n`).

    bench/peer/cache_reuse.py MODEL.gguf [--rounds 2] [--requests 8] [--chunks 6]
        [--chunk-words 100] [--reuse 256] [--threads 2] [--ctx 2048]
"""
import argparse
import random
import statistics
import time

from peer_server import LLAMA_SERVER, TROUPE, WORDS, post, quiet, serving


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def prompts(seed, n_requests, n_chunks, chunk_words):
    """The editor's requests: a ring of n_chunks chunks, then the cursor's text."""
    rng = random.Random(seed)
    ring = [text(rng, chunk_words) for _ in range(n_chunks)]
    out = []
    for _ in range(n_requests):
        cursor = text(rng, 40)
        out.append("".join(f"<chunk>\n{c}\n" for c in ring) + "<cursor>\n" + cursor)
        ring = ring[1:] + [text(rng, chunk_words)]
    return out


def run(url, requests, reuse):
    rows = []
    for p in requests:
        body = {"prompt": p, "n_predict": 8, "temperature": 0, "cache_prompt": True,
                "n_cache_reuse": reuse}
        t0 = time.monotonic()
        answer = post(url + "/completion", body)
        t = answer["timings"]
        rows.append((t["prompt_n"], t.get("cache_n", 0), t["prompt_ms"],
                     (time.monotonic() - t0) * 1000))
    later = rows[1:]
    return {
        "prompt_n": statistics.median(r[0] for r in later),
        "cache_n": statistics.median(r[1] for r in later),
        "prompt_ms": statistics.median(r[2] for r in later),
        "latency_ms": statistics.median(r[3] for r in later),
        "first_prompt_n": rows[0][0],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--chunks", type=int, default=6)
    ap.add_argument("--chunk-words", type=int, default=100)
    ap.add_argument("--reuse", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=2048, help="context (one slot), at most the model's")
    a = ap.parse_args()
    common = ["-m", a.model, "-t", str(a.threads), "-c", str(a.ctx)]
    servers = {
        "llama-server": lambda: quiet(LLAMA_SERVER, *common, "-np", "1",
                                      "--cache-reuse", str(a.reuse)),
        "troupe": lambda: quiet(TROUPE, "serve", *common, "--parallel", "1",
                                "--cache-reuse", str(a.reuse)),
    }
    results = {}
    for rnd in range(a.rounds):
        order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
        for name in order:
            with serving(servers[name]()) as url:
                for reuse in (a.reuse, 0):
                    seed = 1000 * rnd + (1 if reuse else 2)
                    requests = prompts(seed, a.requests, a.chunks, a.chunk_words)
                    r = run(url, requests, reuse)
                    results.setdefault((name, reuse), []).append(r)
                    print(f"round {rnd + 1} {name:12s} n_cache_reuse {reuse:4d}: "
                          f"computed {r['prompt_n']:.0f} of {r['prompt_n'] + r['cache_n']:.0f} "
                          f"prompt tokens (first request {r['first_prompt_n']}), prompt "
                          f"{r['prompt_ms']:.0f} ms, request {r['latency_ms']:.0f} ms",
                          flush=True)
    print()
    print("| server | n_cache_reuse | prompt tokens computed / prompt (median) | "
          "prompt ms (median of rounds) | request ms (median of rounds) |")
    print("|---|---|---|---|---|")
    for (name, reuse), rs in sorted(results.items()):
        computed = statistics.median(r["prompt_n"] for r in rs)
        total = statistics.median(r["prompt_n"] + r["cache_n"] for r in rs)
        print(f"| {name} | {reuse} | {computed:.0f} / {total:.0f} | "
              f"{statistics.median(r['prompt_ms'] for r in rs):.0f} | "
              f"{statistics.median(r['latency_ms'] for r in rs):.0f} |")


if __name__ == "__main__":
    main()
