"""The agent as systemd runs it, short of a real systemd (PID 1 here is not systemd):

* least privilege, measured: the agent runs with exactly the capability bounding set of
  systemd/agentwall.service (read from the unit, so the two cannot drift), no new privileges,
  and still captures an LLM call and blocks a secret in a process this test started;
* without CAP_BPF it fails at start with a message that says what is missing;
* the notification protocol: READY=1 once the probes are attached (and not before),
  STATUS= lines, WATCHDOG=1 pings at half the WATCHDOG_USEC interval, STOPPING=1 at SIGTERM,
  on a datagram socket this test binds in place of systemd's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import aw
import llm
import test_enforce  # TestCgroup, policy_text (module import: its tests are not collected)

UNIT = os.path.join(aw.REPO, "systemd", "agentwall.service")
ENFORCE_DROPIN = os.path.join(aw.REPO, "systemd", "enforce.conf")
SECRET = test_enforce.SECRET


def unit_capabilities(path: str = UNIT) -> list[str]:
    with open(path) as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet="):
                return line.split("=", 1)[1].split()
    raise AssertionError(f"no CapabilityBoundingSet= in {path}")


def enforcing_capabilities() -> list[str]:
    """The unit's set with the enforce.conf drop-in (systemd adds the sets up)."""
    return unit_capabilities() + unit_capabilities(ENFORCE_DROPIN)


