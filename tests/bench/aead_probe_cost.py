#!/usr/bin/env python3
"""What the probes on rustls's aws-lc AEAD (located by signature in Codex CLI's stripped
binary) cost per TLS record, against the floor of an empty uprobe at the same places.

Run as root: python3 tests/bench/aead_probe_cost.py [RUNS] [ROUNDS] [LOOP] (defaults 2, 3 and
20000), with
AGENTWALL_BIN (default build/agentwall) and UPROBE_FLOOR (default
build/tests/bench/uprobe_floor). Needs the test clients (scripts/install-deps.sh --test):
Codex CLI's native binary from npm, and node for the provider stand-in.

Codex makes RUNS `codex exec` calls to the stand-in (in a network namespace with only
loopback, as integration.test_codex) per round, once under `uprobe_floor --aead` (an empty BPF
program as uprobe at EVP_AEAD_CTX_seal, as uprobe and uretprobe at EVP_AEAD_CTX_open) and once
under `agentwall run` (aead_seal_enter, aead_open_enter, aead_open_exit there), alternated for
ROUNDS rounds, with kernel.bpf_stats_enabled=1. The kernel counts each program's runs and run
time; the figures are ns per record. The uprobe's trap itself is paid alike in both cases and
is not in these figures (tests/bench/run.sh measures it on libssl). Also reported: the agent's
tls_sys_enter per system call of the host while an AEAD process lives (it then also follows
that process's reads, writes and closes, to tie records to sockets); the floor has no such
program, so that figure is against its cost before this (run.sh's throughput part runs it
without AEAD processes).
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
from test_codex import CODEX_JS, native_binary  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
LOOP = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
SIZES = (100, 16385)  # plaintext + the content type byte
PROGS = ("aead_seal_enter", "aead_open_enter", "aead_open_exit", "tls_sys_enter")
NATIVE = native_binary()


def codex_runs(standin: llm.StandIn, pki: aw.TestPKI, work: str) -> None:
    for _ in range(RUNS):
        home = tempfile.mkdtemp(dir=work)
        codex_home = os.path.join(home, ".codex")
        os.makedirs(codex_home)
        with open(os.path.join(codex_home, "config.toml"), "w") as f:
            f.write('model = "gpt-4o-mini"\nmodel_provider = "standin"\n\n'
                    '[model_providers.standin]\nname = "stand-in"\n'
                    f'base_url = "{standin.base_url}/v1"\nenv_key = "STANDIN_API_KEY"\n'
                    'wire_api = "responses"\n')
        env = aw.client_env(HOME=home, CODEX_HOME=codex_home,
                            STANDIN_API_KEY="sk-bench-" + uuid.uuid4().hex,
                            SSL_CERT_FILE=pki.ca_cert, NO_COLOR="1", TERM="dumb", RUST_LOG="error")
        argv = [llm.node_bin(), CODEX_JS, "exec", "--skip-git-repo-check", "--ephemeral", "-C",
                home, "Say one word about " + uuid.uuid4().hex]
        subprocess.run(standin.in_netns(argv), env=env, check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120, cwd=home)


def with_floor(standin, pki, work) -> dict:
    with Floor("--aead", NATIVE) as f:
        codex_runs(standin, pki, work)
    p = f.result["programs"]
    per = {n: p[n]["ns"] / max(1, p[n]["cnt"]) for n in p}
    return {"seal": per["floor_seal"], "open": per["floor_open"] + per["floor_open_exit"],
            "seals": p["floor_seal"]["cnt"], "opens": p["floor_open"]["cnt"],
            "locate_ms": f.ready["locate_ms"]}


def with_agent(standin, pki, work) -> dict:
    # The first exec of codex makes the agent locate and attach (not measured).
    return located_program_costs(work, [NATIVE, "--version"], aw.client_env(HOME=work), PROGS,
                                 lambda: codex_runs(standin, pki, work))


def build_loop(work: str) -> str:
    out = os.path.join(work, "aead_loop")
    src = os.path.join(REPO, "tests", "fixtures", "elf", "aead_shape.c")
    subprocess.run(["clang", "-O2", "-fuse-ld=lld", "-ffunction-sections", "-s", "-DBENCH_LOOP",
                    "-o", out, src], check=True)
    return out


def loop_ns(loop: str, size: int) -> int:
    return int(subprocess.run([loop, str(size), str(LOOP)], check=True, capture_output=True,
                              text=True).stdout.strip())


def steady_state(work: str) -> None:
    loop = build_loop(work)
    rows = {size: {"a": [], "b": [], "c": [], "b_bpf": [], "c_bpf": []} for size in SIZES}
    for _ in range(ROUNDS):
        for size in SIZES:
            rows[size]["a"].append(loop_ns(loop, size))
            with Floor("--aead", loop) as f:
                rows[size]["b"].append(loop_ns(loop, size))
            p = f.result["programs"]["floor_seal"]
            rows[size]["b_bpf"].append(p["ns"] / max(1, p["cnt"]))
            costs = located_program_costs(
                work, [loop, "100", "1"], aw.client_env(), ("aead_seal_enter",),
                lambda: rows[size]["c"].append(loop_ns(loop, size)))  # noqa: B023
            rows[size]["c_bpf"].append(costs["aead_seal_enter"][0])
    print(f"Steady state: EVP_AEAD_CTX_seal of the stand-in in a loop of {LOOP} calls, medians "
          f"of {ROUNDS} rounds (ns per call; BPF: the program's run time per call):")
    for size in SIZES:
        r = {k: median(v) for k, v in rows[size].items()}
        print(f"  {size - 1:>5} B record: (a) no probe {r['a']:.0f}, (b) empty uprobe {r['b']:.0f} "
              f"(BPF {r['b_bpf']:.0f}), (c) agentwall {r['c']:.0f} (BPF {r['c_bpf']:.0f}); "
              f"c/b {r['c'] / max(1, r['b']):.2f}")


def main() -> None:
    require_root("aead_probe_cost.py")
    if not os.path.isfile(NATIVE):
        raise SystemExit(f"{NATIVE} is missing: run scripts/install-deps.sh --test")
    work = tempfile.mkdtemp(prefix="aw-aead-bench-")
    pki = aw.TestPKI()
    standin = llm.StandIn(pki, netns=True).start()
    try:
        with bpf_stats_enabled():
            floors, agents = [], []
            for i in range(ROUNDS):
                order = (with_floor, with_agent) if i % 2 == 0 else (with_agent, with_floor)
                for fn in order:
                    r = fn(standin, pki, work)
                    (floors if fn is with_floor else agents).append(r)
                    print(f"round {i} {fn.__name__}: {json.dumps(r)}", flush=True)
        with bpf_stats_enabled():
            steady_state(work)
    finally:
        standin.stop()
        subprocess.run(["rm", "-rf", work])

    seal_floor = median([f["seal"] for f in floors])
    open_floor = median([f["open"] for f in floors])
    seal = median([a["aead_seal_enter"][0] for a in agents])
    opened = median([a["aead_open_enter"][0] + a["aead_open_exit"][0] for a in agents])
    sys_enter = median([a["tls_sys_enter"][0] for a in agents])
    print(f"BPF run time per TLS record, median of {ROUNDS} rounds "
          f"({median([f['seals'] for f in floors])} seals and "
          f"{median([f['opens'] for f in floors])} opens by codex a round under the floor):")
    print(f"  floor, seal (empty uprobe): {seal_floor:.0f} ns; agentwall aead_seal_enter: "
          f"{seal:.0f} ns ({seal - seal_floor:+.0f} ns)")
    print(f"  floor, open (empty uprobe + uretprobe): {open_floor:.0f} ns; agentwall "
          f"aead_open_enter + aead_open_exit: {opened:.0f} ns ({opened - open_floor:+.0f} ns)")
    print(f"  agentwall tls_sys_enter per system call of the host meanwhile: {sys_enter:.0f} ns")
    print(f"  locating seal/open in codex (uprobe_floor, page cache warm): "
          f"{median([f['locate_ms'] for f in floors]):.0f} ms")


if __name__ == "__main__":
    main()
