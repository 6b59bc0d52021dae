#!/usr/bin/env bash
# Installs the Debian packages agentwall needs to build, run and test.
# Only packages that are missing are installed; nothing else is downloaded.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev
  zlib1g-dev libssl-dev libboost-dev libboost-program-options-dev nlohmann-json3-dev
  libspdlog-dev doctest-dev libnghttp2-dev libbrotli-dev libzstd-dev libpcre2-dev
  libyaml-cpp-dev libsimdjson-dev libgoogle-perftools-dev libvectorscan-dev libutf8proc-dev libsqlite3-dev libhiredis-dev nodejs
  dpkg-dev
  # agent/elf/gopclntab.cc: an x86-64 instruction decoder, to find the RETs of Go functions.
  libcapstone-dev)
test_pkgs=(openssl curl python3 nodejs util-linux iproute2 libbenchmark-dev bpftrace
  libclang-rt-14-dev redis-server rsyslog rsyslog-gnutls
  systemd man-db logrotate
  # tests/system/test_systemd.sh: the unit under a real systemd, booted from the host's own /usr
  # in a volatile container (systemd-nspawn); dbus for `systemd-analyze security` on the live
  # unit; capsh to read the running agent's capability bounding set.
  systemd-container dbus libcap2-bin
  # tests/integration/test_gnutls.py: a GnuTLS client (gnutls-cli); test_llm_sdks.py: the
  # Python HTTP clients people use, from Debian.
  gnutls-bin python3-requests python3-httpx
  # tests/integration/test_go.py and the unit tests of agent/elf/gopclntab: Go clients built at
  # test time (standard library only, offline).
  golang-go
  # tests/integration/test_nss.py: an NSS client (tstclnt, NSS's own test client) and certutil
  # for the NSS database that trusts the test CA.
  libnss3-tools)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then want+=("${test_pkgs[@]}"); fi

# --test: the official LLM SDKs (npm) the integration tests drive, in tests/integration/clients,
# installed with `npm ci` from the committed package-lock.json (needs npm and the registry).
# Skipped when node_modules already matches the lock file (a stamp holds the lock's hash).
install_test_node_modules() {
  [ "$mode" = "--test" ] || return 0
  local dir stamp lock_hash
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/integration/clients"
  stamp="$dir/node_modules/.agentwall-lock.sha256"
  lock_hash="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ]; then return 0; fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "agentwall: npm not found: needed for the LLM SDK clients in $dir" >&2
    return 1
  fi
  echo "agentwall: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$lock_hash" >"$stamp"
}
mode="${1:-}"

missing=()
for p in "${want[@]}"; do
  grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
# The build fetches the tokenizer's rank data with npm (cmake/tokenizer.cmake). NodeSource's
# nodejs package brings npm along; Debian's does not, its npm is a package of its own.
if ! command -v npm >/dev/null 2>&1 && ! grep -qx npm <<<"$(printf '%s\n' "${missing[@]}")"; then
  missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && { install_test_node_modules; exit 0; }

if [ "$(id -u)" -ne 0 ]; then
  echo "agentwall: missing Debian packages: ${missing[*]}" >&2
  echo "agentwall: run this as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "agentwall: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_test_node_modules
