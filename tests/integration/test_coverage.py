"""The coverage view, live: a blind spot is a finding, not a silence.

A small C client that links OpenSSL statically (libssl.a from libssl-dev) is built three
times in the test: with its symbols (the agent finds SSL_write/SSL_read in the executable and
captures it), stripped (`-s`: the agent finds them by signature, agent/elf/boringssl_sig.*, and
captures it), and stripped calling SSL_write/SSL_read through pointers only (no direct call
enters them, so the signature cannot place their entry: nothing to attach to). curl, which the
agent sees, talks to the provider stand-in as api.openai.com (--resolve to 127.0.0.1): its SNI
names that address for the agent. Then:
- the hidden client talking to the same address must raise one `coverage.gap` alert naming
  api.openai.com, its TLS stack (OpenSSL linked in, stripped) and why, and be listed HIDDEN
  by `agentwall coverage`;
- the unstripped build and the stripped one must be captured (an llm.exchange) and raise none;
- the hidden client talking to a server no AI endpoint name points to raises none.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import threading

import aw
import llm

CLIENT_C = r"""
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* With -DINDIRECT, SSL_write and SSL_read are called through pointers only. */
#ifdef INDIRECT
int (*volatile ssl_write)(SSL*, const void*, int) = SSL_write;
int (*volatile ssl_read)(SSL*, void*, int) = SSL_read;
#else
#define ssl_write SSL_write
#define ssl_read SSL_read
#endif

/* client ADDR PORT SNI REQUEST: one TLS connection to ADDR:PORT (SNI "-": none sent), REQUEST
 * written, the answer printed until the server closes. */
int main(int argc, char** argv) {
  if (argc != 5) return 2;
  argv++;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
  inet_pton(AF_INET, argv[0], &sa.sin_addr);
  if (connect(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0) { perror("connect"); return 1; }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  if (strcmp(argv[2], "-") != 0) SSL_set_tlsext_host_name(ssl, argv[2]);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) { fprintf(stderr, "handshake failed\n"); return 1; }
  if (ssl_write(ssl, argv[3], (int)strlen(argv[3])) <= 0) return 1;
  char buf[16384];
  int n;
  while ((n = ssl_read(ssl, buf, sizeof(buf))) > 0) fwrite(buf, 1, (size_t)n, stdout);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  return 0;
}
"""


def build_client(tmp: str, strip: bool, indirect: bool = False) -> str:
    name = ("tlsclient-stripped" if strip else "tlsclient") + ("-indirect" if indirect else "")
    return aw.build_c(tmp, name, CLIENT_C, "-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic",
                      "-ldl", "-pthread", *(["-DINDIRECT"] if indirect else []),
                      *(["-s"] if strip else []))


def chat_request(tag: str, host: str = "api.openai.com",
                 content: str = "Hello from a static binary.") -> str:
    """A whole HTTP/1.1 chat completion request (Connection: close), tagged for the stand-in."""
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 30,
                       "messages": [{"role": "user", "content": content}]})
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nAuthorization: Bearer sk-test-coverage\r\n"
            f"x-standin-tag: {tag}\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}")


def gaps_of(recs, pid: int) -> list:
    """The coverage.gap alerts for process `pid` among the agent's records."""
    return [e for e in recs if e.get("type") == "coverage.gap" and e["process"]["pid"] == pid]


DNS_ADDR = "127.0.9.53"  # the test's name server (loopback: nothing leaves the host)
# A gateway reached by address alone (test_a_decoded_call_names_its_endpoint).
GATEWAY_ADDR = "127.0.0.5"
ANSWER_ADDR = "127.0.0.3"  # what it says api.anthropic.com is; a stand-in listens there
OTHER_ADDR = "127.0.0.6"  # a server named by a host no list knows


