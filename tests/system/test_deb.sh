#!/usr/bin/env bash
# The Debian package on this host, with dpkg: install → upgrade → remove → purge.
#   tests/system/test_deb.sh BUILD_DIR SOURCE_DIR [CPACK]
# Two packages are built from the build in BUILD_DIR (CPack), the project's version and a
# higher one. Needs root. It refuses to run where an agentwall package or unpackaged
# agentwall files are present; whatever happens, it purges its package on exit and puts back
# the state and log directories it found (a developer's `agentwall run` leaves them).
# Where systemd is not PID 1, the package must not start the agent, and this checks that.
set -euo pipefail

BUILD=$(cd "${1:?usage: test_deb.sh BUILD_DIR SOURCE_DIR [CPACK]}" && pwd)
SRC=$(cd "${2:?usage: test_deb.sh BUILD_DIR SOURCE_DIR [CPACK]}" && pwd)
CPACK=${3:-cpack}
PKG=agentwall
export DEBIAN_FRONTEND=noninteractive

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() { echo "ok: $*"; }

[ "$(id -u)" -eq 0 ] || fail "needs root: it installs and purges the package with dpkg"
for tool in dpkg dpkg-query dpkg-deb "$CPACK"; do
  command -v "$tool" >/dev/null || fail "$tool not found"
done
[ -f "$BUILD/CPackConfig.cmake" ] || fail "$BUILD/CPackConfig.cmake missing: configure the project first"

# ---- the host before: nothing of agentwall's, or nothing this test could harm --------------
status() { dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null | tr -d ' ' || true; }
before=$(status)
case "$before" in
"" | un | pn) ;;
*)
  fail "an $PKG package is already on this host (dpkg status '$before'): this test installs" \
    "and purges its own. Remove it first (dpkg -P $PKG), or run the test on another machine."
  ;;
esac
for f in /usr/sbin/agentwall /lib/systemd/system/agentwall.service /etc/systemd/system/agentwall.service \
  /etc/agentwall /etc/default/agentwall /etc/logrotate.d/agentwall; do
  if [ -e "$f" ] || [ -L "$f" ]; then
    fail "$f exists and belongs to no package: the test's purge would replace or delete it." \
      "Move it away first."
  fi
done

# An agent running on this host (not in a container) uses /var/lib/agentwall, which the test
# moves aside and the purge deletes.
for pid in $(pgrep -x agentwall || true); do
  if [ "$(readlink /proc/"$pid"/ns/pid)" = "$(readlink /proc/self/ns/pid)" ]; then
    fail "an agentwall process is running on this host ($(tr '\0' ' ' </proc/"$pid"/cmdline))." \
      "It shares /var/lib/agentwall with the package under test: stop it first."
  fi
done

tmp=$(mktemp -d /tmp/agentwall-deb-test.XXXXXX)
installed=0
saved=()
# State and logs of an agent run from a build tree: moved aside, put back at exit.
for d in /var/lib/agentwall /var/log/agentwall; do
  if [ -e "$d" ]; then
    mkdir -p "$tmp/saved$(dirname "$d")"
    mv "$d" "$tmp/saved$d"
    saved+=("$d")
    echo "note: $d moved aside for the test; it is put back at the end"
  fi
done

