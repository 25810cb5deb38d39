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
export TROUPE_BIN="$troupe" TROUPE_E2E_MODEL="$model"
exec node --test --test-concurrency=1 "$here/serve.test.mjs" "$here/structured.test.mjs" "$here/anthropic.test.mjs" "$here/responses.test.mjs"
