#!/usr/bin/env bash
# Chat completions, Anthropic messages and OpenAI responses, troupe against llama-server on the
# same model (both serve all three), 16 streams, the same client.
#   usage: bench/peer/endpoints.sh [MODEL.gguf]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T="$root/build/release/troupe"
L="$root/third_party/llama-build/bin/llama-server"
M=${1:-$root/build/release/test-models/family-qwen25.gguf}
wait_up() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
run() {  # port label
  for e in chat messages responses; do
    "$T" bench --url "http://127.0.0.1:$1" --endpoint "$e" -s 'D(128,128)' --concurrency 16 -n 32 \
      --warmup 8 --tokenizer "$M" --progress off -o "/tmp/endpoints-$2-$e" >/dev/null
    python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['points'][0]; print(sys.argv[2], \
'out tok/s %.0f, TTFT p50 %.0f ms, ITL p50 %.2f ms, failed %d' % (p['output_tokens_per_s'], \
1e3*p['ttft_s']['p50'], 1e3*p['itl_s']['p50'], p['failed']))" "/tmp/endpoints-$2-$e/results.json" "$2 $e:"
  done
}
uptime
"$T" serve -m "$M" --port 8093 -t 2 --parallel 16 -c 32768 >/tmp/endpoints-troupe.log 2>&1 &
pid=$!; wait_up 8093 && run 8093 troupe; kill "$pid"; wait "$pid" 2>/dev/null || true
"$L" -m "$M" --port 8094 -t 2 -np 16 -c 32768 >/tmp/endpoints-llama.log 2>&1 &
pid=$!; wait_up 8094 && run 8094 llama-server; kill "$pid"; wait "$pid" 2>/dev/null || true
