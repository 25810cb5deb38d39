#!/usr/bin/env bash
# One troupe binary on several builds of llama.cpp's libraries (through LD_LIBRARY_PATH), one
# model, the same client: output tok/s per build, concurrency and round, builds alternated
# (reversed every other round) and a fresh prompt seed per round shared by every build.
# bench/peer/build.sh --openmp builds an OpenMP variant beside troupe's install (ggml's threadpool).
#
#   bench/peer/builds.sh -m MODEL.gguf [-c 1,4,16] [--rounds 3] [-n 24] [--warmup 4]
#       [--threads 2] [--parallel 16] [-s 'D(128,128)'] [--build NAME=LIBDIR]...
#       [-- SERVE-FLAGS...]
#   e.g. --build threadpool=third_party/llama/lib --build openmp=third_party/llama-build-openmp/bin
#
# Prints tok/s per build, concurrency and round and the median per build and concurrency;
# results under bench-results/builds-<time>/. Check `uptime` first: nothing else may be busy.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T="$root/build/release/troupe"
model="" conc=1,4,16 rounds=3 n=24 warmup=4 threads=2 parallel=16 scenario='D(128,128)'
builds=() extra=()
while (($#)); do
  case "$1" in
    -m) model=$2; shift 2 ;;
    -c) conc=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    -s) scenario=$2; shift 2 ;;
    --build) builds+=("$2"); shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
    *) echo "builds: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -f "$model" ]; then echo "builds: -m must be a GGUF file" >&2; exit 2; fi
((${#builds[@]})) || builds=("default=$root/third_party/llama/lib")
out="$root/bench-results/builds-$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
wait_up() { for _ in $(seq 600); do curl -sf "$url/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
tps() { python3 -c "import json,sys;print('%.1f' % json.load(open(sys.argv[1]))['points'][0]['output_tokens_per_s'])" "$1/results.json"; }
IFS=, read -r -a levels <<<"$conc"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $threads threads, $parallel slots, $scenario, -n $n" \
  "--warmup $warmup; serve flags: ${extra[*]:-none}" | tee "$out/setup.txt"
for round in $(seq "$rounds"); do
  order=("${builds[@]}")
  if ((round % 2 == 0)); then
    order=(); for ((i = ${#builds[@]} - 1; i >= 0; i--)); do order+=("${builds[i]}"); done
  fi
  for b in "${order[@]}"; do
    label=${b%%=*} lib=${b#*=}
    LD_LIBRARY_PATH="$lib" "$T" serve -m "$model" -t "$threads" --parallel "$parallel" \
      -c $((parallel * 512)) --port "$port" "${extra[@]}" >"$out/serve-$label-$round.log" 2>&1 &
    pid=$!
    wait_up || { echo "builds: the server did not start ($out/serve-$label-$round.log)" >&2; kill "$pid"; exit 1; }
    line="round $round $label:"
    for c in "${levels[@]}"; do
      d="$out/r$round-$label-c$c"
      "$T" bench --url "$url" -s "$scenario" --concurrency "$c" -n "$n" --warmup "$warmup" \
        --seed $((1000 + 100 * round + c)) --tokenizer "$model" -o "$d" --progress off >"$d.txt" 2>&1 ||
        { echo "builds: troupe bench failed ($d.txt)" >&2; kill "$pid"; exit 1; }
      line+=" c$c $(tps "$d") tok/s;"
    done
    echo "$line" | tee -a "$out/rounds.txt"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
python3 - "$out/rounds.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label = line.split()[2].rstrip(":")
    for c, v in re.findall(r"c(\d+) ([\d.]+) tok/s", line):
        runs.setdefault((label, int(c)), []).append(float(v))
for (label, c), v in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    print(f"{label} at {c} streams: median {statistics.median(v):.1f} tok/s over {len(v)} rounds ({', '.join(map(str, v))})")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); results in $out"
