"""A process in another mount namespace whose libssl.so.3 is a different file.

After the agent is ready, libssl.so.3 is copied to a temp dir; then
  unshare --mount --propagation private sh -c 'mount --bind COPY <libssl path> && exec curl ...'
runs curl with the copy bind-mounted over the system path: from the host's mount namespace
the path names the original file (already probed), but curl maps another inode. The agent
must resolve the library through the process (e.g. /proc/PID/root or map_files), not the path.

The server waits HANDSHAKE_DELAY after accept before the TLS handshake, the time the agent gets
to attach. The agent looks into a foreign mount namespace's root when a process there execs,
before its loader maps libssl, so on a quiet machine curl's first call is covered without the
delay; on a loaded one (CI running beside other work) the exec event can be handled late, and
this test is about finding the library, not about that race (docs/DESIGN.md, attach latency).
"""

import os
import shutil
import unittest

import aw

HANDSHAKE_DELAY = 1.0

SCRIPT = ('copy=$1; target=$2; statf=$3; shift 3; '
          'mount --bind "$copy" "$target" && stat -L -c "%d:%i" "$target" > "$statf" && '
          'exec curl "$@"')


class MountNamespaceTest(aw.AgentTestCase):

    def test_curl_with_bind_mounted_libssl_copy(self):
        for tool in ("unshare", "mount", "curl"):
            self.assertIsNotNone(shutil.which(tool), f"{tool} is not installed")
        libssl, _ = aw.system_openssl_libs()
        copy = os.path.join(self.tmp, "libssl.so.3")
        stat_file = os.path.join(self.tmp, "stat")
        body = aw.random_bytes(3000 + int.from_bytes(os.urandom(2), "big") % 3000)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        out_file = os.path.join(self.tmp, "out")
        with aw.RecordingTlsServer(self.pki, handshake_delay=HANDSHAKE_DELAY) as srv:
            with aw.Agent() as agent:
                shutil.copyfile(libssl, copy)  # a new inode, unknown at agent start
                curl = aw.curl_argv(self.pki, srv.port, "--http1.1", "-H", "Expect:",
                                    "--data-binary", "@" + body_file, "-o", out_file,
                                    f"https://localhost:{srv.port}/mntns")
                res = aw.run_client(["unshare", "--mount", "--propagation", "private",
                                     "sh", "-c", SCRIPT, "sh", copy, libssl, stat_file,
                                     *curl[1:]])
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()

        # Inside the namespace the library path resolved to the copy; outside it did not.
        st_copy, st_orig = os.stat(copy), os.stat(libssl)
        with open(stat_file) as f:
            seen = f.read().strip()
        self.assertEqual(seen, f"{st_copy.st_dev}:{st_copy.st_ino}",
                         "in the new mount namespace the libssl path must be the copy")
        self.assertNotEqual((st_copy.st_dev, st_copy.st_ino), (st_orig.st_dev, st_orig.st_ino))
        self.assertIsNone(conn.error)
        self.assertEqual(conn.requests[0]["body"], body)

        self.assert_exact_single_conn(recs, res.pid, conn, "curl (mntns)")
        for r in aw.tls_data(recs, res.pid):
            self.assertEqual(r.get("comm"), "curl", aw.summarize(r))
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))


if __name__ == "__main__":
    aw.main()
