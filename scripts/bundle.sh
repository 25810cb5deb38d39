#!/usr/bin/env bash
# Packs a build's programs into one relocatable folder for a machine that has no build tree:
# the programs (debug info stripped), every shared library they load except glibc's own, and
# llama.cpp's CPU backend variants. `DIR/run PROGRAM ARGS...` runs one of them with the
# bundled libraries; `troupe` is on its PATH, so drivers that start `troupe` find it.
#
#   scripts/bundle.sh [--build build/release] [--out DIR] [--tar FILE.tar.xz] [PROGRAM...]
#
# PROGRAMs are paths relative to the build folder (default: troupe and every program under
# bench/). The target needs x86-64 Linux with glibc >= the build machine's (2.36 on Debian 12).
set -euo pipefail

build=build/release
out=""
tarball=""
programs=()
while (($#)); do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --tar) tarball="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) programs+=("$1"); shift ;;
  esac
done
if ((${#programs[@]} == 0)); then
  [[ -x "$build/troupe" ]] || { echo "bundle: no $build/troupe (build first)" >&2; exit 1; }
  programs=(troupe)
  while IFS= read -r p; do programs+=("${p#"$build"/}"); done \
    < <(find "$build/bench" -maxdepth 2 -type f -executable | sort)
fi
[[ -n "$out" ]] || out=$(mktemp -d)/troupe-bundle

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
for p in "${programs[@]}"; do
  [[ -x "$build/$p" ]] || { echo "bundle: no program $build/$p" >&2; exit 1; }
  objcopy --strip-debug "$build/$p" "$out/bin/$(basename "$p")"
done

# Every library the programs resolve, minus glibc (the target's own must be used).
glibc='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv|libutil)\.so'
for p in "$out"/bin/*; do
  ldd "$p" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while IFS= read -r lib; do
  name=$(basename "$lib")
  [[ "$name" =~ $glibc ]] && continue
  cp -L "$lib" "$out/lib/$name"
done

# ggml picks its CPU variant at run time from a folder: bring them all (when llama.cpp is in).
for p in "$out"/bin/*; do ldd "$p"; done | awk '/libllama/ {print $3}' | sort -u | while IFS= read -r l; do
  cp -L "$(dirname "$l")"/libggml-cpu-*.so "$out/lib/" 2>/dev/null || true
done
strip --strip-debug "$out"/lib/*.so* 2>/dev/null || true

cat >"$out/run" <<'EOF'
#!/usr/bin/env bash
# Runs a bundled program with the bundled libraries: run PROGRAM [ARGS...]
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TROUPE_GGML_BACKEND_DIR="$here/lib"
export PATH="$here/bin:$PATH"
prog="$1"; shift
exec "$here/bin/$prog" "$@"
EOF
chmod +x "$out/run"

echo "bundle: $(ls "$out/bin" | wc -l) programs, $(ls "$out/lib" | wc -l) libraries, $(du -sh "$out" | cut -f1) in $out"
if [[ -n "$tarball" ]]; then
  tar -C "$(dirname "$out")" -cJf "$tarball" "$(basename "$out")"
  echo "bundle: $(du -h "$tarball" | cut -f1) $tarball"
fi