class DnsServer:
    """Answers A queries for api.anthropic.com with ANSWER_ADDR (through a CNAME, as CDNs
    do), and every other query with no record, on DNS_ADDR:53 (UDP)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((DNS_ADDR, 53))
        except OSError as e:
            self.sock.close()
            raise AssertionError(f"cannot bind {DNS_ADDR}:53 for the test name server: {e}")
        self.sock.settimeout(0.2)
        self.queries: list[str] = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop:
            try:
                q, addr = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            labels, i = [], 12
            while i < len(q) and q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
                i += 1 + q[i]
            qname, qtype = ".".join(labels).lower(), struct.unpack(">H", q[i + 1:i + 3])[0]
            question = q[12:i + 5]
            self.queries.append(f"{qname}/{qtype}")
            answers = b""
            count = 0
            if qname == "api.anthropic.com" and qtype == 1:
                target = b"\x04edge\x07example\x00"
                answers += b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, len(target)) + target
                cname_at = 12 + len(question) + 12
                answers += struct.pack(">H", 0xc000 | cname_at) + struct.pack(
                    ">HHIH", 1, 1, 60, 4) + socket.inet_aton(ANSWER_ADDR)
                count = 2
            header = q[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, count, 0, 0)
            self.sock.sendto(header + question + answers, addr)

    def close(self) -> None:
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


class CoverageTest(aw.AgentTestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        llm.node_bin()
        cls.standin = llm.StandIn(cls.pki).start()
        cls.addClassCleanup(cls.standin.stop)

    def coverage_cli(self, agent: aw.Agent, *args: str) -> str:
        res = subprocess.run([aw.agent_bin(), "coverage", "--socket", agent.control_socket,
                              *args], capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout

    def test_stripped_static_openssl_is_a_gap(self):
        hidden = build_client(self.tmp, strip=True, indirect=True)
        seen = build_client(self.tmp, strip=False)
        located = build_client(self.tmp, strip=True)
        port = self.standin.port
        with aw.RecordingTlsServer(self.pki, mode="raw") as other:
            with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                               os.path.join(self.tmp, "state")]) as agent:
                # curl, seen by the agent, names 127.0.0.1:PORT api.openai.com by its SNI.
                tag = llm.new_tag()
                curl = aw.run_client(
                    ["curl", "-sS", "-k", "--noproxy", "*", "--resolve",
                     f"api.openai.com:{port}:127.0.0.1", "-H", f"x-standin-tag: {tag}",
                     "-H", "content-type: application/json", "--data-binary",
                     '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
                     f"https://api.openai.com:{port}/v1/chat/completions"])
                self.standin.wait_entry(tag)
                self.assertIsNotNone(llm.wait_exchange(agent, curl.pid, aw.DATA_TIMEOUT),
                                     llm.describe_events(agent, curl.pid))

                # The stripped client: answered, and unseen.
                tag = llm.new_tag()
                h = aw.run_client([hidden, "127.0.0.1", str(port), "api.openai.com", chat_request(tag)])
                entry = self.standin.wait_entry(tag)
                self.assertIn(entry["answer"]["output_text"].encode(), h.stdout)

                # The same client with its symbols: attached at its first exec (a run that
                # may finish before the probes are in), captured from then on.
                tag = llm.new_tag()
                first = aw.run_client([seen, "127.0.0.1", str(port), "api.openai.com", chat_request(tag)])
                self.standin.wait_entry(tag)
                agent.wait_for(lambda r: "tlsclient (SSL_" in agent.stderr_tail(100),
                               what="the unstripped client attached")
                tag = llm.new_tag()
                s = aw.run_client([seen, "127.0.0.1", str(port), "api.openai.com", chat_request(tag)])
                self.standin.wait_entry(tag)
                event = llm.wait_exchange(agent, s.pid, aw.DATA_TIMEOUT)
                self.assertIsNotNone(event, "the unstripped static client was not captured\n" +
                                     llm.describe_events(agent, s.pid))
                self.assertEqual(event["output_text"], self.standin.wait_entry(tag)["answer"]
                                 ["output_text"])

                # The stripped client with direct calls: located by signature at its first
                # exec (a run without arguments, which exits at once: a run that talked would
                # be identified, and its stack name kept for the file, before the attach),
                # captured from then on.
                aw.run_client([located], check=False)
                agent.wait_for(lambda r: "tlsclient-stripped (SSL_read, SSL_write) [OpenSSL, "
                               "stripped: located by signature]" in agent.stderr_tail(100),
                               what="the stripped client located and attached")
                tag = llm.new_tag()
                loc = aw.run_client([located, "127.0.0.1", str(port), "api.openai.com",
                                     chat_request(tag)])
                self.standin.wait_entry(tag)
                event = llm.wait_exchange(agent, loc.pid, aw.DATA_TIMEOUT)
                self.assertIsNotNone(event, "the stripped static client was not captured\n" +
                                     llm.describe_events(agent, loc.pid))
                self.assertEqual(event["output_text"], self.standin.wait_entry(tag)["answer"]
                                 ["output_text"])

                # The stripped client towards a server no AI name points to.
                o = aw.run_client([hidden, "127.0.0.1", str(other.port), "example.test", "hello\nEND\n"],
                                  check=False)
                other.wait_connections(1)

                def gaps(recs):
                    return [e for e in recs if e.get("type") == "coverage.gap"]
                agent.wait_for(lambda r: any(g["process"]["pid"] == h.pid for g in gaps(r)),
                               what="a coverage.gap for the stripped client")
                # Exits are decided 2 s after them: wait for the other two to be decided too.
                agent.wait_for(lambda r: False, timeout=3.0, what="settling")
                view = json.loads(self.coverage_cli(agent, "--json"))
                table = self.coverage_cli(agent)
            recs = agent.records()

        self.assertEqual([e for e in recs if e.get("type") == "agent.unknown_event"], [])
        found = {g["process"]["pid"]: g for g in gaps(recs)}
        # The unstripped client's first run may end before its probes are in: then it was
        # unseen too, and says so with the right reason.
        if first.pid in found:
            self.assertEqual(found.pop(first.pid)["tls_stack"], "OpenSSL (linked in)")
        self.assertEqual(list(found), [h.pid], json.dumps(found, indent=1))
        g = found[h.pid]
        self.assertEqual(g["severity"], "high")
        self.assertEqual(g["endpoint"]["connections"], 1)
        self.assertEqual(g["endpoint"]["host"], "api.openai.com")
        self.assertEqual(g["endpoint"]["peer"], f"127.0.0.1:{port}")
        self.assertEqual(g["endpoint"]["named_by"], "sni")
        self.assertEqual(g["tls_stack"], "OpenSSL (linked in, stripped)")
        self.assertIn("symbols stripped", g["reason"])
        self.assertEqual(g["process"]["exe"], hidden)
        self.assertEqual(llm.exchanges(recs, h.pid), [])
        self.assertIsNotNone(o)

        by_pid = {p["process"]["pid"]: p for p in view["processes"]}
        self.assertFalse(by_pid[h.pid]["visible"], by_pid[h.pid])
        self.assertTrue(by_pid[h.pid]["gap"])
        self.assertTrue(by_pid[s.pid]["visible"], by_pid.get(s.pid))
        self.assertFalse(by_pid[s.pid]["gap"])
        self.assertTrue(by_pid[curl.pid]["visible"])
        self.assertTrue(by_pid[loc.pid]["visible"], by_pid.get(loc.pid))
        self.assertFalse(by_pid[loc.pid]["gap"])
        self.assertEqual(by_pid[loc.pid]["tls_stack"],
                         "OpenSSL (linked in, stripped; located by signature)")
        self.assertNotIn(o.pid, by_pid, "a process that never talked to an AI endpoint")
        row = [l for l in table.splitlines() if l.split() and l.split()[0] == str(h.pid)]
        self.assertEqual(len(row), 1, table)
        self.assertIn("HIDDEN", row[0])
        self.assertIn("api.openai.com", row[0])

        health = [e for e in recs if e.get("type") == "agent.health"][-1]
        self.assertGreaterEqual(health["coverage"]["gaps"], 1)

    def test_its_own_client_hello_names_the_endpoint(self):
        """The stripped client, reaching an address nothing else named (no visible connection,
        no DNS answer, no configuration), sends api.openai.com as its SNI: the ClientHello it
        writes as its connection's first bytes (read at that write, whatever the TLS stack)
        names the endpoint, and the gap says so. To a server it names by an unknown host, it
        raises none (names are by address: that server listens elsewhere)."""
        hidden = build_client(self.tmp, strip=True, indirect=True)
        standin = llm.StandIn(self.pki, host=ANSWER_ADDR).start()
        self.addCleanup(standin.stop)
        cats = llm.StandIn(self.pki, host=OTHER_ADDR).start()
        self.addCleanup(cats.stop)
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           os.path.join(self.tmp, "state")]) as agent:
            tag = llm.new_tag()
            other = aw.run_client([hidden, OTHER_ADDR, str(cats.port), "cats.example",
                                   chat_request(tag)])
            cats.wait_entry(tag)
            tag = llm.new_tag()
            h = aw.run_client([hidden, ANSWER_ADDR, str(standin.port), "api.openai.com",
                               chat_request(tag)])
            standin.wait_entry(tag)
            agent.wait_for(lambda r: gaps_of(r, h.pid), what="a coverage.gap named by SNI")
            agent.wait_for(lambda r: False, timeout=2.0, what="settling")
            recs = agent.records()
        (g,) = gaps_of(recs, h.pid)
        self.assertEqual(g["endpoint"]["host"], "api.openai.com", g)
        self.assertEqual(g["endpoint"]["named_by"], "sni", g)
        self.assertEqual(g["endpoint"]["peer"], f"{ANSWER_ADDR}:{standin.port}", g)
        self.assertEqual(g["tls_stack"], "OpenSSL (linked in, stripped)", g)
        self.assertEqual(gaps_of(recs, other.pid), [])

    def test_a_dns_answer_names_the_endpoint(self):
        """glibc's resolver (in a mount namespace of the test's own, whose /etc/resolv.conf
        names the test's server) learns api.anthropic.com is 127.0.0.3; the stripped client
        then talks TLS to 127.0.0.3, sending no SNI. No SNI names that address: the DNS answer
        does."""
        unshare = shutil.which("unshare")
        if not unshare:
            raise AssertionError("unshare (util-linux) is needed")
        hidden = build_client(self.tmp, strip=True, indirect=True)
        resolv = os.path.join(self.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {DNS_ADDR}\noptions timeout:2 attempts:1\n")
        dns = DnsServer()
        self.addCleanup(dns.close)
        standin = llm.StandIn(self.pki, host=ANSWER_ADDR).start()
        self.addCleanup(standin.stop)
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           os.path.join(self.tmp, "state")]) as agent:
            lookup = aw.run_client([unshare, "-m", "sh", "-c",
                                    f"mount --bind {resolv} /etc/resolv.conf && exec python3 -c "
                                    "'import socket; print(socket.gethostbyname("
                                    "\"api.anthropic.com\"))'"])
            self.assertEqual(lookup.stdout.decode().strip(), ANSWER_ADDR, lookup.describe())
            self.assertIn("api.anthropic.com/1", dns.queries)
            tag = llm.new_tag()
            h = aw.run_client([hidden, ANSWER_ADDR, str(standin.port), "-", chat_request(tag)])
            standin.wait_entry(tag)

            agent.wait_for(lambda r: gaps_of(r, h.pid), what="a coverage.gap named by DNS")
            recs = agent.records()
        (g,) = gaps_of(recs, h.pid)
        self.assertEqual(g["endpoint"]["host"], "api.anthropic.com")
        self.assertEqual(g["endpoint"]["named_by"], "dns")
        self.assertEqual(g["endpoint"]["peer"], f"{ANSWER_ADDR}:{standin.port}")
        self.assertEqual(g["tls_stack"], "OpenSSL (linked in, stripped)")

    def test_a_decoded_call_names_its_endpoint(self):
        """A gateway that no list knows, reached by address (no SNI, no DNS): curl's call to it
        is decoded as an LLM call, which makes the address an AI endpoint for every process;
        the stripped client talking to it (sending no SNI) is then a gap named by that call."""
        hidden = build_client(self.tmp, strip=True, indirect=True)
        gateway = llm.StandIn(self.pki, host=GATEWAY_ADDR).start()
        self.addCleanup(gateway.stop)
        url = f"https://{GATEWAY_ADDR}:{gateway.port}/v1/chat/completions"
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           os.path.join(self.tmp, "state")]) as agent:
            tag = llm.new_tag()
            curl = aw.run_client(
                ["curl", "-sS", "-k", "--noproxy", "*", "-H", f"x-standin-tag: {tag}",
                 "-H", "content-type: application/json", "--data-binary",
                 '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}', url])
            gateway.wait_entry(tag)
            self.assertIsNotNone(llm.wait_exchange(agent, curl.pid, aw.DATA_TIMEOUT),
                                 llm.describe_events(agent, curl.pid))
            tag = llm.new_tag()
            h = aw.run_client([hidden, GATEWAY_ADDR, str(gateway.port), "-", chat_request(tag)])
            gateway.wait_entry(tag)

            agent.wait_for(lambda r: gaps_of(r, h.pid),
                           what="a coverage.gap named by a decoded call")
            recs = agent.records()
        (g,) = gaps_of(recs, h.pid)
        self.assertEqual(g["endpoint"]["named_by"], "llm")
        self.assertEqual(g["endpoint"]["peer"], f"{GATEWAY_ADDR}:{gateway.port}")
        self.assertEqual(g["tls_stack"], "OpenSSL (linked in, stripped)")
        # curl's own call is what named it: no gap for curl.
        self.assertEqual(gaps_of(recs, curl.pid), [])


if __name__ == "__main__":
    aw.main()
