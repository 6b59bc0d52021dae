"""GnuTLS, live: gnutls-cli (Debian's gnutls-bin, linked to libgnutls.so.30) speaks HTTP/1.1
over TLS to the provider stand-in on 127.0.0.1; the agent, attached to libgnutls with uprobes
on gnutls_record_send/gnutls_record_recv (and gnutls_server_name_set for SNI, gnutls_deinit
for the close), must give the exact bytes and the same llm.exchange an OpenSSL client gives."""

from __future__ import annotations


import aw
import llm


def gnutls_cli() -> str:
    return aw.require_program("gnutls-cli", "gnutls-bin")


class GnutlsTest(aw.AgentTestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        gnutls_cli()
        cls.standin = llm.StandIn(cls.pki).start()
        cls.addClassCleanup(cls.standin.stop)

    def test_chat_completion_over_gnutls(self):
        tag = llm.new_tag()
        req, body = llm.raw_chat_request(tag, "Say hello over GnuTLS.")
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           self.tmp + "/state"]) as agent:
            tail = agent.stderr_tail(400)
            self.assertRegex(tail, r"attached to library \S*libgnutls\.so", tail)
            # The server closes after its answer (Connection: close), which ends gnutls-cli.
            res = aw.run_client([gnutls_cli(), "--x509cafile", self.pki.ca_cert, "-p",
                                 str(self.standin.port), "localhost"], input=req)
            entry = self.standin.wait_entry(tag)
            self.assertIn(entry["answer"]["output_text"].encode(), res.stdout, res.describe())
            event = llm.wait_exchange(agent, res.pid, aw.DATA_TIMEOUT)
            self.assertIsNotNone(event, llm.describe_events(agent, res.pid))
        llm.check_raw_chat(self, event, entry, body, port=self.standin.port, exe=gnutls_cli())

    def test_bytes_exact(self):
        data = aw.random_text(6000, newline_every=73) + b"\nEND\n"
        res, conn, recs, port = self.raw_exchange(
            lambda port: [gnutls_cli(), "--x509cafile", self.pki.ca_cert, "-p", str(port),
                          "localhost"], data)
        self.assertEqual(bytes(conn.received), data, "gnutls-cli sent stdin unchanged")
        self.assert_exact_single_conn(recs, res.pid, conn, "gnutls-cli")
        self.assert_tls_chunks(recs, res.pid, port, {"gnutls_record_send", "gnutls_record_recv"},
                               sni="localhost")


if __name__ == "__main__":
    aw.main()
