#!/usr/bin/env bash
# agentwall benchmark: what capturing TLS plaintext costs the traced process, side by side
# in one run, as ratios against baselines measured in the same run. See README.md here.
#
# Usage (as root: it attaches uprobes):
#   cmake -S . -B build && cmake --build build -j2
#   sudo tests/bench/run.sh
#
# It builds nothing. It runs, on loopback only:
#   1. SSL_write of 1 KiB and 64 KiB (Google Benchmark, ssl_write_bench) under
#        (a) no probe, (b) an empty uprobe on SSL_write (bpftrace),
#        (b') an empty uprobe + uretprobe on SSL_write (bpftrace),
#        (c) `agentwall run` capturing, (d) a bpftrace script printing every byte written,
#        (d') a bpftrace one-liner printing the first 200 bytes of each call;
#      ROUNDS rounds of REPS repetitions each, scenario order reversed every other round.
#   2. Throughput: one `agentwall run` per step while ssl_write_bench writes 16 KiB buffers
#      at a paced rate (RATES, MB/s; 0 = unpaced), reading the agent's drop counters from
#      its final agent.health event and sampling its CPU time and resident memory.
#   3. Detection: detect_bench, the detection engine on 4 KiB messages on one core (p50 and
#      p99 per message, MB/s) against a copy-and-lowercase baseline in the same run; REPS
#      repetitions of MIN_TIME. It needs neither root nor libssl: `ONLY=detect run.sh`
#      runs it alone, as any user.
#   4. Only when ONLY names it (not by default): `go`, go_probe_cost.py, Go's crypto/tls
#      under no probe, empty uprobes and `agentwall run` (a Go client built with Debian's Go
#      making HTTPS calls; GO_ROUNDS=5 GO_CALLS=2000), appended to the report.
# and writes a markdown report to stdout and to tests/bench/results/latest.md (raw data in
# tests/bench/results/latest-raw/).
#
# Environment (all optional):
#   BUILD_DIR      build tree (default: <repo>/build)
#   BENCH_BIN      ssl_write_bench (default: $BUILD_DIR/tests/bench/ssl_write_bench)
#   AGENTWALL_BIN  agentwall (default: $BUILD_DIR/agentwall); if it does not run, (c) and
#                  the throughput part are skipped and the report says so
#   DETECT_BIN     detect_bench (default: $BUILD_DIR/tests/bench/detect_bench); if it is
#                  missing, the detection part is skipped and the report says so
#   REPS=5 ROUNDS=3 MIN_TIME=0.3   Google Benchmark repetitions, rounds, min seconds per run
#   RATES="50 100 200 400 0" STEP_SECONDS=5 LOAD_SIZE=16384   the throughput steps
#   SERVER=        how the server thread discards what it gets (ssl_write_bench --server):
#                  default spin for the benchmarks, raw for the load; ssl to SSL_read it
#   ONLY="a b b2 c d throughput detect"   a subset of the parts to run; add `go` for part 4
#   OUT_DIR        where latest.md goes (default: tests/bench/results)
#   CPUS=0,1       CPUs the writing thread and the server thread are pinned to ("none": not
#                  pinned; a single-CPU machine needs CPUS=0,0); detect_bench runs on the first
#   FORCE=1        run even when other uprobes are already attached to libssl
#   WAIT_QUIET=60  wait up to this many seconds for no other process's uprobes on libssl
#                  and idle CPUs, before the run and before each part
#   RETRIES=2      run a part again, up to this many times, when another process had
#                  uprobes on libssl while it ran (a shared machine: another agent, tests)
#   OTHER_MAX=15   ... or when other processes took more than this % of one core while a
#                  per-call benchmark ran
# The whole run takes about 3.5 minutes with the defaults (the detection part about 15 s).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO/build}
BENCH=${BENCH_BIN:-$BUILD_DIR/tests/bench/ssl_write_bench}
AGENT=${AGENTWALL_BIN:-$BUILD_DIR/agentwall}
DETECT=${DETECT_BIN:-$BUILD_DIR/tests/bench/detect_bench}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-3}
MIN_TIME=${MIN_TIME:-0.3}
RATES=${RATES:-"50 100 200 400 0"}
STEP_SECONDS=${STEP_SECONDS:-5}
LOAD_SIZE=${LOAD_SIZE:-16384}
SERVER=${SERVER:-}
SERVER_ARGS=()
[ -z "$SERVER" ] || SERVER_ARGS=(--server "$SERVER")
CPUS=${CPUS:-0,1}
WAIT_QUIET=${WAIT_QUIET:-60}
RETRIES=${RETRIES:-2}
OTHER_MAX=${OTHER_MAX:-15}
ONLY=${ONLY:-"a b b2 c d dh throughput detect"}
OUT_DIR=${OUT_DIR:-$HERE/results}
BT_STRLEN=200 # bpftrace 0.17's maximum for BPFTRACE_STRLEN, and so for buf()
PYTHON=${PYTHON:-python3}

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() {
  log "ERROR: $*"
  exit 1
}

