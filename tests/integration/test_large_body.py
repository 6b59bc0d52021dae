"""A 1 MiB body in one SSL_write_ex call: split into 16 KiB chunks, captured whole at the
default cap (1 MiB), and cut at --max-bytes with the loss made explicit."""

import os
import sys
import unittest

import aw

BODY_LEN = 1 << 20  # exactly the default --max-bytes: not "longer than", so not truncated
CHUNK = 16384

CLIENT = r"""
import socket, ssl, sys
port, ca, body_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = open(body_file, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
head = (f"POST /large HTTP/1.1\r\nHost: localhost:{port}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n").encode()
s.sendall(head)   # one SSL_write_ex call
s.sendall(body)   # one SSL_write_ex call of len(body) bytes (blocking socket: no retries)
""" + aw.PY_READ_HTTP_RESPONSE + r"""sys.stdout.buffer.write(rest)
print(len(head), file=sys.stderr)
"""


class LargeBodyTest(aw.AgentTestCase):

    def _run(self, agent_args, cap=None):
        body = aw.random_bytes(BODY_LEN)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent(agent_args) as agent:
                res = aw.run_client([sys.executable, "-c", CLIENT, str(srv.port),
                                     self.pki.ca_cert, body_file])
                (conn,) = srv.wait_connections(1, timeout=60)
                # Expected captured out bytes: everything, or the head plus the first `cap`.
                want_out = len(conn.received) - (0 if cap is None else BODY_LEN - cap)
                agent.wait_for_bytes(res.pid, "out", want_out)
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
                if cap is not None:
                    agent.wait_for(lambda r: aw.gaps(r, res.pid) or any(
                        x.get("truncated") for x in aw.tls_data(r, res.pid)), 5,
                        "truncation marker")
            recs = agent.records()
        self.assertIsNone(conn.error)
        self.assertEqual(conn.requests[0]["body"], body)
        head_len = int(res.stderr.decode().strip().splitlines()[-1])
        self.assertEqual(len(conn.received), head_len + BODY_LEN)
        return body, head_len, conn, res.pid, recs

    def _body_call_chunks(self, recs, pid):
        chunks = [r for r in aw.tls_data(recs, pid)
                  if r["dir"] == "out" and r.get("call_len") == BODY_LEN]
        self.assertTrue(chunks, "no chunk with call_len == %d for pid %d; out calls seen: %s" % (
            BODY_LEN, pid, sorted({(r.get("func"), r.get("call_len"))
                                   for r in aw.tls_data(recs, pid) if r["dir"] == "out"})))
        self.assertEqual(len({r["conn"] for r in chunks}), 1)
        for r in chunks:
            self.assertEqual(r.get("func"), "SSL_write_ex", aw.summarize(r))
            self.assertLessEqual(r["len"], CHUNK, aw.summarize(r))
        return sorted(chunks, key=lambda r: r["call_off"])

    def test_1mib_call_captured_whole(self):
        body, head_len, conn, pid, recs = self._run([])
        streams = self.client_streams(recs, pid, expect_conns=1)
        (cid, s), = streams.items()
        self.assertBytesEqual(s["out"], conn.received, f"pid {pid} out (conn {cid})", pid=pid)
        self.assertBytesEqual(s["in"], conn.sent, f"pid {pid} in (conn {cid})", pid=pid)
        self.assert_no_gaps(recs, pid)

        chunks = self._body_call_chunks(recs, pid)
        self.assertEqual([r["call_off"] for r in chunks], list(range(0, BODY_LEN, CHUNK)),
                         "a 1 MiB call arrives as 64 chunks of 16 KiB, call_off increasing")
        for r in chunks:
            self.assertEqual(r["offset"], head_len + r["call_off"], aw.summarize(r))
            self.assertFalse(r.get("truncated"), aw.summarize(r))
        got = b"".join(aw.chunk_bytes(r) for r in chunks)
        self.assertBytesEqual(got, body, "chunks of the 1 MiB SSL_write_ex call", pid=pid)

    def test_max_bytes_truncates(self):
        cap = 65536
        body, head_len, conn, pid, recs = self._run(["--max-bytes", str(cap)], cap)
        chunks = self._body_call_chunks(recs, pid)
        captured = b"".join(aw.chunk_bytes(r) for r in chunks)
        self.assertEqual([r["call_off"] for r in chunks], list(range(0, cap, CHUNK)),
                         "only the first --max-bytes of the call are captured")
        self.assertBytesEqual(captured, body[:cap], "first 64 KiB of the truncated call", pid=pid)
        for r in chunks:
            self.assertEqual(r["offset"], head_len + r["call_off"], aw.summarize(r))
        self.assertTrue(any(r.get("truncated") for r in chunks),
                        "the call longer than --max-bytes is marked truncated: " +
                        "; ".join(aw.summarize(r) for r in chunks))

        cid = chunks[0]["conn"]
        g = [x for x in aw.gaps(recs, pid) if x.get("conn") == cid and x.get("dir") == "out"]
        if g:
            self.assertEqual(len(g), 1, g)
            self.assertEqual(g[0].get("reason"), "truncated", g[0])
            self.assertEqual(g[0].get("offset"), head_len + cap, g[0])
            self.assertEqual(g[0].get("len"), BODY_LEN - cap, g[0])
        else:
            self.assertTrue(chunks[-1].get("truncated"),
                            "no tls.gap and the last chunk is not marked truncated: " +
                            aw.summarize(chunks[-1]))

        # The rest of the connection is untouched: the head before, the response in full.
        out = [r for r in aw.tls_data(recs, pid) if r["dir"] == "out" and r["conn"] == cid
               and r["offset"] < head_len]
        self.assertBytesEqual(aw.reassemble(out, "request head"), bytes(conn.received[:head_len]),
                              "request head", pid=pid)
        inn = [r for r in aw.tls_data(recs, pid) if r["dir"] == "in" and r["conn"] == cid]
        self.assertBytesEqual(aw.reassemble(inn, "response"), conn.sent, "response (in)", pid=pid)
        self.assertEqual(len(aw.by_conn(recs, pid)), 1)


if __name__ == "__main__":
    aw.main()
