"""Go's crypto/tls, live: a Go client (tests/integration/go/tls_client.go, standard library only)
is built here with Debian's Go, as is and stripped (-ldflags=-s -w: no symbol table, so the agent
must find crypto/tls.(*Conn).Write/Read in .gopclntab). The agent probes the entry of both and
every RET instruction (no uretprobes: they break Go programs), keyed by goroutine, and must give
the same llm.exchange an OpenSSL client gives (HTTP/1.1 and HTTP/2) and the exact bytes the
client sent and received."""

from __future__ import annotations

import json
import os
import subprocess
import time

import aw
import llm

SOURCE = os.path.join(aw.HERE, "go", "tls_client.go")
SYSTEM = "Be brief."
USER = "Say hello from Go's crypto/tls."


def go_tool() -> str:
    return aw.require_program("go", "golang-go")


def build(tmp: str, out: str, *flags: str) -> str:
    """Builds tls_client.go offline (the standard library only) into `out`."""
    # One build cache beside the agent binary for every test that builds the client: Go's
    # cache is keyed by content, and a cold build of net/http takes half a minute here.
    cache = os.path.join(os.path.dirname(os.path.abspath(aw.agent_bin())), "test-gocache")
    env = aw.client_env(HOME=tmp, GOCACHE=cache,
                        GOPATH=os.path.join(tmp, "gopath"), GO111MODULE="off", GOFLAGS="",
                        GOPROXY="off", CGO_ENABLED="0")
    t0 = time.monotonic()
    p = subprocess.run([go_tool(), "build", *flags, "-o", out, SOURCE], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"go build failed:\n{p.stderr.decode(errors='replace')}")
    aw.log(f"built {out} in {time.monotonic() - t0:.1f}s")
    return out


def wait_attached(test, agent: aw.Agent, binary: str, how: str) -> None:
    """Runs `binary` once without arguments (it exits at once) so that the agent attaches to
    it at its exec, and waits for that: a client's first TLS call comes a few milliseconds
    after its exec, sooner than the attach (docs/DESIGN.md, Attach latency)."""
    aw.run_client([binary], check=False)
    want = f"attached to executable {binary} (crypto/tls.(*Conn).Close, " \
           f"crypto/tls.(*Conn).Read, crypto/tls.(*Conn).Write, " \
           f"crypto/tls.(*Conn).makeClientHello, crypto/tls.hostnameInSNI) [Go: "
    deadline = time.monotonic() + aw.DATA_TIMEOUT
    while time.monotonic() < deadline:
        tail = agent.stderr_tail(400)
        if want in tail:
            line = tail[tail.index(want):].split("\n", 1)[0]
            test.assertIn(how, line)
            aw.log(line)
            return
        time.sleep(0.05)
    test.fail(f"the agent did not attach to {binary}:\n{agent.stderr_tail(40)}")


def chat_argv(binary: str, port: int, ca_cert: str, tag: str, h2: bool = False) -> list[str]:
    """The Go client's `chat` command: one POST of stdin to the stand-in at localhost:port."""
    return [binary, "chat", "-url", f"https://localhost:{port}/v1/chat/completions",
            "-ca", ca_cert, "-tag", tag] + (["-h2"] if h2 else [])


class GoTlsTest(aw.AgentTestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.build_dir = aw.make_tempdir("aw-go-")
        cls.addClassCleanup(aw.remove_tempdir, cls.build_dir)
        cls.plain = build(cls.build_dir, os.path.join(cls.build_dir, "tls_client"))
        cls.stripped = build(cls.build_dir, os.path.join(cls.build_dir, "tls_client_stripped"),
                             "-ldflags=-s -w")
        cls.standin = llm.StandIn(cls.pki).start()
        cls.addClassCleanup(cls.standin.stop)

    def attach(self, agent: aw.Agent, binary: str, how: str) -> None:
        wait_attached(self, agent, binary, how)

    def chat(self, binary: str, *, h2: bool) -> tuple[aw.ClientResult, dict, dict]:
        tag = llm.new_tag()
        body = {"model": "gpt-4o-mini", "max_tokens": 50,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": USER}]}
        argv = chat_argv(binary, self.standin.port, self.pki.ca_cert, tag, h2)
        res = aw.run_client(argv, input=json.dumps(body).encode())
        self.assertIn(b"proto HTTP/2.0" if h2 else b"proto HTTP/1.1", res.stderr, res.describe())
        answer = json.loads(res.stdout)
        message = answer["choices"][0]["message"]
        client = {"pid": res.pid, "model": body["model"], "stream": False, "system": SYSTEM,
                  "messages": [{"role": "user", "text": USER}], "tools": [],
                  "output_text": message.get("content") or "",
                  "tool_calls": [{"name": c["function"]["name"],
                                  "arguments": c["function"]["arguments"], "id": c.get("id")}
                                 for c in message.get("tool_calls") or []]}
        return res, client, self.standin.wait_entry(tag)

    def check_chat(self, agent: aw.Agent, binary: str, h2: bool) -> None:
        res, client, entry = self.chat(binary, h2=h2)
        self.assertEqual(entry["http_version"], "2.0" if h2 else "1.1")
        event = llm.wait_exchange(agent, res.pid, aw.DATA_TIMEOUT)
        self.assertIsNotNone(event, llm.describe_events(agent, res.pid))
        llm.check_exchange(self, event, client, entry, host="localhost", exe=binary,
                           node_memory_bio=False)
        # The SNI, from the name makeClientHello passes to hostnameInSNI (the client's
        # tls.Config names localhost).
        self.assertEqual(event["connection"].get("sni"), "localhost", json.dumps(event)[:3000])
        self.assertEqual(event["usage"]["input_tokens"], entry["answer"]["usage"]["prompt_tokens"])

    def test_chat_completion(self):
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           self.tmp + "/state"]) as agent:
            self.attach(agent, self.plain, "found by symbol")
            self.attach(agent, self.stripped, "found in .gopclntab")
            for binary in (self.plain, self.stripped):
                for h2 in (False, True):
                    with self.subTest(binary=os.path.basename(binary), h2=h2):
                        self.check_chat(agent, binary, h2)

    def test_bytes_exact(self):
        # 100 KB: several 32 KiB writes (io.Copy), each captured as 16 KiB chunks.
        data = aw.random_text(100_000, newline_every=73) + b"\nEND\n"
        for binary in (self.plain, self.stripped):
            with self.subTest(binary=os.path.basename(binary)):
                res, conn, recs, port = self.raw_exchange(
                    lambda port: [binary, "raw", "-addr", f"127.0.0.1:{port}", "-ca",
                                  self.pki.ca_cert], data,
                    before_client=lambda agent: self.attach(agent, binary, "[Go: "))
                self.assertEqual(bytes(conn.received), data, "the client sent stdin unchanged")
                self.assertEqual(res.stdout, bytes(conn.sent), "the client printed what it got")
                self.assert_exact_single_conn(recs, res.pid, conn, "Go client")
                self.assert_tls_chunks(recs, res.pid, port, {"go_tls_write", "go_tls_read"})


if __name__ == "__main__":
    aw.main()
