#!/usr/bin/env python3
"""Slot state files, side by side: `troupe serve` and llama-server on the same model with the
same `--slot-save-path`, each restoring what the other saved.

Not a speed figure: a check that POST /slots/ID?action=save|restore|erase answers as llama.cpp's
own server does and that the files travel both ways. llama-server answers a greedy prompt in
its slot 0 and saves it; troupe restores that file into its slot 0 and answers the same prompt
from the restored cells; then troupe saves, llama-server erases and restores troupe's file and
answers again. Every answer must be the same text, and each restored prompt must be found
cached (all but its last token).

    bench/peer/slot_check.py MODEL.gguf
"""
import json
import sys
import tempfile
import urllib.error

from peer_server import LLAMA_SERVER, TROUPE, post, quiet, serving

PROMPT = ("Once upon a time, there was a little girl named Lily. She loved to play outside in "
          "the park with her friends. One day,")
GREEDY = {"prompt": PROMPT, "temperature": 0, "n_predict": 24, "cache_prompt": True,
          "id_slot": 0}


def action(url, slot, name, filename=None):
    body = {"filename": filename} if filename else {}
    return post(f"{url}/slots/{slot}?action={name}", body)


def cached(answer):
    """Prompt tokens found cached: llama-server's timings.cache_n, troupe's tokens_cached."""
    return answer.get("timings", {}).get("cache_n", answer.get("tokens_cached"))


def refusal(url, slot, name, filename):
    try:
        action(url, slot, name, filename)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["error"]["message"]
    return 200, ""


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    model = sys.argv[1]
    common = ["-m", model, "-t", "2", "-c", "2048"]
    rows = []
    ok = True
    with tempfile.TemporaryDirectory() as d, \
            serving(quiet(LLAMA_SERVER, *common, "-np", "2", "--slot-save-path", d)) as llama, \
            serving(quiet(TROUPE, "serve", *common, "--parallel", "2",
                          "--slot-save-path", d)) as troupe:
        first = post(llama + "/completion", GREEDY)
        saved = action(llama, 0, "save", "from-llama.bin")
        restored = action(troupe, 0, "restore", "from-llama.bin")
        from_llama = post(troupe + "/completion", GREEDY)
        rows.append(("llama-server answers, saves slot 0", saved["n_saved"], first["content"]))
        rows.append(("troupe restores it into slot 0", restored["n_restored"], ""))
        rows.append(("troupe answers the same prompt", cached(from_llama), from_llama["content"]))
        n_prompt = first["tokens_evaluated"]
        ok &= restored["n_restored"] == saved["n_saved"] and restored["n_read"] == saved["n_written"]
        ok &= cached(from_llama) == n_prompt - 1 and from_llama["content"] == first["content"]

        saved = action(troupe, 0, "save", "from-troupe.bin")
        erased = action(llama, 0, "erase")
        restored = action(llama, 0, "restore", "from-troupe.bin")
        from_troupe = post(llama + "/completion", GREEDY)
        rows.append(("troupe saves slot 0", saved["n_saved"], ""))
        rows.append((f"llama-server erases slot 0 ({erased['n_erased']} tokens), restores it",
                     restored["n_restored"], ""))
        rows.append(("llama-server answers the same prompt", cached(from_troupe),
                     from_troupe["content"]))
        ok &= restored["n_restored"] == saved["n_saved"] and restored["n_read"] == saved["n_written"]
        ok &= cached(from_troupe) == n_prompt - 1 and from_troupe["content"] == first["content"]

        for side, url in (("llama-server", llama), ("troupe", troupe)):
            code, message = refusal(url, 0, "restore", "missing.bin")
            rows.append((f"{side}: restore of a missing file", code, message))
            code, message = refusal(url, 0, "save", "../outside.bin")
            rows.append((f"{side}: save to ../outside.bin", code, message))
            ok &= code == 400

    print(f"model {model}; prompt of {n_prompt} tokens, 24 greedy tokens\n")
    print("| step | tokens (saved, restored or found cached) / status | answer or error |")
    print("|---|---|---|")
    for step, n, text in rows:
        print(f"| {step} | {n} | {json.dumps(text)} |")
    print("\nall answers equal, every restored prompt found cached:", "yes" if ok else "NO")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
