#!/usr/bin/env bash
# Installs what Tessera needs from Debian 12's packages (once), then configures and builds it in
# build/. Safe to run again: it only installs what is missing and rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libinsighttoolkit5-dev libdcmtk-dev
  nlohmann-json3-dev libcli11-dev libssl-dev zlib1g-dev
  libsqlite3-dev libcpp-httplib-dev sqlite3 openssl
  libcairo2-dev fonts-dejavu-core
  libgtest-dev libgmock-dev libbenchmark-dev libpng-dev libexpat1-dev
  libfftw3-dev libsodium-dev dcmtk dicom3tools orthanc orthanc-dicomweb
  mricron-data python3-torch python3-nibabel python3-numpy python3-pydicom
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}"
  # Orthanc's package starts a system-wide PACS on ports 4242/8042 after installing; tests run
  # their own on free loopback ports, so keep services from starting during the install (the
  # standard policy-rc.d answer 101, "action forbidden"), unless the machine already has a policy.
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
  [ -z "$policy_added" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
