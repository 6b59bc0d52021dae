"""Node.js https.request (OpenSSL linked statically into /usr/bin/node, memory BIOs)."""

import os
import shutil
import unittest

import aw

CLIENT = r"""
const https = require('https'), fs = require('fs');
const [port, ca, bodyFile] = process.argv.slice(1);
const body = fs.readFileSync(bodyFile);
const req = https.request({
  host: 'localhost', family: 4, port: Number(port), method: 'POST', path: '/node',
  ca: fs.readFileSync(ca), agent: false,
  headers: {'Content-Type': 'application/octet-stream', 'Content-Length': body.length},
}, (res) => {
  const parts = [];
  res.on('data', (d) => parts.push(d));
  res.on('end', () => process.stdout.write(Buffer.concat(parts)));
});
req.on('error', (e) => { console.error(e); process.exit(2); });
req.end(body);
"""


class NodeHttpsTest(aw.AgentTestCase):

    def test_https_request_post(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is not installed")
        body = aw.random_bytes(3000 + int.from_bytes(os.urandom(2), "big") % 5000)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent() as agent:
                res = aw.run_client([node, "-e", CLIENT, str(srv.port), self.pki.ca_cert,
                                     body_file])
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()

        self.assertIsNone(conn.error)
        self.assertEqual(conn.requests[0]["body"], body)
        self.assertEqual(res.stdout, conn.requests[0]["response"].split(b"\r\n\r\n", 1)[1])

        self.assert_exact_single_conn(recs, res.pid, conn, "node")
        for r in aw.tls_data(recs, res.pid):
            self.assertEqual(r.get("exe"), os.path.realpath(node), aw.summarize(r))
            if r.get("sni") is not None:  # optional for Node; must be right when present
                self.assertEqual(r["sni"], "localhost", aw.summarize(r))


if __name__ == "__main__":
    aw.main()
