#!/usr/bin/env bash
# Integration of `troupe chat` with the real `troupe serve` (issue 6), non-interactive:
#   - the streamed answer printed by `troupe chat -p` equals the server's own (non-streamed)
#     answer to the same greedy request, and so does the answer to a question piped on stdin;
#   - output that is not a terminal carries no escape sequences;
#   - with --tools the server takes the tools and the chat prints its answer to the same request;
#   - errors are one line on stderr and a non-zero exit: unreachable, 401, unknown model.
#
# Usage: chat_integration_test.sh TROUPE_BINARY [MODEL.gguf]. The model defaults to the real
# tiny model in ../shared/models when present, else a generated `tiny` one. Exit 77 (skipped)
# when the binary has no serve.
set -euo pipefail

troupe=${1:?usage: chat_integration_test.sh TROUPE_BINARY [MODEL]}
model=${2:-}
"$troupe" serve --help >/dev/null 2>&1 || { echo "SKIP: this troupe has no serve"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log:"; tail -20 "$work/server.log" || true; exit 1; }

if [[ -z $model ]]; then
  shared="$(dirname "$0")/../../../shared/models/stories260K-chatml.gguf"
  if [[ -f $shared ]]; then
    model=$shared
  else
    model="$work/tiny.gguf"
    "$troupe" mkmodel --shape tiny -o "$model" >/dev/null || fail "mkmodel failed"
  fi
fi

# Blocks until FILE has a line containing TEXT (tail -f wakes on each write). FILE must exist
# before the wait: `tail -f` gives up at once on a missing file, and a background writer
# creates its file only when it gets to run.
wait_for() {
  [[ -f $1 ]] || { echo "wait_for: $1 does not exist"; return 1; }
  local fd tail_pid rc=0
  exec {fd}< <(exec tail -n +1 -f "$1")
  tail_pid=$!
  timeout 120 grep -q -m1 -F -e "$2" <&"$fd" || rc=$?
  kill "$tail_pid" 2>/dev/null || true
  exec {fd}<&-
  return "$rc"
}

: >"$work/server.log"
"$troupe" serve -m "$model" -a tiny --port 0 --api-key secret --parallel 2 --ctx-size 1024 --threads 1 \
  >>"$work/server.log" 2>&1 &
server_pid=$!
wait_for "$work/server.log" "listening on" || fail "server did not start"
wait_for "$work/server.log" "tiny ready" || fail "the model did not load"
url=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/server.log" | head -1)
question="Once upon a time, a little cat"

# The server's own answer to the greedy request, not streamed: asked twice, and the second
# answer kept. The first computes the whole prompt in one batch; every later request (the
# chat's too) reuses its cached prefix and computes only the last prompt token alone, with
# other kernels' summation order: on a random model's near-tied logits the greedy answers of
# the two can differ (seen on an AVX-512 Xeon), those of the later requests cannot.
for _ in 1 2; do
  curl -s -H "Authorization: Bearer secret" -H "Content-Type: application/json" \
    -d "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$question\"}],\"temperature\":0,\"max_tokens\":32,\"seed\":1}" \
    "$url/v1/chat/completions" >"$work/server.json"
done
python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' \
  "$work/server.json" >"$work/expected.txt" || fail "bad server answer: $(cat "$work/server.json")"
[[ -s $work/expected.txt ]] || fail "the server's answer is empty"
# The chat ends its output with a newline when the answer does not.
[[ $(tail -c 1 "$work/expected.txt" | od -An -c | tr -d ' ') == '\n' ]] || echo >>"$work/expected.txt"

chat=("$troupe" chat --url "$url" --api-key secret --model tiny --temperature 0 --max-tokens 32 --seed 1 --no-history)
"${chat[@]}" -p "$question" >"$work/chat.txt" 2>"$work/chat.err" || fail "chat -p failed: $(cat "$work/chat.err")"
cmp -s "$work/expected.txt" "$work/chat.txt" || fail "chat -p answer differs: $(diff "$work/expected.txt" "$work/chat.txt")"
[[ ! -s $work/chat.err ]] || fail "chat -p wrote to stderr: $(cat "$work/chat.err")"
grep -q $'\x1b' "$work/chat.txt" && fail "escape sequences in non-terminal output"
echo "chat -p answer equals the server's: $(head -c 60 "$work/chat.txt")..."

echo "$question" | "${chat[@]}" >"$work/piped.txt" || fail "piped question failed"
cmp -s "$work/expected.txt" "$work/piped.txt" || fail "piped answer differs"
echo "piped question: same answer"

# --tools: the server takes the chat's tools, and the chat prints the server's own answer to
# the same greedy request with the same tools.
tools='[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]'
echo "$tools" >"$work/tools.json"
curl -s -H "Authorization: Bearer secret" -H "Content-Type: application/json" \
  -d "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$question\"}],\"tools\":$tools,\"temperature\":0,\"max_tokens\":32,\"seed\":1}" \
  "$url/v1/chat/completions" >"$work/tools_server.json"
python3 -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"] or "")' \
  "$work/tools_server.json" >"$work/tools_expected.txt" || fail "bad server answer with tools: $(cat "$work/tools_server.json")"
[[ -s $work/tools_expected.txt && $(tail -c 1 "$work/tools_expected.txt" | od -An -c | tr -d ' ') == '\n' ]] || echo >>"$work/tools_expected.txt"
"${chat[@]}" --tools "$work/tools.json" -p "$question" >"$work/tools_chat.txt" 2>"$work/chat.err" \
  || fail "chat --tools failed: $(cat "$work/chat.err")"
cmp -s "$work/tools_expected.txt" "$work/tools_chat.txt" || fail "chat --tools answer differs: $(diff "$work/tools_expected.txt" "$work/tools_chat.txt")"
echo "--tools: the server's answer with the same tools"

# expect_error WANT_TEXT CHAT_ARGS...: exit 1 and one line on stderr containing WANT_TEXT.
expect_error() {
  local want=$1 rc=0
  shift
  "$troupe" chat --no-history -p "hi" "$@" >"$work/out.txt" 2>"$work/err.txt" || rc=$?
  [[ $rc == 1 ]] || fail "expected exit 1 for '$want', got $rc"
  [[ $(wc -l <"$work/err.txt") == 1 ]] || fail "expected one line on stderr: $(cat "$work/err.txt")"
  grep -qF -- "$want" "$work/err.txt" || fail "expected '$want' in: $(cat "$work/err.txt")"
  echo "error line: $(cat "$work/err.txt")"
}
expect_error "unauthorized" --url "$url" --api-key wrong
expect_error "not found" --url "$url" --api-key secret --model no-such-model
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect_error "cannot reach http://127.0.0.1:$port" --url "http://127.0.0.1:$port"
echo "PASS"
