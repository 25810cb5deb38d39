#!/usr/bin/env bash
# Terminal test of `troupe chat` (issue 6): a real `troupe serve --engine sim`, the chat in a
# tmux pane. Sends a question, captures the pane while the answer streams (the text must grow
# between captures), presses Ctrl-C mid-answer and checks that the server's
# troupe_requests_running returns to 0 and that the prompt is back; then Ctrl-D leaves.
#
# Usage: tmux_chat_test.sh TROUPE_BINARY. Exit 77 (skipped) without tmux or `troupe serve`.
#
# Waiting: every wait is for something to appear (the pane's output is piped to a file and
# read with `tail -f`, which wakes on each write), bounded by a timeout. The one exception is
# the server's metric, another process's state, which is re-read until it reads 0.
set -euo pipefail

troupe=${1:?usage: tmux_chat_test.sh TROUPE_BINARY}
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
"$troupe" serve --help >/dev/null 2>&1 || { echo "SKIP: this troupe has no serve"; exit 77; }

work=$(mktemp -d)
session="troupe-chat-test-$$"
server_pid=""
export TMUX_TMPDIR="$work"  # a private tmux server, gone with the test
cleanup() {
  tmux kill-server 2>/dev/null || true
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- pane:"; tmux capture-pane -p -t "$session" 2>/dev/null || true; echo "--- server log:"; tail -20 "$work/server.log" || true; exit 1; }

# wait_for FILE TEXT: blocks until FILE contains TEXT (tail -f wakes on each write; the text
# need not end a line: a prompt does not). FILE must exist already: `tail -f` gives up at once
# on a missing file, and a writer started in the background (the server's redirection, tmux's
# pipe-pane) creates its file only when it gets to run, which under load can be after the
# wait began. So every file waited on is created before its writer starts.
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

# wait_for_growth FILE: blocks until FILE is longer than it is now.
wait_for_growth() {
  local size got
  size=$(stat -c %s "$1")
  got=$( (timeout 60 tail -c +"$((size + 1))" -f "$1" || true) | head -c 1 | wc -c)
  [[ $got == 1 ]]
}

# Characters on screen, blanks not counted.
screen_chars() { tmux capture-pane -p -t "$session" | tr -d ' \n' | wc -m; }

# wait_for_more_text N: blocks until the screen holds more than N characters. Each round waits
# for new pane output (a spinner frame changes bytes, not the character count).
wait_for_more_text() {
  for _ in $(seq 1000); do
    wait_for_growth "$work/pane.log" || return 1
    [[ $(screen_chars) -gt $1 ]] && return 0
  done
  return 1
}

# 1. The server: simulated engine, 20 tokens/s so that an answer of 300 tokens takes 15 s.
: >"$work/server.log"
"$troupe" serve --engine sim --port 0 --sim-decode-tps 20 >>"$work/server.log" 2>&1 &
server_pid=$!
wait_for "$work/server.log" "listening on" || fail "server did not start"
url=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/server.log" | head -1)
running() { curl -s "$url/metrics" | awk '$1 == "troupe_requests_running" {print $2}'; }

# 2. The chat in a pane, started only once its output is being recorded.
: >"$work/pane.log"
tmux new-session -d -s "$session" -x 100 -y 30 \
  "tmux wait-for go; '$troupe' chat --url '$url' --no-history --max-tokens 300; tmux wait-for -S chat-exited; exec tail -f /dev/null"
tmux pipe-pane -t "$session" -o "cat >> '$work/pane.log'"
tmux wait-for -S go
wait_for "$work/pane.log" ">>> " || fail "no prompt"
# The start checked the server and names its model.
tmux capture-pane -p -t "$session" | grep -q "· model " || fail "the banner does not name the model"

# 3. A question; the answer must grow on screen while it streams.
tmux send-keys -t "$session" "Tell me a long story." Enter
previous=$(screen_chars)
for capture in 1 2 3; do
  wait_for_more_text "$previous" || fail "capture $capture: the answer did not grow"
  now=$(screen_chars)
  echo "capture $capture: $previous -> $now characters on screen"
  previous=$now
done
[[ $(running) == 1 ]] || fail "server does not count the running request"

# 4. Ctrl-C mid-answer: the answer stops, the server stops generating, the prompt is back.
tmux send-keys -t "$session" C-c
wait_for "$work/pane.log" "[stopped]" || fail "Ctrl-C did not stop the answer"
for _ in $(seq 100); do
  [[ $(running) == 0 ]] && break
  sleep 0.05
done
[[ $(running) == 0 ]] || fail "troupe_requests_running did not return to 0"
last=$(tmux capture-pane -p -t "$session" | grep -v '^[[:space:]]*$' | tail -1)
[[ $last == ">>>"* ]] || fail "prompt not back after Ctrl-C (last line: '$last')"
echo "after Ctrl-C: requests running 0, prompt back"
# The answer's lines were broken between words by the chat, never by the terminal at 100.
long=$(tmux capture-pane -p -t "$session" | awk 'length($0) >= 100' | wc -l)
[[ $long == 0 ]] || fail "$long lines reached the terminal's width"


# 5. Ctrl-D leaves.
tmux send-keys -t "$session" C-d
timeout 10 tmux wait-for chat-exited || fail "Ctrl-D did not leave the chat"
echo "PASS"
