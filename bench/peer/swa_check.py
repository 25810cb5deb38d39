#!/usr/bin/env python3
"""Models whose memory cannot be cut back to any token, side by side: a sliding-window model
whose windowed layers keep only the window's cells (llama.cpp's swa_full off, both servers'
default), or a hybrid model's recurrent state. `troupe serve` and llama-server must both
decide which cached prefixes still serve a new prompt. Three flows on the same model, each
server on its own, greedy through `/completion`: the prompt's tokens served from the cache
(`timings.cache_n`) and whether the answer's log-probabilities are those of the same prompt on
a fresh server (largest difference). Then, for a sliding-window model, each server's resident
memory after start-up, with and without `--swa-full`. Not a speed figure.

  1. a prompt sharing 40 tokens with a 600-token one cached before it (behind the window; a
     recurrent state cannot be cut back to it);
  2. the next turn of a conversation whose 300-token answer comes back rendered otherwise
     (the 600-token prompt, then other tokens): a checkpoint taken after the prompt serves it;
  3. the next turn of a conversation that goes on (prompt, answer, more);
  4. that turn again after another prompt took the only slot (the host-memory cache,
     `--cache-ram`, both servers' default);
  5. flow 2 on another conversation, another prompt having taken the only slot before its
     next turn: the checkpoint has to come back from host memory with the conversation;
  6. the same prompt again (an answer regenerated).

The models: `troupe mkmodel --arch cohere2 --sliding-window 16 --type f32 -o swa-tiny.gguf`
or `--arch lfm2 --type f32 -o hybrid-tiny.gguf` for the flows, and for the memory a
`small`-shaped sliding-window one (`--shape small --sliding-window 256 --type f16`).

    bench/peer/swa_check.py swa-tiny.gguf [--memory swa-small.gguf] [--ttft hybrid-small.gguf]

With --ttft, the time to the first token of a lone prompt (`n_predict` 1, wall clock at the
client, each server up for the whole run, alternated per prompt, a second of quiet before each
request: a server's threads spin on a while after its request, which slowed the other's next
steps up to twice), 2 threads: a recurrent
model's checkpoint is taken before the prompt's last token, which both servers decode in a
step of its own; then the same prompt again, served from that checkpoint.
"""
import argparse
import contextlib
import random
import statistics
import subprocess
import time

from peer_server import LLAMA_SERVER, TROUPE, post, serving


