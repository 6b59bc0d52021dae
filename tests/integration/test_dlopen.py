"""A libssl the agent could not know at start-up, dlopen()ed late by a running process.

After the agent is ready, libssl.so.3 and libcrypto.so.3 are copied to a temp dir (new
inodes). A Python child with LD_LIBRARY_PATH=<that dir> sleeps 1 s, then imports ssl (dlopen
of _ssl maps the copies) and makes a request. The agent must notice the mmap of the new
libssl* file and attach to it. The child reports /proc/self/maps before and after the import,
which proves the copy, and only the copy, was used.

The server waits HANDSHAKE_DELAY after accept before the TLS handshake: that is the time the
agent gets to attach after the library appears (the first SSL_write can only follow the
handshake).
"""

import json
import os
import shutil
import sys
import unittest

import aw

HANDSHAKE_DELAY = 1.0

CLIENT = r"""
import json, os, sys, time

def libssl_maps():
    out = set()
    for line in open("/proc/self/maps"):
        parts = line.split(None, 5)
        if len(parts) == 6 and os.path.basename(parts[5].strip()).startswith("libssl"):
            out.add(parts[5].strip())
    return sorted(out)

port, ca, body_file = sys.argv[1], sys.argv[2], sys.argv[3]
before = libssl_maps()
time.sleep(1)
import ssl, urllib.request   # dlopen of _ssl: loads libssl.so.3 from LD_LIBRARY_PATH
after = libssl_maps()
body = open(body_file, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=ctx))
req = urllib.request.Request(f"https://localhost:{port}/dlopen", data=body, method="POST")
with opener.open(req) as resp:
    data = resp.read()
json.dump({"before": before, "after": after, "pid": os.getpid(), "got": len(data)}, sys.stdout)
"""


class DlopenTest(aw.AgentTestCase):

    def test_late_loaded_libssl_copy(self):
        libssl, libcrypto = aw.system_openssl_libs()
        libdir = os.path.join(self.tmp, "lib")
        os.mkdir(libdir)
        body = aw.random_bytes(3000 + int.from_bytes(os.urandom(2), "big") % 3000)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        copy_ssl = os.path.join(libdir, "libssl.so.3")
        with aw.RecordingTlsServer(self.pki, handshake_delay=HANDSHAKE_DELAY) as srv:
            with aw.Agent() as agent:
                # Copied only now: the agent cannot have seen these files at start-up.
                shutil.copyfile(libssl, copy_ssl)
                shutil.copyfile(libcrypto, os.path.join(libdir, "libcrypto.so.3"))
                self.assertNotEqual(os.stat(copy_ssl).st_ino, os.stat(libssl).st_ino)
                res = aw.run_client([sys.executable, "-c", CLIENT, str(srv.port),
                                     self.pki.ca_cert, body_file],
                                    env=aw.client_env(LD_LIBRARY_PATH=libdir))
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()

        info = json.loads(res.stdout)
        self.assertEqual(info["before"], [], "libssl must not be mapped before `import ssl`")
        self.assertEqual([os.path.realpath(p) for p in info["after"]],
                         [os.path.realpath(copy_ssl)],
                         "the child must have loaded the copy, and only the copy")
        self.assertIsNone(conn.error)
        self.assertEqual(conn.requests[0]["body"], body)

        self.assert_exact_single_conn(recs, res.pid, conn, "dlopen child")
        funcs = {(r["dir"], r.get("func")) for r in aw.tls_data(recs, res.pid)}
        self.assertEqual(funcs, {("out", "SSL_write_ex"), ("in", "SSL_read_ex")})
        for r in aw.tls_data(recs, res.pid):
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))


if __name__ == "__main__":
    aw.main()
