#!/usr/bin/env bash
# Installs the Debian packages mechscope needs to build, test and benchmark, when missing.
# Idempotent: does nothing when everything is present. apt-get only (Debian packages).
set -euo pipefail

pkgs=(
  build-essential clang-14 cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas0-openmp
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libonig-dev libsentencepiece-dev libutf8proc-dev
  libgtest-dev libsqlite3-dev libstb-dev zlib1g-dev libzip-dev chromium
  python3 python3-torch python3-numpy
)
if [ "${MECHSCOPE_GUI:-1}" = 1 ]; then
  pkgs+=(libimgui-dev libglfw3-dev libgl-dev libgl1-mesa-dri xvfb xauth fonts-dejavu-core)
fi
# OpenMPI: optional, for the `mpi` tests and -DMECHSCOPE_MPI=ON (MECHSCOPE_MPI_DEPS=0 skips it).
if [ "${MECHSCOPE_MPI_DEPS:-1}" = 1 ]; then
  pkgs+=(openmpi-bin libopenmpi-dev)
fi
# Extra packages for one make target (make fuzz: clang-14 libclang-rt-14-dev).
if [ "$#" -gt 0 ]; then pkgs+=("$@"); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
