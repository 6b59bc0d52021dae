"""50 concurrent TLS connections from one process (one thread each): every connection keeps
its own id, its own bytes and its own addresses."""

import base64
import json
import os
import sys
import unittest

import aw

N = 50

CLIENT = r"""
import base64, json, socket, ssl, sys, threading
port, ca = int(sys.argv[1]), sys.argv[2]
payloads = [base64.b64decode(x) for x in json.load(sys.stdin)]
n = len(payloads)
ctx = ssl.create_default_context(cafile=ca)
barrier = threading.Barrier(n)
ports, errors = [None] * n, []

def worker(i):
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60),
                            server_hostname="localhost")
        ports[i] = s.getsockname()[1]
        barrier.wait(timeout=60)  # all handshakes done: the writes below interleave
        p = payloads[i]
        k = len(p) // 3
        for part in (p[:k], p[k:2 * k], p[2 * k:]):
            s.sendall(part)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError("server closed early")
            buf += d
        h, _, rest = buf.partition(b"\r\n\r\n")
        want = int([l.split(b":")[1] for l in h.split(b"\r\n")
                    if l.lower().startswith(b"content-length:")][0])
        while len(rest) < want:
            d = s.recv(65536)
            if not d:
                raise EOFError("short response")
            rest += d
        s.close()
    except BaseException as e:
        errors.append(f"conn {i}: {e!r}")
        barrier.abort()

threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
json.dump({"ports": ports, "errors": errors}, sys.stdout)
sys.exit(1 if errors else 0)
"""


class ConcurrentTest(aw.AgentTestCase):

    def test_50_connections_one_process(self):
        payloads = []
        for i in range(N):
            body = aw.random_bytes(1000 + int.from_bytes(os.urandom(2), "big") % 7000)
            head = (f"POST /conn/{i} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}"
                    f"\r\nConnection: close\r\n\r\n").encode()
            payloads.append(head + body)
        index = {p: i for i, p in enumerate(payloads)}
        stdin = json.dumps([base64.b64encode(p).decode() for p in payloads]).encode()

        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent() as agent:
                res = aw.run_client([sys.executable, "-c", CLIENT, str(srv.port),
                                     self.pki.ca_cert], input=stdin, timeout=120)
                conns = srv.wait_connections(N, timeout=60)
                agent.wait_for_bytes(res.pid, "out", sum(len(c.received) for c in conns), 30)
                agent.wait_for_bytes(res.pid, "in", sum(len(c.sent) for c in conns), 30)
            recs = agent.records()

        ports = json.loads(res.stdout)["ports"]
        self.assertEqual(len(conns), N)
        by_port = {c.client_port: c for c in conns}
        self.assertEqual(sorted(by_port), sorted(ports))
        for i, port in enumerate(ports):
            c = by_port[port]
            self.assertIsNone(c.error, c)
            self.assertEqual(bytes(c.received), payloads[i], f"server view of connection {i}")

        streams = self.client_streams(recs, res.pid, expect_conns=N)
        self.assert_no_gaps(recs, res.pid)
        seen = set()
        chunks = aw.by_conn(recs, res.pid)
        for cid, s in streams.items():
            i = index.get(s["out"])
            if i is None:
                best = max(payloads, key=lambda p: len(os.path.commonprefix([p, s["out"]])))
                self.fail(f"conn {cid}: out bytes match no payload; closest: " +
                          aw.describe_mismatch(f"conn {cid} out", s["out"], best))
            self.assertNotIn(i, seen, f"payload {i} captured on two connections")
            seen.add(i)
            server_conn = by_port[ports[i]]
            self.assertBytesEqual(s["in"], server_conn.sent, f"conn {cid} (payload {i}) in", pid=res.pid)
            for r in chunks[cid]["out"] + chunks[cid]["in"]:
                self.assertEqual(r.get("local"), f"127.0.0.1:{ports[i]}",
                                 f"conn {cid} carries payload {i}: " + aw.summarize(r))
                self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
                self.assertGreaterEqual(r.get("fd", -1), 0, aw.summarize(r))
        self.assertEqual(len(seen), N)


if __name__ == "__main__":
    aw.main()
