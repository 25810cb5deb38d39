#!/usr/bin/env bash
# A well-behaved client's time to first answer while one address floods the server, for
# troupe with its defence, troupe without it, and llama-server, one after the other in one
# sitting (bench/peer/flood.py measures; issue 25). Each flood: COUNT connections from
# 127.0.0.1 that send nothing (idle) or only headers (headers), reopened whenever the server
# closes them; the good client asks from 127.0.0.2 until it gets a 200 (LIMIT seconds at most).
#   usage: bench/peer/flood.sh [COUNT] [LIMIT]        (defaults 2000, 60)
#   env:   BASELINE=/path/to/an/older/troupe   "without the defence" runs that binary; unset,
#          it runs this troupe with --max-connections-per-ip 0 --max-pending-per-ip 0 (the
#          per-address limits off; reclaiming idle connections at the limit stays on)
#          MODEL=file.gguf   the model llama-server serves (default ../shared/models/stories260K-chatml.gguf)
# Needs `ulimit -n` above 2 x COUNT + 100 (the script raises its soft limit to the hard one).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T="$root/build/release/troupe"
L="$root/third_party/llama-build/bin/llama-server"
M=${MODEL:-$root/../shared/models/stories260K-chatml.gguf}
COUNT=${1:-2000} LIMIT=${2:-60}
ulimit -n "$(ulimit -Hn)"
wait_up() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
measure() {  # port label
  for kind in none idle headers; do
    printf '%s %s: ' "$2" "$kind"
    python3 "$root/bench/peer/flood.py" --port "$1" --kind "$kind" --count "$COUNT" --limit "$LIMIT"
    sleep 2  # let the server close what the flood left
  done
}
serve() {  # binary port label args...
  local bin=$1 port=$2 label=$3; shift 3
  "$bin" "$@" --port "$port" >"/tmp/flood-$label.log" 2>&1 &
  local pid=$!
  if wait_up "$port"; then measure "$port" "$label"; else echo "$label: did not start" >&2; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "$(date -u '+%F %T UTC'), uptime: $(uptime)"
sim=(serve --engine sim --sim-decode-tps 200 --host 127.0.0.1)
serve "$T" 8095 troupe "${sim[@]}"
if [ -n "${BASELINE:-}" ]; then
  serve "$BASELINE" 8096 troupe-baseline "${sim[@]}"
else
  serve "$T" 8096 troupe-no-per-ip-limits "${sim[@]}" --max-connections-per-ip 0 --max-pending-per-ip 0
fi
if [ -x "$L" ] && [ -f "$M" ]; then
  serve "$L" 8097 llama-server -m "$M" --host 127.0.0.1 -t 2 -np 4 -c 2048
else
  echo "llama-server: not measured (no $L or no $M; bench/peer/build.sh builds it)"
fi
echo "$(date -u '+%F %T UTC'), uptime: $(uptime)"
