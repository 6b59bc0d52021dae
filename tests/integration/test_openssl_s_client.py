"""openssl s_client -quiet with data on stdin (the CLI calls SSL_write/SSL_read)."""

import unittest

import aw


class OpensslSClientTest(aw.AgentTestCase):

    def test_stdin_data(self):
        data = aw.random_text(6000, newline_every=73) + b"\nEND\n"
        with aw.RecordingTlsServer(self.pki, mode="raw") as srv:
            with aw.Agent() as agent:
                res = aw.run_client(
                    ["openssl", "s_client", "-quiet", "-CAfile", self.pki.ca_cert,
                     "-verify_return_error", "-servername", "localhost",
                     "-connect", f"127.0.0.1:{srv.port}"], input=data)
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()

        self.assertIsNone(conn.error)
        self.assertEqual(bytes(conn.received), data, "s_client sent stdin unchanged")
        self.assertEqual(res.stdout, bytes(conn.sent), "s_client printed what the server sent")

        self.assert_exact_single_conn(recs, res.pid, conn, "s_client")
        for r in aw.tls_data(recs, res.pid):
            self.assertEqual(r.get("comm"), "openssl", aw.summarize(r))
            self.assertGreaterEqual(r.get("fd", -1), 0, aw.summarize(r))
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
            self.assertEqual(r.get("sni"), "localhost", aw.summarize(r))


if __name__ == "__main__":
    aw.main()
