#!/usr/bin/env bash
# Runs the end-to-end tests: `troupe serve` on a generated tiny model, driven by the official
# openai, @anthropic-ai/sdk and ollama npm clients (suite "api", the default), or the web chat
# page in Debian's chromium driven by playwright-core (suite "webui").   usage: run.sh <troupe binary> <work dir> [suite]
# Exit 77 (ctest: skipped) when the npm packages or the browser are missing outside CI.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
troupe=$1
work=$2
suite=${3:-api}
missing() {
  if [ -n "${CI:-}" ]; then
    echo "$1 is missing: run scripts/bootstrap.sh --test-tools" >&2
    exit 1
  fi
  echo "skipping: $1 is missing (run scripts/bootstrap.sh --test-tools)" >&2
  exit 77
}
if [ ! -d "$here/node_modules/openai" ] || [ ! -d "$here/node_modules/ajv" ] || [ ! -d "$here/node_modules/zod" ] || [ ! -d "$here/node_modules/@anthropic-ai/sdk" ] || [ ! -d "$here/node_modules/ollama" ]; then
  missing tests/e2e/node_modules
fi
chromium=${TROUPE_CHROMIUM:-/usr/bin/chromium}
if [ "$suite" = webui ]; then
  [ -d "$here/node_modules/playwright-core" ] || missing "tests/e2e/node_modules/playwright-core"
  [ -x "$chromium" ] || missing "$chromium (Debian's chromium)"
fi
mkdir -p "$work"
model="$work/e2e-tiny.gguf"
[ -f "$model" ] || "$troupe" mkmodel --shape tiny --type f32 --seed 1 -o "$model" -q
bge="$here/../../third_party/llama/testdata/vocab/ggml-vocab-bert-bge.gguf"
bert="$work/e2e-bert.gguf"
rerank="$work/e2e-rerank.gguf"
[ -f "$bert" ] || "$troupe" mkmodel --arch bert --vocab "$bge" --type f32 --seed 1 -o "$bert" -q
[ -f "$rerank" ] || "$troupe" mkmodel --arch bert --pooling rank --vocab "$bge" --type f32 --seed 1 -o "$rerank" -q
fim="$work/e2e-fim.gguf"
[ -f "$fim" ] || "$troupe" mkmodel --shape tiny --type f32 --seed 1 \
  --vocab "$here/../../third_party/llama/testdata/vocab/ggml-vocab-starcoder.gguf" -o "$fim" -q
stories="$here/../../../shared/models/stories260K.gguf"
[ -f "$stories" ] || stories=""
export TROUPE_BIN="$troupe" TROUPE_E2E_MODEL="$model" TROUPE_E2E_BERT="$bert" \
  TROUPE_E2E_RERANK="$rerank" TROUPE_E2E_STORIES="$stories" TROUPE_E2E_FIM="$fim"
if [ "$suite" = webui ]; then
  export TROUPE_CHROMIUM="$chromium" TROUPE_E2E_SHOTS="$work/screenshots"
  exec node --test --test-concurrency=1 "$here/webui.test.mjs"
fi
exec node --test --test-concurrency=1 "$here/serve.test.mjs" "$here/structured.test.mjs" \
  "$here/embeddings.test.mjs" "$here/anthropic.test.mjs" "$here/responses.test.mjs" \
  "$here/infill.test.mjs" "$here/ollama.test.mjs"