cleanup() {
  local rc=$?
  if [ "$installed" = 1 ] && [ -n "$(status)" ] && [ "$(status)" != un ] && [ "$(status)" != pn ]; then
    echo "cleanup: purging $PKG"
    dpkg_do -P "$PKG" || rc=1
  fi
  for d in "${saved[@]}"; do
    rm -rf "$d"
    mv "$tmp/saved$d" "$d"
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# dpkg, retried while another dpkg or apt holds the lock (a shared machine installs things).
dpkg_do() {
  local i out
  for i in $(seq 60); do
    if out=$(dpkg "$@" </dev/null 2>&1); then
      printf '%s\n' "$out" | sed 's/^/  dpkg: /'
      return 0
    fi
    if [ "$i" -lt 60 ] && grep -q 'lock' <<<"$out"; then
      sleep 2
      continue
    fi
    printf '%s\n' "$out" | sed 's/^/  dpkg: /' >&2
    return 1
  done
}

# ---- two packages from the same build ------------------------------------------------------
base=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/CPackConfig.cmake")
[ -n "$base" ] || fail "no CPACK_PACKAGE_VERSION in $BUILD/CPackConfig.cmake"
v1=$base
v2=$base+test2
build_deb() { # VERSION DIR
  mkdir -p "$2"
  if ! "$CPACK" -G DEB --config "$BUILD/CPackConfig.cmake" -B "$2" \
    -D CPACK_PACKAGE_VERSION="$1" >"$2/cpack.log" 2>&1; then
    cat "$2/cpack.log" >&2
    fail "cpack failed for version $1"
  fi
  printf "%s\n" "$2"/"${PKG}"_*.deb
}
deb1=$(build_deb "$v1" "$tmp/v1")
deb2=$(build_deb "$v2" "$tmp/v2")
dpkg --compare-versions "$v2" gt "$v1" || fail "$v2 is not higher than $v1"
ok "built $(basename "$deb1") and $(basename "$deb2")"
grep -q 'libc6' <<<"$(dpkg-deb -f "$deb1" Depends)" || fail "Depends was not computed (dpkg-shlibdeps): $(dpkg-deb -f "$deb1" Depends)"
ok "Depends: $(dpkg-deb -f "$deb1" Depends)"

if command -v lintian >/dev/null; then
  echo "lintian $(basename "$deb1"):"
  lintian --tag-display-limit 0 "$deb1" 2>&1 | sed 's/^/  /' || true
fi

# ---- checks ------------------------------------------------------------------------------
expect_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' "$PKG")
  [ "$v" = "$1" ] || fail "installed version is '$v', expected '$1'"
  ok "installed version $1"
}
expect_mode() { # MODE DIR
  [ -d "$2" ] || fail "$2 is missing"
  [ "$(stat -c %a "$2")" = "$1" ] || fail "$2 has mode $(stat -c %a "$2"), expected $1"
}
expect_absent() {
  local f
  for f in "$@"; do
    if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is still there"; fi
  done
}
systemd_runs() { [ -d /run/systemd/system ]; }
# Processes running the installed binary (the same file: agents in containers, or run from a
# build tree, are someone else's).
agent_pids() {
  local pid
  for pid in $(pgrep -x agentwall || true); do
    if [ /proc/"$pid"/exe -ef /usr/sbin/agentwall ]; then echo "$pid"; fi
  done
}
# Where systemd runs, the package starts the service; elsewhere nothing may start the agent.
expect_service() { # active|inactive (under systemd)
  if systemd_runs; then
    local state i
    for i in $(seq 30); do
      state=$(systemctl is-active agentwall.service || true)
      [ "$state" = "$1" ] && break
      sleep 1
    done
    if [ "$state" != "$1" ]; then
      journalctl -u agentwall.service -n 40 --no-pager >&2 || true
      fail "agentwall.service is $state, expected $1 (its journal above)"
    fi
    ok "systemd runs: agentwall.service is $1"
  else
    [ -z "$(agent_pids)" ] || fail "an agentwall process was started: $(agent_pids)"
    ok "systemd is not PID 1 here: no agentwall process was started"
  fi
}

conffiles=(/etc/agentwall/agentwall.yaml /etc/agentwall/policies.d/00-default.yaml
  /etc/default/agentwall /etc/logrotate.d/agentwall)
wants=/etc/systemd/system/multi-user.target.wants/agentwall.service

# ---- install -----------------------------------------------------------------------------
echo "== dpkg -i $(basename "$deb1")"
installed=1
dpkg_do -i "$deb1" || fail "dpkg -i $deb1"
expect_version "$v1"
for f in /usr/sbin/agentwall /lib/systemd/system/agentwall.service "${conffiles[@]}" \
  /usr/share/man/man8/agentwall.8.gz /usr/share/man/man5/agentwall.yaml.5.gz \
  /usr/share/doc/agentwall/copyright /usr/share/doc/agentwall/README.md \
  /usr/share/doc/agentwall/POLICY.md /usr/share/agentwall/policies/default.yaml \
  /usr/share/agentwall/policies/examples/block-secrets.yaml; do
  [ -f "$f" ] || fail "$f is missing"
done
cmp -s /etc/agentwall/agentwall.yaml "$SRC/packaging/agentwall.yaml" || fail "/etc/agentwall/agentwall.yaml is not packaging/agentwall.yaml"
cmp -s /etc/agentwall/policies.d/00-default.yaml "$SRC/policies/default.yaml" || fail "policies.d/00-default.yaml is not policies/default.yaml"
ok "files in place"
listed=$(dpkg-query -W -f='${Conffiles}\n' "$PKG")
for f in "${conffiles[@]}"; do
  grep -q "^ $f " <<<"$listed" || fail "$f is not a conffile; dpkg lists: $listed"
done
ok "conffiles: ${conffiles[*]}"
expect_mode 700 /var/lib/agentwall
expect_mode 750 /var/log/agentwall
expect_mode 755 /etc/agentwall/conf.d
ok "directories: /var/lib/agentwall 0700, /var/log/agentwall 0750, /etc/agentwall/conf.d"

out=$(/usr/sbin/agentwall version) || fail "agentwall version failed"
[ "$out" = "agentwall $base" ] || fail "agentwall version printed '$out'"
ok "$out"
grep -q '^  run ' <<<"$(/usr/sbin/agentwall --help)" || fail "agentwall --help does not list the commands"
grep -q -- '--policy' <<<"$(/usr/sbin/agentwall run --help)" || fail "agentwall run --help does not describe its options"
ok "--help and run --help"
if command -v man >/dev/null && [ -x /usr/bin/mandb ]; then
  [ "$(man -w agentwall)" = /usr/share/man/man8/agentwall.8.gz ] || fail "man -w agentwall: $(man -w agentwall 2>&1)"
  [ "$(man -w 5 agentwall.yaml)" = /usr/share/man/man5/agentwall.yaml.5.gz ] || fail "man -w 5 agentwall.yaml: $(man -w 5 agentwall.yaml 2>&1)"
  ok "man -w finds agentwall(8) and agentwall.yaml(5)"
