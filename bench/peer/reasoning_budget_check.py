#!/usr/bin/env python3
"""Reasoning budgets, side by side: `troupe serve` and llama-server on the same thinking model
answer the same conversation greedily with `reasoning_budget_tokens` N, 0 and -1 (and a
message), on /v1/chat/completions; and troupe through /v1/messages with Anthropic's
`thinking.budget_tokens`. Not a speed figure: a check that without a budget both give the same
answer, and that with one the block is closed after N tokens, with the message. Where
llama-server's budget engages, its answer should be troupe's; it does not engage where the
reasoning block's opening tag is not one token (its sampler matches the tag's tokens alone
against the generation prompt's, which a tokenizer may cut otherwise in context).

The model needs a chat template with a reasoning block (a DeepSeek R1 or Qwen3 template); a
random-weights one is enough, e.g. the test suite's
build/release/test-models/family-deepseek-r1.gguf (llama.cpp's DeepSeek R1 Distill template and
Llama 3 tokenizer, written by `ctest -R ThinkingFamily`).

    bench/peer/reasoning_budget_check.py MODEL.gguf [--budget 8] [--tokens 40]
"""
import argparse
import json
import sys

from peer_server import LLAMA_SERVER, TROUPE, post, quiet, serving

MESSAGES = [{"role": "user", "content": "Think about the sea, then answer in one line."}]


def ask(url, budget, tokens, message):
    body = {"messages": MESSAGES, "max_tokens": tokens, "temperature": 0,
            "reasoning_budget_tokens": budget, "reasoning_budget_message": message}
    m = post(url + "/v1/chat/completions", body)["choices"][0]["message"]
    return m.get("reasoning_content") or "", m.get("content") or ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--message", default=" Time to answer.")
    a = ap.parse_args()
    common = ["-m", a.model, "-t", "2", "-c", "2048"]
    rows = []
    with serving(quiet(LLAMA_SERVER, *common, "-np", "1")) as llama, \
            serving(quiet(TROUPE, "serve", *common, "--parallel", "1", "-a", "m")) as troupe:
        for budget in (a.budget, 0, -1):
            answers = {name: ask(url, budget, a.tokens, a.message)
                       for name, url in (("llama-server", llama), ("troupe", troupe))}
            rows.append((budget, answers))
        anthropic = post(troupe + "/v1/messages", {
            "model": "m", "max_tokens": 2048, "messages": MESSAGES, "temperature": 0,
            "thinking": {"type": "enabled", "budget_tokens": 1024}})
    unbounded = dict(rows)[-1]
    ok = unbounded["llama-server"] == unbounded["troupe"]
    opened = bool(unbounded["troupe"][0])  # the template opens the block in the prompt
    print(f"model {a.model}; greedy, {a.tokens} tokens, message {json.dumps(a.message)}\n")
    print("| reasoning_budget_tokens | server | reasoning_content | content |")
    print("|---|---|---|---|")
    for budget, answers in rows:
        for name, (reasoning, content) in answers.items():
            print(f"| {budget} | {name} | {json.dumps(reasoning)} | {json.dumps(content)} |")
        if budget >= 0 and opened:
            ok &= answers["troupe"][0].rstrip().endswith(a.message.strip())
            engaged = answers["llama-server"] != unbounded["llama-server"]
            print(f"| {budget} | (llama-server's budget {'engaged' if engaged else 'did not engage'})"
                  " | | |")
            if engaged:
                ok &= answers["llama-server"] == answers["troupe"]
    blocks = [b["type"] for b in anthropic["content"]]
    print(f"\ntroupe /v1/messages, thinking.budget_tokens 1024: blocks {blocks}, "
          f"output tokens {anthropic['usage']['output_tokens']}")
    print("\nwithout a budget the same answer on both servers; troupe's block closed with the "
          "message" + (" (and llama-server's, where its budget engaged, the same)" if opened
                       else " (the template did not open a block: nothing to bound)") + ":",
          "yes" if ok else "NO")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
