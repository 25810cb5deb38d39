#!/usr/bin/env bash
# Style and static checks (scripts/test.sh runs the format check in every CI run):
#   scripts/lint.sh format        every C++ file conforms to .clang-format (clang-format-14)
#   scripts/lint.sh tidy FILE...  clang-tidy (.clang-tidy's checks) on the given .cpp files,
#                                 with build/release/compile_commands.json; no FILE: every
#                                 .cpp file changed against main (slow: about a minute a file)
# The format check covers every C++ file of src/, tests/, bench/ and fuzz/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tool() {
  local name=$1
  for candidate in "$name-14" "$name"; do
    command -v "$candidate" >/dev/null && { echo "$candidate"; return; }
  done
  echo "lint: $name (version 14) is not installed" >&2
  exit 2
}

check_format() {
  local fmt bad=0
  fmt=$(tool clang-format)
  while IFS= read -r f; do
    if ! "$fmt" --dry-run --Werror "$f" 2>/dev/null; then
      echo "lint: $f is not formatted (run: $fmt -i $f)" >&2
      bad=$((bad + 1))
    fi
  done < <(git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 'bench/*.cpp' \
             'bench/*.hpp' 'fuzz/*.cpp' 'fuzz/*.hpp')
  [ "$bad" -eq 0 ] || { echo "lint: $bad file(s) need clang-format" >&2; exit 1; }
  echo "lint: format ok"
}

check_tidy() {
  local tidy files=("$@")
  tidy=$(tool clang-tidy)
  [ -f build/release/compile_commands.json ] || { echo "lint: configure build/release first" >&2; exit 2; }
  if [ ${#files[@]} -eq 0 ]; then
    mapfile -t files < <(git diff --name-only main -- 'src/*.cpp')
  fi
  [ ${#files[@]} -eq 0 ] && { echo "lint: no files to tidy"; return; }
  "$tidy" -p build/release --quiet "${files[@]}"
}

case "${1:-format}" in
  format) check_format ;;
  tidy) shift; check_tidy "$@" ;;
  *) echo "usage: scripts/lint.sh format | tidy [FILE...]" >&2; exit 2 ;;
esac
