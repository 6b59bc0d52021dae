"""MCP over stdio, live: the official SDK's StdioClientTransport (clients/mcp_stdio_client.mjs)
spawns the SDK's StdioServerTransport server (clients/mcp_server.mjs --transport stdio) and
talks to it through the server's stdin and stdout (Unix socketpairs, as Node gives its
children). The agent must watch only that server (found at its exec by its command line),
and turn every request/response pair and notification into one `mcp.message` event of the
process pair. A process that moves the same JSON-RPC text through pipes without being an MCP
server candidate must produce nothing, and a candidate whose first line is not `initialize`
must be let go. Also covered: a server behind a forking shell and behind a candidate wrapper,
100 kB messages, and a server on pipes that reads with readv and writes with writev; the
reference servers from npm (@modelcontextprotocol/server-everything and server-filesystem)
spawned by the SDK's client as an agent host does, compared call by call with what the client
got, pinned in the inventory, with no alert; and a session already running when the agent
starts, joined mid-way."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import aw
import llm
import test_mcp

MCP_SERVER = os.path.join(llm.CLIENTS_DIR, "mcp_server.mjs")
MCP_STDIO_CLIENT = os.path.join(llm.CLIENTS_DIR, "mcp_stdio_client.mjs")
# The reference servers from npm, started the way a host's configuration names them (without
# npx, which would ask the registry): node on the package's entry point, or the package's bin.
NODE_MODULES = os.path.join(llm.CLIENTS_DIR, "node_modules")
EVERYTHING_MAIN = os.path.join(NODE_MODULES, "@modelcontextprotocol", "server-everything",
                               "dist", "index.js")
FILESYSTEM_BIN = os.path.join(NODE_MODULES, ".bin", "mcp-server-filesystem")

INITIALIZE = (b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":'
              b'"2025-11-25","capabilities":{},"clientInfo":{"name":"impostor","version":"1"}}}\n')
TOOLS_CALL = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",'
              b'"arguments":{"message":"not captured"}}}\n')

# A parent that pipes JSON-RPC lines through a child and reads back what it writes: the
# child's stdin and stdout are pipes that carry exactly what an MCP session would. It prints
# the child's pid, waits for a line on its own stdin, writes, then prints the child's output.
PIPE_THROUGH = r"""
import subprocess, sys
data = open(sys.argv[1], "rb").read()
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
print(child.pid, flush=True)
sys.stdin.readline()
out, _ = child.communicate(data, timeout=30)
sys.stdout.buffer.write(out)
sys.exit(child.returncode)
"""

# A minimal MCP server that reads with readv (the first iovec 5 bytes, so lines straddle
# them) and answers with writev in three pieces: the vectored system calls, which the SDKs
# use when buffers queue up.
VECTORED_SERVER = r"""
import json, os
buf = b""
while True:
    head, tail = bytearray(5), bytearray(65536)
    n = os.readv(0, [head, tail])
    if n == 0:
        break
    buf += (bytes(head) + bytes(tail))[:n]
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        m = json.loads(line)
        if "id" not in m:
            continue
        if m["method"] == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "vectored", "version": "0.1"}}
        else:
            text = "v:" + m["params"]["arguments"]["message"]
            result = {"content": [{"type": "text", "text": text}]}
        out = json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": result}).encode()
        os.writev(1, [out[:10], out[10:], b"\n"])
