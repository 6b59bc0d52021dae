#!/usr/bin/env python3
"""What the probes on BoringSSL located by signature cost per call, against the floor of an
empty uprobe at the same places.

Run as root: python3 tests/bench/boringssl_probe_cost.py [RUNS] [ROUNDS] (defaults 4 and 3),
with AGENTWALL_BIN (default build/agentwall) and UPROBE_FLOOR (default
build/tests/bench/uprobe_floor). Needs the test clients (scripts/install-deps.sh --test):
Claude Code's native binary from npm, and node for the provider stand-in.

Claude Code (Bun, BoringSSL linked in and stripped) makes RUNS `claude -p` calls with a
~100 KB prompt to the stand-in on 127.0.0.1 per round, once under `uprobe_floor` (an empty
BPF program as uprobe and uretprobe on the located SSL_write and SSL_read) and once under
`agentwall run` (its ssl_write_enter / ssl_read_enter and the shared ssl_call_exit there),
alternated for ROUNDS rounds, with kernel.bpf_stats_enabled=1. The kernel counts each
program's runs and run time; the figures are ns per call of entry + return program. The
uprobe's trap itself (the breakpoint, the return trampoline) is paid alike in both cases and
is not in these figures: tests/bench/run.sh measures it on libssl ((b) and (b') against (a)).
The agent's programs are also hit by other processes' libssl calls while it runs (the same
programs, the same code path); the empty ones only by claude.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import aw  # noqa: E402
import llm  # noqa: E402

AGENT = os.environ.get("AGENTWALL_BIN", os.path.join(REPO, "build", "agentwall"))
FLOOR = os.environ.get("UPROBE_FLOOR", os.path.join(REPO, "build", "tests", "bench",
                                                    "uprobe_floor"))
CLAUDE = os.path.join(llm.CLIENTS_DIR, "node_modules", "@anthropic-ai",
                      "claude-code-linux-x64", "claude")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
PROGS = ("ssl_write_enter", "ssl_read_enter", "ssl_call_exit")


def claude_runs(standin: llm.StandIn, pki: aw.TestPKI, work: str) -> None:
    dead = "http://127.0.0.1:9"
    for _ in range(RUNS):
        home = tempfile.mkdtemp(dir=work)
        env = aw.client_env(HOME=home, ANTHROPIC_BASE_URL=standin.base_url,
                            ANTHROPIC_API_KEY="sk-ant-bench-" + uuid.uuid4().hex,
                            NODE_EXTRA_CA_CERTS=pki.ca_cert, DISABLE_AUTOUPDATER="1",
                            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_TELEMETRY="1",
                            DISABLE_ERROR_REPORTING="1", HTTPS_PROXY=dead, HTTP_PROXY=dead,
                            NO_PROXY="127.0.0.1")
        prompt = "Summarise: " + aw.random_text(100_000, newline_every=80).decode()
        subprocess.run([CLAUDE, "-p", prompt[:100_000]], env=env, check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


def prog_stats(owner_pid: int) -> dict:
    out = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], check=True,
                                    capture_output=True, text=True).stdout)
    stats = {}
    for p in out:
        if p.get("name") not in PROGS:
            continue
        pids = [x.get("pid") for x in p.get("pids") or []]
        if pids and owner_pid not in pids:
            continue
        stats[p["name"]] = (p.get("run_cnt", 0), p.get("run_time_ns", 0))
    return stats


def with_floor(standin, pki, work) -> dict:
    p = subprocess.Popen([FLOOR, CLAUDE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        ready = json.loads(p.stdout.readline())
        claude_runs(standin, pki, work)
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    r = json.loads(p.stdout.readline())
    r["locate_ms"] = ready["locate_ms"]
    return {"enter": r["enter_ns"] / max(1, r["enter_cnt"]),
            "exit": r["exit_ns"] / max(1, r["exit_cnt"]), "calls": r["enter_cnt"],
            "locate_ms": r["locate_ms"]}


def with_agent(standin, pki, work) -> dict:
    d = tempfile.mkdtemp(dir=work)
    ready = os.path.join(d, "ready")
    err = open(os.path.join(d, "agent.err"), "wb")
    a = subprocess.Popen([AGENT, "run", "--no-config", "--no-policy", "--ready-file", ready,
                          "--events", os.path.join(d, "events.jsonl"), "--control", "none",
                          "--state-dir", os.path.join(d, "state"), "--health-interval", "0"],
                         stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(ready):
            if a.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("agent did not start:\n" + open(err.name).read())
            time.sleep(0.05)
        # The first exec of claude makes the agent locate and attach (not measured).
        subprocess.run([CLAUDE, "--version"], capture_output=True, timeout=60,
                       env=aw.client_env(HOME=d, DISABLE_AUTOUPDATER="1"))
        deadline = time.monotonic() + 30
        while "located by signature" not in open(err.name).read():
            if time.monotonic() > deadline:
                raise SystemExit("the agent did not attach to claude:\n" + open(err.name).read())
            time.sleep(0.05)
        before = prog_stats(a.pid)
        claude_runs(standin, pki, work)
        after = prog_stats(a.pid)
    finally:
        a.send_signal(2)
        try:
            a.wait(timeout=30)
        except subprocess.TimeoutExpired:
            a.kill()
            a.wait()
        err.close()
    per = {}
    for name in PROGS:
        cnt = after[name][0] - before[name][0]
        per[name] = ((after[name][1] - before[name][1]) / cnt if cnt else 0.0, cnt)
    return per


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("boringssl_probe_cost.py loads BPF programs: run it as root")
    work = tempfile.mkdtemp(prefix="aw-bssl-bench-")
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    pki = aw.TestPKI()
    standin = llm.StandIn(pki).start()
    try:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        floors, agents = [], []
        for i in range(ROUNDS):
            order = (with_floor, with_agent) if i % 2 == 0 else (with_agent, with_floor)
            for fn in order:
                r = fn(standin, pki, work)
                (floors if fn is with_floor else agents).append(r)
                print(f"round {i} {fn.__name__}: {json.dumps(r)}", flush=True)
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
        standin.stop()
        subprocess.run(["rm", "-rf", work])

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]
    floor = med([f["enter"] + f["exit"] for f in floors])
    write = med([a["ssl_write_enter"][0] + a["ssl_call_exit"][0] for a in agents])
    read = med([a["ssl_read_enter"][0] + a["ssl_call_exit"][0] for a in agents])
    calls = med([f["calls"] for f in floors])
    print(f"BPF run time per call, entry + return program, median of {ROUNDS} rounds "
          f"({calls} SSL_write/SSL_read calls by claude a round under the floor probes):")
    print(f"  floor (empty uprobe + uretprobe at the located addresses): {floor:.0f} ns")
    print(f"  agentwall SSL_write: {write:.0f} ns ({write - floor:+.0f} ns over the floor)")
    print(f"  agentwall SSL_read:  {read:.0f} ns ({read - floor:+.0f} ns over the floor)")
    print(f"  locating SSL_write/SSL_read in claude (uprobe_floor, page cache warm): "
          f"{med([f['locate_ms'] for f in floors]):.0f} ms")


if __name__ == "__main__":
    main()
