#!/usr/bin/env python3
"""llama-server's POST /embedding, side by side: `troupe serve --embeddings` and
llama-server --embedding on the same model with the same pooling, the same requests, and how
far apart their vectors are.

Not a speed figure: a check that troupe's `/embedding` (a vector per token with `--pooling
none`, one pooled vector otherwise), every `embd_normalize` and `content` on `/v1/embeddings`
give what llama-server gives, and that both refuse OpenAI's shape with pooling none.

    bench/peer/embedding_check.py MODEL.gguf [POOLING...]   (default: none mean cls)
"""
import json
import sys
import urllib.error

from peer_server import LLAMA_SERVER, TROUPE, post, quiet, serving

TEXTS = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Tim ran to the big red ball."]
NORMS = [-1, 0, 1, 2, 3]


def ask(url, path, body):
    """(HTTP status, answer) of one request."""
    try:
        return 200, post(url + path, body)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def rows_of(answer):
    """[[row, ...] per input] of llama-server's shape."""
    return [entry["embedding"] for entry in sorted(answer, key=lambda e: e["index"])]


def answers(url):
    out = {"rows": rows_of(ask(url, "/embedding", {"content": TEXTS})[1])}
    for n in NORMS:
        status, a = ask(url, "/embedding", {"content": TEXTS[0], "embd_normalize": n})
        out[f"embd_normalize {n}"] = rows_of(a) if status == 200 else status
    status, a = ask(url, "/v1/embeddings", {"content": TEXTS[:2]})
    out["content on /v1/embeddings"] = rows_of(a) if status == 200 else status
    out["input on /v1/embeddings: status"] = ask(url, "/v1/embeddings", {"input": TEXTS[0]})[0]
    return out


def largest_gap(a, b):
    """The largest difference between two answers' floats, or None when their shapes differ."""
    if isinstance(a, list) != isinstance(b, list):
        return None
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b)
    if not isinstance(a, list):
        return 0.0 if a == b else None
    if len(a) != len(b):
        return None
    gaps = [largest_gap(x, y) for x, y in zip(a, b)]
    return None if None in gaps else max(gaps, default=0.0)


def shape(a):
    """"3x7x128" for nested lists (the first element's lengths), else the value itself."""
    dims = []
    while isinstance(a, list):
        dims.append(len(a))
        a = a[0] if a else None
    return "x".join(map(str, dims)) if dims else str(a)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    model = sys.argv[1]
    poolings = sys.argv[2:] or ["none", "mean", "cls"]
    common = ["-m", model, "-t", "2", "-c", "2048", "--pooling"]
    failed = False
    for pooling in poolings:
        with serving(quiet(TROUPE, "serve", *common, pooling, "--embeddings", "--parallel", "4")) as t:
            ours = answers(t)
        with serving(quiet(LLAMA_SERVER, *common, pooling, "--embedding", "-np", "4")) as l:
            theirs = answers(l)
        print(f"pooling {pooling}")
        for key in ours:
            gap = largest_gap(ours[key], theirs[key])
            same = gap is not None and gap < 1e-3 * (32760 if "normalize 0" in key else 1)
            failed |= not same
            print(f"  {key:34} troupe {shape(ours[key]):>12}  llama-server {shape(theirs[key]):>12}"
                  f"  largest gap {gap if gap is not None else '-'}  {'same' if same else 'DIFFERENT'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
