#!/usr/bin/env bash
# troupe serve against llama.cpp's llama-server, side by side: the same model, threads, slots,
# context and client (`troupe bench`), on the same llama.cpp libraries (bench/peer/build.sh
# builds llama-server in troupe's own llama.cpp build tree). Both servers are started once and
# stay up; every round measures each concurrency on both, in alternating order (round 1 starts
# with troupe at the first concurrency, the next run with llama-server, ...), with a fresh
# prompt seed per run shared by both sides so neither reuses a cached prompt from an earlier
# round or concurrency (llama-server keeps earlier prompts in a host-memory cache: a repeated
# prompt would skip its prefill there). Idle servers use no CPU, so the one not being measured does not disturb the other.
#
#   bench/peer/compare.sh -m MODEL.gguf [-c 1,4,16] [--rounds 3] [-s 'D(128,128)'] [-n 32]
#       [--warmup 4] [--threads 2] [--parallel 16] [--ctx 8192] [--temperature T]
#       [--batched] [--interference] [--extra-body FILE [--free-matched]] [--out DIR]
#       [--only troupe] [--troupe PATH] [--llama-server PATH] [--llama-arg ARG]...
#       [-- extra troupe serve flags]
#
# Prints per-round ratios (troupe / llama-server output tokens/s; TTFT p50 and ITL p50 of both)
# and, per concurrency, the pooled median ratio with its range over rounds; writes every
# `troupe bench` result under DIR (default bench-results/peer-<date>) and summary.json there.
# --batched also runs llama-batched-bench (-npp/-ntg from the scenario, -npl from -c) on the
# same libraries and prints its step time beside each side's ITL p50.
# --interference also measures, on each side, the running streams' ITL p99 with 4 streams of
# D(128,256) alone ("steady") and while a second client sends 1,024-token prompts one after
# another ("with 1k prompts"), both servers restarted with 2,048 cells per slot so that the long
# prompts fit; it also prints the long prompts' own TTFT (what protecting the streams costs).
# --extra-body FILE is passed to every `troupe bench` (e.g. bench/peer/workloads/
# profile-schema.json: a 10-field response_format schema, ignore_eos off, so that answers end
# where the grammar does; the scenario's output length is then only a cap).
# --free-matched (with --extra-body) also runs, after each constrained point, the same point
# without the extra body on both sides: fresh prompts of the scenario's input length, and output
# lengths drawn from a normal distribution with the constrained answers' mean and standard
# deviation (both sides' pooled), so that the free run has the same batch shape over time.
# The summary then gives each side's cost of the constraint (1 - constrained / free tok/s).
# --only troupe runs troupe alone (no llama-server, no --interference): for the constraint's
# cost, many short rounds in a row are what narrows its interval, and the machine's drift is
# slower than a round. Each round then alternates which of its two runs goes first: a round
# that starts with the free run draws its lengths from the constrained runs of the earlier
# rounds (at the same concurrency).
# --llama-arg ARG (repeatable) is passed to llama-server, as the words after -- are to troupe
# serve (e.g. -kvu on both sides: --llama-arg -kvu -- --kv-unified).
# Check `uptime` first: nothing else may be busy (ggml's threads spin at barriers).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

model="" conc=1,4,16 rounds=3 scenario='D(128,128)' n=32 warmup=4 threads=2 parallel=16 ctx=8192
temperature="" batched=false interference=false out="" extra=() extra_body="" llama_extra=()
free_matched=false only=""
troupe="$root/build/release/troupe"
llama_server="$root/third_party/llama-build/bin/llama-server"
batched_bench="$root/third_party/llama-build/bin/llama-batched-bench"
while (($#)); do
  case "$1" in
    -m|--model) model=$2; shift 2 ;;
    -c|--concurrency) conc=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -s|--scenario) scenario=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --temperature) temperature=$2; shift 2 ;;
    --batched) batched=true; shift ;;
    --interference) interference=true; shift ;;
    --extra-body) extra_body=$2; shift 2 ;;
    --free-matched) free_matched=true; shift ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --troupe) troupe=$2; shift 2 ;;
    --llama-server) llama_server=$2; shift 2 ;;
    --llama-arg) llama_extra+=("$2"); shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
    *) echo "compare: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$model" ] && [ -f "$model" ] || { echo "compare: -m MODEL.gguf is required (and must exist)" >&2; exit 2; }
