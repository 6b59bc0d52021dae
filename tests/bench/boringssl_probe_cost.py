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
import uuid

from probe_cost import (REPO, Floor, bpf_stats_enabled, located_program_costs, median,
                        require_root)

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import aw  # noqa: E402
import llm  # noqa: E402

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


def with_floor(standin, pki, work) -> dict:
    with Floor(CLAUDE) as f:
        claude_runs(standin, pki, work)
    r = f.result
    return {"enter": r["enter_ns"] / max(1, r["enter_cnt"]),
            "exit": r["exit_ns"] / max(1, r["exit_cnt"]), "calls": r["enter_cnt"],
            "locate_ms": f.ready["locate_ms"]}


def with_agent(standin, pki, work) -> dict:
    # The first exec of claude makes the agent locate and attach (not measured).
    return located_program_costs(work, [CLAUDE, "--version"],
                                 aw.client_env(HOME=work, DISABLE_AUTOUPDATER="1"), PROGS,
                                 lambda: claude_runs(standin, pki, work))


def main() -> None:
    require_root("boringssl_probe_cost.py")
    work = tempfile.mkdtemp(prefix="aw-bssl-bench-")
    pki = aw.TestPKI()
    standin = llm.StandIn(pki).start()
    try:
        with bpf_stats_enabled():
            floors, agents = [], []
            for i in range(ROUNDS):
                order = (with_floor, with_agent) if i % 2 == 0 else (with_agent, with_floor)
                for fn in order:
                    r = fn(standin, pki, work)
                    (floors if fn is with_floor else agents).append(r)
                    print(f"round {i} {fn.__name__}: {json.dumps(r)}", flush=True)
    finally:
        standin.stop()
        subprocess.run(["rm", "-rf", work])

    floor = median([f["enter"] + f["exit"] for f in floors])
    write = median([a["ssl_write_enter"][0] + a["ssl_call_exit"][0] for a in agents])
    read = median([a["ssl_read_enter"][0] + a["ssl_call_exit"][0] for a in agents])
    calls = median([f["calls"] for f in floors])
    print(f"BPF run time per call, entry + return program, median of {ROUNDS} rounds "
          f"({calls} SSL_write/SSL_read calls by claude a round under the floor probes):")
    print(f"  floor (empty uprobe + uretprobe at the located addresses): {floor:.0f} ns")
    print(f"  agentwall SSL_write: {write:.0f} ns ({write - floor:+.0f} ns over the floor)")
    print(f"  agentwall SSL_read:  {read:.0f} ns ({read - floor:+.0f} ns over the floor)")
    print(f"  locating SSL_write/SSL_read in claude (uprobe_floor, page cache warm): "
          f"{median([f['locate_ms'] for f in floors]):.0f} ms")


if __name__ == "__main__":
    main()
