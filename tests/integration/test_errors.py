"""Bad input and faults get a clear message, and the agent keeps running for the rest."""

import os
import subprocess
import tempfile
import time
import unittest

import aw


class ErrorsTest(aw.AgentTestCase):
    def run_agent(self, *args, user=None, timeout=30):
        argv = [aw.agent_bin(), *args]
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def test_not_root_says_what_is_needed(self):
        r = self.run_agent("sniff", user="65534")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("needs root", r.stderr)
        self.assertIn("CAP_BPF", r.stderr)

    def test_bad_options_name_the_option(self):
        r = self.run_agent("sniff", "--ringbuf-mb", "3")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--ringbuf-mb 3", r.stderr)
        self.assertIn("power of two", r.stderr)
        r = self.run_agent("sniff", "--no-such-option")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no-such-option", r.stderr)
        r = self.run_agent("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", r.stderr)

    def test_replay_of_a_file_that_is_not_a_recording(self):
        with tempfile.NamedTemporaryFile("wb", suffix=".awrec") as f:
            f.write(b"GET / HTTP/1.1\r\n\r\n")
            f.flush()
            r = self.run_agent("replay", f.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is not an agentwall recording", r.stderr)
        r = self.run_agent("replay", "/nonexistent/traffic.awrec")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/traffic.awrec", r.stderr)

    def test_odd_targets_are_skipped_and_capture_goes_on(self):
        # A text file, a truncated ELF and a directory given as extra targets: each is
        # reported, none stops the agent, and curl is still captured byte for byte.
        d = aw.make_tempdir("aw-odd-")
        try:
            truncated = os.path.join(d, "libssl.so.99")
            with open("/usr/bin/curl", "rb") as src, open(truncated, "wb") as dst:
                dst.write(src.read(200))
            with aw.RecordingTlsServer(self.pki, mode="http", response_body=b"ok") as server:
                with aw.Agent(["--attach", "/etc/passwd", "--attach", truncated,
                               "--attach", d]) as agent:
                    body = aw.random_text(512)
                    body_file = os.path.join(d, "body")
                    with open(body_file, "wb") as f:
                        f.write(body)
                    p = subprocess.Popen(
                        ["curl", "-sS", "--noproxy", "*", "--cacert", self.pki.ca_cert,
                         "--resolve", f"localhost:{server.port}:127.0.0.1", "--http1.1",
                         "--data-binary", f"@{body_file}", "-o", "/dev/null",
                         f"https://localhost:{server.port}/odd"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=aw.client_env())
                    _, err = p.communicate(timeout=aw.CLIENT_TIMEOUT)
                    self.assertEqual(p.returncode, 0, err)
                    conn = server.wait_connections(1)[0]
                    conn.done.wait(aw.DATA_TIMEOUT)
                    agent.wait_for_bytes(p.pid, "out", len(conn.received))
                    streams = aw.streams_for(agent.records(), p.pid)
                    self.assertEqual(len(streams), 1)
                    (s,) = streams.values()
                    self.assertEqual(s["out"], bytes(conn.received))
            stderr = agent.stderr_tail(200)
            self.assertIn("/etc/passwd", stderr)
            self.assertIn(truncated, stderr)
        finally:
            aw.remove_tempdir(d)


if __name__ == "__main__":
    unittest.main(verbosity=2)
