#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite through ctest.
# usage: scripts/test.sh [--sanitize]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir="$XGRAD_ROOT/build"
cmake_args=()
case "${1:-}" in
  "") ;;
  --sanitize)
    build_dir="$XGRAD_ROOT/build-sanitize"
    cmake_args+=(-DXGRAD_SANITIZE=ON -DXGRAD_BUILD_BENCH=OFF)
    ;;
  *)
    echo "usage: scripts/test.sh [--sanitize]" >&2
    exit 2
    ;;
esac

xgrad_install_packages "${XGRAD_PACKAGES[@]}"
xgrad_build "$build_dir" "" "${cmake_args[@]}"
cd "$build_dir"
ctest --output-on-failure -j"$(nproc)"
