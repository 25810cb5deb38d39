#!/usr/bin/env bash
# Terminal test of tool calls and reasoning in `troupe chat` (issue 17): the chat in a tmux pane
# against a scripted OpenAI-style server (python3, below) that streams a thinking model's answer
# with a tool call, then the answer to the tool's result, then a third answer with reasoning.
#   - `--tools FILE` sends the tools with every request; the banner names them;
#   - reasoning is written dimmed, the call as "→ get_weather({...})", then a hint to answer it;
#   - a message while the call waits is refused; `/tool 18 C` sends a tool message with the
#     call's id, after the assistant message that carries the call, and the answer streams;
#   - `/reasoning hide` folds the next answer's reasoning into one line, `/reasoning last` shows it;
#   - one-shot: `-p` on a pipe prints the call and not the reasoning (unless --reasoning show);
#     a bad tools file is one line on stderr and exit 2.
#
# Usage: tmux_tools_test.sh TROUPE_BINARY. Exit 77 (skipped) without tmux or python3.
# Every wait is for text to appear in a file (tail -f wakes on each write), with a timeout.
set -euo pipefail

troupe=${1:?usage: tmux_tools_test.sh TROUPE_BINARY}
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

work=$(mktemp -d)
session="troupe-tools-test-$$"
server_pid=""
export TMUX_TMPDIR="$work"  # a private tmux server, gone with the test
cleanup() {
  tmux kill-server 2>/dev/null || true
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- pane:"; tmux capture-pane -p -t "$session" 2>/dev/null || true; echo "--- requests:"; cat "$work/bodies.jsonl" 2>/dev/null || true; exit 1; }

# wait_for FILE TEXT: blocks until FILE contains TEXT (FILE must exist before its writer starts).
wait_for() {
  [[ -f $1 ]] || { echo "wait_for: $1 does not exist"; return 1; }
  local fd tail_pid rc=0
  exec {fd}< <(exec tail -c +1 -f "$1")
  tail_pid=$!
  timeout 60 python3 -c '
import os, sys
want, seen = sys.argv[1].encode(), b""
while want not in seen:
    chunk = os.read(0, 65536)
    if not chunk:
        sys.exit(1)
    seen = seen[-len(want):] + chunk
' "$2" <&"$fd" || rc=$?
  kill "$tail_pid" 2>/dev/null || true
  exec {fd}<&-
  return "$rc"
}

# 1. The scripted server: answer N to the N-th chat request, each request body appended to
# bodies.jsonl before the answer is sent.
cat >"$work/server.py" <<'EOF'
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

def delta(d, finish=None):
    return "data: " + json.dumps({"object": "chat.completion.chunk",
                                  "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}) + "\n\n"

def call(index, **fields):
    piece = {"index": index}
    if "id" in fields:
        piece.update(id=fields["id"], type="function")
    piece["function"] = {k: v for k, v in fields.items() if k in ("name", "arguments")}
    return delta({"tool_calls": [piece]})

ANSWERS = [
    [delta({"reasoning_content": "The user asks about"}), delta({"reasoning_content": " the weather."}),
     delta({"content": "Let me check."}), call(0, id="call_w1", name="get_weather", arguments=""),
     call(0, arguments='{"city": '), call(0, arguments='"Paris"}'), delta({}, "tool_calls")],
    [delta({"content": "It is 18 C"}), delta({"content": " in Paris."}), delta({}, "stop")],
    [delta({"reasoning_content": "Secret plan."}), delta({"content": "Tomorrow: sun."}), delta({}, "stop")],
]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def do_GET(self):  # the chat asks for the model list at start
        body = json.dumps({"object": "list", "data": [{"id": "scripted", "object": "model"}]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        answer = ANSWERS[Handler.count % len(ANSWERS)]
        Handler.count += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in answer + ["data: [DONE]\n\n"]:
            self.wfile.write(event.encode())
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write("http://127.0.0.1:%d\n" % server.server_port)
server.serve_forever()
EOF
: >"$work/bodies.jsonl"
: >"$work/url"
python3 "$work/server.py" "$work/url" "$work/bodies.jsonl" &
server_pid=$!
wait_for "$work/url" "http://" || fail "the scripted server did not start"
url=$(head -1 "$work/url")

cat >"$work/tools.json" <<'EOF'
[{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
EOF

# 2. The chat in a pane, started only once its output is being recorded.
: >"$work/pane.log"
tmux new-session -d -s "$session" -x 120 -y 40 \
  "tmux wait-for go; '$troupe' chat --url '$url' --no-history --tools '$work/tools.json'; tmux wait-for -S chat-exited; exec tail -f /dev/null"
tmux pipe-pane -t "$session" -o "cat >> '$work/pane.log'"
tmux wait-for -S go
wait_for "$work/pane.log" "tools sent with each request: get_weather" || fail "no tools banner"
wait_for "$work/pane.log" ">>> " || fail "no prompt"

# 3. A question: dimmed reasoning, the content, the call on its own line, the hint.
tmux send-keys -t "$session" "Weather in Paris?" Enter
wait_for "$work/pane.log" "waiting: answer with /tool <result>, first get_weather" || fail "no waiting-call hint"
grep -qF $'\x1b[2mThe user asks about\x1b[0m' "$work/pane.log" || fail "reasoning not dimmed"
screen=$(tmux capture-pane -p -t "$session")
grep -qF 'Let me check.' <<<"$screen" || fail "content not shown"
grep -qxF '→ get_weather({"city": "Paris"})' <<<"$screen" || fail "tool call not shown on its own line"
body=$(sed -n 1p "$work/bodies.jsonl")
python3 -c 'import json,sys; b=json.loads(sys.argv[1]); assert b["tools"][0]["function"]["name"]=="get_weather", b' "$body" \
  || fail "the first request has no tools"
echo "first answer: reasoning dimmed, call shown, tools sent"

# 4. A message while the call waits is refused; /tool answers it and the next answer streams.
tmux send-keys -t "$session" "never mind" Enter
wait_for "$work/pane.log" "the model waits for 1 tool result" || fail "message not refused while a call waits"
tmux send-keys -t "$session" "/tool 18 C" Enter
wait_for "$work/pane.log" "It is 18 C in Paris." || fail "no answer after /tool"
[[ $(wc -l <"$work/bodies.jsonl") == 2 ]] || fail "expected 2 requests, got $(wc -l <"$work/bodies.jsonl")"
python3 - "$(sed -n 2p "$work/bodies.jsonl")" <<'EOF' || fail "the second request does not carry the call and its result"
import json, sys
b = json.loads(sys.argv[1])
m = b["messages"]
assert [x["role"] for x in m] == ["user", "assistant", "tool"], m
assert m[1]["content"] == "Let me check.", m[1]
call = m[1]["tool_calls"][0]
assert call["id"] == "call_w1" and call["function"]["name"] == "get_weather", call
assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}, call
assert m[2] == {"role": "tool", "content": "18 C", "tool_call_id": "call_w1"}, m[2]
assert b["tools"][0]["function"]["name"] == "get_weather"
EOF
echo "/tool: tool message with the call's id sent after the assistant's call; answer streamed"

# 5. Hidden reasoning: one folded line, the text only on /reasoning last.
tmux send-keys -t "$session" "/reasoning hide" Enter
wait_for "$work/pane.log" "(reasoning hidden)" || fail "/reasoning hide not acknowledged"
tmux send-keys -t "$session" "And tomorrow?" Enter
wait_for "$work/pane.log" "Tomorrow: sun." || fail "no third answer"
grep -qF "[reasoning hidden]" "$work/pane.log" || fail "no folded reasoning line"
grep -qF "Secret plan." "$work/pane.log" && fail "hidden reasoning was written"
tmux send-keys -t "$session" "/reasoning last" Enter
wait_for "$work/pane.log" "Secret plan." || fail "/reasoning last did not show the reasoning"
echo "/reasoning hide folds it, /reasoning last shows it"
tmux send-keys -t "$session" C-d
timeout 10 tmux wait-for chat-exited || fail "Ctrl-D did not leave the chat"

# 6. One-shot on a pipe (the server's next answer is the first one again).
"$troupe" chat --url "$url" --no-history --tools "$work/tools.json" -p "Weather?" >"$work/once.txt" \
  || fail "chat -p failed"
grep -qxF '→ get_weather({"city": "Paris"})' "$work/once.txt" || fail "chat -p: no call line: $(cat "$work/once.txt")"
grep -qF 'weather.' "$work/once.txt" && fail "chat -p on a pipe wrote the reasoning"
grep -q $'\x1b' "$work/once.txt" && fail "escape sequences in piped output"
"$troupe" chat --url "$url" --no-history -p "x" >/dev/null  # skips answer 2
"$troupe" chat --url "$url" --no-history --reasoning show -p "x" >"$work/shown.txt" || fail "--reasoning show failed"
[[ $(cat "$work/shown.txt") == $'Secret plan.\n\nTomorrow: sun.' ]] || fail "--reasoning show: $(cat "$work/shown.txt")"
echo '[{"type": "function"}]' >"$work/bad.json"
rc=0
"$troupe" chat --url "$url" --no-history --tools "$work/bad.json" -p "x" >/dev/null 2>"$work/err.txt" || rc=$?
[[ $rc == 2 ]] || fail "a bad tools file should exit 2, got $rc"
[[ $(wc -l <"$work/err.txt") == 1 ]] && grep -qF "bad.json: tools[0]" "$work/err.txt" || fail "bad tools file: $(cat "$work/err.txt")"
echo "one-shot: call shown, reasoning only when asked, bad tools file refused"
echo "PASS"
