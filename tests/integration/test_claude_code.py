"""Claude Code's native binary, live: `claude -p` from npm (@anthropic-ai/claude-code-linux-x64,
pinned in clients/package.json) talks to the provider stand-in through ANTHROPIC_BASE_URL.
Every test runs on each release installed there: the newest under the package's own name, and
older ones (RELEASES) under npm aliases, so that the signatures are checked on builds months
apart, not only on the one they were written against.

The binary is Bun: BoringSSL linked in, its symbols stripped. The agent finds SSL_write and
SSL_read by their code (agent/elf/boringssl_sig.*: the error codes each raises from
ssl/ssl_lib.cc), attaches the OpenSSL probes there, and must give the llm.exchange of the
call: provider, model, the prompt, usage. The coverage view must list the process as visible,
with no coverage.gap, and name its stack.

Nothing leaves the host: the stand-ins listen on 127.0.0.1, the base URL is 127.0.0.1 or a
name (HOST) that only claude's own /etc/hosts knows (a bind mount in a mount namespace of its
own), every other destination goes to a proxy address where nothing listens (127.0.0.1:9),
auto-update, telemetry, error reporting and other non-essential traffic are switched off, and
HOME is a fresh directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import aw
import llm
import test_enforce  # TestCgroup, policy_text, secret_rule, SECRET (its tests not collected)

PACKAGE = "@anthropic-ai/claude-code-linux-x64"
# Older releases, installed beside it by npm aliases (clients/package.json): the oldest on
# npm (2026-08-19) and one from the middle of the range.
RELEASES = ["2.1.110", "2.1.200"]
STACK = "BoringSSL (linked in, stripped; located by signature)"
# The second stand-in's name (its certificate's): claude reached by it sends it as SNI.
HOST = "claude.agentwall.test"


def release_bin(version: str | None = None) -> str:
    """The newest release's binary (AW_CLAUDE_BIN: another one, e.g. from `npm pack`), or an
    older release's, installed under its alias."""
    if version is None:
        return os.environ.get("AW_CLAUDE_BIN") or os.path.join(
            llm.CLIENTS_DIR, "node_modules", *PACKAGE.split("/"), "claude")
    return os.path.join(llm.CLIENTS_DIR, "node_modules", f"claude-code-linux-x64-{version}",
                        "claude")


def claude_bin(path: str) -> str:
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is not installed ({PACKAGE} and its aliases in "
                             f"{llm.CLIENTS_DIR}/package.json). Run `scripts/install-deps.sh "
                             f"--test` (or `npm ci` in {llm.CLIENTS_DIR}).")
    return path


