"""MCP over HTTPS, live: the official SDK's client and server (clients/mcp_client.mjs,
clients/mcp_server.mjs) talk over Streamable HTTP (SSE responses and JSON responses) and the
legacy HTTP+SSE transport on 127.0.0.1; the agent must turn every request/response pair and
every notification into one `mcp.message` event that says what the client sent and got."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time

import aw
import llm

MCP_SERVER = os.path.join(llm.CLIENTS_DIR, "mcp_server.mjs")
MCP_CLIENT = os.path.join(llm.CLIENTS_DIR, "mcp_client.mjs")
MCP_ATTACK_CLIENT = os.path.join(llm.CLIENTS_DIR, "mcp_attack_client.mjs")
MCP_EVERYTHING = os.path.join(llm.CLIENTS_DIR, "mcp_everything_https.mjs")
MCP_EXPLORE_CLIENT = os.path.join(llm.CLIENTS_DIR, "mcp_explore_client.mjs")


def require_mcp_sdk() -> None:
    pkg = os.path.join(llm.CLIENTS_DIR, "node_modules", "@modelcontextprotocol", "sdk",
                       "package.json")
    if not os.path.isfile(pkg):
        raise AssertionError(f"@modelcontextprotocol/sdk is not installed in {llm.CLIENTS_DIR}: "
                             "run scripts/install-deps.sh --test")


def assert_session_messages(tc, events: list, client: dict) -> None:
    """The events of one SDK session (initialize, notifications/initialized, tools/list, then
    the tools/call of each call) against what the client printed."""
    tc.assertEqual(events[0]["status"], "ok")
    tc.assertEqual(events[0]["protocol_version"], "2025-11-25")
    tc.assertEqual(events[0]["instructions"], "Tools for agentwall's tests.")
    tc.assertEqual(events[1]["kind"], "notification")
    tc.assertEqual(events[2]["tools"], client["tools"])
    for ev, call in zip(events[3:], client["calls"]):
        tc.assertEqual(ev["direction"], "client_to_server")
        tc.assertEqual(ev["tool"], call["name"])
        tc.assertEqual(ev["arguments"], call["arguments"])
        tc.assertEqual(ev["is_error"], call["result"].get("isError", False))
        tc.assertEqual(ev["result_text"], call["result"]["content"][0]["text"])
        tc.assertGreater(ev["latency_ms"], 0)


class McpServer:
    """The test MCP server over HTTPS with the test PKI's certificate; stopped on exit."""

    def __init__(self, pki: aw.TestPKI, tmp: str, transport: str, json_responses: bool,
                 evil: bool = False, everything: bool = False, plain: bool = False,
                 log: str | None = None) -> None:
        """plain: plaintext HTTP on 127.0.0.1 instead of HTTPS (the test server only); log: a
        file the test server appends every POST body it reads to."""
        self.port_file = os.path.join(
            tmp, f"mcp-port-{transport}-{int(json_responses)}-{int(evil)}-{int(everything)}-"
            f"{int(plain)}")
        tls = ["--plain"] if plain else ["--cert", pki.cert, "--key", pki.key]
        argv = [llm.node_bin(), MCP_EVERYTHING if everything else MCP_SERVER, *tls,
                "--port-file", self.port_file]
        self.plain = plain
        if not everything:
            argv += ["--transport", transport]
        if evil:
            argv.append("--evil")
        if json_responses:
            argv.append("--json")
        if log:
            argv += ["--log", log]
        self.transport = transport
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL if everything else subprocess.PIPE,
                                     env=aw.client_env())
        deadline = time.monotonic() + llm.START_TIMEOUT
        while not (os.path.exists(self.port_file) and os.path.getsize(self.port_file)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                err = self.proc.stderr.read() if self.proc.stderr else b""
                raise AssertionError("the MCP test server did not start: " +
                                     err.decode(errors="replace")[-2000:])
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())

    def url(self) -> str:
        if self.plain:
            return f"http://127.0.0.1:{self.port}/" + ("sse" if self.transport == "sse" else "mcp")
        return f"https://localhost:{self.port}/" + ("sse" if self.transport == "sse" else "mcp")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


