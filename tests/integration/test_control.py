"""The control socket and its clients, against a real agent and a real LLM call over TLS:

* the socket is 0600; `agentwall status` (JSON and human) shows the attached libssl, the
  call, the sinks, uptime and version; `agentwall top --once` has a row for the client with
  its call and tokens; `agentwall tail --type llm.exchange`, started before the call, gets
  the exchange and nothing of another type;
* a client that is not root is refused, by the file mode and, with the mode opened up, by
  the agent itself (peer credentials); an unknown command gets a one-line JSON error;
* no agent: a clear error and a non-zero status;
* a second agent given the same socket runs on without one and leaves the first agent's
  alone; a stale socket file is replaced; the socket goes when the agent stops.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import aw
import llm

NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]


def cli(*args: str, prefix: tuple[str, ...] = (), timeout: float = 30
        ) -> subprocess.CompletedProcess:
    argv = [*prefix, aw.agent_bin(), *args]
    aw.log("cli: " + " ".join(argv))
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def as_nobody() -> tuple[str, ...]:
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise AssertionError("setpriv not found (Debian package util-linux)")
    return (setpriv, *NOBODY, "--")


def raw_request(path: str, line: bytes) -> dict:
    """One request line over the socket, one reply line back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


class Tail:
    """`agentwall tail ARGS` in the background; its stdout lines, parsed, in `events`."""

    def __init__(self, test: aw.AgentTestCase, *args: str) -> None:
        argv = [aw.agent_bin(), "tail", *args]
        aw.log("tail: " + " ".join(argv))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        test.addCleanup(self.stop)
        self.events: list[dict] = []
        self.bad: list[str] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._readers:
            t.start()

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.bad.append(line)
                self._cond.notify_all()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append(line)
                self._cond.notify_all()

    def wait(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return predicate()
                self._cond.wait(min(left, 0.2))
            return True

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for t in self._readers:
            t.join(timeout=10)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        return self.proc.returncode


class ControlTest(llm.StandInTestCase):

    def poll_json(self, args: list[str], predicate, what: str) -> dict:
        """Runs the CLI until its JSON output satisfies predicate (the agent's snapshots are
        refreshed once a second)."""
        deadline = time.monotonic() + aw.DATA_TIMEOUT
        while True:
            r = cli(*args)
            self.assertEqual(r.returncode, 0, f"agentwall {' '.join(args)}: {r.stderr}")
            doc = json.loads(r.stdout)
            if predicate(doc):
                return doc
            if time.monotonic() > deadline:
                self.fail(f"{what}: not within {aw.DATA_TIMEOUT}s; last reply:\n"
                          f"{json.dumps(doc)[:3000]}")
            time.sleep(0.3)

    def test_status_top_tail_of_a_real_call(self):
        with aw.Agent(command="run", args=["--health-interval", "0"]) as agent:
            sock = agent.control_socket
            st = os.stat(sock)
            self.assertTrue(stat.S_ISSOCK(st.st_mode), f"{sock} is not a socket")
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, f"mode of {sock}")

            tail = Tail(self, "--socket", sock, "--type", "llm.exchange")
            self.assertTrue(tail.wait(lambda: any("following" in l for l in tail.stderr_lines),
                                      aw.DATA_TIMEOUT),
                            f"tail did not start: {tail.stderr_lines}")

            res, _ = llm.run_urllib_client(self.standin, tag=llm.new_tag())
            pid = res.pid
            ex = llm.wait_exchange(agent, pid, aw.DATA_TIMEOUT)
            self.assertIsNotNone(ex, llm.describe_events(agent, pid))
            usage = ex["usage"]

            # status --json
            status = self.poll_json(["status", "--json", "--socket", sock],
                                    lambda s: s.get("llm", {}).get("calls", 0) >= 1,
                                    "status counting the call")
            self.assertEqual(status["type"], "agent.status")
            self.assertEqual(status["pid"], agent.proc.pid)
            self.assertTrue(status["version"])
            self.assertGreater(status["uptime_s"], 0)
            self.assertTrue(status["started"].endswith("Z"))
            libssl = [t for t in status["attached"]
                      if "libssl" in t["path"] and t["kind"] == "library"]
            self.assertTrue(libssl, f"no libssl in attached: {status['attached']}")
            self.assertIn("SSL_write", libssl[0]["functions"])
            self.assertGreaterEqual(status["processes"]["monitored"], 1)
            # --events, and the built-in default: alerts on stdout
            self.assertEqual([s["name"] for s in status["sinks"]], ["events", "stdout"])
            self.assertTrue(status["sinks"][0]["healthy"])
            self.assertEqual(status["policy"]["mode"], "monitor")
            self.assertEqual(status["budgets"], [])
            for k in ("ringbuf_drop_chunks", "truncated_calls", "stream_gaps"):
                self.assertIn(k, status["counters"])

            # status, for people
            r = cli("status", "--socket", sock)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"agentwall {status['version']} - running (pid {agent.proc.pid}), up ",
                          r.stdout)
            self.assertIn(libssl[0]["path"], r.stdout)
            self.assertRegex(r.stdout, r"LLM calls: [1-9]")
            self.assertIn("Sinks: events (file): healthy", r.stdout)

            # top: one row for the client, JSON behind it and the table in front
            deadline = time.monotonic() + aw.DATA_TIMEOUT
            while True:
                r = cli("top", "--once", "--socket", sock, "--sort", "tokens")
                self.assertEqual(r.returncode, 0, r.stderr)
                rows = [l.split() for l in r.stdout.splitlines()
                        if l.split() and l.split()[0] == str(pid)]
                if rows or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            self.assertEqual(len(rows), 1, f"no row for pid {pid} in:\n{r.stdout}")
            self.assertIn("sorted by tokens", r.stdout)
            row = rows[0]
            # PID COMM CALLS IN_TOK OUT_TOK COST_USD ALERTS BLOCKED CALLS/1M MODEL EXE
            self.assertEqual(row[2:5], ["1", str(usage["input_tokens"]),
                                        str(usage["output_tokens"])], r.stdout)
            self.assertEqual(row[9], ex["model"])
            self.assertEqual(row[10], ex["process"]["exe"])
            top = raw_request(sock, b'{"cmd":"top"}\n')
            mine = [p for p in top["processes"] if p["pid"] == pid]
            self.assertEqual(len(mine), 1)
            self.assertEqual((mine[0]["calls"], mine[0]["input_tokens"],
                              mine[0]["output_tokens"]),
                             (1, usage["input_tokens"], usage["output_tokens"]))

            # tail: the exchange, as the sinks got it, and only llm.exchange lines
            self.assertTrue(
                tail.wait(lambda: any(e.get("process", {}).get("pid") == pid
                                      for e in tail.events), aw.DATA_TIMEOUT),
                f"tail got no llm.exchange of pid {pid}: {tail.events[-5:]} "
                f"stderr: {tail.stderr_lines}")
            got = [e for e in tail.events if e.get("process", {}).get("pid") == pid]
            self.assertEqual(len(got), 1)
            self.assertEqual(got[0]["id"], ex["id"])
            self.assertEqual(got[0]["usage"], usage)
            self.assertEqual({e["type"] for e in tail.events}, {"llm.exchange"})
            self.assertEqual(tail.bad, [])
            self.assertEqual(tail.stop(), 0, "tail should exit 0 on SIGINT")

            # the protocol's errors
            self.assertEqual(raw_request(sock, b'{"cmd":"x"}\n'),
                             {"error": "unknown command 'x': expected status, top, coverage or tail"})
            self.assertIn("error", raw_request(sock, b"status\n"))
            bad = raw_request(sock, b'{"cmd":"tail","min_severity":"urgent"}\n')
            self.assertIn("min_severity", bad["error"])
        self.assertFalse(os.path.exists(sock), "the socket should go with the agent")

    def test_budget_state_in_status(self):
        """With a policy that counts a budget, status shows where each key stands."""
        policy = os.path.join(self.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write(f"mode: monitor\nsettings:\n  state_dir: {self.tmp}/state\n"
                    "budgets:\n  - name: control-test\n    per: [user]\n    window: day\n"
                    "    tokens: 100000000\n    action: alert\nrules: []\n")
        with aw.Agent(command="run", args=["--health-interval", "0", "--policy", policy]) as agent:
            res, _ = llm.run_urllib_client(self.standin, tag=llm.new_tag())
            ex = llm.wait_exchange(agent, res.pid, aw.DATA_TIMEOUT)
            self.assertIsNotNone(ex, llm.describe_events(agent, res.pid))
            status = self.poll_json(
                ["status", "--json", "--socket", agent.control_socket],
                lambda s: any(b["name"] == "control-test" and b["used_tokens"] > 0
                              for b in s.get("budgets", [])),
                "status showing the budget's usage")
            b = next(b for b in status["budgets"] if b["name"] == "control-test")
            self.assertEqual((b["key"], b["limit_tokens"], b["state"], b["action"]),
                             ("user=root", 100000000, "ok", "alert"))
            self.assertEqual(status["policy"]["files"], [policy])
            r = cli("status", "--socket", agent.control_socket)
            self.assertIn("Budgets: control-test [user=root]: ", r.stdout)
            self.assertIn(f"Policy: monitor mode: {policy}", r.stdout)

    def test_non_root_refused(self):
        with aw.Agent(command="run", args=["--health-interval", "0"]) as agent:
            sock = agent.control_socket
            # The file mode: nobody cannot even connect.
            r = cli("status", "--socket", sock, prefix=as_nobody())
            self.assertEqual(r.returncode, 1, r)
            self.assertIn(f"cannot reach the agent at {sock}: Permission denied", r.stderr)
            self.assertIn("root only", r.stderr)
            # With the file opened up, the agent refuses by the peer's credentials.
            os.chmod(agent.dir, 0o755)
            os.chmod(sock, 0o666)
            r = cli("status", "--socket", sock, prefix=as_nobody())
            self.assertEqual(r.returncode, 1, r)
            self.assertIn("says: permission denied: the agent's control socket serves root only",
                          r.stderr)
            r = cli("tail", "--socket", sock, prefix=as_nobody())
            self.assertEqual(r.returncode, 1, r)
            self.assertIn("permission denied", r.stderr)
            os.chmod(agent.dir, 0o700)

    def test_no_agent(self):
        sock = os.path.join(self.tmp, "nothing.sock")
        for args in (["status"], ["top", "--once"], ["tail"]):
            r = cli(*args, "--socket", sock)
            self.assertNotEqual(r.returncode, 0, r)
            self.assertIn(f"agentwall: cannot reach the agent at {sock}: No such file or "
                          "directory. Is it running? (systemctl status agentwall)", r.stderr)

    def test_socket_in_use_and_stale(self):
        # A stale socket (bound, never unlinked) is replaced.
        stale = os.path.join(self.tmp, "run", "control.sock")
        os.makedirs(os.path.dirname(stale), mode=0o700)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        with aw.Agent(command="run", args=["--health-interval", "0", "--control", stale]) as first:
            status = json.loads(cli("status", "--json", "--socket", stale).stdout)
            self.assertEqual(status["pid"], first.proc.pid)
            # A second agent on the same path runs without a socket and says who has it.
            with aw.Agent(command="run", args=["--health-interval", "0", "--control", stale]) \
                    as second:
                self.assertIn(f"control socket {stale} is in use by pid {first.proc.pid}",
                              second.stderr_tail())
                self.assertIn("running without a control socket", second.stderr_tail())
            status = json.loads(cli("status", "--json", "--socket", stale).stdout)
            self.assertEqual(status["pid"], first.proc.pid, "the first agent keeps its socket")
        self.assertFalse(os.path.exists(stale))

        # A missing parent directory is made, 0700.
        fresh = os.path.join(self.tmp, "new", "dir", "control.sock")
        with aw.Agent(command="run", args=["--health-interval", "0", "--control", fresh]):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(fresh)).st_mode), 0o700)
            self.assertEqual(cli("status", "--socket", fresh).returncode, 0)


if __name__ == "__main__":
    aw.main()