wants() { [[ " $ONLY " == *" $1 "* ]]; }
# Whether any part that probes libssl runs (root, bpftrace, ssl_write_bench): not for
# ONLY=detect.
CAPTURE=0
for part in a b b2 c d dh throughput; do wants "$part" && CAPTURE=1; done

BPFTOOL=$(command -v bpftool || echo /usr/sbin/bpftool)
LIBSSL=""
if ((CAPTURE)); then
  [ "$(id -u)" -eq 0 ] || fail "run as root (uprobes): sudo $0"
  [ -x "$BENCH" ] || fail "no $BENCH: build first (cmake --build $BUILD_DIR -j2 --target ssl_write_bench)"
  command -v bpftrace >/dev/null || fail "bpftrace is missing: scripts/install-deps.sh --test"
  [ -x "$BPFTOOL" ] || fail "bpftool is missing: scripts/install-deps.sh"
  LIBSSL=$("$BENCH" --print-libssl) || fail "$BENCH does not map libssl dynamically"
  [ -f "$LIBSSL" ] || fail "libssl path '$LIBSSL' does not exist"
fi
command -v "$PYTHON" >/dev/null || fail "python3 is missing"

RAW="$OUT_DIR/latest-raw"
mkdir -p "$OUT_DIR"
rm -rf "$RAW"
mkdir -p "$RAW"
WORK=$(mktemp -d /tmp/agentwall-bench.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)

