#!/usr/bin/env python3
"""Two conversations taking turns on a server with one slot: what a conversation's next turn
costs once the other one has taken the slot. troupe with its host-memory prompt cache (the
default --cache-ram), troupe with --cache-ram 0, and llama-server (its own --cache-ram default),
same model, client and flags, servers alternated (the order rotates every round).

  usage: bench/peer/prompt-cache.py [--model M] [--rounds 3] [--words 600] [--turns 4]
         [--llama-server PATH] [--troupe PATH]

Each round and server: conversation A's first turn (a prompt of --words words, about 2.3 tokens each with the
`small` model's vocabulary), B's first
turn (another such prompt), then --turns more turns each, A and B alternating, each turn its
conversation's previous prompt, answer and a short new question. Every request is a
non-streamed /v1/completions of 8 greedy tokens; the figure is the wall time of the later
turns (the first two compute their whole prompt on every server), their median per round.
"""
import argparse
import random
import statistics
import subprocess
import time

from peer_server import LLAMA_SERVER, TROUPE, WORDS, post, serving


def start(side, args, port):
    common = ["-m", args.model, "--port", str(port), "-t", "2", "-c", "4096"]
    if side == "llama-server":
        cmd = [args.llama_server, *common, "-np", "1"]
    else:
        cmd = [args.troupe, "serve", *common, "--parallel", "1", "--alias", "m"]
        if side == "troupe --cache-ram 0":
            cmd += ["--cache-ram", "0"]
    log = open(f"/tmp/prompt-cache-{side.split()[0]}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def conversation_turns(seed, words, turns):
    rng = random.Random(seed)
    text = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))
    return [text(words), text(words)], [text(12) + "?" for _ in range(turns)]


def run(side, args, seed):
    with serving(lambda port: start(side, args, port)) as url:
        firsts, questions = conversation_turns(seed, args.words, args.turns)
        prompts = list(firsts)
        times, first_times, tokens = [], [], 0
        for turn in range(2 + args.turns):
            c = turn % 2  # A, B, A, B, ...
            if turn >= 2:
                prompts[c] += " " + questions[turn - 2]
            t0 = time.perf_counter()
            r = post(url + "/v1/completions", {"model": "m", "prompt": prompts[c],
                                               "max_tokens": 8, "temperature": 0})
            dt = time.perf_counter() - t0
            prompts[c] += r["choices"][0]["text"]
            tokens = r["usage"]["prompt_tokens"]
            (first_times if turn < 2 else times).append(dt)
        return statistics.median(first_times), statistics.median(times), tokens


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="/tmp/small-f16.gguf")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--words", type=int, default=600)
    p.add_argument("--turns", type=int, default=4)
    p.add_argument("--troupe", default=TROUPE)
    p.add_argument("--llama-server", default=LLAMA_SERVER)
    args = p.parse_args()
    sides = ["troupe", "troupe --cache-ram 0", "llama-server"]
    print(f"load before: {open('/proc/loadavg').read().split()[:3]}")
    results = {s: [] for s in sides}
    for r in range(args.rounds):
        order = sides[r % 3:] + sides[:r % 3]
        for side in order:
            first, later, tokens = run(side, args, seed=1000 + r)
            results[side].append((first, later))
            print(f"round {r + 1} {side}: first turns {first * 1e3:.0f} ms, later turns "
                  f"{later * 1e3:.0f} ms (medians); the last prompt {tokens} tokens", flush=True)
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")
    print("\n| server | first turns ms (per round) | later turns ms (per round) | later, median |")
    print("|---|---|---|---|")
    for side in sides:
        f = ", ".join(f"{a * 1e3:.0f}" for a, _ in results[side])
        l = ", ".join(f"{b * 1e3:.0f}" for _, b in results[side])
        med = statistics.median(b for _, b in results[side]) * 1e3
        print(f"| {side} | {f} | {l} | {med:.0f} |")


if __name__ == "__main__":
    main()
