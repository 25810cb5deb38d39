#!/usr/bin/env bash
# Copies engine_bench and the shared libraries it needs (llama.cpp, every ggml CPU variant,
# fmt, spdlog, libstdc++) into one folder that runs on another x86-64 Linux machine:
#
#   bench/engine/make_bundle.sh build/engine /tmp/engine-bundle
#   scp -r /tmp/engine-bundle host:          # then, on the host:
#   engine-bundle/engine_bench --make small --type f16 -o small-f16.gguf
#   engine-bundle/engine_bench small-f16.gguf --threads 2 --repeat 7
#
# The wrapper sets LD_LIBRARY_PATH and TROUPE_GGML_BACKEND_DIR to the folder, so ggml picks
# the CPU variant for the host's processor from the bundled ones.
set -euo pipefail
build=${1:?build dir (with bench/engine/engine_bench built)}
out=${2:?output folder}
bin="$build/bench/engine/engine_bench"
[[ -x $bin ]] || { echo "no $bin: cmake --build $build --target engine_bench" >&2; exit 1; }
mkdir -p "$out/lib"
strip -o "$out/lib/engine_bench.bin" "$bin"
# Everything ldd resolves except the C library and the loader; ggml's CPU variants are
# dlopen()ed, so they are copied from libllama's folder.
ldd "$bin" | awk '/=> \// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.* | libm.so.* | ld-linux*) ;;
    *) cp -L "$lib" "$out/lib/" ;;
  esac
done
llama_dir=$(dirname "$(ldd "$bin" | awk '/libllama/ {print $3}')")
cp -L "$llama_dir"/libggml-cpu-*.so "$out/lib/"
cat >"$out/engine_bench" <<'WRAP'
#!/usr/bin/env bash
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TROUPE_GGML_BACKEND_DIR="$here/lib"
exec "$here/lib/engine_bench.bin" "$@"
WRAP
chmod +x "$out/engine_bench" "$out/lib/engine_bench.bin"
du -sh "$out"
