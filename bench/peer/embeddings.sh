#!/usr/bin/env bash
# Embeddings/s of troupe serve --embeddings against llama-server --embedding built from the same
# llama.cpp (third_party/llama-build), same client, servers alternated for ROUNDS rounds.
#   usage: [LLAMA_SERVER=PATH] bench/peer/embeddings.sh [MODEL.gguf] [ROUNDS]
# Default model: a small random-weight BERT with the real bert-bge vocabulary (written once).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T="$root/build/release/troupe"
L=${LLAMA_SERVER:-"$root/third_party/llama-build/bin/llama-server"}
M=${1:-/tmp/bert-small-f16.gguf}
rounds=${2:-2}
[ -f "$M" ] || "$T" mkmodel --arch bert --shape small --type f16 -q \
  --vocab "$root/third_party/llama/testdata/vocab/ggml-vocab-bert-bge.gguf" -o "$M"
wait_up() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
bench() {  # port label
  "$T" bench --endpoint embeddings --url "http://127.0.0.1:$1" --inputs 1,16,64 --input-tokens 128 \
    --concurrency 1 -n 8 --warmup 1 --tokenizer "$M" -o "/tmp/embeddings-$2"
}
uptime
for round in $(seq "$rounds"); do
  "$T" serve -m "$M" --alias bert --port 8091 -t 2 --parallel 64 -c 32768 -b 2048 >/tmp/embeddings-troupe.log 2>&1 &
  pid=$!; wait_up 8091 && bench 8091 "troupe-$round"; kill "$pid"; wait "$pid" 2>/dev/null || true
  "$L" -m "$M" --embedding --port 8092 -t 2 -np 64 -c 32768 -b 2048 -ub 2048 >/tmp/embeddings-llama.log 2>&1 &
  pid=$!; wait_up 8092 && bench 8092 "llama-$round"; kill "$pid"; wait "$pid" 2>/dev/null || true
done
