"""Python's ssl module (urllib.request) in a child process: SSL_write_ex / SSL_read_ex."""

import os
import sys
import unittest

import aw

CLIENT = r"""
import ssl, sys, urllib.request
port, ca, body_file = sys.argv[1], sys.argv[2], sys.argv[3]
body = open(body_file, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=ctx))
req = urllib.request.Request(f"https://localhost:{port}/python", data=body, method="POST",
                             headers={"Content-Type": "application/octet-stream"})
with opener.open(req) as resp:
    data = resp.read()
sys.stdout.buffer.write(data)
"""


class PythonSslTest(aw.AgentTestCase):

    def test_urllib_post(self):
        body = aw.random_bytes(4000 + int.from_bytes(os.urandom(2), "big") % 4000)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent() as agent:
                res = aw.run_client([sys.executable, "-c", CLIENT, str(srv.port),
                                     self.pki.ca_cert, body_file])
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()

        self.assertIsNone(conn.error)
        self.assertEqual(conn.requests[0]["body"], body)
        self.assertEqual(res.stdout, conn.requests[0]["response"].split(b"\r\n\r\n", 1)[1])

        self.assert_exact_single_conn(recs, res.pid, conn, "python")

        funcs = {(r["dir"], r.get("func")) for r in aw.tls_data(recs, res.pid)}
        self.assertEqual(funcs, {("out", "SSL_write_ex"), ("in", "SSL_read_ex")},
                         "Python 3.11's _ssl calls the _ex functions")
        for r in aw.tls_data(recs, res.pid):
            self.assertGreaterEqual(r.get("fd", -1), 0, aw.summarize(r))
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
            self.assertEqual(r.get("local"), f"127.0.0.1:{conn.client_port}", aw.summarize(r))
            self.assertEqual(r.get("sni"), "localhost", aw.summarize(r))


if __name__ == "__main__":
    aw.main()
