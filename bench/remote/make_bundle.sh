#!/usr/bin/env bash
# Copies remote_bench and the shared libraries it needs (all but glibc's own) into one
# folder, with run.sh, so it runs on another machine of the same architecture whose glibc is
# at least as new, without building anything there:
#
#   bench/remote/make_bundle.sh build/remote/bench/remote/remote_bench /tmp/remote-bench
#   scp -r /tmp/remote-bench host: && ssh host remote-bench/run.sh --ask-only --repeat 5 \
#       --only troupe,zeromq
set -euo pipefail
bin=${1:?usage: make_bundle.sh path/to/remote_bench out-dir}
out=${2:?usage: make_bundle.sh path/to/remote_bench out-dir}
mkdir -p "$out/lib"
cp "$bin" "$out/remote_bench"
strip --strip-debug "$out/remote_bench" 2>/dev/null || true
ldd "$bin" | awk '/=> \// { print $3 }' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
cat > "$out/run.sh" <<'RUN'
#!/bin/sh
here=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/remote_bench" "$@"
RUN
chmod +x "$out/run.sh"
echo "bundle in $out: $(ls "$out/lib" | wc -l) libraries, $(du -sh "$out" | cut -f1)"
