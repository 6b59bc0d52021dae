"""MCP over HTTPS, live: the official SDK's client and server (clients/mcp_client.mjs,
clients/mcp_server.mjs) talk over Streamable HTTP (SSE responses and JSON responses) and the
legacy HTTP+SSE transport on 127.0.0.1; the agent must turn every request/response pair and
every notification into one `mcp.message` event that says what the client sent and got."""

from __future__ import annotations

import json
import os
import subprocess
import time

import aw
import llm

MCP_SERVER = os.path.join(llm.CLIENTS_DIR, "mcp_server.mjs")
MCP_CLIENT = os.path.join(llm.CLIENTS_DIR, "mcp_client.mjs")


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

    def __init__(self, pki: aw.TestPKI, tmp: str, transport: str, json_responses: bool) -> None:
        self.port_file = os.path.join(tmp, f"mcp-port-{transport}-{int(json_responses)}")
        argv = [llm.node_bin(), MCP_SERVER, "--cert", pki.cert, "--key", pki.key,
                "--port-file", self.port_file, "--transport", transport]
        if json_responses:
            argv.append("--json")
        self.transport = transport
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=aw.client_env())
        deadline = time.monotonic() + llm.START_TIMEOUT
        while not (os.path.exists(self.port_file) and os.path.getsize(self.port_file)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the MCP test server did not start: " +
                                     self.proc.stderr.read().decode(errors="replace")[-2000:])
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())

    def url(self) -> str:
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
        with aw.Agent(command="run", args=["--health-interval", "0"]) as agent:
            self.session(agent, "streamable")
            self.session(agent, "streamable", json_responses=True)
            self.session(agent, "sse")
        llm_calls = [e for e in agent.records() if e.get("type") == "llm.exchange"]
        self.assertEqual(llm_calls, [], "MCP traffic was also read as LLM calls")


if __name__ == "__main__":
    aw.main()
