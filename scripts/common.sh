# Shared set-up of scripts/test.sh and scripts/run.sh: install what is missing (Debian 12),
# then configure and build. Sourced, not run.

XGRAD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages the build, tests and examples need.
XGRAD_PACKAGES=(
  build-essential cmake pkg-config
  libxtensor-dev libxtensor-blas-dev libxsimd-dev xtl-dev
  libopenblas-dev
  libboost-test-dev libboost-program-options-dev
  nlohmann-json3-dev
  zlib1g-dev
  libbenchmark-dev
  gnuplot-nox
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
)

xgrad_install_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "xgrad: installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "xgrad: these packages are missing and installing them needs root:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      return 1
    fi
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# xgrad_build BUILD_DIR [TARGET] [extra cmake args...]: configure, then build TARGET (all if empty).
xgrad_build() {
  local build_dir="$1" target="${2:-}"
  shift 2 || shift $#
  echo "xgrad: building ${target:-everything} in $build_dir (a few minutes the first time)"
  cmake -S "$XGRAD_ROOT" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  if [ -n "$target" ]; then
    cmake --build "$build_dir" -j"$(nproc)" --target "$target"
  else
    cmake --build "$build_dir" -j"$(nproc)"
  fi
}
