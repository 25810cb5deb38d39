#!/usr/bin/env python3
"""Tool-call markers that are control tokens, side by side: `troupe serve` and llama-server on
the same model answer the same tool-call request greedily, with a large logit bias on the
call's marker token so that both write it as that one token. Mistral's vocabularies make
`[TOOL_CALLS]` a control token, which a detokenizer writes as nothing; a server must show the
template's markup (llama-server's preserved_tokens) for its parser to see the call. Not a
speed figure: a check that both answer with the same call (finish reasons may differ where
the answer goes on after the call: troupe ends a forced call when its grammar is complete).

The model: the test suite's build/release/test-models/family-mistral-control-marker.gguf
(Mistral Nemo's template, llama-spm's vocabulary with one token made the control token
`[TOOL_CALLS]`, random weights; written by `ctest -R ChatFamilyMarkup`).

    bench/peer/control_marker_check.py MODEL.gguf [--marker '[TOOL_CALLS]']
"""
import argparse
import json

from peer_server import LLAMA_SERVER, TROUPE, post, quiet, serving

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather for the next days",
    "parameters": {"type": "object", "additionalProperties": False,
                   "required": ["days", "metric"],
                   "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 7},
                                  "metric": {"type": "boolean"}}}}}]


def ask(url, marker_id, choice):
    body = {"messages": [{"role": "user", "content": "What is the weather in Paris this week?"}],
            "tools": TOOLS, "tool_choice": choice, "parallel_tool_calls": False,
            "max_tokens": 200, "temperature": 0, "logit_bias": {str(marker_id): 30}}
    r = post(url + "/v1/chat/completions", body)["choices"][0]
    calls = [(c["function"]["name"], c["function"]["arguments"])
             for c in r["message"].get("tool_calls") or []]
    return r["finish_reason"], calls, r["message"].get("content") or ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--marker", default="[TOOL_CALLS]")
    a = ap.parse_args()
    common = ["-m", a.model, "-t", "2", "-c", "4096"]
    with serving(quiet(LLAMA_SERVER, *common, "-np", "1", "--jinja")) as llama, \
            serving(quiet(TROUPE, "serve", *common, "--parallel", "1")) as troupe:
        ids = post(troupe + "/tokenize", {"content": a.marker, "with_pieces": True})["tokens"]
        assert len(ids) == 1, f"{a.marker} is not one token of this model: {ids}"
        marker_id = ids[0]["id"]
        print(f"model {a.model}; {a.marker} is token {marker_id}; greedy, logit bias +30 on it\n")
        print("| tool_choice | server | finish_reason | tool calls | content |")
        print("|---|---|---|---|---|")
        same = True
        for choice in ("required", "auto"):
            answers = {name: ask(url, marker_id, choice)
                       for name, url in (("llama-server", llama), ("troupe", troupe))}
            for name, (reason, calls, content) in answers.items():
                print(f"| {choice} | {name} | {reason} | {json.dumps(calls)} | "
                      f"{json.dumps(content)} |")
            same = same and answers["llama-server"][1:] == answers["troupe"][1:]
    print(f"\nthe same calls and content on both servers: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