def started(argv, procs):
    """A start for serving() that remembers its process (for its memory)."""
    def start(port):
        p = subprocess.Popen([*argv, "--port", str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(p)
        return p
    return start


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def complete(url, prompt, n):
    r = post(url + "/completion", {"prompt": prompt, "n_predict": n, "temperature": 0,
                                   "n_probs": 1, "cache_prompt": True, "return_tokens": True})
    return r["timings"]["cache_n"], r["tokens"], [p["logprob"] for p in
                                                   r["completion_probabilities"]]


def flows(url):
    """cache_n and logprobs of each flow's last request, on one server started fresh."""
    rnd = random.Random(7)
    tokens = lambda n: [rnd.randrange(300, 1500) for _ in range(n)]
    a, tail, other, more = tokens(600), tokens(30), tokens(30), tokens(20)
    out = {}
    complete(url, a, 4)
    out["40 tokens of a cached prompt"] = complete(url, a[:40] + tail, 8)
    complete(url, a, 300)
    out["answer rendered otherwise"] = complete(url, a + other, 8)
    answer = complete(url, a, 8)[1]
    out["conversation goes on"] = complete(url, a + answer[:-1] + more, 8)
    complete(url, tokens(100), 4)  # takes the only slot: the conversation goes to host memory
    out["comes back after another prompt"] = complete(url, a + answer[:-1] + more, 8)
    c, other_c = tokens(600), tokens(30)
    complete(url, c, 300)
    complete(url, tokens(100), 4)
    out["rendered otherwise, after another prompt"] = complete(url, c + other_c, 8)
    out["the same prompt again"] = complete(url, c + other_c, 8)
    return out, {"40 tokens of a cached prompt": a[:40] + tail,
                 "answer rendered otherwise": a + other,
                 "conversation goes on": a + answer[:-1] + more,
                 "comes back after another prompt": a + answer[:-1] + more,
                 "rendered otherwise, after another prompt": c + other_c,
                 "the same prompt again": c + other_c}


def ttft(model, n_tokens, rounds, settle):
    """Median and range of the first token's wall-clock time, fresh prompts and the same again."""
    common = ["-m", model, "-t", "2", "-c", "8192"]
    argv = {"llama-server": [LLAMA_SERVER, *common, "-np", "1"],
            "troupe": [TROUPE, "serve", *common, "--parallel", "1"]}
    rnd = random.Random(11)
    times = {name: {"fresh": [], "again": []} for name in argv}
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(serving(started(cmd, []))) for name, cmd in argv.items()}
        for url in urls.values():  # warm-up
            complete(url, [rnd.randrange(300, 1500) for _ in range(64)], 1)
        for k in range(rounds):
            prompt = [rnd.randrange(300, 1500) for _ in range(n_tokens)]
            order = list(urls.items())
            for name, url in order[k % 2:] + order[:k % 2]:  # alternated
                for kind in ("fresh", "again"):
                    # The other server's threads spin on for a while after its request: measured
                    # right after it, a server shares the cores with them.
                    time.sleep(settle)
                    t0 = time.perf_counter()
                    complete(url, prompt, 1)
                    times[name][kind].append(1000 * (time.perf_counter() - t0))
    print(f"\nmodel {model}; lone {n_tokens}-token prompts, 1 token each, 2 threads, {rounds} "
          "prompts per server\n")
    print("| server | prompt | first token ms, median | range |")
    print("|---|---|---|---|")
    for name, kinds in times.items():
        for kind, ms in kinds.items():
            print(f"| {name} | {'the same again' if kind == 'again' else 'new'} | "
                  f"{statistics.median(ms):.0f} | {min(ms):.0f}-{max(ms):.0f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--memory", help="a larger sliding-window model for the memory figures")
    ap.add_argument("--ctx", type=int, default=32768, help="context for the memory figures")
    ap.add_argument("--ttft", help="a model for the time to the first token of lone prompts")
    ap.add_argument("--ttft-tokens", type=int, default=512, help="prompt tokens (--ttft)")
    ap.add_argument("--ttft-rounds", type=int, default=16, help="prompts per server (--ttft)")
    ap.add_argument("--ttft-settle", type=float, default=1.0,
                    help="seconds of quiet before each timed request (--ttft)")
    a = ap.parse_args()
    common = ["-m", a.model, "-t", "1", "-c", "2048", "-b", "64"]
    servers = {"llama-server": [LLAMA_SERVER, *common, "-ub", "64", "-np", "1"],
               "troupe": [TROUPE, "serve", *common, "--parallel", "1"]}
    print(f"model {a.model}; greedy; -c 2048, steps of 64 tokens, one slot\n")
    print("| flow | server | prompt tokens | cached (cache_n) | largest logprob difference "
          "from a fresh server |")
    print("|---|---|---|---|---|")
    for name, argv in servers.items():
        with serving(started(argv, [])) as url:
            got, prompts = flows(url)
        for flow, (cache_n, _, lps) in got.items():
            with serving(started(argv, [])) as fresh:
                _, _, want = complete(fresh, prompts[flow], 8)
            gap = max(abs(x - y) for x, y in zip(lps, want))
            print(f"| {flow} | {name} | {len(prompts[flow])} | {cache_n} | {gap:.2g} |")
    if a.ttft:
        ttft(a.ttft, a.ttft_tokens, a.ttft_rounds, a.ttft_settle)
    if not a.memory:
        return
    print(f"\nmodel {a.memory}; -c {a.ctx}, 4 slots; resident memory after start-up\n")
    print("| server | windowed layers | RSS MiB |")
    print("|---|---|---|")
    mem = ["-m", a.memory, "-t", "1", "-c", str(a.ctx)]
    for name, argv in (("llama-server", [LLAMA_SERVER, *mem, "-np", "4"]),
                       ("troupe", [TROUPE, "serve", *mem, "--parallel", "4"])):
        for full in (False, True):
            procs = []
            with serving(started(argv + (["--swa-full"] if full else []), procs)):
                rss = rss_mib(procs[0].pid)
            print(f"| {name} | {'every cell (--swa-full)' if full else 'the window'} | "
                  f"{rss:.0f} |")


if __name__ == "__main__":
    main()
