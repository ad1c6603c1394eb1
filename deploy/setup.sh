#!/usr/bin/env bash
# Installs the Debian 12 packages mixcal needs to build, test and run, and
# only those that are missing. Non-interactive; safe to run any number of
# times. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build pkg-config ccache g++
  # libraries
  libtorch-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev libabsl-dev libgtest-dev libgmock-dev zlib1g-dev
  # image folders (your own data): PNG and JPEG decoding
  libpng-dev libjpeg-dev
  # An OpenMP OpenBLAS: LibTorch's fully-connected layers otherwise run on
  # the reference BLAS (see docs/benchmarks.md).
  libopenblas0-openmp
  # TLS certificates for the tests (and for labs that make their own);
  # rsvg-convert renders the plots to PNG in the tests
  openssl librsvg2-bin
  # the .deb: cpack -G DEB computes its dependencies with dpkg-shlibdeps
  dpkg-dev file
  # data: Fashion-MNIST for the quickstart and benchmarks
  dataset-fashion-mnist
  # the benchmarks' references: a plain PyTorch script (same kernels as the
  # LibTorch we link) and Optuna's storages
  python3-torch python3-optuna
  # the Python client example (client/python/); scikit-learn for the
  # metrics' golden values (tests/calib/golden_metrics.py)
  python3-grpcio python3-protobuf python3-pandas python3-sklearn
  # the analysis example (examples/analysis.py)
  python3-matplotlib
  # the deployment tests: a real single-node Slurm cluster (tests/deploy/),
  # systemd-analyze for the units, clang for the libFuzzer targets
  slurmctld slurmd slurm-client munge systemd clang
  # mixcal dashboard: its HTTP library; the browser its test drives
  libcpp-httplib-dev chromium
)
# Node.js and npm for the dashboard's browser test (puppeteer-core): Debian's,
# unless another installation is already on PATH.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: missing packages and not root: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