read -r scenario_in < <(sed -n 's/^D(\([0-9]*\), *[0-9]*)$/\1/p' <<<"$scenario") || true
if $free_matched && { [ -z "$extra_body" ] || [ -z "${scenario_in:-}" ]; }; then
  echo "compare: --free-matched needs --extra-body and a D(in,out) scenario" >&2; exit 2
fi
case "$only" in
  "") ;;
  troupe) $interference && { echo "compare: --interference needs both servers (drop --only)" >&2; exit 2; } ;;
  *) echo "compare: --only takes troupe" >&2; exit 2 ;;
esac
[ -x "$troupe" ] || { echo "compare: no $troupe (build troupe first)" >&2; exit 2; }
[ -n "$only" ] || [ -x "$llama_server" ] || { echo "compare: no $llama_server (run bench/peer/build.sh)" >&2; exit 2; }
out=${out:-"$root/bench-results/peer-$(date -u +%Y%m%dT%H%M%S)"}
mkdir -p "$out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_healthy() {  # PORT PID NAME: until /health answers 200 (both servers answer 503 while loading)
  for _ in $(seq 1 600); do
    kill -0 "$2" 2>/dev/null || { echo "compare: $3 exited during start-up (log: $out/$3.log)" >&2; exit 1; }
    curl -fs -o /dev/null "http://127.0.0.1:$1/health" && return 0
    sleep 0.2
  done
  echo "compare: $3 not healthy after 120 s (log: $out/$3.log)" >&2; exit 1
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

tport=$(free_port) lport=$(free_port)
"$troupe" serve -m "$model" --port "$tport" -t "$threads" --parallel "$parallel" -c "$ctx" \
  "${extra[@]}" >"$out/troupe.log" 2>&1 &
pids+=($!); wait_healthy "$tport" "${pids[-1]}" troupe
if [ -z "$only" ]; then
  "$llama_server" -m "$model" --port "$lport" -t "$threads" -tb "$threads" -np "$parallel" -c "$ctx" \
    --no-webui "${llama_extra[@]}" >"$out/llama-server.log" 2>&1 &
  pids+=($!); wait_healthy "$lport" "${pids[-1]}" llama-server
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "troupe: $("$troupe" version 2>/dev/null | tr '\n' ';')"
  [ -n "$only" ] || echo "llama-server: $("$llama_server" --version 2>&1 | tr '\n' ';')"
  # Which threads run ggml's graphs on each side (troupe's version says its build).
  [ -n "$only" ] || echo "llama-server ggml threads: $(ldd "$llama_server" 2>/dev/null |
    grep -q libgomp && echo OpenMP || echo "ggml's threadpool")"
  echo "model: $model; threads $threads, slots $parallel, context $ctx; scenario $scenario, -n $n, warmup $warmup, temperature ${temperature:-server default}${extra_body:+, extra body $extra_body}"
  echo "troupe flags: ${extra[*]:-none}; llama-server flags: ${llama_extra[*]:-none}"
} | tee "$out/setup.txt"

