#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main example (the AlexNet-style training on
# synthetic images) with the given arguments.
# usage: scripts/run.sh [ARGS...]   (scripts/run.sh --help lists the example's options)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

xgrad_install_packages "${XGRAD_PACKAGES[@]}"
xgrad_build "$XGRAD_ROOT/build" alexnet_example
exec "$XGRAD_ROOT/build/examples/alexnet_example" "$@"
