#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what is missing, then
#   0. lint: the clang-format check (scripts/lint.sh format; clang-tidy is scripts/lint.sh tidy),
#   1. release build: every test (unit, integration, end-to-end with the openai npm client, the
#      docs check that ARCHITECTURE.md names only what exists: ctest label docs),
#   2. asan build (ASan+UBSan): every test except the slow ones,
#   3. tsan build: the suites of the concurrent modules that do not call llama.cpp,
#   4. fuzz build (clang, libFuzzer): each fuzzer for a bounded time.
# Any failure, sanitizer report or fuzzer crash fails the run. Set TROUPE_TEST_STAGES to a
# subset ("lint release asan tsan fuzz") to run fewer stages.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

stages=${TROUPE_TEST_STAGES:-"lint release asan tsan fuzz"}
fuzz_seconds=${TROUPE_FUZZ_SECONDS:-30}
export ASAN_OPTIONS=${ASAN_OPTIONS:-"detect_leaks=0:abort_on_error=1:halt_on_error=1"}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-"print_stacktrace=1:halt_on_error=1"}
export TSAN_OPTIONS=${TSAN_OPTIONS:-"halt_on_error=1:second_deadlock_stack=1"}

# ccache: hash paths relative to the checkout, so a fresh clone reuses earlier compilations.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true

banner() { printf '\n=== %s ===\n' "$*"; }
has_stage() { [[ " $stages " == *" $1 "* ]]; }

banner "bootstrap"
scripts/bootstrap.sh --test-tools

if has_stage lint; then
  banner "lint: clang-format"
  scripts/lint.sh format
fi

if has_stage release; then
  banner "release: build"
  cmake --preset release >/dev/null
  cmake --build --preset release
  banner "release: test"
  ctest --preset release
fi

if has_stage asan; then
  banner "asan (ASan+UBSan): build"
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  banner "asan (ASan+UBSan): test"
  ctest --preset asan
fi

if has_stage tsan; then
  banner "tsan: build"
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan
  banner "tsan: test"
  ctest --preset tsan
fi

if has_stage fuzz && [ -f fuzz/CMakeLists.txt ]; then
  banner "fuzz: build"
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz
  corpus_root="$root/build/fuzz/corpus"
  for f in build/fuzz/fuzz/*_fuzzer; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    mkdir -p "$corpus_root/$name"
    seeds="$root/fuzz/corpus/${name%_fuzzer}"
    # Binary seeds are kept as hex text (*.hex); decode them into the working corpus.
    for h in "$seeds"/*.hex; do
      [ -f "$h" ] || continue
      perl -ne 's/\s+//g; print pack("H*", $_)' "$h" >"$corpus_root/$name/seed-$(basename "${h%.hex}")"
    done
    banner "fuzz: $name for ${fuzz_seconds}s"
    "$f" -max_total_time="$fuzz_seconds" -print_final_stats=1 "$corpus_root/$name" \
      $( [ -d "$seeds" ] && echo "$seeds" ) 2>&1 | tail -n 12
  done
fi

banner "all stages passed: $stages"
