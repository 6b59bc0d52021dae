"""Plaintext HTTP on loopback, live: local model servers (Ollama's API, OpenAI-compatible
servers) and MCP servers spoken to over plain HTTP on 127.0.0.1 have no TLS library to probe;
the agent captures them at the socket system calls, for TCP connections to loopback on the
ports it is told to watch (`--plaintext-port`, `capture.plaintext_ports`), and nothing else.

The stand-in and the SDK MCP server run with --plain (http.createServer) on a port the kernel
picks; the clients are the official SDKs (Node: ollama, openai, @modelcontextprotocol/sdk),
Python urllib and curl, each using a different system call family (write/read,
sendto/recvfrom). Every call must come out as the same llm.exchange or mcp.message the TLS
path gives, with `connection.tls: false`."""

from __future__ import annotations

import json
import os
import shutil

import aw
import llm
from test_mcp import MCP_CLIENT, McpServer, assert_session_messages, require_mcp_sdk


class PlaintextTest(aw.AgentTestCase):

    agent: aw.Agent
    standin: llm.StandIn
    unlisted: llm.StandIn

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        llm.node_bin()
        llm.require_sdks()
        require_mcp_sdk()
        cls.class_tmp = aw.make_tempdir("aw-plain-")
        cls.addClassCleanup(aw.remove_tempdir, cls.class_tmp)
        cls.standin = llm.StandIn(cls.pki, plain=True).start()
        cls.addClassCleanup(cls.standin.stop)
        # A second local server the agent is not told about: its traffic must stay unseen.
        cls.unlisted = llm.StandIn(cls.pki, plain=True).start()
        cls.addClassCleanup(cls.unlisted.stop)
        cls.mcp = McpServer(cls.pki, cls.class_tmp, "streamable", False, plain=True)
        cls.addClassCleanup(cls.mcp.stop)
        cls.mcp_sse = McpServer(cls.pki, cls.class_tmp, "sse", False, plain=True)
        cls.addClassCleanup(cls.mcp_sse.stop)
        # IPv6 loopback, listed as well.
        cls.standin6 = llm.StandIn(cls.pki, plain=True, host="::1").start()
        cls.addClassCleanup(cls.standin6.stop)
        # The built-in ports (11434, ...) stay listed: --plaintext-port adds.
        agent = aw.Agent(command="run", args=[
            "--plaintext-port", str(cls.standin.port), "--plaintext-port", str(cls.mcp.port),
            "--plaintext-port", str(cls.mcp_sse.port), "--plaintext-port", str(cls.standin6.port),
            "--health-interval", "0", "--state-dir", os.path.join(cls.class_tmp, "state")])
        agent.__enter__()
        cls.agent = agent
        cls.addClassCleanup(agent.__exit__, None, None, None)

    def exchange_of(self, res, client, entry, exe) -> dict:
        event = llm.wait_exchange(self.agent, res.pid, aw.DATA_TIMEOUT)
        if event is None:
            self.fail(f"no llm.exchange for pid {res.pid} over plaintext HTTP\n" +
                      llm.describe_events(self.agent, res.pid))
        self.assertEqual(len(llm.exchanges(self.agent.records(), res.pid)), 1)
        llm.check_exchange(self, event, client, entry, exe=exe)
        conn = event["connection"]
        self.assertIs(conn.get("tls"), False, conn)
        self.assertEqual(conn.get("peer"), f"127.0.0.1:{self.standin.port}", conn)
        self.assertTrue(conn.get("local", "").startswith("127.0.0.1:"), conn)
        self.assertGreaterEqual(conn.get("fd", -1), 0, conn)
        self.assertNotIn("sni", conn)
        return event

    def sdk(self, sdk: str, stream: bool) -> dict:
        tag = llm.new_tag()
        res, client = llm.run_llm_client(self.standin, sdk, stream=stream, tag=tag)
        entry = self.standin.wait_entry(tag)
        self.assertEqual(entry["http_version"], "1.1")
        return self.exchange_of(res, client, entry, llm.node_bin())

    # Node (undici): write() and read().
    def test_ollama_sdk_chat(self):
        event = self.sdk("ollama", stream=False)
        self.assertEqual(event["provider"], "ollama")

    def test_ollama_sdk_chat_stream(self):
        self.sdk("ollama", stream=True)

    def test_ollama_sdk_generate_stream(self):
        self.sdk("ollama-generate", stream=True)

    def test_openai_sdk_against_a_local_server(self):
        event = self.sdk("openai", stream=True)
        self.assertEqual(event["provider"], "openai")  # the API family: no known host or port

    # Python: sendto() and recvfrom() (socket.sendall, recv_into).
    def test_python_urllib(self):
        tag = llm.new_tag()
        res, client = llm.run_urllib_client(self.standin, tag=tag)
        self.exchange_of(res, client, self.standin.wait_entry(tag), None)

    # curl: send() and recv(), an Ollama chat in one JSON body.
    def test_curl_ollama_chat(self):
        curl = shutil.which("curl")
        if not curl:
            self.fail("curl is not installed (scripts/install-deps.sh installs it)")
        tag = llm.new_tag()
        body = {"model": "llama3.2", "stream": False,
                "messages": [{"role": "user", "content": "Say hello over plain HTTP."}]}
        res = aw.run_client([curl, "-sS", "--fail", f"{self.standin.base_url}/api/chat",
                             "-H", "content-type: application/json", "-H",
                             f"x-standin-tag: {tag}", "--data-binary", json.dumps(body)])
        answer = json.loads(res.stdout)
        entry = self.standin.wait_entry(tag)
        event = llm.wait_exchange(self.agent, res.pid, aw.DATA_TIMEOUT)
        self.assertIsNotNone(event, llm.describe_events(self.agent, res.pid))
        self.assertEqual(event["provider"], "ollama")
        self.assertEqual(event["model"], "llama3.2")
        self.assertEqual(event["messages"], [{"role": "user", "text": body["messages"][0]["content"]}])
        self.assertEqual(event["output_text"], answer["message"]["content"])
        self.assertEqual(event["output_text"], entry["answer"]["output_text"])
        self.assertEqual(event["usage"]["output_tokens"], answer["eval_count"])
        self.assertEqual(event["process"]["exe"], os.path.realpath(curl))
        self.assertIs(event["connection"]["tls"], False)

    # MCP over plain HTTP: the SDK client and server, Streamable HTTP and legacy HTTP+SSE.
    def mcp_session(self, server: McpServer, transport: str) -> None:
        res = aw.run_client([llm.node_bin(), MCP_CLIENT, "--url", server.url(), "--transport",
                             transport, "--message", "hello over plain HTTP"],
                            env=aw.client_env())
        client = json.loads(res.stdout)

        def mine(recs):
            return [e for e in recs if e.get("type") == "mcp.message"
                    and e["process"]["pid"] == res.pid]
        self.agent.wait_for(lambda r: len(mine(r)) >= 6, what="6 mcp.message events")
        events = mine(self.agent.records())
        self.assertEqual([e["method"] for e in events],
                         ["initialize", "notifications/initialized", "tools/list",
                          "tools/call", "tools/call", "tools/call"])
        for e in events:
            self.assertEqual(e["transport"],
                             "http+sse" if transport == "sse" else "streamable_http", e)
            self.assertTrue(e["url"].startswith(f"http://127.0.0.1:{server.port}/"), e)
            if client["session_id"]:
                self.assertEqual(e["session_id"], client["session_id"], e)
            else:
                self.assertTrue(e["session_id"], e)  # the legacy transport's sessionId
            self.assertIs(e["connection"]["tls"], False, e)
        assert_session_messages(self, events, client)

    def test_mcp_streamable_http(self):
        self.mcp_session(self.mcp, "streamable")

    def test_mcp_legacy_sse(self):
        self.mcp_session(self.mcp_sse, "sse")

    # ::1: curl's sendto/recvfrom on an IPv6 loopback connection.
    def test_ipv6_loopback(self):
        tag = llm.new_tag()
        body = {"model": "llama3.2", "stream": False,
                "messages": [{"role": "user", "content": "Say hello over IPv6."}]}
        res = aw.run_client(["curl", "-sS", "--fail", f"{self.standin6.base_url}/api/chat",
                             "-H", f"x-standin-tag: {tag}", "--data-binary", json.dumps(body)])
        answer = json.loads(res.stdout)
        self.standin6.wait_entry(tag)
        event = llm.wait_exchange(self.agent, res.pid, aw.DATA_TIMEOUT)
        self.assertIsNotNone(event, llm.describe_events(self.agent, res.pid))
        self.assertEqual(event["output_text"], answer["message"]["content"])
        self.assertEqual(event["connection"]["peer"], f"[::1]:{self.standin6.port}")
        self.assertIs(event["connection"]["tls"], False)

    # Not listed: not captured. The listed server's call, made after, proves the agent was
    # reading by the time the unlisted one was done.
    def test_unlisted_port_is_not_captured(self):
        tag = llm.new_tag()
        res, _ = llm.run_urllib_client(self.unlisted, tag=tag)
        self.unlisted.wait_entry(tag)
        self.test_python_urllib()
        recs = self.agent.records()
        self.assertEqual(llm.exchanges(recs, res.pid), [])
        self.assertEqual([e for e in recs if e.get("process", {}).get("pid") == res.pid
                          or e.get("pid") == res.pid], [])


if __name__ == "__main__":
    aw.main()
