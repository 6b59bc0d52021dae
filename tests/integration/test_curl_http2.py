"""curl --http2 (ALPN h2, binary frames through SSL_write/SSL_read): byte-exact capture."""

import os
import unittest

import aw


class CurlHttp2Test(aw.AgentTestCase):

    def _exchange(self, extra_args, expect_body: bytes):
        out_file = os.path.join(self.tmp, "out")
        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent() as agent:
                res = aw.run_client(aw.curl_argv(
                    self.pki, srv.port, "--http2", *extra_args, "-o", out_file,
                    f"https://localhost:{srv.port}/h2"))
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()

        self.assertIsNone(conn.error)
        self.assertEqual(conn.alpn, "h2", "curl did not negotiate h2")
        self.assertEqual(len(conn.requests), 1, conn)
        self.assertEqual(conn.requests[0]["body"], expect_body)
        self.assertTrue(bytes(conn.received).startswith(aw.H2_PREFACE))

        _, s = self.assert_exact_single_conn(recs, res.pid, conn, "curl h2")
        for r in aw.tls_data(recs, res.pid):
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
            self.assertEqual(r.get("sni"), "localhost", aw.summarize(r))
        return s

    def test_get(self):
        self._exchange([], b"")

    def test_post(self):
        body = aw.random_bytes(2000 + int.from_bytes(os.urandom(2), "big") % 6000)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        s = self._exchange(["--data-binary", "@" + body_file], body)
        self.assertIn(body, s["out"])


if __name__ == "__main__":
    aw.main()