fi
if command -v groff >/dev/null; then
  for page in /usr/share/man/man8/agentwall.8.gz /usr/share/man/man5/agentwall.yaml.5.gz; do
    warnings=$(zcat "$page" | LC_ALL=C.UTF-8 groff -man -ww -z 2>&1) || fail "groff failed on $page"
    [ -z "$warnings" ] || fail "groff warns on $page: $warnings"
  done
  grep -q '^\.SH SIGNALS' <<<"$(zcat /usr/share/man/man8/agentwall.8.gz)" || fail "agentwall(8) has no SIGNALS"
  ok "man pages render without warnings"
fi
if command -v logrotate >/dev/null; then
  if ! out=$(logrotate -d -s "$tmp/logrotate.state" /etc/logrotate.d/agentwall 2>&1) ||
    grep -qi 'error' <<<"$out"; then
    fail "logrotate -d /etc/logrotate.d/agentwall: $(printf '%s\n' "$out" | grep -i error)"
  fi
  ok "logrotate reads /etc/logrotate.d/agentwall"
fi
if command -v systemd-analyze >/dev/null; then
  "$SRC/tests/system/check_unit.sh" /lib/systemd/system/agentwall.service /usr/sbin/agentwall ||
    fail "the installed unit does not pass check_unit.sh"
  ok "installed unit: systemd-analyze verify clean"
fi
[ -L "$wants" ] || fail "agentwall.service is not enabled ($wants missing)"
ok "agentwall.service enabled"
expect_service active

# The administrator's changes: a conffile edited, a drop-in, state, a log, the unit disabled
# (`systemctl disable` works without a running systemd: it removes the symlink).
systemctl disable agentwall.service 2>&1 | sed 's/^/  systemctl: /'
expect_absent "$wants"
echo "# local change (test_deb.sh)" >>/etc/agentwall/agentwall.yaml
echo "metrics: 127.0.0.1:9464" >/etc/agentwall/conf.d/50-local.yaml
echo state >/var/lib/agentwall/test-state
echo '{}' >/var/log/agentwall/test.json

# ---- upgrade -----------------------------------------------------------------------------
echo "== dpkg -i $(basename "$deb2") (upgrade)"
dpkg_do -i --force-confold "$deb2" || fail "dpkg -i $deb2"
expect_version "$v2"
grep -q '^# local change (test_deb.sh)$' /etc/agentwall/agentwall.yaml || fail "the upgrade lost the edited agentwall.yaml"
[ -f /etc/agentwall/conf.d/50-local.yaml ] || fail "the upgrade lost conf.d/50-local.yaml"
[ -f /var/lib/agentwall/test-state ] || fail "the upgrade lost /var/lib/agentwall/test-state"
expect_mode 700 /var/lib/agentwall
ok "edited conffile, drop-in and state kept"
if [ -e "$wants" ] || [ -L "$wants" ]; then fail "the upgrade enabled agentwall.service again after it was disabled"; fi
ok "the unit stays disabled"
expect_service active

# ---- remove ------------------------------------------------------------------------------
echo "== dpkg -r $PKG"
dpkg_do -r "$PKG" || fail "dpkg -r"
[ "$(status)" = rc ] || fail "dpkg status after remove is '$(status)', expected rc (config-files)"
expect_absent /usr/sbin/agentwall /lib/systemd/system/agentwall.service \
  /usr/share/man/man8/agentwall.8.gz /usr/share/doc/agentwall
ok "binary, unit, man pages and documentation removed"
grep -q '^# local change (test_deb.sh)$' /etc/agentwall/agentwall.yaml || fail "remove lost the edited agentwall.yaml"
for f in "${conffiles[@]}" /etc/agentwall/conf.d/50-local.yaml /var/lib/agentwall/test-state; do
  [ -f "$f" ] || fail "remove deleted $f (configuration and state stay until purge)"
done
ok "configuration and state kept"
expect_service inactive

# ---- purge -------------------------------------------------------------------------------
echo "== dpkg -P $PKG"
dpkg_do -P "$PKG" || fail "dpkg -P"
expect_absent /etc/agentwall /etc/default/agentwall /etc/logrotate.d/agentwall \
  /var/lib/agentwall /var/log/agentwall /run/agentwall "$wants" /etc/systemd/system/agentwall.service \
  /var/lib/systemd/deb-systemd-helper-enabled/agentwall.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/agentwall.service \
  /var/lib/systemd/deb-systemd-helper-masked/agentwall.service
ok "configuration, state, logs and the unit's enablement removed"
if dpkg -s "$PKG" >/dev/null 2>&1; then fail "dpkg -s $PKG still knows the package"; fi
ok "dpkg -s $PKG: $(dpkg -s "$PKG" 2>&1 | sed -n 1p)"
installed=0
echo "PASS: install, upgrade, remove and purge of $PKG"
