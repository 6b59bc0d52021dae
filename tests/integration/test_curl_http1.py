"""curl --http1.1 (SSL_write/SSL_read in the system libssl.so.3): byte-exact capture."""

import os
import shutil
import unittest

import aw


class CurlHttp1Test(aw.AgentTestCase):

    def test_post_random_body(self):
        body = aw.random_bytes(3000 + int.from_bytes(os.urandom(2), "big") % 3000)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        out_file = os.path.join(self.tmp, "out")
        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent() as agent:
                res = aw.run_client(aw.curl_argv(
                    self.pki, srv.port, "--http1.1", "-H", "Expect:", "--data-binary",
                    "@" + body_file, "-o", out_file, f"https://localhost:{srv.port}/upload"))
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
                # tls.close comes from SSL_free at curl's exit.
                agent.wait_for(lambda r: aw.closes(r, res.pid), 5, "tls.close")
            recs = agent.records()

        # The plain client/server exchange itself is sane.
        self.assertIsNone(conn.error)
        self.assertEqual(conn.requests[0]["body"], body)
        with open(out_file, "rb") as f:
            self.assertEqual(f.read(), conn.requests[0]["response"].split(b"\r\n\r\n", 1)[1])

        cid, s = self.assert_exact_single_conn(recs, res.pid, conn, "curl")

        chunks = aw.tls_data(recs, res.pid)
        for r in chunks:
            self.assertEqual(r.get("comm"), "curl", aw.summarize(r))
            self.assertEqual(r.get("exe"), os.path.realpath(shutil.which("curl")), aw.summarize(r))
            self.assertIsInstance(r.get("fd"), int, aw.summarize(r))
            self.assertGreaterEqual(r["fd"], 0, "curl's socket fd is known: " + aw.summarize(r))
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
            self.assertEqual(r.get("local"), f"127.0.0.1:{conn.client_port}", aw.summarize(r))
            self.assertEqual(r.get("sni"), "localhost", aw.summarize(r))
            self.assertIn(r.get("func"), ("SSL_write", "SSL_write_ex") if r["dir"] == "out"
                          else ("SSL_read", "SSL_read_ex"), aw.summarize(r))
            self.assertFalse(r.get("truncated"), aw.summarize(r))
            self.assertLessEqual(r.get("call_off", 0) + r["len"], r.get("call_len", 0),
                                 aw.summarize(r))

        # The close record accounts for the whole connection.
        cl = [c for c in aw.closes(recs, res.pid) if c.get("conn") == cid]
        self.assertEqual(len(cl), 1, f"expected one tls.close for conn {cid}: {aw.closes(recs, res.pid)}")
        self.assertEqual(cl[0].get("bytes_out"), len(conn.received), aw.summarize(cl[0]))
        self.assertEqual(cl[0].get("bytes_in"), len(conn.sent), aw.summarize(cl[0]))

    def test_keepalive_two_requests_one_connection(self):
        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent() as agent:
                base = f"https://localhost:{srv.port}"
                res = aw.run_client(aw.curl_argv(
                    self.pki, srv.port, "--http1.1", "-o", "/dev/null", "-o", "/dev/null",
                    f"{base}/first", f"{base}/second"))
                conns = srv.wait_connections(1)
                self.assertEqual(len(conns), 1, f"curl should reuse the connection: {conns}")
                (conn,) = conns
                self.assertEqual(len(conn.requests), 2, conn)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()

        cid, s = self.assert_exact_single_conn(recs, res.pid, conn, "curl")
        self.assertIn(b"GET /first ", s["out"])
        self.assertIn(b"GET /second ", s["out"])
        for r in aw.tls_data(recs, res.pid):
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
            self.assertEqual(r.get("sni"), "localhost", aw.summarize(r))


if __name__ == "__main__":
    aw.main()
