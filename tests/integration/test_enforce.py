"""Enforcement: a policy in `enforce` mode holds the gated processes' TLS writes in the kernel
(SIGSTOP at the entry of SSL_write), judges the request they complete, and blocks, redacts or
kills before a byte leaves the process; `monitor` never pauses anything.

Every client runs in a cgroup this test creates (/aw-test-<pid>-<n> in the cgroup v2
hierarchy) and the policies gate only that cgroup: nothing else on the machine is ever held.
The provider stand-in (standin/standin.mjs) logs every request it receives: a blocked request
must never appear there, a redacted one must appear masked.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import textwrap
import time

import aw
import llm
import receivers
import test_go  # build, wait_attached, chat_argv (module import: its tests are not collected)
import test_mcp  # McpServer, MCP_CLIENT (module import: its tests are not collected)
import test_nss  # make_nssdb, tstclnt_argv (module import: its tests are not collected)

SECRET = "sk-proj-" + "Q7w8E9r0T1y2U3i4O5p6" * 2 + "AsDfGhJkLzXcVbNm"
_seq = itertools.count(1)


def cgroup2_root() -> str:
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "cgroup2":
                return parts[1]
    raise AssertionError("no cgroup v2 hierarchy mounted: enforcement tests select their "
                         "clients by cgroup (mount cgroup2, e.g. on /sys/fs/cgroup/unified)")


class TestCgroup:
    """A cgroup v2 group of this test's own, removed at the end (its processes are gone)."""

    def __init__(self) -> None:
        self.name = f"aw-test-{os.getpid()}-{next(_seq)}"
        self.rel = "/" + self.name
        self.path = os.path.join(cgroup2_root(), self.name)
        os.mkdir(self.path)

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run inside the cgroup: the shell joins it, then execs the client."""
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *argv]

    def remove(self) -> None:
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)  # a client still exiting
        raise AssertionError(f"cannot remove test cgroup {self.path}")


def policy_text(mode: str, rules: str, extra: str = "", state_dir: str | None = None) -> str:
    settings = "settings:\n  verdict_timeout_ms: 200\n"
    if state_dir:
        settings += f"  state_dir: {state_dir}\n"
    return f"mode: {mode}\n{settings}{extra}rules:\n" + \
        textwrap.indent(textwrap.dedent(rules).strip() + "\n", "  ")


def secret_rule(action: str, cgroup: str, kind: str = "llm") -> str:
    """A rule that takes `action` on a secret in a request (LLM or MCP) from `cgroup`."""
    return f"""
    - rule: {action}-secrets
      match:
        traffic: {{kind: {kind}, direction: request}}
        process: {{cgroup: "{cgroup}"}}
      when:
        findings: {{category: secret}}
      action: {action}
      severity: critical
      message: "{action}: {{exe}} sent {{detectors}}"
    """


class EnforceTest(aw.AgentTestCase):

    standin: llm.StandIn

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        llm.node_bin()
        llm.require_sdks()
        cls.standin = llm.StandIn(cls.pki)
        cls.standin.start()
        cls.addClassCleanup(cls.standin.stop)

    def setUp(self) -> None:
        super().setUp()
        self.cg = TestCgroup()
        self.addCleanup(self.cg.remove)

    # -- helpers ----------------------------------------------------------------------------
    def agent(self, policy: str) -> aw.Agent:
        return self.agent_named("policy", policy)

    def agent_named(self, name: str, policy: str) -> aw.Agent:
        path = os.path.join(self.tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(policy)
        return aw.Agent(command="run", args=["--policy", path, "--health-interval", "0"])

    def secret_rule(self, action: str) -> str:
        return secret_rule(action, self.cg.rel)

    def node_call(self, tag: str, user: str, *, in_cgroup: bool = True, model: str | None = None
                  ) -> aw.ClientResult:
        argv = [llm.node_bin(), llm.LLM_CLIENT, "--sdk", "openai", "--no-stream",
                "--base-url", self.standin.base_url, "--tag", tag, "--user", user]
        if model:
            argv += ["--model", model]
        if in_cgroup:
            argv = self.cg.wrap(argv)
        return aw.run_client(argv, env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert),
                             check=False)

    def received(self, tag: str, wait: float = 0.0) -> list[dict]:
        deadline = time.monotonic() + wait
        while True:
            hits = [e for e in self.standin.entries if e.get("tag") == tag]
            if hits or time.monotonic() >= deadline:
                return hits
            time.sleep(0.1)

    def events(self, agent: aw.Agent, kind: str) -> list[dict]:
        return [r for r in agent.records() if r.get("type") == kind]

    def health(self, agent: aw.Agent) -> dict:
        h = self.events(agent, "agent.health")
        self.assertTrue(h, "no agent.health event")
        return h[-1]

    def assert_failed_alive(self, res: aw.ClientResult) -> None:
        """The client got an error from its request and exited by itself (not by a signal)."""
        self.assertEqual(res.returncode, 1, "the client should fail its request and exit 1:\n"
                         + res.describe())
        err = res.stderr.decode(errors="replace")
        self.assertTrue("Connection error" in err or "fetch failed" in err, err[-2000:])

    # -- tests ------------------------------------------------------------------------------
    def test_block_secret_never_reaches_server(self):
        tag = llm.new_tag()
        with self.agent(policy_text("enforce", self.secret_rule("block"))) as agent:
            res = self.node_call(tag, "my key is " + SECRET + ", keep it safe")
            # The stand-in would have logged it by now had it arrived.
            hits = self.received(tag, wait=1.0)
        self.assertEqual(hits, [], "a blocked request reached the server")
        self.assert_failed_alive(res)
        actions = [a for a in self.events(agent, "enforce.action") if a["process"]["pid"] == res.pid]
        self.assertEqual(len(actions), 1, actions)
        a = actions[0]
        self.assertEqual((a["action"], a["ok"], a["rule"]), ("block", True, "block-secrets"), a)
        self.assertIn("nothing was sent", a["how"])
        alerts = [x for x in self.events(agent, "policy.alert") if x["process"]["pid"] == res.pid]
        self.assertEqual([(x["rule"], x["outcome"]) for x in alerts], [("block-secrets", "block")])
        self.assertEqual(alerts[0]["findings"][0]["category"], "secret")
        self.assertEqual(self.health(agent)["enforce"]["blocked"], 1)

    def test_redact_secret_server_gets_mask(self):
        tag = llm.new_tag()
        user = "my key is " + SECRET + ", keep it safe"
        with self.agent(policy_text("enforce", self.secret_rule("redact"))) as agent:
            res = self.node_call(tag, user)
            hits = self.received(tag, wait=aw.DATA_TIMEOUT)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertEqual(len(hits), 1, "the redacted request should reach the server once")
        sent = hits[0]["body"]["messages"][-1]["content"]
        self.assertEqual(sent, user.replace(SECRET, "*" * len(SECRET)))
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["action"], a["ok"]) for a in actions], [("redact", True)], actions)

    def test_monitor_never_pauses(self):
        tag = llm.new_tag()
        with self.agent(policy_text("monitor", self.secret_rule("block"))) as agent:
            res = self.node_call(tag, "my key is " + SECRET)
            hits = self.received(tag, wait=aw.DATA_TIMEOUT)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertEqual(len(hits), 1)
        self.assertIn(SECRET, hits[0]["body"]["messages"][-1]["content"])
        h = self.health(agent)
        self.assertEqual(h["enforce"]["holds"], 0, "monitor mode held a write")
        self.assertEqual(self.events(agent, "enforce.action"), [])
        alerts = [x for x in self.events(agent, "policy.alert") if x["process"]["pid"] == res.pid]
        self.assertEqual([(x["rule"], x["outcome"], x["enforced"]) for x in alerts],
                         [("block-secrets", "would block", False)])

    def test_process_outside_the_gate_is_untouched(self):
        tag = llm.new_tag()
        with self.agent(policy_text("enforce", self.secret_rule("block"))) as agent:
            res = self.node_call(tag, "my key is " + SECRET, in_cgroup=False)
            hits = self.received(tag, wait=aw.DATA_TIMEOUT)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertEqual(len(hits), 1)
        self.assertEqual(self.health(agent)["enforce"]["holds"], 0)
        self.assertEqual(self.events(agent, "enforce.action"), [])

    def test_block_curl_and_python(self):
        """curl (SSL_write in libssl) and Python (SSL_write_ex) are blocked the same way."""
        body = json.dumps({"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "deploy with " + SECRET}]})
        body_file = os.path.join(self.tmp, "body.json")
        with open(body_file, "w") as f:
            f.write(body)
        curl_tag, py_tag = llm.new_tag(), llm.new_tag()
        with self.agent(policy_text("enforce", self.secret_rule("block"))) as agent:
            curl = aw.run_client(self.cg.wrap([
                "curl", "-sS", "--http1.1", "--cacert", self.pki.ca_cert,
                "-H", "content-type: application/json", "-H", "authorization: Bearer sk-test",
                "-H", f"x-standin-tag: {curl_tag}", "--data-binary", "@" + body_file,
                self.standin.base_url + "/v1/chat/completions"]), check=False)
            py = aw.run_client(self.cg.wrap([
                "python3", llm.URLLIB_CLIENT, "--base-url", self.standin.base_url,
                "--cafile", self.pki.ca_cert, "--tag", py_tag, "--user", "deploy with " + SECRET]),
                check=False)
            hits = self.received(curl_tag, wait=1.0) + self.received(py_tag)
        self.assertEqual(hits, [], "a blocked request reached the server")
        self.assertNotEqual(curl.returncode, 0, curl.describe())
        self.assertGreater(curl.returncode, 0, "curl was killed:\n" + curl.describe())
        self.assertIn(b"SSL", curl.stderr, curl.describe())
        self.assertGreater(py.returncode, 0, "python was killed:\n" + py.describe())
        self.assertIn(b"SSL", py.stderr, py.describe())
        actions = self.events(agent, "enforce.action")
        self.assertEqual(sorted((a["process"]["pid"], a["action"], a["ok"]) for a in actions),
                         sorted([(curl.pid, "block", True), (py.pid, "block", True)]), actions)

    def gnutls_call(self, tag: str, user: str) -> aw.ClientResult:
        """gnutls-cli (GnuTLS, gnutls_record_send) sends one chat completion from the cgroup."""
        cli = aw.require_program("gnutls-cli", "gnutls-bin")
        return aw.run_client(self.cg.wrap([cli, "--x509cafile", self.pki.ca_cert, "-p",
                                           str(self.standin.port), "localhost"]),
                             input=llm.raw_chat_request(tag, user)[0], check=False)

    def test_block_and_redact_gnutls(self):
        """gnutls_record_send is held like SSL_write: blocked, it returns GNUTLS_E_PUSH_ERROR
        without running and gnutls-cli reports it; redacted, the server gets the mask."""
        user = "deploy with " + SECRET + " today"
        block_tag = llm.new_tag()
        with self.agent(policy_text("enforce", self.secret_rule("block"))) as agent:
            blocked = self.gnutls_call(block_tag, user)
            hits = self.received(block_tag, wait=1.0)
        self.assertEqual(hits, [], "a blocked request reached the server")
        # gnutls-cli reports the error, sees the server close the idle connection and exits
        # (with status 0, its own choice): it was not killed.
        self.assertGreaterEqual(blocked.returncode, 0, "gnutls-cli was killed:\n"
                                + blocked.describe())
        self.assertIn(b"Fatal error: Error in the push function", blocked.stderr,
                      blocked.describe())
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["process"]["pid"], a["action"], a["ok"]) for a in actions],
                         [(blocked.pid, "block", True)], actions)
        self.assertIn("gnutls_record_send returned failure without running", actions[0]["how"])
        self.assert_redacted(lambda tag: self.gnutls_call(tag, user), user)

    def assert_redacted(self, call, user: str, before=None) -> None:
        """Under a redact rule, `call(tag)` (which sends `user`) reaches the server once with
        the secret masked, the client succeeds, and the agent reports that one redaction."""
        tag = llm.new_tag()
        with self.agent(policy_text("enforce", self.secret_rule("redact"))) as agent:
            if before:
                before(agent)
            redacted = call(tag)
            hits = self.received(tag, wait=aw.DATA_TIMEOUT)
        self.assertEqual(redacted.returncode, 0, redacted.describe())
        self.assertEqual(len(hits), 1, "the redacted request should reach the server once")
        self.assertEqual(hits[0]["body"]["messages"][-1]["content"],
                         user.replace(SECRET, "*" * len(SECRET)))
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["process"]["pid"], a["action"], a["ok"]) for a in actions],
                         [(redacted.pid, "redact", True)], actions)

    def assert_shut_down(self, agent: aw.Agent, blocked: aw.ClientResult, function: str) -> None:
        """The agent blocked `blocked`'s held `function` call, and did it by shutting the
        socket down (the stacks whose failure cannot be made from outside: NSS, Go)."""
        actions = self.events(agent, "enforce.action")
        aw.log(f"{function}: {actions[0]['how'] if actions else None} (fd from the kernel: "
               f"{actions[0]['connection']['fd'] if actions else None}); the client exited "
               f"{blocked.returncode}: {blocked.stderr.decode(errors='replace').strip()[-300:]}")
        self.assertEqual([(a["process"]["pid"], a["action"], a["ok"]) for a in actions],
                         [(blocked.pid, "block", True)], actions)
        self.assertRegex(actions[0]["how"],
                         r"^socket \d+ shut down before the write: nothing was sent$")
        self.assertEqual(actions[0]["write"]["function"], function)

    def nss_call(self, nssdb: str, tag: str, user: str) -> aw.ClientResult:
        """tstclnt (NSS, PR_Send) sends one chat completion from the cgroup."""
        path = os.path.join(self.tmp, "request-" + tag)
        with open(path, "wb") as f:
            f.write(llm.raw_chat_request(tag, user)[0])
        return aw.run_client(self.cg.wrap(test_nss.tstclnt_argv(nssdb, self.standin.port, path)),
                             check=False)

    def test_block_and_redact_nss(self):
        """NSS's PR_Send on an SSL descriptor is held: blocked, the enforcer shuts the socket
        down before the call runs (NSPR must set its own error), so the handshake and the
        request never happen and tstclnt reports the broken connection; redacted, the server
        gets the mask. The first write of a connection has shown no system call: its socket
        is read from NSPR's descriptor."""
        nssdb = test_nss.make_nssdb(self.pki, self.addCleanup)
        user = "deploy with " + SECRET + " today"
        block_tag = llm.new_tag()
        with self.agent(policy_text("enforce", self.secret_rule("block"))) as agent:
            blocked = self.nss_call(nssdb, block_tag, user)
            hits = self.received(block_tag, wait=1.0)
        self.assertEqual(hits, [], "a blocked request reached the server")
        self.assertGreaterEqual(blocked.returncode, 0, "tstclnt was killed:\n"
                                + blocked.describe())
        self.assert_shut_down(agent, blocked, "PR_Send")
        self.assertIn(b"write to SSL socket failed", blocked.stderr, blocked.describe())
        self.assert_redacted(lambda tag: self.nss_call(nssdb, tag, user), user)

    def go_call(self, binary: str, tag: str, user: str, h2: bool) -> aw.ClientResult:
        """The Go client (crypto/tls, net/http) sends one chat completion from the cgroup."""
        body = {"model": "gpt-4o-mini", "max_tokens": 20,
                "messages": [{"role": "user", "content": user}]}
        return aw.run_client(
            self.cg.wrap(test_go.chat_argv(binary, self.standin.port, self.pki.ca_cert, tag, h2)),
            input=json.dumps(body).encode(), check=False)

    def test_block_and_redact_go(self):
        """Go's crypto/tls.(*Conn).Write is held: blocked, the enforcer shuts the socket down
        before Write runs (Go's error value cannot be made from outside), so the request never
        leaves and net/http returns the write's error; redacted, the server gets the mask.
        HTTP/1.1's request is the connection's first Write, so its socket is read from the
        process's tls.Conn; HTTP/2's follows the preface, and its HEADERS may leave first.
        The block rule is scoped to the host the client names (localhost): it gates the
        connection only because Go's SNI is read (makeClientHello → hostnameInSNI)."""
        tmp = aw.make_tempdir("aw-enforce-go-")
        self.addCleanup(aw.remove_tempdir, tmp)
        binary = test_go.build(tmp, os.path.join(tmp, "tls_client"), "-ldflags=-s -w")
        user = "deploy with " + SECRET + " today"
        for h2 in (False, True):
            with self.subTest(h2=h2):
                block_tag = llm.new_tag()
                rule = self.secret_rule("block").replace(
                    "direction: request}", "direction: request, host: localhost}")
                self.assertIn("host: localhost", rule)
                with self.agent(policy_text("enforce", rule)) as agent:
                    test_go.wait_attached(self, agent, binary, "[Go: ")
                    blocked = self.go_call(binary, block_tag, user, h2)
                    hits = self.received(block_tag, wait=1.0)
                # Over HTTP/2, Go may send the HEADERS frame in a write of its own before the
                # DATA frame that completes the request and is held: the server may then see
                # the stream open, never its body.
                self.assertEqual([h for h in hits if h.get("body") is not None or not h2], [],
                                 "a blocked request reached the server")
                self.assertNotIn(SECRET, json.dumps(hits))
                # The client printed the error net/http gave it and exited 1 by itself.
                self.assertEqual(blocked.returncode, 1, blocked.describe())
                self.assertRegex(blocked.stderr.decode(errors="replace"),
                                 "broken pipe|connection reset|EOF")
                self.assert_shut_down(agent, blocked, "go_tls_write")
                self.assert_redacted(
                    lambda tag: self.go_call(binary, tag, user, h2), user,
                    before=lambda agent: test_go.wait_attached(self, agent, binary, "[Go: "))

    def test_block_mcp_tool_call(self):
        """An MCP tools/call over HTTPS (the official SDK, Streamable HTTP) from a gated process
        is held like an LLM request: a secret in its arguments blocks it before the server
        reads it, and the SDK client fails by itself; the session's other requests pass."""
        test_mcp.require_mcp_sdk()
        log = os.path.join(self.tmp, "mcp-server.log")
        server = test_mcp.McpServer(self.pki, self.tmp, "streamable", False, log=log)
        self.addCleanup(server.stop)
        rule = secret_rule("block", self.cg.rel, kind="mcp")
        with self.agent(policy_text("enforce", rule)) as agent:
            res = aw.run_client(self.cg.wrap([
                llm.node_bin(), test_mcp.MCP_CLIENT, "--url", server.url(), "--message",
                "deploy with " + SECRET]), env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert),
                check=False)
            time.sleep(1.0)  # a call let through would be logged by now
        with open(log) as f:
            got = [json.loads(line) for line in f if line.strip()]
        methods = [m.get("method") for m in got]
        self.assertEqual(methods, ["initialize", "notifications/initialized", "tools/list"],
                         "the server should have read the session up to the blocked call")
        self.assertNotIn(SECRET, json.dumps(got))
        self.assertEqual(res.returncode, 1, "the MCP client should fail its call and exit 1:\n"
                         + res.describe())
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["process"]["pid"], a["action"], a["ok"]) for a in actions],
                         [(res.pid, "block", True)], actions)
        alerts = [x for x in self.events(agent, "policy.alert") if x["process"]["pid"] == res.pid]
        self.assertEqual([(x["rule"], x["outcome"], x["mcp"]["tool"]) for x in alerts],
                         [("block-secrets", "block", "echo")], alerts)

    def test_redact_mcp_tool_call(self):
        """Under `redact`, the same held tools/call reaches the server with the secret masked
        in its arguments (the echo tool returns the mask), and the session goes on."""
        test_mcp.require_mcp_sdk()
        log = os.path.join(self.tmp, "mcp-server.log")
        server = test_mcp.McpServer(self.pki, self.tmp, "streamable", False, log=log)
        self.addCleanup(server.stop)
        message = "deploy with " + SECRET
        rule = secret_rule("redact", self.cg.rel, kind="mcp")
        with self.agent(policy_text("enforce", rule)) as agent:
            res = aw.run_client(self.cg.wrap([
                llm.node_bin(), test_mcp.MCP_CLIENT, "--url", server.url(), "--message",
                message]), env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert),
                check=False)
        self.assertEqual(res.returncode, 0, res.describe())
        with open(log) as f:
            got = [json.loads(line) for line in f if line.strip()]
        self.assertNotIn(SECRET, json.dumps(got))
        masked = message.replace(SECRET, "*" * len(SECRET))
        calls = [m["params"]["arguments"] for m in got if m.get("method") == "tools/call"]
        self.assertEqual(calls, [{"message": masked}, {"a": 2, "b": 40}, {}], got)
        out = json.loads(res.stdout)
        self.assertIn(masked, json.dumps(out["calls"][0]["result"]))
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["process"]["pid"], a["action"], a["ok"]) for a in actions],
                         [(res.pid, "redact", True)], actions)
        alerts = [x for x in self.events(agent, "policy.alert") if x["process"]["pid"] == res.pid]
        self.assertEqual([(x["rule"], x["outcome"], x["mcp"]["tool"]) for x in alerts],
                         [("redact-secrets", "redact", "echo")], alerts)

    def test_kill(self):
        tag = llm.new_tag()
        with self.agent(policy_text("enforce", self.secret_rule("kill"))) as agent:
            res = self.node_call(tag, "my key is " + SECRET)
            hits = self.received(tag, wait=1.0)
        self.assertEqual(hits, [])
        # The shell exec'd node: the pid that was killed is the client's.
        self.assertEqual(res.returncode, -signal.SIGKILL, res.describe())
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["action"], a["ok"]) for a in actions], [("kill", True)], actions)

    def test_model_allow_list(self):
        rules = f"""
        - rule: approved-models-only
          match:
            traffic: {{kind: llm, direction: request}}
            process: {{cgroup: "{self.cg.rel}"}}
          when:
            model_not_in: list:approved
          action: block
          severity: high
        """
        extra = "lists:\n  approved: [gpt-4o-mini]\n"
        ok_tag, bad_tag = llm.new_tag(), llm.new_tag()
        with self.agent(policy_text("enforce", rules, extra)) as agent:
            ok = self.node_call(ok_tag, "hello")
            bad = self.node_call(bad_tag, "hello", model="gpt-4.1")
            hits_ok = self.received(ok_tag, wait=aw.DATA_TIMEOUT)
            hits_bad = self.received(bad_tag, wait=1.0)
        self.assertEqual(ok.returncode, 0, ok.describe())
        self.assertEqual(len(hits_ok), 1)
        self.assertEqual(hits_bad, [])
        self.assert_failed_alive(bad)
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["process"]["pid"], a["rule"]) for a in actions],
                         [(bad.pid, "approved-models-only")], actions)

    def budget_policy(self, state_dir: str, limit: int) -> str:
        # The budget itself only alerts (a blocking budget would gate every process on the
        # host); the rule blocks this test's cgroup once the budget is spent.
        extra = textwrap.dedent(f"""\
            budgets:
              - name: test-daily
                per: [user]
                window: day
                tokens: {limit}
                warn_at: [0.8]
                action: alert
            """)
        rules = f"""
        - rule: budget-spent
          match:
            traffic: {{kind: llm, direction: request}}
            process: {{cgroup: "{self.cg.rel}"}}
          when:
            budget: {{name: test-daily, state: exceeded}}
          action: block
          severity: medium
        """
        return policy_text("enforce", rules, extra, state_dir)

    def test_budget_warns_blocks_and_survives_kill9(self):
        """A call of ~2300 estimated tokens against a 2600-token daily budget: the first is
        allowed and crosses 80%; the agent is killed with SIGKILL; a new agent on the same
        state directory blocks the second call (the first call's usage was kept)."""
        state = os.path.join(self.tmp, "state")
        os.mkdir(state)
        user = "word " * 1600 + "\nAnswer briefly."
        # The decide stage estimates a request at len(body)/4 tokens plus its max_tokens (200).
        limit = int(((len(user) + 400) / 4 + 200) * 1.15)
        t1, t2 = llm.new_tag(), llm.new_tag()
        with self.agent(self.budget_policy(state, limit)) as first:
            first.expected_returncode = -signal.SIGKILL
            r1 = self.node_call(t1, user)
            self.assertEqual(r1.returncode, 0, r1.describe())
            self.assertIsNotNone(llm.wait_exchange(first, r1.pid, aw.DATA_TIMEOUT),
                                 "no llm.exchange for the first call")
            time.sleep(0.5)  # the settle follows the exchange event
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=30)
        warn = [b for b in self.events(first, "budget.alert") if b["budget"] == "test-daily"]
        self.assertTrue(any(b["level"] == 0.8 for b in warn), warn)
        self.assertEqual(len(self.received(t1)), 1)
        with self.agent(self.budget_policy(state, limit)) as second:
            r2 = self.node_call(t2, user)
            hits = self.received(t2, wait=1.0)
        self.assertEqual(hits, [], "a call over the budget reached the server")
        self.assert_failed_alive(r2)
        actions = self.events(second, "enforce.action")
        self.assertEqual([(a["action"], a["rule"]) for a in actions], [("block", "budget-spent")],
                         actions)

    def test_two_agents_share_a_redis_budget(self):
        """Two agents, as on two hosts, share one token budget in a real redis-server on
        loopback; each counts only its own processes (a `cgroups` filter: here both "hosts"
        are this machine). The budget fits two calls: A's first and B's first pass, then A's
        second and B's second are blocked, though each agent alone has counted one call and
        would have let its second through."""
        redis = aw.require_program("redis-server", "redis-server")
        port = receivers.free_ports(1)[0]
        server = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1", "--save",
                                   "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(server.wait)
        self.addCleanup(server.kill)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                self.assertIsNone(server.poll(), "redis-server exited")
                self.assertLess(time.monotonic(), deadline, "redis-server did not listen")
                time.sleep(0.05)
        cg_b = TestCgroup()
        self.addCleanup(cg_b.remove)
        user = "word " * 800 + "\nAnswer briefly."
        # A call's reservation E is about (len(body) + ~300) / 4 + 256 (no max_tokens) and what
        # it settles U (the stand-in's usage) about len(user) / 4 + 20. The limit lies between
        # U + E (one call counted, the next fits) and 2U + E (two counted, the next does not),
        # with a margin of about 450 tokens on each side.
        limit = int(len(user) / 4 * 2.5 + 356)

        def policy(cg: TestCgroup) -> str:
            extra = textwrap.dedent(f"""\
                ledger: {{backend: redis, redis_url: "redis://127.0.0.1:{port}/0",
                          key_prefix: "aw-test-{cg_b.name}:"}}
                budgets:
                  - name: shared
                    window: day
                    tokens: {limit}
                    action: block
                    cgroups: ["{cg.rel}"]
                """)
            rule = """
            - rule: shared-budget-spent
              when:
                budget: {name: shared, state: exceeded}
              action: alert
            """
            return policy_text("enforce", rule, extra, os.path.join(self.tmp, cg.name))

        def call(cg: TestCgroup, tag: str) -> aw.ClientResult:
            argv = cg.wrap([llm.node_bin(), llm.LLM_CLIENT, "--sdk", "openai", "--no-stream",
                            "--base-url", self.standin.base_url, "--tag", tag, "--user", user])
            return aw.run_client(argv, env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert),
                                 check=False)

        order = (("a1", self.cg), ("b1", cg_b), ("a2", self.cg), ("b2", cg_b))
        tags = {k: llm.new_tag() for k, _ in order}
        results: dict[str, aw.ClientResult] = {}
        with self.agent_named("a", policy(self.cg)) as agent_a, \
                self.agent_named("b", policy(cg_b)) as agent_b:
            for k, cg in order:
                results[k] = call(cg, tags[k])
                time.sleep(0.5)  # the settle follows the exchange
            got = {k: len(self.received(tags[k], wait=1.0)) for k, _ in order}
        aw.log(f"two agents: {got}")
        self.assertEqual(got, {"a1": 1, "b1": 1, "a2": 0, "b2": 0})
        for k, n in got.items():
            if not n:
                self.assert_failed_alive(results[k])
        # Each agent blocked its own client's call, and only that.
        for ag, k in ((agent_a, "a2"), (agent_b, "b2")):
            actions = [(a["process"]["pid"], a["action"], a["rule"], a["ok"])
                       for a in self.events(ag, "enforce.action")]
            self.assertEqual(actions, [(results[k].pid, "block", "budget", True)], actions)

    def test_rate_limit(self):
        extra = textwrap.dedent("""\
            rate_limits:
              - name: test-rpm
                per: [user, model]
                requests_per_minute: 1
                action: alert
            """)
        rules = f"""
        - rule: too-fast
          match:
            traffic: {{kind: llm, direction: request}}
            process: {{cgroup: "{self.cg.rel}"}}
          when:
            rate_limit: {{name: test-rpm, state: exceeded}}
          action: block
          severity: low
        """
        state = os.path.join(self.tmp, "state")
        os.mkdir(state)
        text = policy_text("enforce", rules, extra, state)
        t1, t2 = llm.new_tag(), llm.new_tag()
        with self.agent(text) as agent:
            r1 = self.node_call(t1, "first call")
            r2 = self.node_call(t2, "second call, within the same minute")
            hits2 = self.received(t2, wait=1.0)
        self.assertEqual(r1.returncode, 0, r1.describe())
        self.assertEqual(len(self.received(t1)), 1)
        self.assertEqual(hits2, [])
        self.assert_failed_alive(r2)
        actions = self.events(agent, "enforce.action")
        self.assertEqual([(a["process"]["pid"], a["rule"]) for a in actions], [(r2.pid, "too-fast")])


    # -- reload (SIGHUP) and stop ------------------------------------------------------------
    def reload(self, agent: aw.Agent, policy: str, expect: str) -> dict:
        """Rewrites the agent's policy file, sends SIGHUP and returns the event that answers
        (`agent.reload` when it loaded, `agent.alert` when it was refused)."""
        path = os.path.join(self.tmp, "policy.yaml")
        with open(path, "w") as f:
            f.write(policy)
        before = len(self.events(agent, expect))
        agent.proc.send_signal(signal.SIGHUP)
        self.assertTrue(agent.wait_for(lambda r: len(
            [x for x in r if x.get("type") == expect]) > before, what=expect),
            f"no {expect} event after SIGHUP\n{agent.stderr_tail()}")
        return self.events(agent, expect)[-1]

    def test_reload_valid_then_invalid_policy(self):
        """SIGHUP applies a valid policy at once; an invalid one is refused with FILE:LINE:COL
        and an alert, and the running policy keeps enforcing."""
        with self.agent(policy_text("monitor", self.secret_rule("block"))) as agent:
            tag1 = llm.new_tag()
            res1 = self.node_call(tag1, "first key " + SECRET)
            self.assertEqual(res1.returncode, 0, "monitor mode must let the call through:\n" +
                             res1.describe())
            self.assertEqual(len(self.received(tag1, wait=aw.DATA_TIMEOUT)), 1)

            ok = self.reload(agent, policy_text("enforce", self.secret_rule("block")),
                             "agent.reload")
            self.assertEqual((ok["mode"], ok["rules"], ok["generation"]), ("enforce", 1, 2), ok)
            self.assertTrue(ok["policy_files"][0].endswith("policy.yaml"), ok)
            tag2 = llm.new_tag()
            res2 = self.node_call(tag2, "second key " + SECRET)
            self.assertEqual(self.received(tag2, wait=1.0), [],
                             "the reloaded (enforcing) policy did not block")
            self.assert_failed_alive(res2)

            # Line 4, column 11 of the new file: an action that does not exist.
            bad = policy_text("enforce", self.secret_rule("block")).replace(
                "action: block", "action: explode")
            bad_line = bad.splitlines().index(next(
                line for line in bad.splitlines() if "action: explode" in line)) + 1
            refused = self.reload(agent, bad, "agent.alert")
            self.assertEqual((refused["rule"], refused["severity"]),
                             ("agentwall.reload_failed", "high"), refused)
            where = f"policy.yaml:{bad_line}:"
            self.assertTrue(any(where in e and "explode" in e for e in refused["errors"]),
                            f"the error should name {where}: {refused['errors']}")
            tag3 = llm.new_tag()
            res3 = self.node_call(tag3, "third key " + SECRET)
            self.assertEqual(self.received(tag3, wait=1.0), [],
                             "after a refused reload the running policy must still block")
            self.assert_failed_alive(res3)
        stderr = agent.stderr_tail(200)
        self.assertIn("reload refused", stderr)
        self.assertIn(where, stderr)
        blocked = [a for a in self.events(agent, "enforce.action") if a["action"] == "block"]
        self.assertEqual(sorted(a["process"]["pid"] for a in blocked), sorted([res2.pid, res3.pid]))

    def test_reload_narrows_the_gate(self):
        """A reload to a policy that no longer enforces on the test's cgroup takes it out of
        the kernel gate: its writes are not held any more."""
        with self.agent(policy_text("enforce", self.secret_rule("block"))) as agent:
            self.reload(agent, policy_text("monitor", self.secret_rule("block")), "agent.reload")
            tag = llm.new_tag()
            res = self.node_call(tag, "key " + SECRET)
            self.assertEqual(res.returncode, 0, res.describe())
            self.assertEqual(len(self.received(tag, wait=aw.DATA_TIMEOUT)), 1)
        self.assertEqual(self.health(agent)["enforce"]["holds"], 0,
                         "a process was held after the reload took it out of the gate")

    def test_sigterm_resumes_a_held_process(self):
        """The agent is stopped (SIGSTOP) so that it cannot judge; a gated client's write is
        held (the client is stopped in SSL_write); SIGTERM then ends the agent, which must
        resume the client before it goes: the client finishes its call."""
        tag = llm.new_tag()
        argv = self.cg.wrap([llm.node_bin(), llm.LLM_CLIENT, "--sdk", "openai", "--no-stream",
                             "--base-url", self.standin.base_url, "--tag", tag,
                             "--user", "nothing secret here"])
        with self.agent(policy_text("enforce", self.secret_rule("block"))) as agent:
            agent.proc.send_signal(signal.SIGSTOP)
            client = subprocess.Popen(argv, env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 20
                state = "?"
                while time.monotonic() < deadline:
                    with open(f"/proc/{client.pid}/stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                    if state in ("T", "t"):
                        break
                    time.sleep(0.05)
                agent.proc.send_signal(signal.SIGTERM)
                agent.proc.send_signal(signal.SIGCONT)
                self.assertEqual(state, "T", "the gated client was never held")
                agent.proc.wait(timeout=aw.STOP_TIMEOUT)
                out, err = client.communicate(timeout=30)
            finally:
                if client.poll() is None:
                    client.kill()
                    client.wait()
        self.assertEqual(client.returncode, 0, "the client was not resumed or its call failed:\n"
                         + err.decode(errors="replace")[-2000:])
        self.assertEqual(len(self.received(tag, wait=aw.DATA_TIMEOUT)), 1)


if __name__ == "__main__":
    import unittest
    unittest.main()
