#!/usr/bin/env bash
# The service unit's hardening cannot regress: `systemd-analyze verify` must be clean and
# `systemd-analyze security` must rate it at most MAX (default 3.0).
#   tests/system/check_unit.sh [UNIT] [AGENTWALL_BIN]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UNIT=${1:-$HERE/../../systemd/agentwall.service}
BIN=${2:-/bin/true}
MAX=${MAX:-3.0}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (Debian package systemd)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart is executable: point it at a binary that exists here.
sed "s#/usr/sbin/agentwall#$BIN#" "$UNIT" >"$tmp/agentwall.service"
if ! out=$(systemd-analyze verify "$tmp/agentwall.service" 2>&1) || [ -n "$out" ]; then
  echo "systemd-analyze verify is not clean:" >&2
  echo "$out" >&2
  exit 1
fi
report=$(systemd-analyze security --offline=true "$tmp/agentwall.service" 2>&1)
score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for agentwall.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
  echo "could not read the exposure level from systemd-analyze security:" >&2
  echo "$report" >&2
  exit 1
fi
echo "exposure level: $score (at most $MAX)"
if awk -v s="$score" -v m="$MAX" 'BEGIN { exit !(s > m) }'; then
  echo "the unit's exposure level $score is above $MAX; what costs most:" >&2
  printf '%s\n' "$report" | grep '✗' | sort -t' ' -k1 | tail -15 >&2
  exit 1
fi
