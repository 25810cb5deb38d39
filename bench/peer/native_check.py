#!/usr/bin/env python3
"""llama-server's own endpoints, side by side: the same requests to `troupe serve` and to
llama-server on the same model, greedy, and what each answered.

Not a speed figure: a check that troupe's `POST /completion` (several prompts, n_probs,
return_tokens, streamed), `GET /props` and a list of prompts on `/v1/completions` give what
llama-server gives.

    bench/peer/native_check.py MODEL.gguf
"""
import json
import subprocess
import sys
import urllib.request

from peer_server import LLAMA_SERVER, TROUPE, post, serving

PROMPTS = ["Once upon a time", "The harbor at night", "Three ships sailed"]
GREEDY = {"temperature": 0, "n_predict": 12, "ignore_eos": True}


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def stream(url, body):
    """The events of a streamed /completion, parsed."""
    req = urllib.request.Request(url, data=json.dumps({**body, "stream": True}).encode(),
                                 headers={"Content-Type": "application/json"})
    events = []
    with urllib.request.urlopen(req, timeout=600) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("data: "):
                events.append(line[6:])
    return events


def answers(url):
    """What one server answers to the check's requests."""
    out = {}
    one = post(url + "/completion", {"prompt": PROMPTS[0], **GREEDY, "n_probs": 3,
                                     "return_tokens": True})
    out["one"] = one
    out["several"] = post(url + "/completion", {"prompt": PROMPTS, **GREEDY})
    out["tokens prompt"] = post(url + "/completion", {"prompt": one["tokens"][:4], **GREEDY})
    out["stream"] = stream(url + "/completion", {"prompt": PROMPTS[:2], **GREEDY,
                                                 "return_tokens": True})
    out["props"] = get(url + "/props")
    out["openai"] = post(url + "/v1/completions", {"prompt": PROMPTS, "max_tokens": 12,
                                                   "temperature": 0, "ignore_eos": True})
    return out


def streamed(events):
    """Per index: the text, the token ids and the number of final objects of a stream."""
    text, tokens, finals, done = {}, {}, {}, False
    for e in events:
        if e == "[DONE]":
            done = True
            continue
        v = json.loads(e)
        if v is None:  # llama-server opens a stream of several prompts with "data: null"
            continue
        i = v.get("index", 0)
        text[i] = text.get(i, "") + v["content"]
        tokens[i] = tokens.get(i, []) + v.get("tokens", [])
        finals[i] = finals.get(i, 0) + (1 if v["stop"] else 0)
    return text, tokens, finals, done


def compare(t, l):
    rows = []
    same = lambda a, b: "the same" if a == b else f"differ: {a!r} vs {b!r}"
    rows.append(("one prompt: content", same(t["one"]["content"], l["one"]["content"])))
    rows.append(("one prompt: tokens", same(t["one"]["tokens"], l["one"]["tokens"])))
    tp, lp = t["one"]["completion_probabilities"], l["one"]["completion_probabilities"]
    rows.append(("n_probs 3: ids of each token's alternatives",
                 same([[a["id"] for a in p["top_logprobs"]] for p in tp],
                      [[a["id"] for a in p["top_logprobs"]] for p in lp])))
    worst = max(abs(a["logprob"] - b["logprob"]) for a, b in zip(tp, lp))
    rows.append(("n_probs 3: largest logprob difference", f"{worst:.2e}"))
    rows.append(("one prompt: tokens_evaluated, stop_type",
                 same((t["one"]["tokens_evaluated"], t["one"]["stop_type"]),
                      (l["one"]["tokens_evaluated"], l["one"]["stop_type"]))))
    ts, ls = t["several"], l["several"]
    rows.append(("three prompts: an array of", f"{len(ts)} vs {len(ls)} objects"))
    rows.append(("three prompts: contents by index",
                 same(sorted((a["index"], a["content"]) for a in ts),
                      sorted((a["index"], a["content"]) for a in ls))))
    rows.append(("token-id prompt: content",
                 same(t["tokens prompt"]["content"], l["tokens prompt"]["content"])))
    tt, ttok, tf, tdone = streamed(t["stream"])
    lt, ltok, lf, ldone = streamed(l["stream"])
    rows.append(("two prompts streamed: texts, token ids", same((tt, ttok), (lt, ltok))))
    rows.append(("two prompts streamed: final objects per index, [DONE]",
                 same((tf, tdone), (lf, ldone))))
    to, lo = t["openai"], l["openai"]
    rows.append(("/v1/completions, three prompts: choices by index",
                 same(sorted((c["index"], c["text"]) for c in to["choices"]),
                      sorted((c["index"], c["text"]) for c in lo["choices"]))))
    rows.append(("/v1/completions, three prompts: usage prompt / completion tokens",
                 same((to["usage"]["prompt_tokens"], to["usage"]["completion_tokens"]),
                      (lo["usage"]["prompt_tokens"], lo["usage"]["completion_tokens"]))))
    for key in ("total_slots", "chat_template", "bos_token", "eos_token"):
        rows.append((f"/props {key}", same(t["props"].get(key), l["props"].get(key))))
    rows.append(("/props default_generation_settings.n_ctx",
                 same(t["props"]["default_generation_settings"]["n_ctx"],
                      l["props"]["default_generation_settings"]["n_ctx"])))
    return rows


def main():
    model = sys.argv[1]
    common = ["-m", model, "-t", "1", "-c", "2048", "--host", "127.0.0.1"]
    with serving(lambda p: subprocess.Popen([TROUPE, "serve", *common, "--parallel", "2",
                                             "--port", str(p)], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)) as url:
        troupe = answers(url)
    with serving(lambda p: subprocess.Popen([LLAMA_SERVER, *common, "-np", "2", "--port", str(p)],
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)) as url:
        llama = answers(url)
    print("| check | troupe vs llama-server |\n|---|---|")
    for what, verdict in compare(troupe, llama):
        print(f"| {what} | {verdict} |")


if __name__ == "__main__":
    main()