free_args=()
[ -n "$temperature" ] && free_args=(--temperature "$temperature")
temp_args=("${free_args[@]}")
[ -n "$extra_body" ] && temp_args+=(--extra-body "$extra_body")
IFS=, read -r -a levels <<<"$conc"
run_point() {  # SIDE PORT C ROUND [FREE_SCENARIO]: the free run when a scenario is given
  local dir="$out/r$4/$1-c$3" scen=$scenario seed=$((1000 + 100 * $4 + $3)) args=("${temp_args[@]}")
  if [ -n "${5:-}" ]; then
    dir="$out/r$4/$1-free-c$3" scen=$5 seed=$((seed + 50000)) args=("${free_args[@]}")
  fi
  "$troupe" bench --url "http://127.0.0.1:$2" -s "$scen" --concurrency "$3" -n "$n" --warmup "$warmup" \
    --seed "$seed" --tokenizer "$model" "${args[@]}" -o "$dir" --progress off \
    >"$dir.txt" 2>&1 || { echo "compare: troupe bench failed ($dir.txt)" >&2; tail -5 "$dir.txt" >&2; exit 1; }
}
matched_scenario() {  # RESULTS.json...: free answers as long as those constrained ones (pooled)
  python3 - "$scenario_in" "$@" <<'PY'
import json, math, sys
pts = [json.load(open(p))["points"][0]["output_tokens"] for p in sys.argv[2:]]
n = sum(p["count"] for p in pts)
mean = sum(p["mean"] * p["count"] for p in pts) / n
var = sum(p["count"] * (p["stddev"] ** 2 + (p["mean"] - mean) ** 2) for p in pts) / n
print(f"N({sys.argv[1]},0)/({round(mean)},{round(math.sqrt(var))})")
PY
}
free_scenario() {  # ROUND C RESULTS.json...: the matched scenario, kept beside the round's runs
  matched_scenario "${@:3}" | tee "$out/r$1/free-c$2.scenario"
}
free_point() {  # ROUND C RESULTS.json...: troupe's free run of this round, lengths from those runs
  local free
  free=$(free_scenario "$@")
  run_point troupe "$tport" "$2" "$1" "$free"
}
k=0
for r in $(seq 1 "$rounds"); do
  for c in "${levels[@]}"; do
    mkdir -p "$out/r$r"
    if [ -n "$only" ]; then
      earlier=()
      for f in "$out"/r*/troupe-c"$c"/results.json; do [ -f "$f" ] && earlier+=("$f"); done
      if $free_matched && ((k % 2 == 1)) && ((${#earlier[@]})); then
        free_point "$r" "$c" "${earlier[@]}"; run_point troupe "$tport" "$c" "$r"
      else
        run_point troupe "$tport" "$c" "$r"
        ! $free_matched || free_point "$r" "$c" "$out/r$r/troupe-c$c/results.json"
      fi
    else
      if ((k % 2 == 0)); then
        run_point troupe "$tport" "$c" "$r"; run_point llama "$lport" "$c" "$r"
      else
        run_point llama "$lport" "$c" "$r"; run_point troupe "$tport" "$c" "$r"
      fi
      if $free_matched; then
        free=$(free_scenario "$r" "$c" "$out/r$r/troupe-c$c/results.json" "$out/r$r/llama-c$c/results.json")
        if ((k % 2 == 0)); then
          run_point llama "$lport" "$c" "$r" "$free"; run_point troupe "$tport" "$c" "$r" "$free"
        else
          run_point troupe "$tport" "$c" "$r" "$free"; run_point llama "$lport" "$c" "$r" "$free"
        fi
      fi
    fi
    k=$((k + 1))
    echo "round $r, $c streams: done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done

# Running streams while long prompts arrive: steady first, then with a 1k-prompt client beside.
# The long prompts must fit a slot on both servers (at 512 cells per slot they are refused, and
# the "interference" measured is a client looping on errors): each side is restarted with
# --ctx-size $long_ctx for this part, and one probe must succeed before it starts. The long
# client runs for a fixed time a little longer than the steady run took, so that its own
# results (the long prompts' TTFT, failures) are written and checked too.
long_ctx=$((parallel * 2048))
probe_long() {  # PORT NAME
  local body
  body=$(python3 -c 'import json; print(json.dumps({"prompt": " ".join(["hello"] * 1100), "max_tokens": 1}))')
  curl -fsS -o /dev/null -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$1/v1/completions" ||
    { echo "compare: $2 refuses a 1,100-word prompt at context $long_ctx" >&2; exit 1; }
}
interfere() {  # SIDE PORT ROUND
  local dir="$out/interference/r$3" seed=$((2000 + $3))
  mkdir -p "$dir"
  "$troupe" bench --url "http://127.0.0.1:$2" -s 'D(128,256)' --concurrency 4 -n 8 --warmup 0 --seed "$seed" \
    --tokenizer "$model" "${temp_args[@]}" -o "$dir/$1-steady" --progress off >"$dir/$1-steady.txt" 2>&1
  local secs
  secs=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["points"][0]["duration_s"] * 1.5) + 8)' \
    "$dir/$1-steady/results.json")
  # The long client first: it prepares its prompts (tokenizing them takes CPU time the servers'
  # threads would otherwise lose to it during the measured run), then the measured streams.
  # Its request count caps what it prepares (-n) at 20 a second, more than any 1k prompt here.
  "$troupe" bench --url "http://127.0.0.1:$2" -s 'D(1024,1)' --concurrency 1 -n "$((secs * 20))" -d "${secs}s" \
    --warmup 0 --seed "$((seed + 1))" --tokenizer "$model" -o "$dir/$1-long" --progress off >"$dir/$1-long.txt" 2>&1 &
  local long=$!
  sleep 3
  "$troupe" bench --url "http://127.0.0.1:$2" -s 'D(128,256)' --concurrency 4 -n 8 --warmup 0 --seed "$((seed + 50))" \
    --tokenizer "$model" "${temp_args[@]}" -o "$dir/$1-loaded" --progress off >"$dir/$1-loaded.txt" 2>&1 &
  local main=$!
  wait "$main" || { echo "compare: interference run failed ($dir/$1-loaded.txt)" >&2; exit 1; }
  wait "$long" || { echo "compare: long-prompt client failed ($dir/$1-long.txt)" >&2; exit 1; }
}
if $interference; then
  cleanup; pids=()
  "$troupe" serve -m "$model" --port "$tport" -t "$threads" --parallel "$parallel" -c "$long_ctx" \
    "${extra[@]}" >"$out/troupe-interference.log" 2>&1 &
  pids+=($!); wait_healthy "$tport" "${pids[-1]}" troupe
  "$llama_server" -m "$model" --port "$lport" -t "$threads" -tb "$threads" -np "$parallel" -c "$long_ctx" \
    --no-webui "${llama_extra[@]}" >"$out/llama-server-interference.log" 2>&1 &
  pids+=($!); wait_healthy "$lport" "${pids[-1]}" llama-server
  probe_long "$tport" troupe; probe_long "$lport" llama-server
  echo "interference: both servers at context $long_ctx ($((long_ctx / parallel)) cells per slot)" | tee -a "$out/setup.txt"
  for r in $(seq 1 "$rounds"); do
    if ((r % 2)); then interfere troupe "$tport" "$r"; interfere llama "$lport" "$r"
    else interfere llama "$lport" "$r"; interfere troupe "$tport" "$r"; fi
    echo "interference round $r: done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
fi
cleanup; pids=()

if $batched && [ -x "$batched_bench" ]; then
  read -r npp ntg < <(sed -n 's/^D(\([0-9]*\), *\([0-9]*\))$/\1 \2/p' <<<"$scenario")
  if [ -n "${npp:-}" ]; then
    "$batched_bench" -m "$model" -t "$threads" -tb "$threads" -c "$ctx" -b 2048 -ub 512 \
      -npp "$npp" -ntg "$ntg" -npl "$conc" --output-format jsonl >"$out/batched.jsonl" 2>"$out/batched.log" ||
      echo "compare: llama-batched-bench failed ($out/batched.log)" >&2
  fi
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/setup.txt"
python3 "$root/bench/peer/summarize.py" "$out"
