"""`agentwall run --record F` while curl runs, then `agentwall replay F`: the replayed
tls.data lines reassemble to exactly what the server saw. Also checks the agent.health
counters that `run` reports."""

import os
import time
import unittest

import aw

COUNTER_KEYS = ("calls", "chunks", "bytes", "ringbuf_drop_chunks", "ringbuf_drop_bytes",
                "truncated_calls", "truncated_bytes")


def health(events):
    return [e for e in events if e.get("type") == "agent.health"]


class RecordReplayTest(aw.AgentTestCase):

    def test_record_then_replay(self):
        body = aw.random_bytes(4000 + int.from_bytes(os.urandom(2), "big") % 4000)
        body_file = os.path.join(self.tmp, "body")
        with open(body_file, "wb") as f:
            f.write(body)
        with aw.RecordingTlsServer(self.pki) as srv:
            with aw.Agent(command="run") as agent:
                res = aw.run_client(aw.curl_argv(
                    self.pki, srv.port, "--http1.1", "-H", "Expect:", "--data-binary",
                    "@" + body_file, "-o", "/dev/null", f"https://localhost:{srv.port}/rec"))
                (conn,) = srv.wait_connections(1)
                # Both ends (curl and this process's server) pass through the probes.
                want = 2 * (len(conn.received) + len(conn.sent))
                agent.wait_for(lambda ev: any(h.get("counters", {}).get("bytes", 0) >= want
                                              for h in health(ev)), 3, "health counters")
                time.sleep(0.5)
                agent.stop()  # SIGINT: drains and closes the recording
                record = agent.keep_record(self.tmp)
            events = agent.events()

        self.assertIsNone(conn.error)
        self.assertGreater(os.path.getsize(record), 0, "the recording is empty")

        hs = health(events)
        self.assertTrue(hs, "`agentwall run` printed no agent.health line to --events")
        final = hs[-1].get("counters")
        self.assertIsInstance(final, dict, hs[-1])
        missing = [k for k in COUNTER_KEYS if k not in final]
        self.assertEqual(missing, [], f"counters lack keys: {final}")
        self.assertEqual(final["ringbuf_drop_chunks"], 0, final)
        self.assertEqual(final["truncated_calls"], 0, final)
        self.assertGreaterEqual(final["bytes"], len(conn.received) + len(conn.sent), final)

        recs = aw.replay(record, [res.pid])
        self.assert_exact_single_conn(recs, res.pid, conn, "replayed curl")
        for r in aw.tls_data(recs, res.pid):
            self.assertEqual(r.get("comm"), "curl", aw.summarize(r))
            self.assertEqual(r.get("peer"), f"127.0.0.1:{srv.port}", aw.summarize(r))
            self.assertEqual(r.get("sni"), "localhost", aw.summarize(r))
            self.assertIn("time", r)


if __name__ == "__main__":
    aw.main()
