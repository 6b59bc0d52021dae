"""A TLS library replaced on disk while it is in use, as a package upgrade does it: dpkg
writes the new file beside the old one and renames it over, so the path stays and the inode
changes.

A copy of libssl.so.3 (and libcrypto) in a temp dir stands for the packaged library. Process A
(LD_LIBRARY_PATH=<dir>) maps the old file and makes a request; the file is then replaced;
process B starts and maps the new file; A makes a second request on the old mapping. The
agent must capture all three exactly: the old file keeps its probes, the new one is found by
its mmap and attached.
"""

import json
import os
import shutil
import subprocess
import sys

import aw

HANDSHAKE_DELAY = 1.0  # time the agent gets to attach the new file before B's first write

CLIENT = r"""
import json, os, ssl, sys, urllib.request

def libssl_inode():
    for line in open("/proc/self/maps"):
        parts = line.split(None, 5)
        if len(parts) == 6 and os.path.basename(parts[5].strip()).startswith("libssl"):
            return int(parts[4])
    return 0

port, ca, body_file, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                     urllib.request.HTTPSHandler(context=ctx))
for i in range(rounds):
    if i:
        sys.stdin.readline()  # the test replaced the library in between
    req = urllib.request.Request(f"https://localhost:{port}/upgrade/{i}",
                                 data=open(body_file, "rb").read(), method="POST")
    with opener.open(req) as resp:
        got = len(resp.read())
    print(json.dumps({"pid": os.getpid(), "round": i, "got": got, "inode": libssl_inode()}),
          flush=True)
"""


class UpgradeTest(aw.AgentTestCase):

    def test_library_replaced_while_in_use(self):
        libssl, libcrypto = aw.system_openssl_libs()
        libdir = os.path.join(self.tmp, "lib")
        os.mkdir(libdir)
        lib = os.path.join(libdir, "libssl.so.3")
        shutil.copyfile(libssl, lib)
        shutil.copyfile(libcrypto, os.path.join(libdir, "libcrypto.so.3"))
        body = aw.random_bytes(2500)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        env = aw.client_env(LD_LIBRARY_PATH=libdir)
        argv = [sys.executable, "-c", CLIENT, "0", self.pki.ca_cert, body_file]

        with aw.RecordingTlsServer(self.pki, handshake_delay=HANDSHAKE_DELAY) as srv:
            argv[3] = str(srv.port)
            with aw.Agent() as agent:
                a = subprocess.Popen(argv + ["2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
                self.addCleanup(a.stderr.close)
                self.addCleanup(a.stdout.close)
                self.addCleanup(lambda: a.poll() is None and (a.kill(), a.wait()))
                agent.watch(a.pid)
                first = json.loads(a.stdout.readline() or b"{}")
                self.assertEqual(first.get("round"), 0, a.stderr.read() if a.poll() else first)
                old_inode = os.stat(lib).st_ino
                self.assertEqual(first["inode"], old_inode)

                # The upgrade: the new file beside, renamed over the old.
                shutil.copyfile(libssl, lib + ".dpkg-new")
                os.rename(lib + ".dpkg-new", lib)
                new_inode = os.stat(lib).st_ino
                self.assertNotEqual(new_inode, old_inode)

                b = aw.run_client(argv + ["1"], env=env)
                self.assertEqual(json.loads(b.stdout)["inode"], new_inode)

                a.stdin.write(b"go\n")
                a.stdin.flush()
                second = json.loads(a.stdout.readline() or b"{}")
                self.assertEqual(second.get("round"), 1, second)
                self.assertEqual(second["inode"], old_inode, "A keeps the old mapping")
                a.stdin.close()
                self.assertEqual(a.wait(timeout=aw.CLIENT_TIMEOUT), 0)

                conns = srv.wait_connections(3)
                # Both processes' bytes, by pid: A's two requests and B's one.
                agent.wait_for_bytes(b.pid, "out", len(body))
                agent.wait_for_bytes(a.pid, "out", 2 * len(body))
            recs = agent.records()

        self.assertEqual(len(conns), 3)
        received = sorted(bytes(c.received) for c in conns)
        for pid, rounds in ((a.pid, 2), (b.pid, 1)):
            streams = self.client_streams(recs, pid, expect_conns=rounds)
            got = sorted(s["out"] for s in streams.values())
            for out in got:
                self.assertIn(out, received, f"pid {pid}: captured bytes no connection sent")
                self.assertTrue(out.endswith(body), f"pid {pid}: the body is not whole")
            self.assert_no_gaps(recs, pid)
        tail = agent.stderr_tail(400)
        self.assertGreaterEqual(tail.count(f"{libdir}/libssl.so.3"), 2,
                                "the replaced library was not attached again:\n" + tail)


if __name__ == "__main__":
    aw.main()
