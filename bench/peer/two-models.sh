#!/usr/bin/env bash
# Two models in one `troupe serve`: what the first model gets done while the second is loaded but
# idle, and what both get done when both are busy, for each ggml build and --cpu-share
# setting given. Each build is a folder of llama.cpp libraries the same troupe binary runs on
# through LD_LIBRARY_PATH (the default: troupe's own install, ggml's threadpool;
# bench/peer/build.sh --openmp builds an OpenMP variant beside it). Configurations alternate, reversed every other round.
#
#   bench/peer/two-models.sh -a A.gguf -b B.gguf [--rounds 2] [--threads 2] [-c 4]
#       [--secs 25] [--config NAME=LIBDIR:SHARE]... [-- SERVE-FLAGS...]
#   e.g. --config threadpool=third_party/llama/lib:split --config openmp=third_party/llama-build-openmp/bin:off
# (SHARE: a --cpu-share value; the sitting of 2026-12-06 07:03 named --decode-turns's on, now turns)
#
# Prints tok/s per configuration and round; results under bench-results/two-models-<time>/.
# Check `uptime` first: nothing else may be busy.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T="$root/build/release/troupe"
a="" b="" rounds=2 threads=2 conc=4 secs=25 configs=() extra=()
while (($#)); do
  case "$1" in
    -a) a=$2; shift 2 ;;
    -b) b=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -c) conc=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --config) configs+=("$2"); shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
    *) echo "two-models: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -f "$a" ] || [ ! -f "$b" ]; then echo "two-models: -a and -b must be GGUF files" >&2; exit 2; fi
((${#configs[@]})) || configs=("default=$root/third_party/llama/lib:auto")
out="$root/bench-results/two-models-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
name_a=$(basename "$a" .gguf) name_b=$(basename "$b" .gguf)
wait_up() { for _ in $(seq 600); do curl -sf "$url/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
warm() {
  curl -sf "$url/v1/chat/completions" -H 'content-type: application/json' \
    -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}" >/dev/null
}
bench() {  # MODEL SEED DIR
  "$T" bench --url "$url" -m "$1" -s 'D(128,128)' --concurrency "$conc" -n 100000 -d "${secs}s" \
    --warmup 1 --seed "$2" --tokenizer "$a" -o "$3" --progress off >"$3.txt" 2>&1
}
tps() { python3 -c "import json,sys;print('%.1f' % json.load(open(sys.argv[1]))['points'][0]['output_tokens_per_s'])" "$1/results.json"; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $threads threads, $conc streams per model, ${secs} s per point"
for round in $(seq "$rounds"); do
  order=("${configs[@]}")
  if ((round % 2 == 0)); then
    order=(); for ((i = ${#configs[@]} - 1; i >= 0; i--)); do order+=("${configs[i]}"); done
  fi
  for cfg in "${order[@]}"; do
    label=${cfg%%=*} rest=${cfg#*=}
    lib=${rest%:*} share=${rest##*:}
    LD_LIBRARY_PATH="$lib" "$T" serve -m "$a" -m "$b" -t "$threads" --parallel "$conc" \
      -c $((conc * 1024)) --port "$port" --cpu-share "$share" "${extra[@]}" >"$out/serve-$label-$round.log" 2>&1 &
    pid=$!
    wait_up || { echo "two-models: the server did not start ($out/serve-$label-$round.log)" >&2; kill "$pid"; exit 1; }
    warm "$name_a" && warm "$name_b"
    gomp=$(grep -c libgomp "/proc/$pid/maps" || true)
    d="$out/r$round-$label"
    bench "$name_a" $((round * 10 + 1)) "$d-alone"
    bench "$name_a" $((round * 10 + 2)) "$d-both-a" & p1=$!
    bench "$name_b" $((round * 10 + 3)) "$d-both-b"; wait "$p1"
    echo "round $round $label (libgomp mapped: $([ "$gomp" -gt 0 ] && echo yes || echo no), --cpu-share $share):" \
      "A alone $(tps "$d-alone") tok/s; both busy: A $(tps "$d-both-a") + B $(tps "$d-both-b")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); results in $out"