class ClaudeCodeTest(aw.AgentTestCase):
    CLAUDE = release_bin()

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        claude_bin(cls.CLAUDE)
        cls.standin = llm.StandIn(cls.pki).start()
        cls.addClassCleanup(cls.standin.stop)
        cls.named = llm.StandIn(cls.pki, cert=cls.pki.issue(HOST)).start()
        cls.addClassCleanup(cls.named.stop)

    def claude_env(self, home: str, by_name: bool = False) -> dict:
        """by_name: the base URL names the second stand-in by HOST (see resolving_host)."""
        dead = "http://127.0.0.1:9"  # nothing listens: any other destination fails here
        base_url = f"https://{HOST}:{self.named.port}" if by_name else self.standin.base_url
        return aw.client_env(
            HOME=home, ANTHROPIC_BASE_URL=base_url,
            ANTHROPIC_API_KEY="sk-ant-api03-agentwall-test-" + uuid.uuid4().hex,
            NODE_EXTRA_CA_CERTS=self.pki.ca_cert, DISABLE_AUTOUPDATER="1",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_TELEMETRY="1",
            DISABLE_ERROR_REPORTING="1", HTTPS_PROXY=dead, HTTP_PROXY=dead, https_proxy=dead,
            http_proxy=dead, NO_PROXY=f"127.0.0.1,{HOST}", no_proxy=f"127.0.0.1,{HOST}")

    def resolving_host(self, argv: list[str]) -> list[str]:
        """argv run with HOST at 127.0.0.1 in its /etc/hosts: a bind mount in a mount namespace
        of its own (unshare -m, private propagation: gone with the process, never seen
        outside). unshare and sh exec, so the pid stays argv's."""
        unshare = aw.require_program("unshare", "util-linux")
        hosts = os.path.join(self.tmp, "hosts")
        shutil.copyfile("/etc/hosts", hosts)
        with open(hosts, "a") as f:
            f.write(f"\n127.0.0.1 {HOST}\n")
        return [unshare, "-m", "sh", "-c", f'mount --bind {hosts} /etc/hosts && exec "$@"', "sh",
                *argv]

    def wait_attached(self, agent: aw.Agent) -> str:
        """Runs `claude --version` (no network) so that the agent attaches at its exec, and waits
        for that: the locator and the attach take a few hundred ms on this 400 MB binary."""
        home = aw.make_tempdir("aw-claude-home-")
        self.addCleanup(aw.remove_tempdir, home)
        v = aw.run_client([self.CLAUDE, "--version"], env=self.claude_env(home), timeout=60,
                          cwd=home)
        aw.log(f"claude --version: {v.stdout.decode(errors='replace').strip()}")
        want = (f"attached to executable {self.CLAUDE} "
                "(SSL_read, SSL_set_tlsext_host_name, SSL_write)")
        deadline = time.monotonic() + aw.DATA_TIMEOUT
        while time.monotonic() < deadline:
            tail = agent.stderr_tail(400)
            if want in tail:
                line = tail[tail.index(want):].split("\n", 1)[0]
                self.assertIn("located by signature", line)
                located = [l for l in tail.splitlines() if "located by signature in" in l]
                aw.log(line)
                if located:
                    self.assertIn(", SSL_set_tlsext_host_name at ", located[-1])
                return located[-1] if located else ""
            time.sleep(0.05)
        self.fail(f"the agent did not attach to {self.CLAUDE}:\n{agent.stderr_tail(40)}")

    def test_prompt_is_captured(self):
        port = self.standin.port
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           os.path.join(self.tmp, "state")]) as agent:
            aw.log(self.wait_attached(agent))
            # curl, seen by the agent, names 127.0.0.1:PORT api.anthropic.com by its SNI, so
            # that the coverage view counts claude's connection to it as an AI endpoint.
            tag = llm.new_tag()
            curl = aw.run_client(
                ["curl", "-sS", "-k", "--noproxy", "*", "--resolve",
                 f"api.anthropic.com:{port}:127.0.0.1", "-H", f"x-standin-tag: {tag}",
                 "-H", "content-type: application/json", "-H", "anthropic-version: 2023-06-01",
                 "--data-binary", '{"model":"claude-haiku-4-5","max_tokens":20,'
                 '"messages":[{"role":"user","content":"hi"}]}',
                 f"https://api.anthropic.com:{port}/v1/messages"])
            self.standin.wait_entry(tag)
            self.assertIsNotNone(llm.wait_exchange(agent, curl.pid, aw.DATA_TIMEOUT),
                                 llm.describe_events(agent, curl.pid))

            before = len(self.standin.entries)
            home = aw.make_tempdir("aw-claude-home-")
            self.addCleanup(aw.remove_tempdir, home)
            prompt = f"Answer with one word, the code name {uuid.uuid4().hex[:10]} reversed."
            res = aw.run_client([self.CLAUDE, "-p", prompt], env=self.claude_env(home), timeout=120,
                                cwd=home)  # not the repository: claude reads its cwd
            entries = self.standin.entries[before:]
            calls = [e for e in entries if e.get("path", "").startswith("/v1/messages")
                     and prompt in json.dumps(e.get("body"))]
            self.assertEqual(len(calls), 1, json.dumps(entries, indent=1)[:4000])
            entry = calls[0]
            answer = entry["answer"]
            self.assertIn(answer["output_text"], res.stdout.decode(), res.describe())
            event = llm.wait_exchange(agent, res.pid, aw.DATA_TIMEOUT)
            self.assertIsNotNone(event, llm.describe_events(agent, res.pid))
            # Every exchange of this pid, settled (claude may make more than one call).
            agent.wait_for(lambda r: len(llm.exchanges(r, res.pid)) >= len(
                [e for e in entries if e.get("path", "").startswith("/v1/messages")]),
                what="an llm.exchange per stand-in request")
            agent.wait_for(lambda r: False, timeout=3.0, what="settling (exits decided)")
            view = json.loads(subprocess.run(
                [aw.agent_bin(), "coverage", "--socket", agent.control_socket, "--json"],
                capture_output=True, text=True, timeout=30, check=True).stdout)
            recs = agent.records()

        mine = [e for e in llm.exchanges(recs, res.pid)
                if prompt in json.dumps(e.get("messages"))]
        self.assertEqual(len(mine), 1, json.dumps(llm.exchanges(recs, res.pid))[:4000])
        event = mine[0]
        ctx = "\n  event: " + json.dumps(event)[:3000] + "\n  stand-in: " + json.dumps(entry)[:3000]
        self.assertEqual(event["provider"], "anthropic", ctx)
        self.assertEqual(event["operation"], "chat", ctx)
        self.assertEqual(event["model"], entry["body"]["model"], ctx)
        self.assertEqual(event["response_model"], answer["response_model"], ctx)
        self.assertEqual(event["stream"], answer["stream"], ctx)
        self.assertEqual(event["status"], 200, ctx)
        user_text = "\n".join(m.get("text") or "" for m in event.get("messages") or []
                              if m.get("role") == "user")
        self.assertIn(prompt, user_text, ctx)
        self.assertEqual(event["output_text"], answer["output_text"], ctx)
        self.assertEqual(event["response_id"], answer["response_id"], ctx)
        usage = event["usage"]
        self.assertEqual(usage.get("source"), "provider", ctx)
        for k, v in llm.expected_usage("anthropic", "chat", answer["usage"]).items():
            if usage.get(k) is None and v == 0 and k != "input_tokens":
                continue
            self.assertEqual(usage.get(k), v, f"usage.{k}" + ctx)
        self.assertEqual(event["process"]["pid"], res.pid)
        self.assertEqual(event["process"]["exe"], os.path.realpath(self.CLAUDE))
        # Seen whole: no gap, no cut. Claude Code's request (a system prompt of tens of KB)
        # is longer than the event keeps of it: content_truncated says so.
        self.assertEqual(set(event.get("flags") or []) - {"content_truncated"}, set(), ctx)

        # The coverage view: visible, no gap, its stack named.
        gaps = [e for e in recs if e.get("type") == "coverage.gap"
                and e["process"]["pid"] == res.pid]
        self.assertEqual(gaps, [])
        by_pid = {p["process"]["pid"]: p for p in view["processes"]}
        self.assertIn(res.pid, by_pid, json.dumps(view)[:3000])
        row = by_pid[res.pid]
        self.assertTrue(row["visible"], row)
        self.assertFalse(row["gap"], row)
        self.assertEqual(row.get("tls_stack"), STACK, row)

    def claude_in_cgroup(self, cg, prompt: str, by_name: bool = False) -> aw.ClientResult:
        home = aw.make_tempdir("aw-claude-home-")
        self.addCleanup(aw.remove_tempdir, home)
        env = self.claude_env(home, by_name)
        env["CLAUDE_CODE_MAX_RETRIES"] = "0"  # a blocked call is not tried again
        argv = [self.CLAUDE, "-p", prompt]
        if by_name:
            argv = self.resolving_host(argv)
        return aw.run_client(cg.wrap(argv), env=env, timeout=120, cwd=home, check=False)

    def first_and_retries(self, recs: list[dict], pid: int) -> list[dict]:
        """pid's enforce.action events, after checking that all but the first are a retry of
        the blocked write, blocked again (some releases write the request again after the
        refused SSL_write). Returns the first alone: the decision."""
        actions = [r for r in recs if r.get("type") == "enforce.action"
                   and r["process"]["pid"] == pid]
        for a in actions[1:]:
            self.assertEqual(a["action"], "block", actions)
            # A retry is blocked, or claude had exited by the time the verdict reached it (it
            # gives up on the refused call at once): a process that is gone sends nothing.
            gone = "No such process" in a.get("error", "")
            self.assertTrue(a["ok"] or gone, actions)
            self.assertIn("blocked again", a.get("note", ""), actions)
            self.assertEqual(a["connection"], actions[0]["connection"], actions)
        if len(actions) > 1:
            aw.log(f"{len(actions) - 1} retry(ies) of the refused write, blocked again")
        return actions[:1]

    def enforcing_agent(self, cg, action: str, rule: str | None = None) -> aw.Agent:
        rule = rule or test_enforce.secret_rule(action, cg.rel)
        path = os.path.join(self.tmp, f"{action}.yaml")
        with open(path, "w") as f:
            f.write(test_enforce.policy_text("enforce", rule))
        return aw.Agent(command="run", args=["--policy", path, "--health-interval", "0",
                                             "--state-dir", os.path.join(self.tmp, "state")])

    def test_enforced_on_the_located_ssl_write(self):
        """Enforcement on BoringSSL found by signature: claude's SSL_write is held like
        OpenSSL's. Blocked, the prompt never reaches the stand-in and claude fails by itself
        (not killed); redacted, the key never reaches it either (masked, or blocked when the
        key left in an earlier write of the same request)."""
        secret = test_enforce.SECRET
        cg = test_enforce.TestCgroup()
        self.addCleanup(cg.remove)
        results = {}
        for action in ("redact", "block"):
            marker = uuid.uuid4().hex[:10]
            prompt = f"Check this deploy key {secret} for job {marker}; answer in one word."
            before = len(self.standin.entries)
            with self.enforcing_agent(cg, action) as agent:
                self.wait_attached(agent)
                res = self.claude_in_cgroup(cg, prompt)
                time.sleep(1.0)  # a request let through would be logged by now
                entries = [e for e in self.standin.entries[before:]
                           if marker in json.dumps(e.get("body"))]
            recs = agent.records()  # all of them: the agent has stopped
            actions = self.first_and_retries(recs, res.pid)
            results[action] = (res, entries, actions)
            aw.log(f"{action}: claude exit {res.returncode}, {len(entries)} request(s) at the "
                   f"stand-in, actions {[(a['action'], a['ok'], a['how']) for a in actions]}")

        # Claude Code's request body (tens of KB) goes out in several SSL_writes and the prompt
        # is in an early one: it has left when the write that completes the request is held,
        # so the redaction falls back to block and says so. Were the body one write, the
        # stand-in would get it masked; either is right, a leak is not.
        res, entries, actions = results["redact"]
        self.assertEqual(len(actions), 1, actions)
        if actions[0]["action"] == "redact":
            self.assertEqual(res.returncode, 0, res.describe())
            self.assertEqual(len(entries), 1, json.dumps(entries)[:3000])
            body = json.dumps(entries[0]["body"])
            self.assertNotIn(secret, body)
            self.assertIn("*" * len(secret), body)
            self.assertTrue(actions[0]["ok"], actions)
        else:
            self.assertEqual((actions[0]["action"], actions[0]["ok"]), ("block", True), actions)
            self.assertIn("redaction impossible", actions[0]["how"])
            self.assertIn("nothing was sent", actions[0]["how"])
            self.assertEqual(entries, [], "a request that could not be redacted reached the "
                             "stand-in")
            self.assertGreater(res.returncode, 0, "claude was killed:\n" + res.describe())

        res, entries, actions = results["block"]
        self.assertEqual(entries, [], "a blocked request reached the stand-in")
        self.assertGreater(res.returncode, 0, "claude should fail by itself:\n" + res.describe())
        self.assertEqual([(a["action"], a["ok"]) for a in actions], [("block", True)], actions)
        self.assertIn("nothing was sent", actions[0]["how"])

    def test_sni_names_the_host_and_gates_it(self):
        """Reached by a host name, claude sends SNI: the probe on BoringSSL's
        SSL_set_tlsext_host_name (located by signature) reports it for the SSL* its SSL_write
        uses. The llm.exchange carries it, and a block rule scoped to that host gates claude's
        write in the kernel (the gate's host check reads the SNI): held, refused, never at the
        stand-in. Without the SNI that write would not be held (a connection without SNI is
        gated only when the scope has no host) and would reach the stand-in."""
        secret = test_enforce.SECRET
        cg = test_enforce.TestCgroup()
        self.addCleanup(cg.remove)
        rule = f"""
        - rule: block-secrets-to-{HOST}
          match:
            traffic: {{kind: llm, direction: request, host: {HOST}}}
            process: {{cgroup: "{cg.rel}"}}
          when:
            findings: {{category: secret}}
          action: block
          severity: critical
          message: "block: {{exe}} sent {{detectors}} to {{host}}"
        """
        allowed_marker, blocked_marker = uuid.uuid4().hex[:10], uuid.uuid4().hex[:10]
        allowed_prompt = f"Answer with one word, the code name {allowed_marker} reversed."
        blocked_prompt = f"Check this deploy key {secret} for job {blocked_marker}; one word."
        before = len(self.named.entries)
        with self.enforcing_agent(cg, "block", rule) as agent:
            self.wait_attached(agent)
            allowed = self.claude_in_cgroup(cg, allowed_prompt, by_name=True)
            self.assertEqual(allowed.returncode, 0, allowed.describe())
            self.assertIsNotNone(llm.wait_exchange(agent, allowed.pid, aw.DATA_TIMEOUT),
                                 llm.describe_events(agent, allowed.pid))
            blocked = self.claude_in_cgroup(cg, blocked_prompt, by_name=True)
            time.sleep(1.0)  # a request let through would be logged by now
            entries = self.named.entries[before:]
        recs = agent.records()  # all of them: the agent has stopped

        def at_standin(marker: str) -> list[dict]:
            return [e for e in entries if marker in json.dumps(e.get("body"))]

        # Allowed (no secret): held, judged, let go; the exchange names the host by its SNI.
        self.assertEqual(len(at_standin(allowed_marker)), 1, json.dumps(entries)[:3000])
        mine = [e for e in llm.exchanges(recs, allowed.pid)
                if allowed_marker in json.dumps(e.get("messages"))]
        self.assertEqual(len(mine), 1, json.dumps(llm.exchanges(recs, allowed.pid))[:4000])
        self.assertEqual(mine[0]["connection"].get("sni"), HOST, json.dumps(mine[0])[:3000])
        self.assertEqual(mine[0]["process"]["exe"], os.path.realpath(self.CLAUDE))
        self.assertEqual([r for r in recs if r.get("type") == "enforce.action"
                          and r["process"]["pid"] == allowed.pid], [])

        # The secret to that host: blocked at claude's SSL_write, nothing sent.
        actions = self.first_and_retries(recs, blocked.pid)
        aw.log(f"blocked: claude exit {blocked.returncode}, actions "
               f"{[(a['action'], a['ok'], a['how']) for a in actions]}")
        self.assertEqual(at_standin(blocked_marker), [], "a blocked request reached the stand-in")
        self.assertGreater(blocked.returncode, 0,
                           "claude should fail by itself:\n" + blocked.describe())
        self.assertEqual([(a["action"], a["ok"]) for a in actions], [("block", True)], actions)
        self.assertIn("nothing was sent", actions[0]["how"])


# One class per older release: every test above, on that binary.
for _v in RELEASES:
    _name = "ClaudeCode_" + _v.replace(".", "_") + "_Test"
    globals()[_name] = type(_name, (ClaudeCodeTest,), {"CLAUDE": release_bin(_v)})
del _v, _name


if __name__ == "__main__":
    aw.main()
