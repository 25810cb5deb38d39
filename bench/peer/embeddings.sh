#!/usr/bin/env bash
# Embeddings/s of troupe serve --embeddings against llama-server --embedding built from the same
# llama.cpp (third_party/llama-build), same client, servers alternated (the order swapped every
# round) for ROUNDS rounds; prints each round's troupe / llama-server ratio per request size and
# the median over the rounds.
#   usage: [LLAMA_SERVER=PATH] bench/peer/embeddings.sh [MODEL.gguf] [ROUNDS]
# Default model: a small random-weight BERT with the real bert-bge vocabulary (written once).
# llama-server runs at its own defaults for the batch (`--embedding` makes -b equal to -ub, 512),
# its fastest setting here: -b 2048 -ub 2048 was 10-15 % slower (docs/BENCHMARKS.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T="$root/build/release/troupe"
L=${LLAMA_SERVER:-"$root/third_party/llama-build/bin/llama-server"}
M=${1:-/tmp/bert-small-f16.gguf}
rounds=${2:-2}
out=${OUT:-/tmp/embeddings-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
[ -f "$M" ] || "$T" mkmodel --arch bert --shape small --type f16 -q \
  --vocab "$root/third_party/llama/testdata/vocab/ggml-vocab-bert-bge.gguf" -o "$M"
wait_up() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
bench() {  # port label
  "$T" bench --endpoint embeddings --url "http://127.0.0.1:$1" --inputs 1,16,64 --input-tokens 128 \
    --concurrency 1 -n 8 --warmup 1 --tokenizer "$M" -o "$out/$2"
}
side() {  # troupe|llama round
  if [ "$1" = troupe ]; then
    "$T" serve -m "$M" --alias bert --port 8091 -t 2 --parallel 64 -c 32768 -b 2048 >"$out/troupe.log" 2>&1 &
    port=8091
  else
    "$L" -m "$M" --embedding --port 8092 -t 2 -np 64 -c 32768 >"$out/llama.log" 2>&1 &
    port=8092
  fi
  local pid=$!
  wait_up "$port" && bench "$port" "$1-$2"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); results in $out"
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then side troupe "$round"; side llama "$round"
  else side llama "$round"; side troupe "$round"; fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def points(label):
    with open(f"{out}/{label}/embeddings.json") as f:
        return {p["inputs"]: p["embeddings_per_s"] for p in json.load(f)["points"]}
runs = [(points(f"troupe-{r}"), points(f"llama-{r}")) for r in range(1, rounds + 1)]
print("| inputs per request | troupe embeddings/s (per round) | llama-server | ratio per round | median ratio |")
print("|---|---|---|---|---|")
for n in sorted(runs[0][0]):
    t = [r[0][n] for r in runs]; l = [r[1][n] for r in runs]
    ratios = [a / b for a, b in zip(t, l)]
    f = lambda xs, d: ", ".join(f"{x:.{d}f}" for x in xs)
    print(f"| {n} | {f(t, 1)} | {f(l, 1)} | {f(ratios, 2)} | {statistics.median(ratios):.2f} |")
PY
