"""What boringssl_probe_cost.py and go_probe_cost.py share: the kernel's run counts of BPF
programs (kernel.bpf_stats_enabled), and `agentwall run` and uprobe_floor as context managers
that stop what they started however the block ends.

AGENTWALL_BIN (default build/agentwall) and UPROBE_FLOOR (default
build/tests/bench/uprobe_floor) name the binaries.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("AGENTWALL_BIN", os.path.join(REPO, "build", "agentwall"))
FLOOR = os.environ.get("UPROBE_FLOOR", os.path.join(REPO, "build", "tests", "bench",
                                                    "uprobe_floor"))
STATS = "/proc/sys/kernel/bpf_stats_enabled"


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def require_root(script: str) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"{script} loads BPF programs: run it as root")


@contextlib.contextmanager
def bpf_stats_enabled():
    """kernel.bpf_stats_enabled=1 for the block, then what it was."""
    with open(STATS) as f:
        old = f.read().strip()
    with open(STATS, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(STATS, "w") as f:
            f.write(old)


def prog_ids(pid: int) -> set:
    """The ids of the BPF programs process `pid` holds a file descriptor of (its fdinfo), so
    that another agent's programs of the same names (a test running meanwhile) never count;
    bpftool's `pids` column is not there when bpftool was built without it."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids.update(int(line.split()[1]) for line in f if line.startswith("prog_id:"))
        except OSError:  # closed meanwhile
            pass
    return ids


def programs() -> list:
    """Every loaded BPF program, as `bpftool prog show -j` describes it."""
    return json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], check=True,
                                     capture_output=True, text=True).stdout)


def prog_stats(owner_pid: int, names) -> dict:
    """{name: (run_cnt, run_time_ns)} of the programs called one of `names` that process
    `owner_pid` holds."""
    ids = prog_ids(owner_pid)
    return {p["name"]: (p.get("run_cnt", 0), p.get("run_time_ns", 0)) for p in programs()
            if p.get("name") in names and p.get("id") in ids}


def stats_delta(before: dict, after: dict) -> dict:
    """{name: (runs, ns)} between two prog_stats() of the same programs."""
    return {n: (after[n][0] - before[n][0], after[n][1] - before[n][1]) for n in after}


def _stop(p: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30) -> None:
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Agent:
    """`agentwall run` in monitor mode (no configuration, no policy) with its files in a
    directory of its own under `work`, from ready until the end of the block."""

    def __init__(self, work: str) -> None:
        self.dir = tempfile.mkdtemp(dir=work, prefix="agent-")
        self.err_path = os.path.join(self.dir, "agent.err")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Agent":
        ready = os.path.join(self.dir, "ready")
        argv = [AGENT, "run", "--no-config", "--no-policy", "--ready-file", ready,
                "--events", os.path.join(self.dir, "events.jsonl"), "--control", "none",
                "--state-dir", os.path.join(self.dir, "state"), "--health-interval", "0"]
        if shutil.which("setpriv"):  # stops the agent should this script be killed
            argv = ["setpriv", "--pdeathsig", "INT", "--", *argv]
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while not os.path.exists(ready):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("agent did not start:\n" + self.log())
                time.sleep(0.05)
        except BaseException:
            _stop(self.proc)
            raise
        return self

    def __exit__(self, *exc) -> None:
        _stop(self.proc)

    def log(self) -> str:
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def wait_log(self, text: str, timeout: float = 30) -> str | None:
        """The first line of the agent's log holding `text`, waited for; None after
        `timeout` seconds without one."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if text in line:
                    return line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def stats(self, names) -> dict:
        return prog_stats(self.proc.pid, names)


class Floor:
    """uprobe_floor ARGS from its ready line until the end of the block; `ready` and
    `result` are its two JSON lines."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.ready: dict = {}
        self.result: dict = {}

    def __enter__(self) -> "Floor":
        self.proc = subprocess.Popen([FLOOR, *self.args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            _stop(self.proc, signal.SIGTERM)
            raise SystemExit(f"uprobe_floor {' '.join(self.args)} failed "
                             f"(status {self.proc.returncode})")
        self.ready = json.loads(line)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        line = self.proc.stdout.readline()
        self.result = json.loads(line) if line.strip() else {}

    def stats(self, names) -> dict:
        return prog_stats(self.proc.pid, names)


def located_program_costs(work: str, first_run: list, env: dict, progs, runs) -> dict:
    """Under `agentwall run` (monitor mode): `first_run` once, whose exec makes the agent locate
    its TLS functions by signature and attach (not measured), then `runs()`. Returns
    {program: (ns per run, runs)} of the agent's `progs` over `runs()`."""
    with Agent(work) as a:
        subprocess.run(first_run, capture_output=True, timeout=60, env=env)
        if not a.wait_log("located by signature"):
            raise SystemExit(f"the agent did not attach to {first_run[0]}:\n" + a.log())
        before = a.stats(progs)
        runs()
        after = a.stats(progs)
    return {name: (ns / cnt if cnt else 0.0, cnt)
            for name, (cnt, ns) in stats_delta(before, after).items()}
