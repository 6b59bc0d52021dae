#!/usr/bin/env bash
# agentwall.service under a real systemd: boots the host's own /usr as a volatile container
# (systemd-nspawn --directory=/ --volatile=yes --boot: the root is an empty tmpfs, /usr is the
# host's, read-only, nothing on the host is written) with the real unit file and the given
# binary as /usr/sbin/agentwall, then checks, with the unit's own sandboxing in force:
#   start     `systemctl start` returns once READY=1 was sent, the unit is active (running)
#             and the agent said "ready" before systemd said "Started";
#   status    `systemctl status` shows the agent's STATUS= line;
#   hardening the running agent has the unit's capability bounding set, no_new_privs, a
#             seccomp filter, its own mount namespace with /etc read-only (ProtectSystem=strict)
#             and a private /tmp; `systemd-analyze security` on the live unit is at most MAX;
#   capture   an OpenAI-style call made with curl to an HTTPS stand-in on the container's
#             loopback becomes an llm.exchange event in the journal (events go to stdout);
#   reload    `systemctl reload` (ExecReload= kill -HUP) keeps the same main process and, when
#             the binary has SIGHUP reload, logs an agent.reload event;
#   watchdog  WATCHDOG=1 pings arrive (WatchdogSec from the unit, shortened by a drop-in in the
#             container's /run), and a stopped agent is killed by the watchdog and restarted;
#   stop      `systemctl stop` ends it cleanly (exit status 0, result success).
#
#   tests/system/test_systemd.sh AGENTWALL_BIN [UNIT]
#
# Needs root, systemd-nspawn (Debian package systemd-container), nsenter and unshare
# and setpriv (util-linux), dbus, openssl, curl, python3 and capsh (libcap2-bin). The host's PID 1 need not
# be systemd: the container is not registered with machined and runs in a private mount
# namespace (where /run gets a tmpfs if the host's /run is not one, as nspawn wants).
# Takes about 40 s. Every process, mount and file it makes is gone when it exits, also on
# failure (container halted, then killed if it does not halt).
set -euo pipefail

BIN=${1:?usage: test_systemd.sh AGENTWALL_BIN [UNIT]}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UNIT=${2:-$HERE/../../systemd/agentwall.service}
MAX=${MAX:-3.0}
PORT=18443
MACHINE=agentwall-test-$$
export SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 LC_ALL=C.UTF-8