# ---- background processes: every one is tracked and stopped on exit -------------------
BG_PIDS=()
untrack() { # pid: reaped, so never signalled again (its number may be reused)
  local p keep=()
  for p in "${BG_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
}
stop_pid() { # pid [seconds]: SIGINT, then SIGKILL after the grace period
  local pid=$1 grace=${2:-15} i
  kill -0 "$pid" 2>/dev/null || {
    wait "$pid" 2>/dev/null || true
    return 0
  }
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop on SIGINT within ${grace}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid" 5; done
  if [ "$(probes_of any)" -gt 0 ]; then
    log "WARNING: uprobes are still attached to $LIBSSL (not by a process this script started):"
    "$BPFTOOL" perf list | grep -E 'uprobe|uretprobe' >&2 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Number of uprobes/uretprobes attached by `pid` (or by anyone when pid is "any") that may
# be on the libssl file: bpftool shows the path each was attached through, which may be a
# symlink (/lib/.../libssl.so) or a /proc path (/proc/self/fd/N, /proc/PID/map_files/...)
# that no longer names the file; those count as libssl, as does a path that is gone.
LIBSSL_INODE=""
((CAPTURE)) && LIBSSL_INODE=$(stat -L -c '%d:%i' "$LIBSSL")
probes_of() {
  local n=0 f ino
  if ((!CAPTURE)); then # no libssl probed: nothing to count
    echo 0
    return
  fi
  while read -r f; do
    case $f in
    /proc/*) ino="" ;;
    *) ino=$(stat -L -c '%d:%i' "$f" 2>/dev/null || true) ;;
    esac
    if [ -z "$ino" ] || [ "$ino" = "$LIBSSL_INODE" ]; then n=$((n + 1)); fi
  done < <("$BPFTOOL" perf list 2>/dev/null | awk -v p="$1" '
    ($2 == p || p == "any") && ($7 == "uprobe" || $7 == "uretprobe") { print $9 }')
  echo "$n"
}

# Someone else's uprobes on libssl (another agent, a test) skew what runs meanwhile: the
# part is run again (RETRIES), and noted in the report if it never ran clean.
INTERFERED=""
check_foreign() { # what
  local all own=0
  all=$(probes_of any)
  [ -z "$TOOL_PID" ] || own=$(probes_of "$TOOL_PID")
  if [ "$all" -gt "$own" ]; then
    INTERFERED="$1: $((all - own)) uprobes on libssl from other processes"
    log "WARNING: $INTERFERED"
  fi
}
wait_for_quiet() { # seconds: until no one else has uprobes on libssl and the CPUs are idle
  local deadline=$(($(date +%s) + $1)) said=0
  while [ "$(probes_of any)" -gt 0 ] || [ "$(busy_pct)" -ge 20 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    ((said)) || log "waiting up to ${1}s for a quiet machine (other uprobes on libssl, or busy CPUs)"
    said=1
    sleep 2
  done
  return 0
}
busy_pct() { # % of all CPUs busy over one second
  local a b tot=0 idle i
  read -ra a < <(head -1 /proc/stat)
  sleep 1
  read -ra b < <(head -1 /proc/stat)
  for ((i = 1; i < ${#a[@]}; i++)); do tot=$((tot + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $((tot > 0 ? (tot - idle) * 100 / tot : 0))
}

cpu_ticks() { # utime+stime of a whole process, in clock ticks
  local s rest f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || {
    echo 0
    return
  }
  rest=${s##*) }
  read -ra f <<<"$rest"
  echo $((f[11] + f[12]))
}
status_kib() { # pid field: VmRSS / VmHWM in KiB
  awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }

# ---- the tools under test ------------------------------------------------------------
TOOL_PID=""
start_bpftrace() { # name script expected_probes [stdout-file]
  local name=$1 script=$2 want=$3 out=${4:-/dev/null} i
  # A log buffer large enough for the verifier's log of (d)'s loop: with a smaller one
  # bpftrace 0.17 reports a load failure ("verification log buffer not big enough").
  BPFTRACE_LOG_SIZE=67108864 BPFTRACE_STRLEN=$BT_STRLEN bpftrace "$script" >"$out" 2>"$RAW/$name.bpftrace.stderr" &
  TOOL_PID=$!
  BG_PIDS+=("$TOOL_PID")
  for ((i = 0; i < 300; i++)); do
    kill -0 "$TOOL_PID" 2>/dev/null || fail "bpftrace ($name) exited: $(cat "$RAW/$name.bpftrace.stderr")"
    [ "$(probes_of "$TOOL_PID")" -ge "$want" ] && return 0
    sleep 0.1
  done
  fail "bpftrace ($name) did not attach $want probes within 30s"
}

AGENT_OK=0
AGENT_WHY=""
if [ -x "$AGENT" ]; then
  if "$AGENT" --help >"$RAW/agent-help.txt" 2>&1; then AGENT_OK=1; else
    AGENT_WHY="'$AGENT --help' failed: $(head -c 300 "$RAW/agent-help.txt")"
  fi
else
  AGENT_WHY="no agent binary at $AGENT"
fi

# A broken agent does not end the run: the scenarios without it still count. The first
# failure is kept in AGENT_FAIL for the report and every later agent part is skipped.
AGENT_FAIL=""
agent_failed() { # name message
  AGENT_FAIL="agentwall ($1): $2"
  echo "$AGENT_FAIL" >"$RAW/agent-failure.txt"
  log "ERROR: $AGENT_FAIL"
}

start_agent() { # name: starts `agentwall run`, waits for its ready file; 1 when it fails
  local name=$1 i rc
  local ready="$WORK/$name.ready"
  AGENT_EVENTS="$WORK/$name.events.jsonl"
  rm -f "$ready" "$AGENT_EVENTS"
  "$AGENT" run --ready-file "$ready" --events "$AGENT_EVENTS" >"$RAW/$name.agent.log" 2>&1 &
  TOOL_PID=$!
  BG_PIDS+=("$TOOL_PID")
  for ((i = 0; i < 600; i++)); do
    [ -e "$ready" ] && break
    if ! kill -0 "$TOOL_PID" 2>/dev/null; then
      wait "$TOOL_PID" && rc=0 || rc=$?
      untrack "$TOOL_PID"
      TOOL_PID=""
      agent_failed "$name" "'$AGENT run --ready-file F --events E' exited with $rc before it was ready; last lines of its output: $(grep -v '^[0-9]*: ' "$RAW/$name.agent.log" | tail -n 8)"
      return 1
    fi
    sleep 0.1
  done
  if [ ! -e "$ready" ]; then
    stop_tool
    agent_failed "$name" "wrote no ready file within 60s; last lines of its output: $(tail -n 8 "$RAW/$name.agent.log")"
    return 1
  fi
  # The agent may attach to libssl only once a process maps it: make one, then wait for the
  # probes, so that nothing measured runs before they are there.
  "$BENCH" --rate-mbps 1 --seconds 0.2 --size 1024 "${SERVER_ARGS[@]}" --cpus "$CPUS" >/dev/null
  for ((i = 0; i < 100; i++)); do
    [ "$(probes_of "$TOOL_PID")" -gt 0 ] && break
    sleep 0.1
  done
  AGENT_PROBES=$(probes_of "$TOOL_PID")
  echo "$AGENT_PROBES" >"$RAW/$name.agent.probes"
  [ "$AGENT_PROBES" -gt 0 ] || log "WARNING: agentwall ($name) shows no uprobe on $LIBSSL in 'bpftool perf list'"
  return 0
}

stop_agent() { # name: SIGINT, keeps the agent.health lines of the events file
  local name=$1 rc=0 i died=0
  kill -0 "$TOOL_PID" 2>/dev/null || died=1
  kill -INT "$TOOL_PID" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$TOOL_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$TOOL_PID" 2>/dev/null; then
    log "WARNING: agentwall ($name) still running 30s after SIGINT: SIGKILL"
    kill -KILL "$TOOL_PID" 2>/dev/null || true
  fi
  wait "$TOOL_PID" || rc=$?
  untrack "$TOOL_PID"
  echo "$rc" >"$RAW/$name.agent.rc"
  if ((died)); then
    agent_failed "$name" "exited with $rc while the load ran (before SIGINT); last lines of its output: $(tail -n 8 "$RAW/$name.agent.log")"
  fi
  if [ -f "$AGENT_EVENTS" ]; then
    du -b "$AGENT_EVENTS" | cut -f1 >"$RAW/$name.events.bytes"
    grep -a '"agent.health"' "$AGENT_EVENTS" >"$RAW/$name.health.jsonl" || true
    rm -f "$AGENT_EVENTS" # it can hold gigabytes of captured plaintext
  fi
  TOOL_PID=""
}

stop_tool() {
  [ -n "$TOOL_PID" ] || return 0
  stop_pid "$TOOL_PID" 15
  untrack "$TOOL_PID"
  TOOL_PID=""
}

# ---- part 1: SSL_write per-call cost --------------------------------------------------
cat >"$WORK/b.bt" <<EOF
uprobe:$LIBSSL:SSL_write {}
EOF
cat >"$WORK/b2.bt" <<EOF
uprobe:$LIBSSL:SSL_write {}
uretprobe:$LIBSSL:SSL_write {}
EOF
# What a user would write to see the plaintext: the buffer's address at entry, and at return,
# when the number of bytes written is known, every one of those bytes. buf() reads at most
# BPFTRACE_STRLEN (200) bytes, so the buffer goes out in 200-byte pieces and a last shorter
# one (a variable length inside the loop makes the verifier give up). D_MAX bounds the loop
# for the verifier; it covers the largest write the benchmark makes (64 KiB).
D_MAX=65536
cat >"$WORK/d.bt" <<EOF
uprobe:$LIBSSL:SSL_write { @buf[tid] = arg1; }
uretprobe:$LIBSSL:SSL_write /@buf[tid]/ {
  \$n = (int64)(int32)retval;
  \$p = (int64)@buf[tid];
  \$off = (int64)0;
  while (\$off + $BT_STRLEN <= \$n && \$off < $D_MAX) {
    printf("%r", buf(\$p + \$off, $BT_STRLEN));
    \$off += $BT_STRLEN;
  }
  if (\$off < \$n && \$off < $D_MAX) { printf("%r", buf(\$p + \$off, \$n - \$off)); }
  delete(@buf[tid]);
}
EOF
# (d') the one-liner most users write first: only the first BPFTRACE_STRLEN bytes of a call.
# Not what the issue compares against (it copies less than agentwall does); shown beside.
cat >"$WORK/dh.bt" <<EOF
uprobe:$LIBSSL:SSL_write { @buf[tid] = arg1; }
uretprobe:$LIBSSL:SSL_write /@buf[tid]/ {
  if ((int32)retval > 0) { printf("%r\n", buf(@buf[tid], (int32)retval)); }
  delete(@buf[tid]);
}
EOF
cp "$WORK"/*.bt "$RAW/"

sys_ticks() { # busy (user+nice+system+irq+softirq) and steal clock ticks of all CPUs
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat
}

run_bench() { # scenario round
  local sc=$1 round=$2 t0 t1 c0=0 c1=0 s0 s1 bench_cpu wall tool_cpu other steal
  local out="$RAW/bench.$sc.r$round.json" TIMEFORMAT='%3U %3S'
  check_foreign "bench $sc round $round"
  [ -n "$TOOL_PID" ] && c0=$(cpu_ticks "$TOOL_PID")
  s0=$(sys_ticks)
  t0=$(now)
  { time "$BENCH" "${SERVER_ARGS[@]}" --cpus "$CPUS" --benchmark_repetitions="$REPS" \
    --benchmark_min_time="$MIN_TIME" --benchmark_display_aggregates_only=true \
    --benchmark_out="$out" --benchmark_out_format=json >"$RAW/bench.$sc.r$round.txt" 2>&1; } \
    2>"$WORK/time.txt" || fail "ssl_write_bench failed in scenario $sc: $(tail -5 "$RAW/bench.$sc.r$round.txt")"
  t1=$(now)
  s1=$(sys_ticks)
  [ -n "$TOOL_PID" ] && c1=$(cpu_ticks "$TOOL_PID")
  check_foreign "bench $sc round $round"
  # What everything else on the machine took meanwhile, in % of one core: the CPU time of
  # all CPUs less the benchmark's and the tool's. Another build or test running beside
  # the benchmark shows here, and the part is run again.
  bench_cpu=$(awk '{ print $1 + $2 }' "$WORK/time.txt")
  wall=$(calc "$t1 - $t0")
  tool_cpu=$(calc "($c1 - $c0) / $CLK_TCK")
  other=$(calc "((${s1% *} - ${s0% *}) / $CLK_TCK - $bench_cpu - $tool_cpu) / $wall * 100")
  steal=$(calc "(${s1#* } - ${s0#* }) / $CLK_TCK / $wall * 100")
  if awk "BEGIN { exit !($other > $OTHER_MAX) }"; then
    INTERFERED="bench $sc round $round: other processes took ${other%.*}% of a core"
    log "WARNING: $INTERFERED"
  fi
  echo "{\"scenario\":\"$sc\",\"round\":$round,\"wall_s\":$wall,\"tool_cpu_s\":$tool_cpu,\"bench_cpu_s\":$bench_cpu,\"other_pct\":$other,\"steal_pct\":$steal}" >"$RAW/tool-cpu.$sc.r$round.json"
}

scenario() { # sc round: runs it, again while other processes' uprobes interfered
  local sc=$1 round=$2 attempt
  wants "$sc" || return 0
  for ((attempt = 0; attempt <= RETRIES; attempt++)); do
    wait_for_quiet "$WAIT_QUIET" || true
    INTERFERED=""
    scenario_once "$sc" "$round" || return 0
    [ -n "$INTERFERED" ] || return 0
    ((attempt == RETRIES)) || log "running (${sc}) round $round again"
  done
  echo "$INTERFERED" >>"$RAW/interference.txt"
}

scenario_once() { # sc round; 1 when it cannot run (the agent failed)
  local sc=$1 round=$2
  case $sc in
  a)
    log "round $round: (a) no probe"
    run_bench a "$round"
    ;;
  b)
    log "round $round: (b) empty uprobe"
    start_bpftrace "b.r$round" "$WORK/b.bt" 1 "$RAW/b.r$round.bpftrace.stdout"
    run_bench b "$round"
    stop_tool
    ;;
  b2)
    log "round $round: (b') empty uprobe + uretprobe"
    start_bpftrace "b2.r$round" "$WORK/b2.bt" 2 "$RAW/b2.r$round.bpftrace.stdout"
    run_bench b2 "$round"
    stop_tool
    ;;
  c)
    if [ "$AGENT_OK" -ne 1 ] || [ -n "$AGENT_FAIL" ]; then return 1; fi
    log "round $round: (c) agentwall"
    start_agent "c.r$round" || return 1
    run_bench c "$round"
    stop_agent "c.r$round"
    ;;
  d)
    log "round $round: (d) bpftrace capturing every byte, in $BT_STRLEN-byte pieces"
    start_bpftrace "d.r$round" "$WORK/d.bt" 2 /dev/null
    run_bench d "$round"
    stop_tool
    ;;
  dh)
    log "round $round: (d') bpftrace capturing <= $BT_STRLEN bytes per call"
    start_bpftrace "dh.r$round" "$WORK/dh.bt" 2 /dev/null
    run_bench dh "$round"
    stop_tool
    ;;
  esac
  return 0
}

START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Wait for no other uprobes on libssl and an idle CPU (up to WAIT_QUIET seconds).
deadline=$(($(date +%s) + WAIT_QUIET))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if [ "$(probes_of any)" -eq 0 ] && [ "$(busy_pct)" -lt 20 ]; then break; fi
  log "waiting for a quiet machine (other uprobes on libssl, or busy)..."
  sleep 5
done
BUSY_BEFORE=$(busy_pct)
START=$(date +%s)
((BUSY_BEFORE < 20)) || log "WARNING: the machine is ${BUSY_BEFORE}% busy before the run: numbers will be noisy"
if [ "$(probes_of any)" -gt 0 ]; then
  "$BPFTOOL" perf list | grep -E 'uprobe|uretprobe' >&2 || true
  if [ "${FORCE:-0}" != 1 ]; then
    fail "uprobes are already attached to $LIBSSL (above): they would skew every scenario. Stop them, or FORCE=1."
  fi
  log "WARNING: other uprobes on $LIBSSL are attached (FORCE=1)"
fi
((!CAPTURE)) || [ "$AGENT_OK" -eq 1 ] || log "WARNING: skipping (c) and the throughput part: $AGENT_WHY"

order=(a b b2 c d dh)
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2 == 1)); then seq=("${order[@]}"); else seq=(dh d c b2 b a); fi
  for sc in "${seq[@]}"; do scenario "$sc" "$r"; done
done

# ---- part 2: sustained throughput under agentwall ---------------------------------------
throughput_step() { # rate; 1 when the agent failed
  local rate=$1 name="tput.$1" pid rss_max=0 rss c0 c1 c2 t0 t1 load hwm anon file
  log "throughput: ${rate} MB/s target (0 = unpaced) of ${LOAD_SIZE}-byte writes for ${STEP_SECONDS}s"
  start_agent "$name" || return 1
  pid=$TOOL_PID
  check_foreign "throughput step $rate"
  c0=$(cpu_ticks "$pid")
  t0=$(now)
  "$BENCH" --rate-mbps "$rate" --seconds "$STEP_SECONDS" --size "$LOAD_SIZE" "${SERVER_ARGS[@]}" \
    --cpus "$CPUS" >"$RAW/$name.load.json" 2>"$RAW/$name.load.stderr" &
  load=$!
  BG_PIDS+=("$load")
  while kill -0 "$load" 2>/dev/null; do
    rss=$(status_kib "$pid" VmRSS)
    if ((${rss:-0} > rss_max)); then rss_max=$rss; fi
    sleep 0.2
  done
  local rc=0
  wait "$load" || rc=$?
  untrack "$load"
  [ "$rc" -eq 0 ] || fail "load failed ($rc): $(cat "$RAW/$name.load.stderr")"
  t1=$(now)
  c1=$(cpu_ticks "$pid")
  check_foreign "throughput step $rate"
  # Let the agent drain what is still queued, and count that CPU time too.
  sleep 1
  c2=$(cpu_ticks "$pid")
  rss=$(status_kib "$pid" VmRSS)
  if ((${rss:-0} > rss_max)); then rss_max=$rss; fi
  hwm=$(status_kib "$pid" VmHWM)
  anon=$(status_kib "$pid" RssAnon)
  file=$(status_kib "$pid" RssFile)
  stop_agent "$name"
  [ -z "$AGENT_FAIL" ] || return 1
  cat >"$RAW/$name.agent.json" <<EOF
{"target_mbps":$rate,"load_wall_s":$(calc "$t1 - $t0"),"cpu_s_load":$(calc "($c1 - $c0) / $CLK_TCK"),"cpu_s_with_drain":$(calc "($c2 - $c0) / $CLK_TCK"),"rss_max_kib":$rss_max,"hwm_kib":${hwm:-0},"rss_anon_kib":${anon:-0},"rss_file_kib":${file:-0}}
EOF
  return 0
}

if wants throughput && [ "$AGENT_OK" -eq 1 ]; then
  for rate in $RATES; do
    [ -z "$AGENT_FAIL" ] || break
    for ((attempt = 0; attempt <= RETRIES; attempt++)); do
      wait_for_quiet "$WAIT_QUIET" || true
      INTERFERED=""
      throughput_step "$rate" || break 2
      [ -n "$INTERFERED" ] || break
      ((attempt == RETRIES)) || log "running throughput step $rate again"
    done
    [ -z "$INTERFERED" ] || echo "$INTERFERED" >>"$RAW/interference.txt"
  done
fi

# ---- part 3: the detection engine per message (no probes, no root) ----------------------
detect_once() { # 1 when detect_bench failed
  local t0 t1 s0 s1 wall own other pin=() TIMEFORMAT='%3U %3S'
  # One core, as the figures say; the first of CPUS.
  if [ "$CPUS" != none ] && command -v taskset >/dev/null; then pin=(taskset -c "${CPUS%%,*}"); fi
  s0=$(sys_ticks)
  t0=$(now)
  { time "${pin[@]}" "$DETECT" --benchmark_repetitions="$REPS" --benchmark_min_time="$MIN_TIME" \
    --benchmark_display_aggregates_only=true --benchmark_out="$RAW/detect.json" \
    --benchmark_out_format=json >"$RAW/detect.txt" 2>&1; } 2>"$WORK/detect-time.txt" || return 1
  t1=$(now)
  s1=$(sys_ticks)
  wall=$(calc "$t1 - $t0")
  own=$(awk '{ print $1 + $2 }' "$WORK/detect-time.txt")
  other=$(calc "((${s1% *} - ${s0% *}) / $CLK_TCK - $own) / $wall * 100")
  echo "{\"wall_s\":$wall,\"bench_cpu_s\":$own,\"other_pct\":$other}" >"$RAW/detect-cpu.json"
  if awk "BEGIN { exit !($other > $OTHER_MAX) }"; then
    INTERFERED="detect_bench: other processes took ${other%.*}% of a core"
    log "WARNING: $INTERFERED"
  fi
  return 0
}

if wants detect; then
  if [ ! -x "$DETECT" ]; then
    echo "no detect_bench at $DETECT (build it: cmake --build $BUILD_DIR -j2 --target detect_bench)" \
      >"$RAW/detect-failure.txt"
    log "WARNING: $(cat "$RAW/detect-failure.txt")"
  else
    for ((attempt = 0; attempt <= RETRIES; attempt++)); do
      wait_for_quiet "$WAIT_QUIET" || true
      INTERFERED=""
      log "detection: detect_bench, $REPS repetitions of ${MIN_TIME}s per benchmark"
      if ! detect_once; then
        echo "detect_bench failed: $(tail -n 5 "$RAW/detect.txt")" >"$RAW/detect-failure.txt"
        log "WARNING: $(cat "$RAW/detect-failure.txt")"
        break
      fi
      [ -n "$INTERFERED" ] || break
      ((attempt == RETRIES)) || log "running detect_bench again"
    done
    [ -z "$INTERFERED" ] || echo "$INTERFERED" >>"$RAW/interference.txt"
  fi
fi

# ---- the report ------------------------------------------------------------------------
{
  echo "{"
  echo "\"date\":\"$(date -u +%FT%TZ)\","
  echo "\"elapsed_s\":$(($(date +%s) - START)),"
  echo "\"nproc\":$(nproc),"
  echo "\"busy_before_pct\":$BUSY_BEFORE,\"loadavg_before\":\"$LOAD_BEFORE\",\"loadavg_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "\"kernel\":\"$(uname -r)\","
  echo "\"cpu\":\"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo | tr -d '"')\","
  echo "\"openssl\":\"$(openssl version 2>/dev/null | tr -d '"' || echo unknown)\","
  echo "\"bpftrace\":\"$(bpftrace --version 2>/dev/null | tr -d '"')\","
  echo "\"libssl\":\"$LIBSSL\","
  echo "\"only\":\"$ONLY\",\"detect_bin\":\"$DETECT\",\"capture\":$CAPTURE,"
  echo "\"agent\":\"$AGENT\",\"agent_ok\":$AGENT_OK,\"agent_why\":$(printf '%s' "$AGENT_WHY" | "$PYTHON" -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),"
  echo "\"git\":\"$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none)\","
  echo "\"reps\":$REPS,\"rounds\":$ROUNDS,\"min_time\":$MIN_TIME,\"server\":\"${SERVER:-spin (benchmarks), raw (load)}\",\"cpus\":\"$CPUS\",\"other_max\":$OTHER_MAX,"
  echo "\"bt_strlen\":$BT_STRLEN,\"load_size\":$LOAD_SIZE,\"step_seconds\":$STEP_SECONDS"
  echo "}"
} >"$RAW/meta.json"

"$PYTHON" "$HERE/report.py" "$RAW" >"$OUT_DIR/latest.md"
if wants go; then # part 4, opt-in: it reports itself, appended as it printed it
  log "Go crypto/tls: go_probe_cost.py, ${GO_ROUNDS:-5} rounds of ${GO_CALLS:-2000} calls"
  if AGENTWALL_BIN=$AGENT UPROBE_FLOOR=${UPROBE_FLOOR:-$BUILD_DIR/tests/bench/uprobe_floor} \
    "$PYTHON" "$HERE/go_probe_cost.py" --rounds "${GO_ROUNDS:-5}" --calls "${GO_CALLS:-2000}" \
    >"$RAW/go.txt" 2>&1; then
    { printf '\n## Go crypto/tls per HTTPS call (go_probe_cost.py)\n\n'; sed -n '/^Per HTTPS call/,$p' "$RAW/go.txt"; } >>"$OUT_DIR/latest.md"
  else
    printf '\n**Go crypto/tls part failed:** %s\n' "$(tail -n 3 "$RAW/go.txt")" >>"$OUT_DIR/latest.md"
  fi
fi
cat "$OUT_DIR/latest.md"
log "report: $OUT_DIR/latest.md (raw data: $RAW), $(($(date +%s) - START))s"