CAP_BITS = {"CAP_DAC_READ_SEARCH": 2, "CAP_KILL": 5, "CAP_SYS_PTRACE": 19,
            "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39}


def cap_mask(caps: list[str]) -> int:
    unknown = [c for c in caps if c not in CAP_BITS]
    if unknown:
        raise AssertionError(f"add the bit numbers of {unknown} to CAP_BITS")
    return sum(1 << CAP_BITS[c] for c in caps)


def setpriv_prefix(caps: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise AssertionError("setpriv not found (Debian package util-linux)")
    names = ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
    return [setpriv, "--bounding-set=-all," + names, "--inh-caps=-all", "--no-new-privs", "--"]


class ConfinedAgent(aw.Agent):
    """aw.Agent started through setpriv with a reduced capability bounding set."""

    def __init__(self, caps: list[str], args=(), command: str = "run") -> None:
        super().__init__(args=args, command=command)
        self.prefix = setpriv_prefix(caps)

    def argv(self) -> list[str]:
        return [*self.prefix, *super().argv()]


class ServiceTest(aw.AgentTestCase):

    standin: llm.StandIn

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.standin = llm.StandIn(cls.pki)
        cls.standin.start()
        cls.addClassCleanup(cls.standin.stop)

    def py_call(self, tag: str, user: str, wrap=None) -> aw.ClientResult:
        argv = [sys.executable, llm.URLLIB_CLIENT, "--base-url", self.standin.base_url,
                "--cafile", self.pki.ca_cert, "--tag", tag, "--user", user]
        return aw.run_client(wrap(argv) if wrap else argv, check=False)

    def received(self, tag: str, wait: float) -> list[dict]:
        deadline = time.monotonic() + wait
        while True:
            hits = [e for e in self.standin.entries if e.get("tag") == tag]
            if hits or time.monotonic() >= deadline:
                return hits
            time.sleep(0.1)

    def block_policy(self, cg) -> str:
        rule = f"""
        - rule: block-secrets
          match:
            traffic: {{kind: llm, direction: request}}
            process: {{cgroup: "{cg.rel}"}}
          when:
            findings: {{category: secret}}
          action: block
          severity: critical
        """
        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(test_enforce.policy_text("enforce", rule, state_dir=self.tmp))
        return policy

    def test_enforcing_without_cap_kill_is_refused(self):
        """The unit alone has no CAP_KILL: an enforcing policy is refused with what to do,
        rather than holding processes it could not resume."""
        caps = unit_capabilities()
        self.assertNotIn("CAP_KILL", caps)
        cg = test_enforce.TestCgroup()
        self.addCleanup(cg.remove)
        agent = ConfinedAgent(caps, args=["--policy", self.block_policy(cg)])
        res = subprocess.run(agent.argv(), capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 2, res.stderr[-2000:])
        self.assertIn("needs CAP_KILL", res.stderr)
        self.assertIn("enforce.conf", res.stderr)

    def test_least_privilege_capture_and_enforce(self):
        """With only the unit's capabilities and the enforce drop-in's, the agent captures and
        enforces."""
        caps = enforcing_capabilities()
        cg = test_enforce.TestCgroup()
        self.addCleanup(cg.remove)
        policy = self.block_policy(cg)
        ok_tag, bad_tag = llm.new_tag(), llm.new_tag()
        agent = ConfinedAgent(caps, args=["--policy", policy, "--health-interval", "0"])
        with agent:
            with open(f"/proc/{agent.proc.pid}/status") as f:
                status = f.read()
            ok = self.py_call(ok_tag, "hello")
            bad = self.py_call(bad_tag, "deploy with " + SECRET, wrap=cg.wrap)
            hits_ok = self.received(ok_tag, aw.DATA_TIMEOUT)
            hits_bad = self.received(bad_tag, 1.0)
            deadline = time.monotonic() + aw.DATA_TIMEOUT
            while time.monotonic() < deadline and not [
                    r for r in agent.records() if r.get("type") == "llm.exchange"
                    and r["process"]["pid"] == ok.pid]:
                time.sleep(0.1)
        # The agent had exactly the unit's capabilities, no more.
        m = re.search(r"^CapEff:\s*([0-9a-f]+)", status, re.M)
        self.assertIsNotNone(m, status)
        self.assertEqual(int(m.group(1), 16), cap_mask(caps), status)
        self.assertEqual(ok.returncode, 0, ok.describe())
        self.assertEqual(len(hits_ok), 1)
        exchanges = [r for r in agent.records() if r.get("type") == "llm.exchange"
                     and r["process"]["pid"] == ok.pid]
        self.assertEqual(len(exchanges), 1, agent.stderr_tail(20))
        self.assertEqual(hits_bad, [], "a blocked request reached the server")
        self.assertGreater(bad.returncode, 0, bad.describe())
        actions = [a for a in agent.records() if a.get("type") == "enforce.action"]
        self.assertEqual([(a["process"]["pid"], a["action"], a["ok"]) for a in actions],
                         [(bad.pid, "block", True)], actions)

    def test_bounding_set_is_what_the_agent_gets(self):
        """setpriv really confines the process (the measurement above means something)."""
        caps = unit_capabilities()
        out = subprocess.run([*setpriv_prefix(caps), "grep", "^CapEff", "/proc/self/status"],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual(int(out.split()[1], 16), cap_mask(caps), out)

    def test_without_cap_bpf_says_what_is_missing(self):
        caps = [c for c in unit_capabilities() if c != "CAP_BPF"]
        agent = ConfinedAgent(caps, args=["--health-interval", "0", "--no-policy"])
        agent.expected_returncode = 1
        argv = agent.argv()
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(res.returncode, 0)
        self.assertRegex(res.stderr, r"CAP_BPF", res.stderr[-2000:])

    def test_sd_notify_ready_watchdog_reload_stopping(self):
        sock_path = os.path.join(self.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(sock_path)
        self.addCleanup(s.close)
        s.settimeout(0.2)
        messages: list[tuple[float, str]] = []

        def drain(until: float) -> None:
            while time.monotonic() < until:
                try:
                    messages.append((time.monotonic(), s.recv(4096).decode()))
                except socket.timeout:
                    pass

        old = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        os.environ["NOTIFY_SOCKET"] = sock_path
        os.environ["WATCHDOG_USEC"] = "1000000"  # 1 s: pings every 0.5 s
        try:
            agent = aw.Agent(command="run", args=["--health-interval", "0"])
            agent.start()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        try:
            drain(time.monotonic() + 2.0)
            ready_file_seen = os.path.exists(agent.ready_file)
            agent.proc.send_signal(signal.SIGHUP)  # what `systemctl reload` sends
            drain(time.monotonic() + 1.5)
        finally:
            stop_at = time.monotonic()
            agent.stop()
        drain(time.monotonic() + 0.5)
        texts = [m for _, m in messages]
        ready = [m for m in texts if m.startswith("READY=1")]
        self.assertGreaterEqual(len(ready), 1, texts)
        self.assertIn("STATUS=", ready[0])
        self.assertIn(f"MAINPID={agent.proc.pid}", ready[0])
        self.assertTrue(ready_file_seen)
        # READY comes before any ping; pings keep coming while it runs.
        first_ready = texts.index(ready[0])
        first_ping = texts.index("WATCHDOG=1")
        self.assertGreater(first_ping, first_ready, "a watchdog ping came before READY=1")
        pings = [t for t, m in messages if m == "WATCHDOG=1" and t < stop_at]
        self.assertGreaterEqual(len(pings), 4, texts)
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 1.0, gaps)
        self.assertTrue(any(m.startswith("STATUS=") and "LLM calls" in m for m in texts), texts)
        # SIGHUP: RELOADING=1, then READY=1 again once the policies are read.
        reloading = [i for i, m in enumerate(texts) if m.startswith("RELOADING=1")]
        self.assertEqual(len(reloading), 1, texts)
        self.assertGreater(reloading[0], first_ready)
        self.assertTrue(any(m.startswith("READY=1") for m in texts[reloading[0] + 1:]), texts)
        reloads = [e for e in agent.records() if e.get("type") == "agent.reload"]
        self.assertEqual(len(reloads), 1, "no agent.reload event after SIGHUP")
        stopping = [i for i, m in enumerate(texts) if m.startswith("STOPPING=1")]
        self.assertEqual(len(stopping), 1, texts)
        self.assertGreater(stopping[0], first_ready)


if __name__ == "__main__":
    aw.main()