[ "$(id -u)" -eq 0 ] || { echo "SKIP: test_systemd.sh needs root" >&2; exit 77; }
for tool in systemd-nspawn nsenter unshare setpriv openssl curl python3 capsh; do
  command -v "$tool" >/dev/null || {
    echo "FAIL: $tool not found (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "FAIL: $BIN is not an executable" >&2; exit 1; }
[ -f "$UNIT" ] || { echo "FAIL: no unit file $UNIT" >&2; exit 1; }
BIN=$(readlink -f "$BIN")
UNIT=$(readlink -f "$UNIT")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/agentwall-systemd.XXXXXX")
NSPAWN_PID=
LEADER=
passed=0

ct() { nsenter --target "$LEADER" --all -- "$@"; }
pass() { passed=$((passed + 1)); echo "ok - $*"; }
note() { echo "note: $*"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    kill -TERM "$NSPAWN_PID" 2>/dev/null || true  # nspawn asks the container's systemd to halt
    for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      echo "container did not halt in 20 s; killing it" >&2
      if [ -n "$LEADER" ]; then kill -KILL "$LEADER" 2>/dev/null || true; fi
      kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
    wait "$NSPAWN_PID" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "FAIL: $*" >&2
  if [ -n "$LEADER" ] && kill -0 "$LEADER" 2>/dev/null; then
    echo "--- systemctl status agentwall" >&2
    ct systemctl status --no-pager --lines=0 agentwall >&2 || true
    echo "--- journal (agentwall.service, last 30 lines)" >&2
    ct journalctl --no-pager -u agentwall -o short-monotonic -n 30 | cut -c1-400 >&2 || true
  else
    echo "--- container console (last 30 lines)" >&2
    tail -n 30 "$tmp/console.log" >&2 || true
  fi
  exit 1
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds, polling twice a second.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

prop() { ct systemctl show --value -p "$1" agentwall; }
journal() { ct journalctl --no-pager -u agentwall -o cat; }
# Events: on stdout (the journal) for a binary that defaults to that, else in LogsDirectory=
# (/var/log/agentwall/events.json, the default once the agent reads its configuration files).
events() { journal; ct sh -c 'cat /var/log/agentwall/*.json 2>/dev/null' || true; }
# No `... | grep -q` on journalctl under pipefail: grep quitting early would fail the pipe.
journal_has() { local j; j=$(journal); grep -q -e "$1" <<<"$j"; }

# --- the container's files: only bind-mounted or overlaid read-only, never copied into the host
mkdir -p "$tmp/sbin" "$tmp/share"
cp "$BIN" "$tmp/sbin/agentwall"
# Nothing is enabled at first boot: only what systemd itself needs, plus what the test starts.
printf 'disable *\n' >"$tmp/share/00-agentwall-test.preset"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -keyout "$tmp/share/key.pem" -out "$tmp/share/cert.pem" 2>/dev/null
cat >"$tmp/share/llm.py" <<'EOF'
# An OpenAI-style chat completions endpoint over HTTPS that echoes the last message.
import http.server, json, ssl, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        text = body["messages"][-1]["content"]
        out = json.dumps({
            "id": "chatcmpl-agentwall-test", "object": "chat.completion", "created": 0,
            "model": body.get("model", "gpt-4o-mini"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "echo: " + text}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
EOF

# --- boot. unshare runs nspawn in a private mount namespace (its mounts vanish with it);
# nspawn refuses to clean up under a /run that is not a tmpfs, so it gets one there.
# --private-network: the container has only its own loopback. --capability: nspawn's default
# set lacks CAP_BPF and CAP_PERFMON. --system-call-filter: nspawn's own seccomp filter must let
# the unit's SystemCallFilter= decide.
# setpriv --pdeathsig: should this script be killed outright (a test timeout's SIGKILL), nspawn
# gets SIGTERM and halts the container all the same.
# shellcheck disable=SC2016
setpriv --pdeathsig SIGTERM -- unshare --mount --propagation private -- /bin/sh -c '
  [ "$(stat -f -c %T /run)" = tmpfs ] || mount -t tmpfs -o mode=0755 tmpfs /run
  exec "$@"' sh \
  systemd-nspawn --quiet --directory=/ --volatile=yes --boot --register=no --keep-unit \
  --machine="$MACHINE" --console=passive --private-network \
  --capability=CAP_BPF,CAP_PERFMON,CAP_SYS_ADMIN,CAP_SYS_PTRACE,CAP_DAC_READ_SEARCH,CAP_KILL \
  --system-call-filter="bpf perf_event_open ptrace process_vm_readv process_vm_writev pidfd_open pidfd_getfd" \
  --overlay-ro="/usr/sbin:$tmp/sbin:/usr/sbin" \
  --bind-ro="$UNIT:/etc/systemd/system/agentwall.service" \
  --bind-ro="$tmp/share/00-agentwall-test.preset:/etc/systemd/system-preset/00-agentwall-test.preset" \
  --bind-ro="$tmp/share:/agentwall-test" \
  -- systemd.firstboot=off systemd.unit=multi-user.target \
  >"$tmp/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
started=$SECONDS

find_leader() {
  kill -0 "$NSPAWN_PID" 2>/dev/null || fail "systemd-nspawn exited: $(tail -n 5 "$tmp/console.log")"
  LEADER=$(pgrep -P "$NSPAWN_PID" | sed -n 1p) && [ -n "$LEADER" ] &&
    [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" = systemd ]
}
wait_for 30 find_leader || fail "no systemd in the container after 30 s"
booted() { case "$(ct systemctl is-system-running 2>/dev/null)" in running|degraded) ;; *) false ;; esac; }
wait_for 60 booted || fail "the container's systemd is not running after 60 s: \
$(ct systemctl is-system-running 2>&1; ct systemctl --failed --no-pager --plain 2>&1)"
[ "$(ct systemctl is-system-running 2>/dev/null)" = running ] ||
  note "the container is degraded: $(ct systemctl --failed --no-legend --plain 2>&1 | tr '\n' ' ')"
pass "systemd $(ct systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p') booted as PID 1 in the container ($((SECONDS - started)) s)"
[ "$(prop UnitFileState)" = disabled ] || fail "agentwall.service should not be enabled at boot"
[ "$(prop Type)" = notify ] || fail "agentwall.service is not Type=notify"

# --- start: READY before active
t0=$SECONDS
ct systemctl start agentwall || fail "systemctl start agentwall failed"
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] ||
  fail "after start: $(prop ActiveState)/$(prop SubState), want active/running"
log=$(ct journalctl --no-pager -u agentwall -o cat)
ready_line=$(grep -n -m1 -E '^agentwall: info: ready: ' <<<"$log" | cut -d: -f1 || true)
started_line=$(grep -n -m1 -E '^Started agentwall\.service' <<<"$log" | cut -d: -f1 || true)
[ -n "$ready_line" ] || fail "the agent never logged 'ready:'"
[ -n "$started_line" ] || fail "systemd never logged 'Started agentwall.service'"
[ "$ready_line" -lt "$started_line" ] || fail "systemd said Started before the agent was ready"
pass "systemctl start returned after READY=1 ($((SECONDS - t0)) s): active (running), 'ready' logged before 'Started'"
MAINPID=$(prop MainPID)

# --- status
has_status() { [ -n "$(prop StatusText)" ]; }
wait_for 5 has_status || fail "no STATUS= text"
status=$(ct systemctl status --no-pager --lines=0 agentwall)
grep -q -E '^ +Status: ".*targets' <<<"$status" || fail "systemctl status shows no Status: line: $status"
pass "systemctl status: $(grep -E '^ +Status:' <<<"$status" | sed 's/^ *//')"

# --- the unit's sandbox is in force on the running agent
st=$(ct cat "/proc/$MAINPID/status")
bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' <<<"$st")
have=$(capsh --decode="$bnd" | sed 's/.*=//' | tr ',' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
want=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr '[:upper:]' '[:lower:]' | tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')
[ "$have" = "$want" ] || fail "capability bounding set is '$have', the unit says '$want'"
grep -q -E '^NoNewPrivs:[[:space:]]*1$' <<<"$st" || fail "no_new_privs is not set"
grep -q -E '^Seccomp:[[:space:]]*2$' <<<"$st" || fail "no seccomp filter on the agent"
[ "$(ct readlink "/proc/$MAINPID/ns/mnt")" != "$(ct readlink /proc/1/ns/mnt)" ] ||
  fail "the agent runs in systemd's mount namespace (PrivateTmp=/ProtectSystem= not applied)"
etc_opts=$(ct nsenter --target "$MAINPID" --mount -- findmnt -n -o OPTIONS --target /etc)
[[ ",$etc_opts," == *,ro,* ]] || fail "/etc is writable for the agent ($etc_opts): ProtectSystem=strict not applied"
ct touch /tmp/agentwall-test-host-tmp
! ct nsenter --target "$MAINPID" --mount -- test -e /tmp/agentwall-test-host-tmp ||
  fail "the agent sees the container's /tmp: PrivateTmp= not applied"
pass "sandbox in force: bounding set = unit's ($want), no_new_privs, seccomp, own mount namespace, /etc read-only, private /tmp"
sec=$(ct systemd-analyze security --no-pager agentwall 2>&1) || fail "systemd-analyze security agentwall failed: $sec"
score=$(sed -n 's/.*Overall exposure level for agentwall.service: \([0-9.]*\).*/\1/p' <<<"$sec")
[ -n "$score" ] || fail "no exposure level in: $sec"
awk -v s="$score" -v m="$MAX" 'BEGIN { exit !(s <= m) }' || fail "live exposure level $score > $MAX"
pass "systemd-analyze security on the live unit: exposure $score (at most $MAX)"

# --- capture: curl -> HTTPS stand-in on the container's loopback, seen as an llm.exchange
ct systemd-run --quiet --unit=agentwall-test-llm /usr/bin/python3 /agentwall-test/llm.py \
  "$PORT" /agentwall-test/cert.pem /agentwall-test/key.pem || fail "could not start the stand-in"
listening() { ct curl -sk -o /dev/null --max-time 2 "https://127.0.0.1:$PORT/"; }
wait_for 15 listening || fail "the HTTPS stand-in does not answer on 127.0.0.1:$PORT"
marker="agentwall-systemd-test-$$-$RANDOM"
reply=$(ct curl -sk --max-time 10 -H 'Content-Type: application/json' \
  -d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"$marker\"}]}" \
  "https://127.0.0.1:$PORT/v1/chat/completions") || fail "curl to the stand-in failed"
grep -q "echo: $marker" <<<"$reply" || fail "unexpected reply from the stand-in: $reply"
exchange() { local j; j=$(events); grep '"type":"llm.exchange"' <<<"$j" | grep -F "$marker" | grep '"comm":"curl"' | sed -n 1p | grep .; }
captured() { exchange >/dev/null; }
wait_for 15 captured || fail "no llm.exchange event from curl with $marker in the journal or /var/log/agentwall"
event=$(exchange)
grep -q '"status":200' <<<"$event" || fail "the captured exchange has no status 200: ${event:0:600}"
grep -q -F "\"output_text\":\"echo: $marker\"" <<<"$event" ||
  fail "the captured exchange lacks the response: ${event:0:600}"
pass "captured inside the hardened unit: curl's call to https://127.0.0.1:$PORT/v1/chat/completions is an llm.exchange event"

# --- reload: ExecReload= sends SIGHUP
ct systemctl reload agentwall || fail "systemctl reload agentwall failed"
wait_for 5 journal_has '^Reloaded agentwall\.service' || fail "systemd did not log 'Reloaded agentwall.service'"
if grep -aq 'agent.reload' "$BIN"; then
  events_have() { local j; j=$(events); grep -q -e "$1" <<<"$j"; }
  wait_for 10 events_have '"type":"agent.reload"' || fail "no agent.reload event after SIGHUP"
  [ "$(prop ActiveState)/$(prop SubState)" = active/running ] ||
    fail "after reload: $(prop ActiveState)/$(prop SubState), want active/running"
  [ "$(prop MainPID)" = "$MAINPID" ] || fail "reload replaced the main process ($MAINPID -> $(prop MainPID))"
  pass "systemctl reload: SIGHUP, agent.reload event, same main process $MAINPID, still running"
else
  # A binary from before SIGHUP reload: SIGHUP ends it (exit 0, so Restart=on-failure does
  # not restart it). Say so, and start it again for the checks that follow.
  gone() { [ "$(prop ActiveState)" != active ]; }
  wait_for 10 gone || true
  note "this binary has no SIGHUP reload: after systemctl reload the unit is $(prop ActiveState)/$(prop SubState), result $(prop Result)"
  if [ "$(prop ActiveState)" != active ]; then
    ct systemctl start agentwall || fail "systemctl start agentwall (after reload) failed"
  fi
  pass "systemctl reload: systemd ran ExecReload (kill -HUP); agent.reload not checked (binary without it)"
fi

# --- watchdog: the unit's WatchdogSec=, pings, and a hung agent killed and restarted
case "$(prop WatchdogUSec)" in 0 | infinity) false ;; esac ||
  fail "the unit has no watchdog (WatchdogUSec=$(prop WatchdogUSec))"
unit_watchdog=$(prop WatchdogUSec)
ct mkdir -p /run/systemd/system/agentwall.service.d
printf '[Service]\nWatchdogSec=3\n' |
  ct tee /run/systemd/system/agentwall.service.d/50-test-watchdog.conf >/dev/null
ct systemctl daemon-reload
ct systemctl restart agentwall || fail "restart with WatchdogSec=3 failed"
MAINPID=$(prop MainPID)
w1=$(prop WatchdogTimestampMonotonic)
pinged() { [ "$(prop WatchdogTimestampMonotonic)" != "$w1" ]; }
wait_for 5 pinged || fail "no WATCHDOG=1 ping within 5 s (WatchdogSec=3)"
w1=$(prop WatchdogTimestampMonotonic)
wait_for 5 pinged || fail "no second WATCHDOG=1 ping within 5 s (WatchdogSec=3)"
restarts=$(prop NRestarts)
ct kill -STOP "$MAINPID"
wait_for 10 journal_has 'agentwall.service: Watchdog timeout' ||
  fail "systemd saw no watchdog timeout with the agent stopped"
# The watchdog's SIGABRT is delivered once the stopped process runs again.
ct kill -CONT "$MAINPID" 2>/dev/null || true
restarted() { [ "$(prop NRestarts)" -gt "$restarts" ] && [ "$(prop SubState)" = running ]; }
wait_for 40 restarted || fail "the agent was not restarted after the watchdog timeout"
wait_for 5 journal_has "Failed with result 'watchdog'" || fail "no \"Failed with result 'watchdog'\" in the journal"
ct rm -f /run/systemd/system/agentwall.service.d/50-test-watchdog.conf
ct systemctl daemon-reload
pass "watchdog: unit WatchdogSec=$unit_watchdog; pings arrive (drop-in WatchdogSec=3); a stopped agent was killed by the watchdog and restarted (main process now $(prop MainPID))"

# --- stop
t0=$SECONDS
ct systemctl stop agentwall || fail "systemctl stop agentwall failed"
[ "$(prop ActiveState)" = inactive ] || fail "after stop: $(prop ActiveState), want inactive"
# The unit is garbage-collected once inactive (its Result= and ExecMainStatus= reset), so the
# journal tells how it ended: systemd says "Main process exited" only for a non-zero status or a
# signal, and "Deactivated successfully" only for a clean end.
stop_log() { journal | awk '/^Stopping agentwall\.service/ { b = "" } !/^\{/ { b = b $0 "\n" } END { printf "%s", b }'; }
deactivated() { local l; l=$(stop_log); grep -q 'agentwall.service: Deactivated successfully' <<<"$l"; }
wait_for 5 deactivated || true
stop_log=$(stop_log)
grep -q 'agentwall.service: Deactivated successfully' <<<"$stop_log" ||
  fail "the agent did not end cleanly on SIGTERM: $stop_log"
! grep -q -e 'Main process exited' -e 'timed out' -e 'Killing process' <<<"$stop_log" ||
  fail "the agent did not exit 0 on SIGTERM within TimeoutStopSec: $stop_log"
! ct pgrep -f '^/usr/sbin/agentwall' >/dev/null || fail "an agentwall process is left after stop"
pass "systemctl stop: clean in $((SECONDS - t0)) s (exit status 0: Deactivated successfully; no agentwall process left)"

echo "$passed passed, 0 failed ($((SECONDS - started)) s)"
