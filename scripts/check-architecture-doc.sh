#!/usr/bin/env bash
# Fails when docs/ARCHITECTURE.md names something in backticks that the code no longer has.
#
# Checked, per backtick span (a trailing argument list "(...)" is ignored):
#   - a path (a file name with an extension, or a folder ending in '/'): must exist under the
#     repository root, src/ or docs/; a bare file name (`session.cpp`) anywhere in the code;
#     `x.hpp/.cpp` is both files;
#   - a C++ name, possibly qualified (`EngineOptions::defaults`, `BatchEngine`): every
#     component must occur as a word in the code;
#   - a hyphenated lowercase name (a thread name such as `batch-engine`): must occur in the
#     code.
# "The code" is the text files of src/ plus the programs and tests that the doc also describes
# (bench/, tests/ without its installed npm packages,
# scripts/, cmake/) and llama.cpp's installed headers (third_party/llama/include, when
# bootstrapped: the doc lists the llama.cpp calls troupe relies on). Skipped: flags (`--port`), commands and expressions (anything with a
# space), placeholders (`engine/<model>`), globs, llama.cpp's C headers (`*.h`), numbers and
# quoted values. Usage: scripts/check-architecture-doc.sh [ARCHITECTURE.md]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
doc=${1:-"$root/docs/ARCHITECTURE.md"}
cd "$root"

# Every word and hyphenated name that occurs in src/, once.
words=$(mktemp)
trap 'rm -f "$words"' EXIT
code=(src bench tests scripts cmake)
# The llama.cpp calls the doc lists are checked against the installed headers, when present.
headers=()
[ -d third_party/llama/include ] && headers=(third_party/llama/include/)
grep -rhoIE --exclude-dir=node_modules '[A-Za-z_][A-Za-z0-9_-]*' "${code[@]}" "${headers[@]}" | sort -u >"$words"

has_word() { grep -qxF -- "$1" "$words"; }

missing=0
report() {
  echo "docs/ARCHITECTURE.md: \`$1\` $2" >&2
  missing=$((missing + 1))
}

check_path() {
  local p=$1
  case "$p" in
    *'*'* | ../* | /* | http* | *.h) return ;;
    *.hpp/.cpp) check_path "${p%/.cpp}"; check_path "${p%.hpp/.cpp}.cpp"; return ;;
  esac
  if [[ "$p" != */* ]]; then
    [ -n "$(find "${code[@]}" docs -name "$p" -print -quit)" ] && return
  else
    for base in . src docs; do
      [ -e "$base/$p" ] && return
    done
  fi
  report "$p" "is not a file or folder of the repository"
}

check_name() {
  local name=$1 part
  IFS=':' read -ra parts <<<"${name//::/:}"
  for part in "${parts[@]}"; do
    [ -z "$part" ] && continue
    part=${part#\~}
    has_word "$part" || { report "$name" "does not occur in the code ($part)"; return; }
  done
}

# Backtick spans, one per line (code fences are skipped: they are drawings).
spans=$(awk '/^```/{fence=!fence; next} !fence' "$doc" | grep -oE '`[^`]+`' | tr -d '`' |
  sed 's/(.*//' | sort -u)
while IFS= read -r span; do
  [ -z "$span" ] && continue
  case "$span" in
    *' '* | -* | *'"'* | *"'"* | *'<'* | '' | [0-9]*) continue ;;
  esac
  if [[ "$span" == */ || "$span" =~ \.(hpp|cpp|h|md|sh|txt|json|mjs|cmake)$ ]]; then
    check_path "$span"
  elif [[ "$span" =~ ^~?[A-Za-z_][A-Za-z0-9_]*(::~?[A-Za-z_][A-Za-z0-9_]*)*$ ]]; then
    check_name "$span"
  elif [[ "$span" =~ ^[a-z][a-z0-9]*(-[a-z0-9]+)+$ ]]; then
    has_word "$span" || report "$span" "does not occur in the code"
  fi
done <<<"$spans"

if [ "$missing" -gt 0 ]; then
  echo "$missing name(s) in docs/ARCHITECTURE.md no longer exist in the code: update the doc" >&2
  exit 1
fi
echo "docs/ARCHITECTURE.md: every name in backticks exists"
