"""Nothing is lost silently: when the ring buffer overflows, every missing byte is reported.

The agent (ours: started by this test) is paused with SIGSTOP while a client sends a 6 MiB
body through a 1 MiB ring buffer, then resumed. The captured bytes plus the bytes reported
in tls.gap (reason ringbuf_full) must add up exactly to what the client sent, and the
agent.health counters must count the loss."""

import os
import signal
import sys
import unittest

import aw

BODY_LEN = 6 << 20

CLIENT = r"""
import socket, ssl, sys
port, ca, body_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = open(body_file, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.sendall((f"POST /flood HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
           f"Connection: close\r\n\r\n").encode())
s.sendall(body)
""" + aw.PY_READ_HTTP_RESPONSE


class LossesTest(aw.AgentTestCase):
    def test_ring_buffer_overflow_is_reported_byte_for_byte(self):
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(aw.random_bytes(BODY_LEN))
        with aw.RecordingTlsServer(self.pki, response_body=b"ok") as srv:
            agent = aw.Agent(["--ringbuf-mb", "1", "--max-bytes", str(8 << 20)])
            agent.args += ["--events", agent.events_file]
            with agent:
                os.kill(agent.proc.pid, signal.SIGSTOP)
                try:
                    res = aw.run_client([sys.executable, "-c", CLIENT, str(srv.port),
                                         self.pki.ca_cert, body_file])
                    (conn,) = srv.wait_connections(1, timeout=60)
                    conn.done.wait(aw.DATA_TIMEOUT)
                finally:
                    os.kill(agent.proc.pid, signal.SIGCONT)
                sent = len(conn.received)
                agent.watch(res.pid)

                def accounted(recs):
                    got = aw.captured_len(recs, res.pid, "out")
                    lost = sum(g["len"] for g in aw.gaps(recs, res.pid) if g["dir"] == "out")
                    return got + lost >= sent

                agent.wait_for(accounted, what="captured + reported bytes to cover the body")
            recs = agent.records()
            health = [e for e in agent.events() if e.get("type") == "agent.health"]

        out_chunks = [r for r in aw.tls_data(recs, res.pid) if r["dir"] == "out"]
        out_gaps = [g for g in aw.gaps(recs, res.pid) if g["dir"] == "out"]
        captured = sum(r["len"] for r in out_chunks)
        lost = sum(g["len"] for g in out_gaps)
        self.assertTrue(out_gaps, "a 6 MiB burst into a 1 MiB ring buffer must overflow")
        self.assertTrue(all(g["reason"] == "ringbuf_full" for g in out_gaps), out_gaps)
        self.assertEqual(captured + lost, sent,
                         f"captured {captured} + reported lost {lost} != sent {sent}")
        self.assertGreater(captured, 0)

        # What was captured is exact where it says it is.
        for r in out_chunks:
            self.assertEqual(aw.chunk_bytes(r), bytes(conn.received[r["offset"]:r["offset"] + r["len"]]),
                             f"chunk at offset {r['offset']}")
        # Holes and chunks tile the stream with no overlap.
        spans = sorted([(r["offset"], r["len"]) for r in out_chunks] +
                       [(g["offset"], g["len"]) for g in out_gaps])
        pos = 0
        for off, n in spans:
            self.assertEqual(off, pos, f"span at {off}, expected {pos}: {spans[:20]}")
            pos += n
        self.assertEqual(pos, sent)

        self.assertTrue(health, "no agent.health event at exit")
        counters = health[-1]["counters"]
        self.assertGreaterEqual(counters["ringbuf_drop_bytes"], lost, counters)
        self.assertGreaterEqual(counters["stream_gap_bytes"], lost, counters)


if __name__ == "__main__":
    unittest.main(verbosity=2)
