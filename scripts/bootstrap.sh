#!/usr/bin/env bash
# Installs everything troupe needs on Debian 12 and is quick when it is all there already.
#   1. Debian packages (compiler, CMake, Boost 1.81, fmt, spdlog, CLI11, GoogleTest, ...).
#   2. llama.cpp, the release pinned by the npm package node-llama-cpp (its git bundle, checked
#      against the sha512 that npm publishes, checked out into third_party/llama-src): by
#      default ggml, llama and llama-common are built from it for this machine (native CPU
#      flags, ggml's own threadpool: about twice the decode speed of the prebuilt), out of
#      tree with ccache;
#      with --prebuilt the portable libraries of @node-llama-cpp/linux-x64 are used instead
#      (no compiler time); --cuda and --vulkan use the same release's GPU builds,
#      @node-llama-cpp/linux-x64-cuda (with -cuda-ext's CUDA 12 build when only that runtime
#      is present) or -vulkan (with Debian's libvulkan1). Libraries, headers (llama.h, ggml,
#      llama-common's common/) and test data (the release's chat templates and tokenizers)
#      land in third_party/llama.
#   3. The official `openai`, `@anthropic-ai/sdk` and `ollama` npm clients used by the
#      end-to-end tests (tests/e2e/node_modules).
#   4. With --test-tools (scripts/test.sh passes it): promtool, unpacked from Debian's
#      prometheus package into third_party/promtool without installing the package (which
#      would start a Prometheus server), so the tests can run `promtool check metrics`; and
#      Debian's chromium, the browser the web chat's end-to-end test drives through
#      playwright-core (an npm package of step 3, which never downloads a browser).
# Re-running is safe: each step is skipped when its stamp says it is done.
set -euo pipefail

LLAMA_NPM_VERSION=3.22.1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/third_party/llama"
stamp="$dest/.installed"

die() {
  printf '\nbootstrap: %s\n' "$1" >&2
  [ -n "${2:-}" ] && printf 'bootstrap: what to do: %s\n' "$2" >&2
  exit 1
}
step() { printf 'bootstrap: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*" "run this script as root or install sudo"; fi
}

apt_packages=(
  build-essential g++ cmake ninja-build pkg-config ccache git ca-certificates curl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libfmt-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libssl-dev libreadline-dev libflatbuffers-dev flatbuffers-compiler libmimalloc-dev
  clang-14 libclang-rt-14-dev clang-format clang-tidy
  libcaf-dev libzmq3-dev
  tmux procps python3
)
# Node.js may come from elsewhere (nodesource); only ask Debian for it when npm is missing.
command -v npm >/dev/null || apt_packages+=(nodejs npm)

install_apt() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { step "Debian packages: all present"; return; }
  step "Debian packages: installing ${missing[*]}"
  local log; log=$(mktemp)
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
    { tail -5 "$log" >&2; die "apt-get update failed (log above)" "check the network and /etc/apt/sources.list, then re-run"; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 ||
    { tail -5 "$log" >&2; die "apt-get install failed (log above)" "fix the package problem shown, then re-run"; }
  rm -f "$log"
}

# npm_fetch NAME VERSION DIR: npm pack into DIR, verify npm's sha512, print the tarball path.
npm_fetch() {
  local name=$1 version=$2 dir=$3 want got file
  want=$(cd "$dir" && npm view --silent "$name@$version" dist.integrity 2>/dev/null) ||
    die "npm could not look up $name@$version" "check that the npm registry is reachable (npm ping)"
  file=$(cd "$dir" && npm pack --silent "$name@$version" 2>/dev/null | tail -1) ||
    die "npm pack $name@$version failed" "check the network and npm's cache (npm cache verify)"
  got="sha512-$(openssl dgst -sha512 -binary "$dir/$file" | base64 -w0)"
  [ "$got" = "$want" ] || die "integrity mismatch for $name@$version ($got != $want)" "delete $dir and re-run"
  printf '%s\n' "$dir/$file"
}

# The llama.cpp source of the pinned release, checked out of the git bundle inside the
# node-llama-cpp npm package into third_party/llama-src (ignored, never committed). It gives
# the headers, the test data (real chat templates and tokenizers) and, by default, the source
# the libraries are built from.
checkout_llama_source() {
  local bundle=$1 srcdir="$root/third_party/llama-src"
  if [ ! -d "$srcdir/.git" ]; then
    git init -q "$srcdir" || die "could not create $srcdir" "is git installed?"
  fi
  git -C "$srcdir" fetch -q "$bundle" HEAD 2>/dev/null ||
    die "could not read llama.cpp's release bundle" "is git installed?"
  git -C "$srcdir" -c advice.detachedHead=false checkout -q --force FETCH_HEAD ||
    die "could not check out llama.cpp's release"
  git -C "$srcdir" rev-parse HEAD
}

