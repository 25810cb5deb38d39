#!/usr/bin/env bash
# Installs everything troupe needs on Debian 12 and is quick when it is all there already.
#   1. Debian packages (compiler, CMake, Boost 1.81, fmt, spdlog, CLI11, GoogleTest, ...).
#   2. llama.cpp as a binary dependency: the prebuilt shared libraries of the pinned npm
#      package @node-llama-cpp/linux-x64 and the public headers of the same llama.cpp release,
#      read from the git bundle that ships in the node-llama-cpp package. Both tarballs are
#      checked against the sha512 that npm publishes. Everything lands in third_party/llama.
#   3. The official `openai` npm client used by the end-to-end tests (tests/e2e/node_modules).
#   4. With --test-tools (scripts/test.sh passes it): promtool, unpacked from Debian's
#      prometheus package into third_party/promtool without installing the package (which
#      would start a Prometheus server), so the tests can run `promtool check metrics`.
# Re-running is safe: each step is skipped when its stamp says it is done.
set -euo pipefail

LLAMA_NPM_VERSION=3.22.1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$root/third_party/llama"
stamp="$dest/.installed-$LLAMA_NPM_VERSION"

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
  libssl-dev libreadline-dev libflatbuffers-dev flatbuffers-compiler
  clang-14 libclang-rt-14-dev clang-format
  libcaf-dev libzmq3-dev
  tmux procps
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

install_llama() {
  [ -f "$stamp" ] && { step "llama.cpp: $(cat "$stamp")"; return; }
  command -v npm >/dev/null || die "npm is missing" "install Debian's npm package"
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  step "llama.cpp: fetching @node-llama-cpp/linux-x64@$LLAMA_NPM_VERSION and node-llama-cpp@$LLAMA_NPM_VERSION"
  local bins src
  bins=$(npm_fetch @node-llama-cpp/linux-x64 "$LLAMA_NPM_VERSION" "$tmp")
  src=$(npm_fetch node-llama-cpp "$LLAMA_NPM_VERSION" "$tmp")
  mkdir -p "$tmp/bins" "$tmp/src"
  tar -xzf "$bins" -C "$tmp/bins" && tar -xzf "$src" -C "$tmp/src" || die "could not unpack the npm tarballs"
  local tag
  tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$tmp/src/package/llama/llama.cpp.info.json")
  [ -n "$tag" ] || die "no llama.cpp tag in node-llama-cpp's llama.cpp.info.json"

  rm -rf "$dest" && mkdir -p "$dest/lib" "$dest/include"
  cp -a "$tmp/bins/package/bins/linux-x64/"*.so "$dest/lib/"
  rm -f "$dest/lib/llama-addon.node"
  # Headers only, read straight out of the release bundle (no sources are checked out).
  git init -q "$tmp/repo"
  git -C "$tmp/repo" fetch -q "$tmp/src/package/llama/gitRelease.bundle" HEAD 2>/dev/null ||
    die "could not read llama.cpp's release bundle" "is git installed?"
  local commit h
  commit=$(git -C "$tmp/repo" rev-parse FETCH_HEAD)
  for h in $(git -C "$tmp/repo" ls-tree --name-only FETCH_HEAD include/ ggml/include/); do
    git -C "$tmp/repo" show "FETCH_HEAD:$h" >"$dest/include/$(basename "$h")"
  done
  [ -f "$dest/include/llama.h" ] || die "llama.h missing from the bundle"
  local llama_so ggml_so
  llama_so=$(cd "$dest/lib" && ls libllama.v*.so | head -1)
  ggml_so=$(cd "$dest/lib" && ls libggml.v*.so | head -1)
  cat >"$dest/versions.cmake" <<VER
set(TROUPE_LLAMA_NPM_VERSION "$LLAMA_NPM_VERSION")
set(TROUPE_LLAMA_RELEASE "$tag")
set(TROUPE_LLAMA_COMMIT "$commit")
set(TROUPE_LLAMA_LIBRARY "$llama_so")
set(TROUPE_GGML_LIBRARY "$ggml_so")
VER
  echo "npm $LLAMA_NPM_VERSION, llama.cpp $tag ($commit)" >"$stamp"
  step "llama.cpp: installed $(cat "$stamp") into third_party/llama"
}

install_npm_e2e() {
  local dir="$root/tests/e2e"
  [ -f "$dir/package.json" ] || return 0
  [ -d "$dir/node_modules/openai" ] && { step "openai npm client: present"; return; }
  step "openai npm client: installing"
  (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1) ||
    die "npm ci in tests/e2e failed" "check that the npm registry is reachable, then re-run"
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
for arg in "$@"; do
  case "$arg" in
    --test-tools) test_tools=true ;;
    *) die "unknown option '$arg'" "usage: scripts/bootstrap.sh [--test-tools]" ;;
  esac
done

install_apt
install_llama
install_npm_e2e
if $test_tools; then install_promtool; fi
step "done"