"""


def pipe_through(agent: aw.Agent, tmp: str, argv: list[str], data: bytes,
                 watched: bool) -> tuple[int, int, bytes]:
    """Runs argv as the child of a Python parent that writes `data` to its stdin and reads its
    stdout; returns (parent pid, child pid, what the child wrote). When the child is to be `watched`, the data goes
    only once the agent says it watches it (a busy host can take a while to handle the exec);
    otherwise after a second, time enough for a wrong watch to take hold."""
    path = os.path.join(tmp, "pipe-through.in")
    with open(path, "wb") as f:
        f.write(data)
    parent = subprocess.Popen([sys.executable, "-c", PIPE_THROUGH, path, *argv],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=aw.client_env())
    try:
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + aw.DATA_TIMEOUT
        line = f"watching the stdio of pid {child} "
        while watched and line not in agent.stderr_tail(10000):
            if time.monotonic() > deadline:
                raise AssertionError(f"the agent did not watch pid {child} ({argv})\n" +
                                     agent.stderr_tail())
            time.sleep(0.05)
        if not watched:
            time.sleep(1)
        parent.stdin.write(b"go\n")
        parent.stdin.close()
        out = parent.stdout.read()
        if parent.wait(timeout=aw.CLIENT_TIMEOUT) != 0:
            raise AssertionError(f"pipe-through {argv} failed")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()
    return parent.pid, child, out


def require_reference_servers() -> None:
    for path in (EVERYTHING_MAIN, FILESYSTEM_BIN):
        if not os.path.exists(path):
            raise AssertionError(f"{path} is missing: run scripts/install-deps.sh --test")


def watched_pids(agent: aw.Agent) -> set[int]:
    """The pids whose stdio the agent watched, from its log."""
    return {int(m) for m in re.findall(r"watching the stdio of pid (\d+) ",
                                       agent.stderr_tail(100000))}


def mcp_messages(records, client_pid: int) -> list[dict]:
    return [e for e in records if e.get("type") == "mcp.message"
            and e["process"]["pid"] == client_pid]


class McpStdioTest(aw.AgentTestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        llm.node_bin()
        test_mcp.require_mcp_sdk()
        require_reference_servers()

    def session(self, agent: aw.Agent, server_argv: list[str], calls: int = 3,
                message: str = "hello over stdio") -> tuple[dict, list]:
        """Runs the SDK client against a server it spawns; returns what the client printed and
        the events of its session."""
        res = aw.run_client([llm.node_bin(), MCP_STDIO_CLIENT, "--calls", str(calls),
                             "--message", message, "--", *server_argv])
        client = json.loads(res.stdout)
        self.assertEqual(client["client_pid"], res.pid)
        want = 3 + calls  # initialize, notifications/initialized, tools/list, the calls

        def mine(recs):
            return [e for e in recs if e.get("type") == "mcp.message"
                    and e["process"]["pid"] == res.pid]
        agent.wait_for(lambda r: len(mine(r)) >= want, what=f"{want} mcp.message events")
        return client, mine(agent.records())

    def check_session(self, client: dict, events: list, server_pid: int,
                      cmdline: str = "mcp_server.mjs --transport stdio") -> None:
        self.assertEqual([e["method"] for e in events],
                         ["initialize", "notifications/initialized", "tools/list"] +
                         ["tools/call"] * len(client["calls"]),
                         json.dumps(events, indent=1)[:4000])
        for e in events:
            self.assertEqual(e["transport"], "stdio", e)
            self.assertEqual(e["session_id"], f"{client['client_pid']}-{server_pid}", e)
            self.assertEqual(e["server"], client["server"], e)
            self.assertEqual(e["client"], {"name": "agentwall-stdio-test-client",
                                           "version": "0.9.1"})
            self.assertEqual(e["process"]["exe"], os.path.realpath(llm.node_bin()))
            self.assertEqual(e["server_process"]["pid"], server_pid)
            self.assertIn(cmdline, e["server_process"]["cmdline"])
            self.assertNotIn("connection", e)
        test_mcp.assert_session_messages(self, events, client)

    def test_sdk_over_stdio_and_nothing_else(self):
        node = llm.node_bin()
        with aw.Agent(command="run", args=["--health-interval", "0",
                                           "--mcp-stdio-exe", "*/tac"]) as agent:
            # The SDK client spawns the server itself.
            client, events = self.session(agent, [node, MCP_SERVER, "--transport", "stdio"],
                                          calls=5)
            self.check_session(client, events, client["server_pid"])
            # Through a shell that forks: the server is the shell's child, the client still
            # the SDK's process (the nearest ancestor whose stdin is not the server's).
            client2, events2 = self.session(
                agent, ["/bin/sh", "-c", f"{node} {MCP_SERVER} --transport stdio; true"])
            self.assertEqual(events2[0]["server_process"]["ppid"], client2["server_pid"])
            self.check_session(client2, events2, events2[0]["server_process"]["pid"])
            # A wrapper that is a candidate (its name says mcp-server) runs a server whose own
            # command line says nothing: the server inherits the watch through the shared stdin.
            plain = os.path.join(self.tmp, "plain.mjs")
            os.symlink(MCP_SERVER, plain)  # node resolves the SDK from the real path
            wrapper = os.path.join(self.tmp, "mcp-server-wrapper.sh")
            with open(wrapper, "w") as f:
                f.write(f"{node} {plain} --transport stdio\ntrue\n")
            client4, events4 = self.session(agent, ["/bin/sh", wrapper])
            self.assertEqual(events4[0]["server_process"]["cmdline"],
                             f"{node} {plain} --transport stdio")
            self.check_session(client4, events4, events4[0]["server_process"]["pid"],
                               cmdline=f"{plain} --transport stdio")
            # A message of 100 kB each way: several reads of the server's stdin, one write of
            # many 16 KiB chunks, put back together.
            big = "x" * 100_000
            client5, events5 = self.session(agent, [node, MCP_SERVER, "--transport", "stdio"],
                                            message=big)
            echo = events5[3]
            self.assertEqual(echo["tool"], "echo")
            self.assertTrue(echo["arguments_truncated"])  # past the content cap, 4096 bytes
            self.assertEqual(echo["arguments_text"], json.dumps({"message": big}, separators=(",", ":"))[:4096])
            self.assertEqual(echo["result_text"], client5["calls"][0]["result"]["content"][0]
                             ["text"][:4096])
            self.assertEqual([e["method"] for e in events5[4:]], ["tools/call"] * 2)
            # Scope: the same JSON-RPC text through the pipes of processes that are no MCP
            # server candidates (cat, and a Python parent) is never looked at.
            cat_parent, cat_pid, out = pipe_through(agent, self.tmp, ["cat"],
                                                    INITIALIZE + TOOLS_CALL, watched=False)
            self.assertEqual(out, INITIALIZE + TOOLS_CALL)
            # A candidate (named by --mcp-stdio-exe) whose first line is not initialize is
            # let go at once, whatever comes after.
            tac_parent, tac_pid, _ = pipe_through(agent, self.tmp, ["tac"],
                                                  b"hello\n" + INITIALIZE + TOOLS_CALL,
                                                  watched=True)
            # readv and writev, through pipes (not sockets), from a Python parent.
            vectored = os.path.join(self.tmp, "mcp_server_vectored.py")
            with open(vectored, "w") as f:
                f.write(VECTORED_SERVER)
            v_parent, v_pid, out = pipe_through(
                agent, self.tmp, [sys.executable, vectored],
                INITIALIZE + b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n' +
                TOOLS_CALL, watched=True)
            self.assertEqual(len(out.splitlines()), 2)
            agent.wait_for(lambda r: len([e for e in r if e.get("type") == "mcp.message" and
                                          e.get("server_process", {}).get("pid") == v_pid]) >= 3,
                           what="the vectored session's events")
            # A third session after both, so that their data (if any) has been read.
            client3, events3 = self.session(agent, [node, MCP_SERVER, "--transport", "stdio"])
            self.check_session(client3, events3, client3["server_pid"])
        vec = [e for e in agent.records() if e.get("type") == "mcp.message"
               and e.get("server_process", {}).get("pid") == v_pid]
        # All three lines went in one write, before any answer: the notification comes out
        # first, before initialize is answered (so without the session's client and server).
        self.assertEqual([e["method"] for e in vec],
                         ["notifications/initialized", "initialize", "tools/call"], vec)
        for e in vec:
            self.assertEqual(e["session_id"], f"{v_parent}-{v_pid}", e)
            self.assertEqual(e["process"]["pid"], v_parent, e)
        for e in vec[1:]:
            self.assertEqual(e["server"], {"name": "vectored", "version": "0.1"}, e)
            self.assertEqual(e["client"], {"name": "impostor", "version": "1"}, e)
        self.assertEqual(vec[2]["arguments"], {"message": "not captured"})
        self.assertEqual(vec[2]["result_text"], "v:not captured")
        strangers = {cat_parent, cat_pid, tac_parent, tac_pid}
        leaked = [e for e in agent.records() if e.get("type", "").startswith("mcp.")
                  and (e["process"]["pid"] in strangers or
                       e.get("server_process", {}).get("pid") in strangers)]
        self.assertEqual(leaked, [])
        ours = {c["client_pid"] for c in (client, client2, client3, client4, client5)}
        self.assertEqual([e for e in agent.records() if e.get("type") == "llm.exchange"
                          and e["process"]["pid"] in ours], [])
        health = [e for e in agent.records() if e.get("type") == "agent.health"][-1]
        stdio = health["mcp"]["stdio"]
        self.assertEqual(stdio["sessions"], 6, stdio)
        self.assertEqual(stdio["rejected"], 1, stdio)  # tac
        # Per session: 3 + calls lines in (initialize, initialized, tools/list, the calls) and
        # 2 + calls out.
        # ... and the vectored session's 3 lines in, 2 out.
        self.assertEqual(stdio["lines"], sum(5 + 2 * n for n in (5, 3, 3, 3, 3)) + 5, stdio)
        self.assertEqual(stdio["gaps"], 0, stdio)
        self.assertEqual(stdio["dropped_bytes"], 0, stdio)
        self.assertEqual(stdio["ringbuf_drop_bytes"], 0, stdio)
        self.assertGreater(stdio["bytes"], 200_000, stdio)
        # Only the servers' own stdin and stdout were copied, and tac's first read and the
        # writes it made before it was let go.
        self.assertLessEqual(stdio["calls"], stdio["lines"] + 4, stdio)

    def explore(self, agent: aw.Agent, server_argv: list[str], calls: list) -> tuple[dict, list]:
        """Runs the explore client against a stdio server it spawns, with `calls`
        ([name, arguments]); returns what the client printed and the events of its session,
        once all the calls are in."""
        argv = [llm.node_bin(), test_mcp.MCP_EXPLORE_CLIENT]
        for name, args in calls:
            argv += ["--call", name, json.dumps(args)]
        res = aw.run_client(argv + ["--", *server_argv])
        client = json.loads(res.stdout)
        self.assertEqual(client["client_pid"], res.pid)
        agent.wait_for(lambda r: len([e for e in mcp_messages(r, res.pid)
                                      if e["method"] == "tools/call"]) >= len(calls),
                       what=f"{len(calls)} tools/call events of {server_argv}")
        return client, mcp_messages(agent.records(), res.pid)

    def check_explored(self, client: dict, events: list, cmdline: str) -> None:
        """The events of one explore session against what the client printed."""
        dump = json.dumps(events, indent=1)[:6000]
        requests = [e for e in events if e["kind"] == "request"]
        listings = ["tools/list"] + (["prompts/list"] if client["prompts"] else []) + \
            (["resources/list"] if client["resources"] else [])
        self.assertEqual([e["method"] for e in requests],
                         ["initialize", *listings] + ["tools/call"] * len(client["calls"]), dump)
        self.assertIn("notifications/initialized",
                      [e["method"] for e in events if e["kind"] == "notification"], dump)
        for e in events:
            self.assertEqual(e["transport"], "stdio", e)
            self.assertEqual(e["session_id"], f"{client['client_pid']}-{client['server_pid']}", e)
            self.assertEqual(e["server_process"]["pid"], client["server_pid"], e)
            self.assertEqual(e["server_process"]["cmdline"], cmdline, e)
            self.assertNotIn("joined_midway", e)
        for e in requests:
            self.assertEqual(e["status"], "ok", e)
            self.assertEqual(e["client"], {"name": "agentwall-explore-client", "version": "0.1.0"})
            self.assertEqual(e["server"], {"name": client["server"]["name"],
                                           "version": client["server"]["version"]}, e)
        by_method = {e["method"]: e for e in requests}
        self.assertEqual(by_method["tools/list"]["tools"], client["tools"])
        if client["prompts"]:
            self.assertEqual(by_method["prompts/list"]["prompts"], client["prompts"])
        if client["resources"]:
            self.assertEqual(by_method["resources/list"]["resources"], client["resources"])
        for ev, call in zip([e for e in requests if e["method"] == "tools/call"],
                            client["calls"]):
            self.assertEqual((ev["tool"], ev["arguments"]), (call["name"], call["arguments"]))
            self.assertEqual(ev["is_error"], call["result"].get("isError", False), ev)
            self.assertEqual(ev["result_text"],
                             "\n".join(c["text"] for c in call["result"]["content"]
                                       if c.get("type") == "text"))

    def test_npm_reference_servers_over_stdio(self):
        """@modelcontextprotocol/server-everything (node on its entry point) and
        @modelcontextprotocol/server-filesystem (its npm bin, a `#!/usr/bin/env node` script,
        rooted in a directory of the test's) spawned by the SDK's client: every listing and
        call is an mcp.message that matches what the client got, both servers and their tools
        are pinned in the inventory, and neither raises an alert."""
        root = os.path.join(self.tmp, "fsroot")
        os.makedirs(os.path.join(root, "sub"))
        notes = os.path.join(root, "notes.txt")
        with open(notes, "w") as f:
            f.write("Shopping list: apples, flour, eggs.\n")
        state = os.path.join(self.tmp, "state")
        t0 = time.monotonic()
        with aw.Agent(command="run", args=["--health-interval", "0",
                                           "--state-dir", state]) as agent:
            t_ready = time.monotonic()
            everything, ev_events = self.explore(
                agent, [llm.node_bin(), EVERYTHING_MAIN, "stdio"],
                [["echo", {"message": "hello everything over stdio"}],
                 ["get-sum", {"a": 2, "b": 40}]])
            t_everything = time.monotonic()
            files, fs_events = self.explore(
                agent, [FILESYSTEM_BIN, root],
                [["read_text_file", {"path": notes}], ["list_directory", {"path": root}],
                 ["list_allowed_directories", {}]])
            t_files = time.monotonic()
        aw.log(f"timing: agent ready {t_ready - t0:.2f}s, server-everything session "
               f"{t_everything - t_ready:.2f}s, server-filesystem session "
               f"{t_files - t_everything:.2f}s")
        self.assertEqual(everything["server"]["name"], "mcp-servers/everything")
        self.check_explored(everything, ev_events, f"{llm.node_bin()} {EVERYTHING_MAIN} stdio")
        self.assertEqual(files["server"]["name"], "secure-filesystem-server")
        # The SDK runs the bin itself; env hands it to node, which keeps the script's path.
        self.check_explored(files, fs_events, f"node {FILESYSTEM_BIN} {root}")
        self.assertEqual(files["calls"][0]["result"]["content"][0]["text"],
                         "Shopping list: apples, flour, eggs.\n")
        # Alerts of our sessions and servers. Any agent sees the whole host: servers other
        # tests run meanwhile (another checkout's) collide with ours by tool name, and are
        # not ours to judge.
        urls = {f"stdio:{llm.node_bin()} {EVERYTHING_MAIN} stdio",
                f"stdio:node {FILESYSTEM_BIN} {root}"}
        names = {everything["server"]["name"], files["server"]["name"]}
        alerts = [e for e in agent.records() if e.get("type") in ("mcp.alert", "policy.alert")
                  and (e.get("server", {}).get("url") in urls or
                       e.get("process", {}).get("pid") in (everything["client_pid"],
                                                           files["client_pid"]))
                  and e.get("other_server", next(iter(names))) in names]
        self.assertEqual(alerts, [], "the reference servers raised alerts: " +
                         json.dumps([(a["rule"], a.get("tool")) for a in alerts]))
        inv = subprocess.run([aw.agent_bin(), "mcp", "inventory", "--state-dir", state, "--json"],
                             capture_output=True, text=True, check=True)
        servers = {s["url"]: s for s in json.loads(inv.stdout)["servers"]}
        for client, cmdline in ((everything, f"{llm.node_bin()} {EVERYTHING_MAIN} stdio"),
                                (files, f"node {FILESYSTEM_BIN} {root}")):
            s = servers["stdio:" + cmdline]
            self.assertEqual((s["name"], s["version"]),
                             (client["server"]["name"], client["server"]["version"]))
            self.assertEqual(sorted(t["name"] for t in s["tools"]), sorted(client["tools"]))
            self.assertEqual(s["prompts"], sorted(client["prompts"]))
        health = [e for e in agent.records() if e.get("type") == "agent.health"][-1]
        stdio = health["mcp"]["stdio"]
        self.assertEqual((stdio["gaps"], stdio["dropped_bytes"]), (0, 0), stdio)
        # Exact counts unless servers of other tests were running meanwhile.
        aw.log(f"watched: {sorted(watched_pids(agent))}, health: {stdio}")
        if watched_pids(agent) == {everything["server_pid"], files["server_pid"]}:
            self.assertEqual((stdio["sessions"], stdio["joined"], stdio["rejected"]), (2, 0, 0),
                             stdio)

    def started_before(self, argv: list[str], name: str) -> subprocess.Popen:
        """Starts argv (stdin and stdout pipes to this test, stderr to a file), killed at the
        test's end."""
        stderr = open(os.path.join(self.tmp, f"{name}.stderr"), "wb")
        self.addCleanup(stderr.close)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, env=aw.client_env())

        def stop():
            if proc.poll() is None:
                proc.kill()  # a child on its pipes sees them close and exits
                proc.wait()
            proc.stdin.close()
            proc.stdout.close()
        self.addCleanup(stop)
        return proc

    def test_session_running_before_the_agent_is_joined(self):
        """An SDK client and the server-everything it spawned over stdio, connected and past
        `initialize` before the agent starts: the agent finds the server in /proc at its start,
        watches it, and the calls made afterwards become mcp.message events of the pair,
        marked joined mid-way (who is at either end unknown: initialize was not seen). Also
        running before it, on pipes: `cat`, no candidate, never watched; `tac`, a candidate
        the user names, watched, then let go when its first two lines are not JSON-RPC."""
        calls = [["echo", {"message": "said after the agent started"}],
                 ["get-sum", {"a": 20, "b": 22}], ["echo", {"message": "and once more"}]]
        # The client's own name says mcp* (mcp_explore_client.mjs): on pipes, as here, it would
        # be a candidate too. Under another name it is only the client.
        explore = os.path.join(self.tmp, "explore.mjs")
        os.symlink(test_mcp.MCP_EXPLORE_CLIENT, explore)  # node resolves the SDK from the real path
        argv = [llm.node_bin(), explore, "--wait"]
        for name, args in calls:
            argv += ["--call", name, json.dumps(args)]
        proc = self.started_before(argv + ["--", llm.node_bin(), EVERYTHING_MAIN, "stdio"],
                                   "client")
        strangers = {}
        for prog in ("cat", "tac"):
            path = os.path.join(self.tmp, f"{prog}.in")
            with open(path, "wb") as f:
                f.write(b"hello\nworld\n" + INITIALIZE + TOOLS_CALL)
            parent = self.started_before([sys.executable, "-c", PIPE_THROUGH, path, prog], prog)
            strangers[prog] = (parent, int(parent.stdout.readline()))
        ready = json.loads(proc.stdout.readline() or b"null")
        self.assertIsNotNone(ready, "the client did not connect")
        self.assertEqual(ready["client_pid"], proc.pid)
        server_pid = ready["server_pid"]
        state = os.path.join(self.tmp, "state")
        t0 = time.monotonic()
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir", state,
                                           "--mcp-stdio-exe", "*/tac"]) as agent:
            t_ready = time.monotonic()
            log = agent.stderr_tail(100000)
            self.assertIn(f"watching the stdio of pid {server_pid} ", log)
            self.assertIn("running before the agent", log)
            self.assertIn(f"watching the stdio of pid {strangers['tac'][1]} ", log)
            self.assertNotIn(f"watching the stdio of pid {strangers['cat'][1]} ", log)
            self.assertNotIn(f"watching the stdio of pid {proc.pid} ", log)
            for parent, _ in strangers.values():
                parent.stdin.write(b"go\n")
                parent.stdin.close()
                parent.stdout.read()
                self.assertEqual(parent.wait(timeout=aw.CLIENT_TIMEOUT), 0)
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            out = proc.stdout.read()
            self.assertEqual(proc.wait(timeout=aw.CLIENT_TIMEOUT), 0)
            client = json.loads(out)
            agent.wait_for(lambda r: len(mcp_messages(r, proc.pid)) >= len(calls),
                           what="the joined session's tools/call events")
            t_events = time.monotonic()
        aw.log(f"timing: agent ready {t_ready - t0:.2f}s, calls and their events "
               f"{t_events - t_ready:.2f}s")
        events = mcp_messages(agent.records(), proc.pid)
        dump = json.dumps(events, indent=1)[:6000]
        self.assertEqual([e["method"] for e in events], ["tools/call"] * len(calls), dump)
        for ev, call in zip(events, client["calls"]):
            self.assertEqual((ev["tool"], ev["arguments"]), (call["name"], call["arguments"]))
            self.assertEqual(ev["status"], "ok", ev)
            self.assertEqual(ev["result_text"], call["result"]["content"][0]["text"])
            self.assertGreater(ev["latency_ms"], 0)
            self.assertEqual(ev["transport"], "stdio")
            self.assertIs(ev["joined_midway"], True)
            self.assertEqual(ev["session_id"], f"{proc.pid}-{server_pid}")
            self.assertEqual(ev["process"]["exe"], os.path.realpath(llm.node_bin()))
            self.assertEqual(ev["server_process"]["pid"], server_pid)
            self.assertEqual(ev["server_process"]["cmdline"],
                             f"{llm.node_bin()} {EVERYTHING_MAIN} stdio")
            self.assertNotIn("client", ev)  # initialize came before the agent
            self.assertNotIn("server", ev)
        pids = {pid for parent, child in strangers.values() for pid in (parent.pid, child)}
        leaked = [e for e in agent.records() if e.get("type", "").startswith("mcp.")
                  and (e["process"]["pid"] in pids or
                       e.get("server_process", {}).get("pid") in pids)]
        self.assertEqual(leaked, [])
        self.assertEqual([e for e in agent.records() if e.get("type") == "mcp.alert"
                          and e["process"]["pid"] == proc.pid], [])
        health = [e for e in agent.records() if e.get("type") == "agent.health"][-1]
        stdio = health["mcp"]["stdio"]
        self.assertEqual((stdio["gaps"], stdio["dropped_bytes"]), (0, 0), stdio)
        self.assertGreaterEqual(stdio["joined"], 1, stdio)
        self.assertGreaterEqual(stdio["rejected"], 1, stdio)  # tac
        # Exact counts unless servers of other tests were running meanwhile: the calls' lines
        # in and their answers out, nothing of before.
        aw.log(f"watched: {sorted(watched_pids(agent))}, health: {stdio}")
        if watched_pids(agent) == {server_pid, strangers["tac"][1]}:
            self.assertEqual((stdio["sessions"], stdio["joined"], stdio["rejected"]), (1, 1, 1),
                             stdio)
            self.assertEqual(stdio["lines"], 2 * len(calls), stdio)

if __name__ == "__main__":
    aw.main()