class McpTest(aw.AgentTestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        llm.node_bin()
        require_mcp_sdk()

    def session(self, agent: aw.Agent, transport: str, json_responses: bool = False) -> None:
        server = McpServer(self.pki, self.tmp, transport, json_responses)
        self.addCleanup(server.stop)
        res = aw.run_client([llm.node_bin(), MCP_CLIENT, "--url", server.url(), "--transport",
                             transport, "--message", f"hello over {transport}"],
                            env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert))
        client = json.loads(res.stdout)
        want = 6  # initialize, notifications/initialized, tools/list, three tools/call

        def mine(recs):
            return [e for e in recs if e.get("type") == "mcp.message"
                    and e["process"]["pid"] == res.pid]
        agent.wait_for(lambda r: len(mine(r)) >= want, what=f"{want} mcp.message events")
        events = mine(agent.records())
        self.assertEqual([e["method"] for e in events],
                         ["initialize", "notifications/initialized", "tools/list",
                          "tools/call", "tools/call", "tools/call"],
                         json.dumps(events, indent=1)[:4000])
        expected_transport = "http+sse" if transport == "sse" else "streamable_http"
        for e in events:
            self.assertEqual(e["transport"], expected_transport, e)
            self.assertEqual(e["server"], client["server"], e)
            self.assertEqual(e["client"], {"name": "agentwall-test-client", "version": "0.9.0"})
            self.assertEqual(e["process"]["exe"], os.path.realpath(llm.node_bin()))
            self.assertTrue(e["url"].startswith(f"https://localhost:{server.port}/"), e)
            if client["session_id"]:
                self.assertEqual(e["session_id"], client["session_id"])
            else:
                self.assertTrue(e["session_id"], e)  # the legacy transport's sessionId
        assert_session_messages(self, events, client)

    def test_three_http_transports(self):
        state = os.path.join(self.tmp, "state")
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir", state]) as agent:
            self.session(agent, "streamable")
            self.session(agent, "streamable", json_responses=True)
            self.session(agent, "sse")
        llm_calls = [e for e in agent.records() if e.get("type") == "llm.exchange"]
        self.assertEqual(llm_calls, [], "MCP traffic was also read as LLM calls")
        alerts = [e for e in agent.records() if e.get("type") == "mcp.alert"]
        self.assertEqual(alerts, [], "a benign server raised alerts")
        health = [e for e in agent.records() if e.get("type") == "agent.health"][-1]
        self.assertEqual(health["mcp"]["events"], 18, health["mcp"])
        self.assertEqual(health["mcp"]["unanswered"], 0, health["mcp"])
        # The inventory outlives the agent: three server URLs, each with its three tools.
        inv = subprocess.run([aw.agent_bin(), "mcp", "inventory", "--state-dir", state, "--json"],
                             capture_output=True, text=True, check=True)
        servers = json.loads(inv.stdout)["servers"]
        self.assertEqual(len(servers), 3, inv.stdout[:2000])
        for s in servers:
            self.assertEqual(s["name"], "agentwall-test-server")
            self.assertEqual([t["name"] for t in s["tools"]], ["add", "echo", "fail"])
            self.assertEqual(s["clients"], [os.path.realpath(llm.node_bin())])
            self.assertTrue(all(len(t["sha256"]) == 64 for t in s["tools"]))
        human = subprocess.run([aw.agent_bin(), "mcp", "inventory", "--state-dir", state],
                               capture_output=True, text=True, check=True).stdout
        self.assertIn("tool echo", human)

    def test_policy_rules_match_mcp_calls(self):
        """Rules with `traffic: {kind: mcp}` and `mcp: {server, tool, method}` judge MCP calls:
        the one that matches raises policy.alert naming the call; one for another tool does
        not fire."""
        policy = os.path.join(self.tmp, "mcp-policy.yaml")
        with open(policy, "w") as f:
            f.write(textwrap.dedent("""\
                mode: monitor
                rules:
                  - rule: mcp-add-watch
                    match:
                      traffic: {kind: mcp, direction: request}
                      mcp: {server: agentwall-test-*, tool: add, method: tools/call}
                    action: block
                    severity: medium
                    message: "{exe} called MCP tool {tool}"
                  - rule: mcp-never
                    match:
                      traffic: {kind: mcp}
                      mcp: {tool: delete_everything}
                    action: alert
                    severity: high
                """))
        with aw.Agent(command="run", args=["--health-interval", "0", "--policy", policy,
                                           "--state-dir", os.path.join(self.tmp, "s")]) as agent:
            self.session(agent, "streamable")
            agent.wait_for(lambda r: any(e.get("type") == "policy.alert" for e in r),
                           what="the policy.alert")
        alerts = [e for e in agent.records() if e.get("type") == "policy.alert"]
        self.assertEqual(len(alerts), 1, json.dumps(alerts)[:2000])
        a = alerts[0]
        self.assertEqual((a["rule"], a["outcome"], a["direction"]),
                         ("mcp-add-watch", "would block", "request"))
        self.assertEqual((a["mcp"]["tool"], a["mcp"]["method"], a["mcp"]["server"]),
                         ("add", "tools/call", "agentwall-test-server"))
        self.assertIn("called MCP tool add", a["message"])

    def test_server_everything_through_tls(self):
        """The reference server from npm (@modelcontextprotocol/server-everything), behind a
        TLS front end on loopback: every listing and call becomes an mcp.message that matches
        what the client got, its inventory is recorded, and it raises no alert."""
        server = McpServer(self.pki, self.tmp, "streamable", False, everything=True)
        self.addCleanup(server.stop)
        state = os.path.join(self.tmp, "state")
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir", state]) as agent:
            res = aw.run_client([llm.node_bin(), MCP_EXPLORE_CLIENT, "--url", server.url(),
                                 "--call", "echo", '{"message": "hello everything"}',
                                 "--call", "get-sum", '{"a": 2, "b": 40}'],
                                env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert))
            client = json.loads(res.stdout)

            def mine(recs):
                return [e for e in recs if e.get("type") == "mcp.message"
                        and e["process"]["pid"] == res.pid and e.get("kind") == "request"]
            agent.wait_for(lambda r: len([e for e in mine(r) if e["method"] == "tools/call"]) >= 2,
                           what="the two tools/call events")
        events = mine(agent.records())
        by_method = {}
        for e in events:
            by_method.setdefault(e["method"], []).append(e)
        self.assertEqual(by_method["tools/list"][0]["tools"], client["tools"])
        self.assertEqual(by_method["prompts/list"][0]["prompts"], client["prompts"])
        self.assertEqual(by_method["resources/list"][0]["resources"], client["resources"])
        for ev, call in zip(by_method["tools/call"], client["calls"]):
            self.assertEqual((ev["tool"], ev["arguments"]), (call["name"], call["arguments"]))
            self.assertEqual(ev["result_text"], call["result"]["content"][0]["text"])
        for e in events:
            self.assertEqual(e["server"]["name"], client["server"]["name"])
            self.assertEqual(e["session_id"], client["session_id"])
        alerts = [e for e in agent.records() if e.get("type") == "mcp.alert"]
        self.assertEqual(alerts, [], "the reference server raised alerts: " +
                         json.dumps([(a["rule"], a.get("tool")) for a in alerts]))
        inv = subprocess.run([aw.agent_bin(), "mcp", "inventory", "--state-dir", state, "--json"],
                             capture_output=True, text=True, check=True)
        (s,) = json.loads(inv.stdout)["servers"]
        self.assertEqual(sorted(t["name"] for t in s["tools"]), sorted(client["tools"]))
        self.assertEqual(s["prompts"], sorted(client["prompts"]))

    def test_malicious_server_tricks_are_reported(self):
        """Poisoned description, name collision, shadowing, a poisoned tool result, a toxic
        flow (read ~/.ssh, then e-mail), and a rug pull announced by list_changed: each raises
        its mcp.alert, naming the evil server and tool; the benign server raises none."""
        benign = McpServer(self.pki, self.tmp, "streamable", False)
        self.addCleanup(benign.stop)
        evil = McpServer(self.pki, self.tmp, "streamable", False, evil=True)
        self.addCleanup(evil.stop)
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           os.path.join(self.tmp, "state")]) as agent:
            res = aw.run_client([llm.node_bin(), MCP_ATTACK_CLIENT, "--benign", benign.url(),
                                 "--evil", evil.url()],
                                env=aw.client_env(NODE_EXTRA_CA_CERTS=self.pki.ca_cert))
            want = {("mcp.tool_poisoning", "get_weather"), ("mcp.tool_name_collision", "echo"),
                    ("mcp.tool_shadowing", "notify"), ("mcp.tool_result_injection", "read_notes"),
                    ("mcp.toxic_flow", "send_email"), ("mcp.tool_changed", "get_weather"),
                    ("mcp.tools_list_changed", "")}

            def got(recs):
                return {(e["rule"], e.get("tool", "")) for e in recs
                        if e.get("type") == "mcp.alert"}
            agent.wait_for(lambda r: want <= got(r), what="every mcp.alert")
        alerts = [e for e in agent.records() if e.get("type") == "mcp.alert"]
        summary = json.dumps([(a["rule"], a.get("tool"), a["server"]["name"]) for a in alerts])
        aw.log("mcp alerts: " + summary)
        self.assertLessEqual(want, got(alerts), summary)
        for a in alerts:
            self.assertEqual(a["server"]["name"], "weather-helper", summary)
            self.assertEqual(a["process"]["pid"], res.pid, a)
        self.assertEqual(len(alerts), len(got(alerts)), "an alert was raised twice: " + summary)
        flow = next(a for a in alerts if a["rule"] == "mcp.toxic_flow")
        self.assertEqual([(s["step"], s["tool"]) for s in flow["steps"]],
                         [("read", "read_file"), ("send", "send_email")])
        pull = next(a for a in alerts if a["rule"] == "mcp.tool_changed")
        self.assertIn("<IMPORTANT>", pull["old_description"])
        self.assertIn("uploads the user's files", pull["new_description"])


if __name__ == "__main__":
    aw.main()