# A key for "built for this machine": the CPU model and its flags. A tree copied to another CPU
# rebuilds rather than running instructions that CPU may lack.
machine_key() {
  { grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo; } 2>/dev/null |
    openssl dgst -sha256 -r | cut -c1-16
}

# A key for the CMake options of scripts/llama-cmake-options.sh (sourced below).
options_key() {
  printf '%s\n' "${llama_cmake_options[@]}" | openssl dgst -sha256 -r | cut -c1-12
}

# Builds ggml, llama and llama-common from the checked-out source for this machine, out of tree
# in third_party/llama-build (Ninja, ccache); the options are in scripts/llama-cmake-options.sh.
# shellcheck source=scripts/llama-cmake-options.sh
source "$root/scripts/llama-cmake-options.sh"
build_llama_native() {
  local srcdir=$1 builddir=$2; shift 2
  local log; log=$(mktemp)
  # Relative paths in ccache's hashes: a second checkout reuses the first one's objects.
  CCACHE_BASEDIR="$root/third_party" CCACHE_NOHASHDIR=true \
    cmake -S "$srcdir" -B "$builddir" -G Ninja "${llama_cmake_options[@]}" "$@" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "configuring llama.cpp failed (log above)"; }
  CCACHE_BASEDIR="$root/third_party" CCACHE_NOHASHDIR=true \
    cmake --build "$builddir" -j "$(nproc)" --target llama-common >"$log" 2>&1 ||
    { tail -30 "$log" >&2; die "building llama.cpp failed (log above)"; }
  rm -f "$log"
}

# llama.cpp's internal headers, from the release's source SRCDIR into $dest: the grammar's (troupe
# keys what a grammar allows by its parse state) and the staging API's (llama.cpp's own account
# of a model's and a context's memory, for the load-time estimate).
internal_headers="llama-grammar.h llama-ext.h"
install_internal_headers() {
  mkdir -p "$dest/include/internal" &&
    for h in $internal_headers; do cp "$1/src/$h" "$dest/include/internal/" || return 1; done
}

