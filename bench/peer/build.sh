#!/usr/bin/env bash
# Builds llama.cpp's own llama-server, llama-batched-bench and llama-bench from the release troupe links,
# in the same build tree and with the same options as troupe's libraries
# (third_party/llama-build, scripts/llama-cmake-options.sh), so a comparison runs both sides on
# identical libraries. Run scripts/bootstrap.sh first (it checks out and builds the release).
#   bench/peer/build.sh           -> third_party/llama-build/bin/{llama-server,llama-batched-bench,llama-bench}
#   bench/peer/build.sh --openmp  -> third_party/llama-build-openmp/bin/...: the same options
#       but -DGGML_OPENMP=ON (libgomp's threads, llama.cpp's own default with gcc); troupe runs
#       on those libraries through LD_LIBRARY_PATH=third_party/llama-build-openmp/bin
# With a prebuilt install (bootstrap --prebuilt) the peer is still built natively: say so when
# comparing, or bootstrap natively.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
src="$root/third_party/llama-src" build="$root/third_party/llama-build" variant=()
case "${1:-}" in
  "") ;;
  --openmp) build="$root/third_party/llama-build-openmp" variant=(-DGGML_OPENMP=ON) ;;
  *) echo "peer: unknown option $1 (--openmp or nothing)" >&2; exit 2 ;;
esac
[ -f "$src/CMakeLists.txt" ] || { echo "peer: no $src (run scripts/bootstrap.sh first)" >&2; exit 1; }
# shellcheck source=scripts/llama-cmake-options.sh
source "$root/scripts/llama-cmake-options.sh"
export CCACHE_BASEDIR="$root/third_party" CCACHE_NOHASHDIR=true
cmake -S "$src" -B "$build" -G Ninja "${llama_cmake_options[@]}" "${variant[@]}" -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target llama-server llama-batched-bench llama-bench
echo "peer: $build/bin/llama-server, llama-batched-bench and llama-bench"
