#!/usr/bin/env bash
# CPU that `troupe chat` uses while idle at its prompt (goal: 0), and the system calls it
# makes meanwhile (goal: none). Runs the chat in a private tmux server.
#
# Usage: bench/chat/idle_cpu.sh TROUPE_BINARY [SECONDS]
set -euo pipefail
troupe=${1:?usage: idle_cpu.sh TROUPE_BINARY [SECONDS]}
seconds=${2:-10}
work=$(mktemp -d)
export TMUX_TMPDIR="$work"
trap 'tmux kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

# No server is needed to sit at the prompt.
tmux new-session -d -s idle -x 100 -y 30 "exec '$troupe' chat --url http://127.0.0.1:9 --no-history"
for _ in $(seq 200); do
  tmux capture-pane -p -t idle | grep -q '>>>' && break
  sleep 0.05
done
pid=$(tmux list-panes -t idle -F '#{pane_pid}')
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

before=$(ticks)
sleep "$seconds"
after=$(ticks)
echo "troupe chat (pid $pid, $(ls "/proc/$pid/task" | wc -l) threads) idle at the prompt for ${seconds} s: $((after - before)) CPU ticks (1 tick = 1/${hz} s)"

if command -v strace >/dev/null; then
  strace -f -p "$pid" -o "$work/trace.txt" &
  strace_pid=$!
  sleep "$seconds"
  kill -INT "$strace_pid"
  wait "$strace_pid" 2>/dev/null || true
  echo "system calls during ${seconds} s more at the prompt (strace):"
  sed 's/^/  /' "$work/trace.txt"
fi
