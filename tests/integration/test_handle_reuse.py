"""One SSL* for two connections, one after the other: the second must be a connection of its
own, with its own id and its own SNI.

OpenSSL lets a client reuse an SSL object with SSL_clear() instead of SSL_free() + SSL_new(),
and the agent cannot see the free of BoringSSL located by signature in a stripped binary
(Claude Code): either way the handle the probes key connections by carries a second
connection without the close the agent would see. Setting a host name comes before a
connection's handshake, so a name set on a handle that already carried data ends the old
connection there (bpf/tls.bpf.c, emit_sni).

A small C client, dynamically linked to the host's libssl (so the agent's probes on
libssl.so.3 see it), makes both connections to the provider stand-in on 127.0.0.1, naming it
one.agentwall.test and then two.agentwall.test, each with its own chat request.
"""

from __future__ import annotations

import json
import os

import aw
import llm
from test_coverage import chat_request

CLIENT_C = r"""
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* client ADDR PORT SNI REQUEST [SNI REQUEST ...]: one TLS connection per pair, in turn, all on
 * one SSL object (SSL_clear between them); each answer printed until the server closes. */
int main(int argc, char** argv) {
  if (argc < 5 || (argc - 3) % 2) return 2;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  for (int i = 3; i + 1 < argc; i += 2) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, argv[1], &sa.sin_addr);
    if (connect(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0) { perror("connect"); return 1; }
    if (i > 3 && SSL_clear(ssl) != 1) { fprintf(stderr, "SSL_clear failed\n"); return 1; }
    SSL_set_tlsext_host_name(ssl, argv[i]);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) { fprintf(stderr, "handshake failed\n"); return 1; }
    if (SSL_write(ssl, argv[i + 1], (int)strlen(argv[i + 1])) <= 0) return 1;
    char buf[16384];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) fwrite(buf, 1, (size_t)n, stdout);
    SSL_shutdown(ssl);
    close(fd);
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return 0;
}
"""

NAMES = ["one.agentwall.test", "two.agentwall.test"]


class HandleReuseTest(aw.AgentTestCase):

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        llm.node_bin()
        cls.standin = llm.StandIn(cls.pki).start()
        cls.addClassCleanup(cls.standin.stop)

    def test_a_reused_ssl_is_two_connections(self):
        client = aw.build_c(self.tmp, "reuse_client", CLIENT_C, "-lssl", "-lcrypto")
        tags = [llm.new_tag(), llm.new_tag()]
        words = ["alpha", "bravo"]
        argv = [client, "127.0.0.1", str(self.standin.port)]
        for name, tag, word in zip(NAMES, tags, words):
            argv += [name, chat_request(tag, host=name, content=f"Say {word}.")]
        with aw.Agent(command="run", args=["--health-interval", "0", "--state-dir",
                                           os.path.join(self.tmp, "state")]) as agent:
            res = aw.run_client(argv)
            for tag in tags:
                self.standin.wait_entry(tag)
            agent.wait_for(lambda r: len(llm.exchanges(r, res.pid)) >= 2,
                           what="two llm.exchange events")
            recs = agent.records()
        events = llm.exchanges(recs, res.pid)
        ctx = "\n" + json.dumps(events)[:4000]
        self.assertEqual(len(events), 2, ctx)
        by_word = {}
        for e in events:
            text = json.dumps(e.get("messages"))
            by_word[next(w for w in words if w in text)] = e
        self.assertEqual(sorted(by_word), words, ctx)
        first, second = by_word["alpha"]["connection"], by_word["bravo"]["connection"]
        self.assertEqual(first.get("sni"), NAMES[0], ctx)
        self.assertEqual(second.get("sni"), NAMES[1], ctx)
        self.assertNotEqual(first["id"], second["id"], ctx)
        # Two TCP connections (their local ports differ), one SSL* (the client's code).
        self.assertNotEqual(first.get("local"), second.get("local"), ctx)
        # Each exchange is whole: the second request did not continue the first's stream.
        for e in events:
            self.assertEqual(e["status"], 200, ctx)
            self.assertEqual(set(e.get("flags") or []), set(), ctx)


if __name__ == "__main__":
    aw.main()
