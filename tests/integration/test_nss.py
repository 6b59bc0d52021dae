"""NSS, live: tstclnt (NSS's own test client, Debian's libnss3-tools) speaks TLS to servers on
127.0.0.1. NSS moves its plaintext through NSPR's PR_Send/PR_Recv (and PR_Write/PR_Read) on a
descriptor whose top layer is NSS's SSL layer; the agent probes those in libnspr4 and keeps
only the calls on such a descriptor (the SSL layer's identity and method table, learned from
libssl3's SSL_ImportFD), with SSL_SetURL for the SNI and PR_Close for the close. It must give
the exact bytes, the same llm.exchange an OpenSSL client gives, and nothing of the same
process's NSPR file I/O (tstclnt reads its request file with PR_Read and writes the answer to
stdout with PR_Write, after its SSL socket exists).

tstclnt checks the server certificate against the test CA, trusted in an NSS database made
with certutil in a temporary directory. Its request comes from a file (-A): with a pipe on
stdin it spins on the pipe's hang-up after the server closed and never exits."""

from __future__ import annotations

import os
import subprocess

import aw
import llm


def tstclnt() -> str:
    return aw.require_program("tstclnt", "libnss3-tools")


def certutil() -> str:
    return aw.require_program("certutil", "libnss3-tools")


def make_nssdb(pki, cleanup) -> str:
    """An NSS database in a new temporary directory that trusts the test CA; `cleanup` is the
    test's addCleanup or addClassCleanup, which removes it."""
    tstclnt()
    nssdb = aw.make_tempdir("aw-nssdb-")
    cleanup(aw.remove_tempdir, nssdb)
    for args in (["-N", "--empty-password"],
                 ["-A", "-n", "agentwall test CA", "-t", "C,,", "-i", pki.ca_cert]):
        subprocess.run([certutil(), "-d", "sql:" + nssdb, *args], check=True,
                       capture_output=True, timeout=60, env=aw.client_env())
    return nssdb


def tstclnt_argv(nssdb: str, port: int, request_file: str) -> list[str]:
    """tstclnt to 127.0.0.1:port, SNI (and the name the certificate is checked against)
    localhost: the SNI comes from -a, not from the address given to -h."""
    return [tstclnt(), "-h", "127.0.0.1", "-p", str(port), "-a", "localhost",
            "-d", "sql:" + nssdb, "-A", request_file]


class NssTest(aw.AgentTestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.nssdb = make_nssdb(cls.pki, cls.addClassCleanup)
        cls.standin = llm.StandIn(cls.pki).start()
        cls.addClassCleanup(cls.standin.stop)

    def argv(self, port: int, request_file: str) -> list[str]:
        return tstclnt_argv(self.nssdb, port, request_file)

    def request_file(self, data: bytes) -> str:
        path = os.path.join(self.tmp, "request")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_bytes_exact(self):
        data = aw.random_text(6000, newline_every=73) + b"\nEND\n"
        path = self.request_file(data)
        res, conn, recs, port = self.raw_exchange(lambda port: self.argv(port, path), None)
        self.assertEqual(bytes(conn.received), data, "tstclnt sent its request file unchanged")
        self.assertEqual(conn.sni, "localhost")
        self.assert_exact_single_conn(recs, res.pid, conn, "tstclnt")
        self.assert_tls_chunks(recs, res.pid, port, {"PR_Send", "PR_Recv"}, sni="localhost")
        closes = [r for r in recs if r.get("type") == "tls.close" and r.get("pid") == res.pid]
        self.assertEqual(len(closes), 1, [aw.summarize(r) for r in closes])

    def test_file_io_of_nspr_not_captured(self):
        """The request file read with PR_Read and the answer written to stdout with PR_Write
        (both PR_DESC_FILE, NSPR's own layer) are no TLS: the only tls.data of tstclnt is its
        socket's, and the answer printed on stdout appears once, in the socket's in stream."""
        marker = b"NSPR-FILE-" + aw.random_text(20).replace(b"\n", b"")
        data = marker + b"\n" + aw.random_text(3000, newline_every=60) + b"\nEND\n"
        path = self.request_file(data)
        reply = b"REPLY " + marker + b"\n"
        with aw.RecordingTlsServer(self.pki, mode="raw", raw_reply=reply) as srv:
            with aw.Agent() as agent:
                res = aw.run_client(self.argv(srv.port, path))
                (conn,) = srv.wait_connections(1)
                agent.wait_for_bytes(res.pid, "out", len(conn.received))
                agent.wait_for_bytes(res.pid, "in", len(conn.sent))
            recs = agent.records()
        self.assertIn(reply, res.stdout, res.describe())
        chunks = aw.tls_data(recs, res.pid)
        self.assertTrue(chunks)
        for r in chunks:
            self.assertIn(r.get("func"), ("PR_Send", "PR_Recv"), aw.summarize(r))
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
        streams = self.client_streams(recs, res.pid, expect_conns=1)
        (s,) = streams.values()
        self.assertEqual(s["out"].count(marker), 1)  # the file's bytes, once: as sent
        self.assertEqual(bytes(s["in"]).count(reply), 1)

    def test_chat_completion_over_nss(self):
        tag = llm.new_tag()
        req, body = llm.raw_chat_request(tag, "Say hello over NSS.")
        path = self.request_file(req)
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           self.tmp + "/state"]) as agent:
            tail = agent.stderr_tail(400)
            self.assertRegex(tail, r"attached to library \S*libnspr4\.so", tail)
            self.assertRegex(tail, r"attached to library \S*libssl3\.so", tail)
            # The server closes after its answer (Connection: close), which ends tstclnt.
            res = aw.run_client(self.argv(self.standin.port, path))
            entry = self.standin.wait_entry(tag)
            self.assertIn(entry["answer"]["output_text"].encode(), res.stdout, res.describe())
            event = llm.wait_exchange(agent, res.pid, aw.DATA_TIMEOUT)
            self.assertIsNotNone(event, llm.describe_events(agent, res.pid))
        llm.check_raw_chat(self, event, entry, body, port=self.standin.port, exe=tstclnt())


if __name__ == "__main__":
    aw.main()