install_llama() {
  local mode=native
  $prebuilt && mode=prebuilt
  [ -n "$gpu" ] && mode="prebuilt-$gpu"
  local key="npm $LLAMA_NPM_VERSION, $mode"
  # A native build also rebuilds when scripts/llama-cmake-options.sh changes.
  [ "$mode" = native ] && key="$key, machine $(machine_key), options $(options_key)"
  if [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$key" ]; then
    step "llama.cpp: $(tail -1 "$stamp")"
    # Installs from before an internal header was installed: add them from the release's source.
    for h in $internal_headers; do
      if [ ! -f "$dest/include/internal/$h" ] && [ -f "$root/third_party/llama-src/src/$h" ]; then
        install_internal_headers "$root/third_party/llama-src"
        break
      fi
    done
    return
  fi
  command -v npm >/dev/null || die "npm is missing" "install Debian's npm package"
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  step "llama.cpp: fetching node-llama-cpp@$LLAMA_NPM_VERSION (the release bundle)"
  local src
  src=$(npm_fetch node-llama-cpp "$LLAMA_NPM_VERSION" "$tmp")
  mkdir -p "$tmp/src" && tar -xzf "$src" -C "$tmp/src" || die "could not unpack $src"
  local tag
  tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$tmp/src/package/llama/llama.cpp.info.json")
  [ -n "$tag" ] || die "no llama.cpp tag in node-llama-cpp's llama.cpp.info.json"
  local srcdir="$root/third_party/llama-src" commit
  commit=$(checkout_llama_source "$tmp/src/package/llama/gitRelease.bundle")

  # Everything is staged beside the old install and swapped in at the end, so builds that use
  # third_party/llama keep working until the new one is complete.
  local final=$dest
  dest="$final.new"
  rm -rf "$dest" && mkdir -p "$dest/lib" "$dest/include"
  local build_desc
  if [ "$mode" != native ]; then
    local pkg=linux-x64${gpu:+-$gpu}
    step "llama.cpp: fetching the prebuilt @node-llama-cpp/$pkg@$LLAMA_NPM_VERSION"
    local bins
    bins=$(npm_fetch "@node-llama-cpp/$pkg" "$LLAMA_NPM_VERSION" "$tmp")
    mkdir -p "$tmp/bins" && tar -xzf "$bins" -C "$tmp/bins" || die "could not unpack $bins"
    cp -a "$tmp/bins/package/bins/$pkg/"*.so "$dest/lib/"
    rm -f "$dest/lib/llama-addon.node"
    build_desc="prebuilt @node-llama-cpp/$pkg@$LLAMA_NPM_VERSION (portable CPU variants, no OpenMP)"
    [ "$gpu" = cuda ] && install_cuda_runtime_choice "$tmp"
    [ -n "$gpu" ] && check_gpu_libraries
  else
    step "llama.cpp: building $tag for this machine (native CPU flags; a few minutes the first time)"
    local t0=$SECONDS
    build_llama_native "$srcdir" "$root/third_party/llama-build"
    cp -a "$root/third_party/llama-build/bin/"lib*.so* "$dest/lib/"
    build_desc="built here from source: GGML_NATIVE=ON$([ "$(uname -m)" = x86_64 ] && echo ' without AMX'), ggml's threadpool, $(gcc -dumpfullversion 2>/dev/null | sed 's/^/gcc /')"
    step "llama.cpp: built in $((SECONDS - t0)) s"
  fi

  # Public headers, and llama-common's (common/, with jinja/ and the vendored nlohmann/json).
  cp "$srcdir"/include/*.h "$srcdir"/ggml/include/*.h "$dest/include/"
  mkdir -p "$dest/include/common"
  (cd "$srcdir/common" && find . \( -name '*.h' -o -name '*.hpp' \) -print0 | tar --null -cf - -T -) |
    tar -xf - -C "$dest/include/common" || die "could not copy llama-common's headers"
  mkdir -p "$dest/include/vendor" && cp -a "$srcdir/vendor/nlohmann" "$dest/include/vendor/"
  install_internal_headers "$srcdir"
  [ -f "$dest/include/llama.h" ] && [ -f "$dest/include/common/chat.h" ] ||
    die "llama.h or common/chat.h missing from the release"
  # Test data: the release's real chat templates and tokenizers (vocabulary-only GGUFs).
  mkdir -p "$dest/testdata/templates" "$dest/testdata/vocab"
  cp "$srcdir"/models/templates/*.jinja "$dest/testdata/templates/"
  cp "$srcdir"/models/ggml-vocab-*.gguf "$dest/testdata/vocab/"

  # lib_of PATTERN...: the first library in $dest/lib matching a pattern (npm's and CMake's names).
  lib_of() {
    local p f
    for p in "$@"; do
      for f in "$dest/lib/"$p; do [ -e "$f" ] && { basename "$f"; return; }; done
    done
  }
  local llama_so ggml_so ggml_base_so common_so
  llama_so=$(lib_of "libllama.v*.so" "libllama.*.v*.so" "libllama.so.[0-9]")
  ggml_so=$(lib_of "libggml.v*.so" "libggml.*.v*.so" "libggml.so.[0-9]")
  ggml_base_so=$(lib_of "libggml-base.so.[0-9]" libggml-base.so)
  common_so=$(lib_of "libllama-common.so.[0-9]" libllama-common.so)
  [ -n "$llama_so" ] && [ -n "$ggml_so" ] && [ -n "$ggml_base_so" ] && [ -n "$common_so" ] ||
    die "a llama.cpp library is missing in $dest/lib ($(ls "$dest/lib" | tr '\n' ' '))"
  cat >"$dest/versions.cmake" <<VER
set(TROUPE_LLAMA_NPM_VERSION "$LLAMA_NPM_VERSION")
set(TROUPE_LLAMA_RELEASE "$tag")
set(TROUPE_LLAMA_COMMIT "$commit")
set(TROUPE_LLAMA_BUILD "$build_desc")
set(TROUPE_LLAMA_LIBRARY "$llama_so")
set(TROUPE_GGML_LIBRARY "$ggml_so")
set(TROUPE_GGML_BASE_LIBRARY "$ggml_base_so")
set(TROUPE_LLAMA_COMMON_LIBRARY "$common_so")
VER
  printf '%s\nllama.cpp %s (%s), %s\n' "$key" "$tag" "$commit" "$build_desc" >"$dest/.installed"
  rm -rf "$final" && mv "$dest" "$final" && dest=$final
  step "llama.cpp: installed $(tail -1 "$stamp") into third_party/llama"
}

# The CUDA build links the CUDA 13 runtime (libcudart.so.13, libcublas.so.13); when only
# CUDA 12's is installed, @node-llama-cpp/linux-x64-cuda-ext's build of the same release is
# used instead. Without either, the CUDA backend cannot load and troupe runs on the CPU.
install_cuda_runtime_choice() {
  local tmp=$1
  if ! ldd "$dest/lib/libggml-cuda.so" 2>/dev/null | grep -q 'libcudart.so.* => not found'; then
    return
  fi
  step "llama.cpp: no CUDA 13 runtime here; fetching @node-llama-cpp/linux-x64-cuda-ext (CUDA 12)"
  local ext
  ext=$(npm_fetch @node-llama-cpp/linux-x64-cuda-ext "$LLAMA_NPM_VERSION" "$tmp")
  mkdir -p "$tmp/ext" && tar -xzf "$ext" -C "$tmp/ext" || die "could not unpack $ext"
  if LD_LIBRARY_PATH="$dest/lib" ldd "$tmp/ext/package/bins/linux-x64-cuda/fallback/libggml-cuda.so" |
    grep -q 'libcudart.so.* => not found'; then
    step "llama.cpp: WARNING no CUDA 12 or 13 runtime (libcudart, libcublas) found: install the" \
      "NVIDIA CUDA runtime, else troupe runs on the CPU"
    return
  fi
  cp "$tmp/ext/package/bins/linux-x64-cuda/fallback/libggml-cuda.so" "$dest/lib/"
}

# Says which of the GPU backend's libraries this machine lacks (it still installs: the CPU
# backends work, and the libraries may come with a driver installed later).
check_gpu_libraries() {
  local f missing
  for f in "$dest/lib/"libggml-cuda.so "$dest/lib/"libggml-vulkan.so; do
    [ -e "$f" ] || continue
    missing=$(LD_LIBRARY_PATH="$dest/lib" ldd "$f" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
    if [ -n "$missing" ]; then
      step "llama.cpp: WARNING $(basename "$f") cannot load here yet, missing: $missing(the GPU" \
        "driver provides libcuda.so.1 / libvulkan.so.1's ICD); troupe runs on the CPU until then"
    else
      step "llama.cpp: $(basename "$f") loads: its devices are listed by 'troupe version'"
    fi
  done
}

install_npm_e2e() {
  local dir="$root/tests/e2e"
  [ -f "$dir/package.json" ] || return 0
  # Installed when node_modules holds exactly what package-lock.json pins.
  if cmp -s "$dir/package-lock.json" "$dir/node_modules/.troupe-installed-lock"; then
    step "end-to-end npm packages (openai, @anthropic-ai/sdk, ollama, ajv, zod, playwright-core): present"
    return
  fi
  step "end-to-end npm packages (openai, @anthropic-ai/sdk, ollama, ajv, zod, playwright-core): installing"
  (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1) ||
    die "npm ci in tests/e2e failed" "check that the npm registry is reachable, then re-run"
  cp "$dir/package-lock.json" "$dir/node_modules/.troupe-installed-lock"
}

# promtool alone: `apt-get download` needs no root and starts no service.
install_promtool() {
  local dir="$root/third_party/promtool"
  [ -x "$dir/promtool" ] && { step "promtool: present"; return; }
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  step "promtool: fetching Debian's prometheus package"
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) ||
      die "apt-get download prometheus failed" "check the network and /etc/apt/sources.list, then re-run"
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" || die "could not unpack the prometheus package"
  mkdir -p "$dir" && cp "$tmp/x/usr/bin/promtool" "$dir/promtool"
  step "promtool: $("$dir/promtool" --version 2>&1 | head -1)"
}

test_tools=false
prebuilt=${TROUPE_LLAMA_PREBUILT:-false}
gpu=${TROUPE_LLAMA_GPU:-}  # "", cuda or vulkan
for arg in "$@"; do
  case "$arg" in
    --test-tools) test_tools=true ;;
    --prebuilt) prebuilt=true ;;
    --native) prebuilt=false; gpu= ;;
    --cuda) gpu=cuda ;;
    --vulkan) gpu=vulkan ;;
    *) die "unknown option '$arg'" "usage: scripts/bootstrap.sh [--test-tools] [--prebuilt|--native|--cuda|--vulkan]" ;;
  esac
done
if $test_tools; then apt_packages+=(chromium); fi
case "$gpu" in
  "") ;;
  cuda) ;;
  vulkan) apt_packages+=(libvulkan1) ;;
  *) die "TROUPE_LLAMA_GPU='$gpu' is not cuda or vulkan" ;;
esac

install_apt
install_llama
install_npm_e2e
if $test_tools; then install_promtool; fi
step "done"
