#!/usr/bin/env bash
# Installs Broom's build and test dependencies from Debian's archive when missing.
# Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail
pkgs=(build-essential cmake pkg-config libjemalloc-dev libabsl-dev libgtest-dev libgmock-dev
      libbenchmark-dev
      # engine shims (runtime_shims/caf)
      libcaf-dev
      # rivals measured side by side (bench/), also preloaded by the preload tests
      libmimalloc-dev libgoogle-perftools-dev libgc-dev libprotobuf-dev protobuf-compiler
      # programs the preload tests run under LD_PRELOAD, and result formatting and figures
      python3 perl git coreutils python3-matplotlib
      # the preload profiler: libdw (file:line, inline frames; headers at build time, libdw.so.1
      # opened at report time) and libunwind (call stacks, opened when profiling starts)
      libdw-dev libunwind8
      "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
