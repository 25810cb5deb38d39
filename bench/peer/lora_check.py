#!/usr/bin/env python3
"""LoRA adapters, side by side: `troupe serve` and llama-server on the same model with the same
two adapters (`--lora A --lora-scaled B:0.5`), the same greedy requests, and what each answered.

Not a speed figure: a check that troupe applies adapters as llama.cpp's own server does, at the
server-wide scales, at a request's `lora` scales, with requests of other scales running at the
same time, and after POST /lora-adapters.

    bench/peer/lora_check.py MODEL.gguf ADAPTER_A.gguf ADAPTER_B.gguf
"""
import concurrent.futures
import json
import sys
import urllib.request

from peer_server import LLAMA_SERVER, TROUPE, post, quiet, serving

PROMPT = "Once upon a time"
GREEDY = {"temperature": 0, "n_predict": 16, "ignore_eos": True}
SETS = {
    "server-wide scales (A 1, B 0.5)": None,
    "lora [] (llama-server: the server-wide scales)": [],
    "A at 1": [{"id": 0, "scale": 1}],
    "B at 1": [{"id": 1, "scale": 1}],
    "A and B at 0.5": [{"id": 0, "scale": 0.5}, {"id": 1, "scale": 0.5}],
}


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def complete(url, lora, cache=True):
    body = {"prompt": PROMPT, **GREEDY, "return_tokens": True, "cache_prompt": cache}
    if lora is not None:
        body["lora"] = lora
    return post(url + "/completion", body)["tokens"]


def answers(url, cache=True):
    """`cache` False: every request says cache_prompt false (no prompt reuse on llama-server;
    troupe accepts the field and reuses only what the same scales computed)."""
    out = {"adapters": [(a["id"], a["scale"]) for a in get(url + "/lora-adapters")]}
    for name, lora in SETS.items():
        out[name] = complete(url, lora, cache)
    # Every set at once, twice: the server batches what it can and must keep each answer.
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        jobs = [pool.submit(complete, url, lora, cache) for lora in list(SETS.values()) * 2]
        out["all at once"] = [j.result() for j in jobs]
    post(url + "/lora-adapters", [{"id": 1, "scale": 1}])
    out["after POST [B at 1]: adapters"] = [(a["id"], a["scale"])
                                            for a in get(url + "/lora-adapters")]
    out["after POST [B at 1]: no lora"] = complete(url, None, cache)
    return out


def consistent(a):
    """Whether a server's answers under load and after the POST are its answers alone."""
    solo = [a[name] for name in SETS]
    return (a["all at once"] == solo * 2, a["after POST [B at 1]: no lora"] == a["B at 1"])


def main():
    model, a, b = sys.argv[1:4]
    common = ["-m", model, "-t", "1", "-c", "4096", "--host", "127.0.0.1", "--lora", a,
              "--lora-scaled", f"{b}:0.5"]
    with serving(quiet(TROUPE, "serve", *common, "--parallel", "4")) as url:
        troupe = answers(url)
    with serving(quiet(LLAMA_SERVER, *common, "-np", "4")) as url:
        llama = answers(url)
    with serving(quiet(LLAMA_SERVER, *common, "-np", "4")) as url:
        uncached = answers(url, cache=False)
    print("| check | troupe vs llama-server |\n|---|---|")
    for key in troupe:
        verdict = "the same" if troupe[key] == llama[key] else \
            f"differ: {troupe[key]!r} vs {llama[key]!r}"
        print(f"| {key} | {verdict} |")
    print(f"| distinct answers among the {len(SETS)} sets (troupe) | "
          f"{len({tuple(troupe[name]) for name in SETS})} |")
    for who, a in (("troupe", troupe), ("llama-server", llama),
                   ("llama-server, cache_prompt false", uncached)):
        busy, after = consistent(a)
        print(f"| {who}: all at once = each set alone; after the POST = B alone | "
              f"{'yes' if busy else 'no'}; {'yes' if after else 'no'} |")


if __name__ == "__main__":
    main()
