#!/usr/bin/env bash
# Runs the end-to-end tests: `troupe serve` on a generated tiny model, driven by the official
# openai npm client.   usage: run.sh <troupe binary> <work dir>
# Exit 77 (ctest: skipped) when the npm packages are missing outside CI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
troupe=$1
work=$2
if [ ! -d "$here/node_modules/openai" ] || [ ! -d "$here/node_modules/ajv" ] || [ ! -d "$here/node_modules/zod" ] || [ ! -d "$here/node_modules/@anthropic-ai/sdk" ]; then
  if [ -n "${CI:-}" ]; then
    echo "tests/e2e/node_modules is missing: run scripts/bootstrap.sh" >&2
    exit 1
  fi
  echo "skipping: tests/e2e/node_modules is missing (run scripts/bootstrap.sh)" >&2
  exit 77
fi
mkdir -p "$work"
model="$work/e2e-tiny.gguf"
[ -f "$model" ] || "$troupe" mkmodel --shape tiny --type f32 --seed 1 -o "$model" -q
bge="$here/../../third_party/llama/testdata/vocab/ggml-vocab-bert-bge.gguf"
bert="$work/e2e-bert.gguf"
rerank="$work/e2e-rerank.gguf"
[ -f "$bert" ] || "$troupe" mkmodel --arch bert --vocab "$bge" --type f32 --seed 1 -o "$bert" -q
[ -f "$rerank" ] || "$troupe" mkmodel --arch bert --pooling rank --vocab "$bge" --type f32 --seed 1 -o "$rerank" -q
stories="$here/../../../shared/models/stories260K.gguf"
[ -f "$stories" ] || stories=""
export TROUPE_BIN="$troupe" TROUPE_E2E_MODEL="$model" TROUPE_E2E_BERT="$bert" \
  TROUPE_E2E_RERANK="$rerank" TROUPE_E2E_STORIES="$stories"
exec node --test --test-concurrency=1 "$here/serve.test.mjs" "$here/structured.test.mjs" \
  "$here/embeddings.test.mjs" "$here/anthropic.test.mjs" "$here/responses.test.mjs"
