#!/usr/bin/env bash
# Installs the Debian packages agentwall needs to build, run and test.
# Only packages that are missing are installed; nothing else is downloaded.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev
  zlib1g-dev libssl-dev libboost-dev libboost-program-options-dev nlohmann-json3-dev
  libspdlog-dev doctest-dev)
test_pkgs=(openssl curl python3 nodejs util-linux iproute2 libbenchmark-dev bpftrace)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "agentwall: missing Debian packages: ${missing[*]}" >&2
  echo "agentwall: run this as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "agentwall: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
