"""SIEM sinks end to end: the agent captures real LLM calls (Python urllib against the
provider stand-in), a policy raises alerts, and the events reach a real rsyslogd (Debian's,
over TCP with octet counting and over TLS with certificate verification) and an HTTP
receiver speaking Splunk HEC, Elasticsearch _bulk and OTLP/HTTP. Every test checks that each
alert arrives, once after dedup by event_id, and that no byte of the secret in the traffic
left through any sink. The outage test stops the receiver, kills the agent with SIGKILL,
restarts both, and finds every alert delivered.

Receivers listen on 127.0.0.1 only; the agent runs in monitor mode (nothing is paused).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import aw
import llm
import receivers

SECRET = "AKIA" + "Z7QW3ERT5YUI8OPL"  # an AWS access key id: the secrets detector masks it
SECRET_B = SECRET.encode()


def policy(state_dir: str) -> str:
    return textwrap.dedent(f"""\
        mode: monitor
        settings:
          state_dir: {state_dir}
        rules:
          - rule: every-llm-call
            match:
              traffic: {{kind: llm, direction: request}}
            action: alert
            severity: high
            tags: [inventory]
            message: "{{exe}} called {{model}} at {{provider}}"
          - rule: secret-to-llm
            match:
              traffic: {{kind: llm, direction: request}}
            when:
              findings: {{category: secret}}
            action: alert
            severity: critical
            message: "secret sent: {{detectors}}"
        """)


class SinksTest(aw.AgentTestCase):

    standin: llm.StandIn

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.standin = llm.StandIn(cls.pki)
        cls.standin.start()
        cls.addClassCleanup(cls.standin.stop)

    def setUp(self) -> None:
        super().setUp()
        self.state = os.path.join(self.tmp, "state")
        self.policy_file = os.path.join(self.tmp, "policy.yaml")
        with open(self.policy_file, "w") as f:
            f.write(policy(self.state))

    # -- helpers ----------------------------------------------------------------------------
    def agent(self, *sinks: str, extra: tuple = ()) -> aw.Agent:
        args = ["--policy", self.policy_file, "--health-interval", "0", "--alert-limit", "0"]
        for s in sinks:
            args += ["--sink", s]
        return aw.Agent(command="run", args=[*args, *extra])

    def call(self, n: int) -> list[int]:
        """n LLM calls from Python, each carrying the secret; returns the client pids."""
        pids = []
        for _ in range(n):
            argv = [sys.executable, llm.URLLIB_CLIENT, "--base-url", self.standin.base_url,
                    "--cafile", self.pki.ca_cert, "--tag", llm.new_tag(),
                    "--user", f"deploy with key {SECRET} please"]
            res = aw.run_client(argv)
            pids.append(res.pid)
        return pids

    def wait_alerts(self, agent: aw.Agent, pids: list[int], per_call: int = 2) -> list[dict]:
        """The agent's own record of the alerts for these pids (every-llm-call and
        secret-to-llm per call), waiting until all are there."""
        want = len(pids) * per_call
        deadline = time.monotonic() + aw.DATA_TIMEOUT
        while True:
            got = [r for r in agent.records() if r.get("type") == "policy.alert"
                   and r.get("process", {}).get("pid") in pids]
            if len(got) >= want or time.monotonic() >= deadline:
                self.assertEqual(len(got), want, f"alerts in --events: {got}")
                return got
            time.sleep(0.1)

    def assert_no_secret(self, where: str, data: bytes) -> None:
        self.assertNotIn(SECRET_B, data, f"the secret left through {where}")

    def assert_sd_matches(self, parsed: dict, event: dict) -> None:
        sd = parsed["sd"].get("agentwall@32473")
        self.assertIsNotNone(sd, f"no agentwall structured data: {parsed['sd']}")
        self.assertEqual(sd["event_id"], event["event_id"])
        self.assertEqual(sd["type"], event["type"])
        self.assertEqual(sd["rule"], event["rule"])
        self.assertEqual(sd["severity"], event["severity"])
        self.assertEqual(sd["pid"], str(event["process"]["pid"]))
        self.assertEqual(sd["exe"], event["process"]["exe"])
        self.assertEqual(sd["model"], event["llm"]["model"])
        self.assertEqual(parsed["msgid"], "policy.alert")
        self.assertEqual(parsed["app_name"], "agentwall")

    # -- tests ------------------------------------------------------------------------------
    def test_rsyslog_tcp_and_tls(self):
        """Alerts reach a real rsyslogd over TCP (octet counting), over TLS with the server
        certificate verified and a client certificate, and over UDP; each once, RFC 5424,
        structured data round-trips."""
        with receivers.Rsyslog(pki=self.pki, require_client_cert=True) as rs:
            tcp = f"syslog+tcp://127.0.0.1:{rs.tcp_port}?types=policy.*&flush_ms=50"
            tls = (f"syslog+tls://127.0.0.1:{rs.tls_port}?types=policy.alert&ca={rs.ca_path}"
                   f"&cert={rs.client_cert}&key={rs.client_key}&format=cef&flush_ms=50")
            udp = f"syslog+udp://127.0.0.1:{rs.udp_port}?types=policy.alert&flush_ms=50"
            with self.agent(tcp, tls, udp) as agent:
                pids = self.call(3)
                alerts = self.wait_alerts(agent, pids)
            # The agent drained its spools at exit: everything is there now.
            for listener, body_format in (("tcp", "json"), ("tls", "cef"), ("udp", "json")):
                raws = rs.wait_for(listener, len(alerts), timeout=aw.DATA_TIMEOUT)
                ids = []
                for raw in raws:
                    self.assert_no_secret(f"syslog {listener}", raw.encode())
                    p = receivers.parse_rfc5424(raw)
                    ids.append(p["sd"]["agentwall@32473"]["event_id"])
                    if p["sd"]["agentwall@32473"]["type"] != "policy.alert":
                        continue
                    ev = next(a for a in alerts if a["event_id"] == ids[-1])
                    self.assert_sd_matches(p, ev)
                    if body_format == "json":
                        body = json.loads(p["msg"])
                        self.assertEqual(body["event_id"], ev["event_id"])
                        self.assertEqual(body["message"], ev["message"])
                    else:
                        self.assertTrue(p["msg"].startswith("CEF:0|agentwall|agentwall|"),
                                        p["msg"][:80])
                        self.assertIn("externalId=" + ev["event_id"], p["msg"])
                self.assertEqual(len(ids), len(set(ids)), f"{listener}: duplicates")
                want = {a["event_id"] for a in alerts}
                self.assertTrue(want <= set(ids), f"{listener}: missing "
                                f"{want - set(ids)}")
                # seq numbers the sink's deliveries without holes
                seqs = sorted(int(receivers.parse_rfc5424(r)["sd"]["agentwall@32473"]["seq"])
                              for r in raws)
                self.assertEqual(seqs, list(range(1, len(raws) + 1)))
        for e in agent.records():
            self.assert_no_secret("--events", json.dumps(e).encode())

    def test_http_hec_bulk_otlp(self):
        """Splunk HEC (token, gzip), Elasticsearch _bulk and OTLP/HTTP logs and traces, each
        body checked against its format; one span per LLM call with the GenAI attributes."""
        token = "hec-token-1234"
        with receivers.HttpReceiver(hec_token=token) as rx, \
                receivers.HttpReceiver(tls=True, pki=self.pki, hec_token=token) as hec_rx:
            base = f"http://127.0.0.1:{rx.port}"
            # HEC over HTTPS, the receiver's certificate verified against the test CA
            hec = (f"https://127.0.0.1:{hec_rx.port}/services/collector/event?token={token}"
                   f"&ca={self.pki.ca_cert}&flush_ms=50")
            with self.agent(hec,
                            f"{base}/_bulk?index=agentwall-test&flush_ms=50",
                            f"otlp+http://127.0.0.1:{rx.port}/otlp?flush_ms=50") as agent:
                pids = self.call(2)
                alerts = self.wait_alerts(agent, pids)
            all_ids = {r["event_id"] for r in agent.records()}
            exchanges = [r for r in agent.records() if r.get("type") == "llm.exchange"
                         and r["process"]["pid"] in pids]
            self.assertEqual(len(exchanges), 2)
            reqs = rx.requests() + hec_rx.requests()
            for r in reqs:
                self.assert_no_secret(f"HTTP {r.path}", r.body)
            hec_reqs = hec_rx.requests("/services/collector")
            self.assertTrue(hec_reqs and all(r.tls and r.status == 200 for r in hec_reqs))
            hec = [e for r in hec_reqs for e in receivers.check_hec_body(r.body)]
            bulk = [p for r in rx.requests("/_bulk") for p in receivers.check_bulk_body(r.body)]
            logs = [x for r in rx.requests("/otlp/v1/logs") for x in
                    receivers.check_otlp_logs(r.body)]
            spans = [x for r in rx.requests("/otlp/v1/traces") for x in
                     receivers.check_otlp_traces(r.body)]
            for r in hec_reqs:
                self.assertEqual(r.header("Authorization"), f"Splunk {token}")
                self.assertEqual(r.header("Content-Encoding"), "gzip")

        hec_ids = [e["event"]["event_id"] for e in hec]
        self.assertEqual(len(hec_ids), len(set(hec_ids)), "HEC: duplicates")
        self.assertEqual(set(hec_ids), all_ids, "HEC takes every event type")
        for a in alerts:
            self.assertEqual(hec_ids.count(a["event_id"]), 1, a["event_id"])
            e = next(e for e in hec if e["event"]["event_id"] == a["event_id"])
            self.assertEqual(e["sourcetype"], "agentwall:policy.alert")
            self.assertEqual(e["source"], "agentwall")
        bulk_ids = [meta["create"]["_id"] for meta, _ in bulk]
        for a in alerts:
            self.assertEqual(bulk_ids.count(a["event_id"]), 1)
            meta, doc = next(p for p in bulk if p[0]["create"]["_id"] == a["event_id"])
            self.assertEqual(meta["create"]["_index"], "agentwall-test")
            self.assertEqual(doc["event"]["kind"], "alert")
            self.assertEqual(doc["event"]["id"], a["event_id"])
            self.assertEqual(doc["rule"]["name"], a["rule"])
        log_ids = [receivers.otlp_attrs(x["attributes"]).get("agentwall.event_id") for x in logs]
        for a in alerts:
            self.assertEqual(log_ids.count(a["event_id"]), 1)
        self.assertEqual(len(spans), len(exchanges), spans)
        for ex in exchanges:
            span = next(s for s in spans
                        if receivers.otlp_attrs(s["attributes"]).get("agentwall.event_id")
                        == ex["event_id"])
            at = receivers.otlp_attrs(span["attributes"])
            self.assertEqual(at["gen_ai.operation.name"], ex["operation"])
            self.assertEqual(at["gen_ai.request.model"], ex["model"])
            self.assertEqual(at["gen_ai.provider.name"], ex["provider"])
            self.assertEqual(int(at["gen_ai.usage.input_tokens"]), ex["usage"]["input_tokens"])
            self.assertEqual(int(at["gen_ai.usage.output_tokens"]), ex["usage"]["output_tokens"])
            self.assertEqual(span["name"], f"{ex['operation']} {ex['model']}")
            self.assertLessEqual(int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"]))
            names = [e["name"] for e in span.get("events", [])]
            self.assertIn("gen_ai.evaluation.result", names)

    def test_outage_kill9_restart(self):
        """The receiver is down while alerts are produced; the agent is killed with SIGKILL
        and restarted; the receiver comes back: every alert arrives, none twice after dedup
        by event_id, and the spool says nothing was dropped."""
        rs = receivers.Rsyslog(pki=self.pki)
        self.addCleanup(rs.close)
        rx = receivers.HttpReceiver()
        self.addCleanup(rx.close)
        rx.start()
        rx.fail(503)  # the HTTP receiver answers, but refuses everything
        sinks = (f"syslog+tcp://127.0.0.1:{rs.tcp_port}?types=policy.alert&flush_ms=50"
                 "&backoff_max_ms=500",
                 f"http://127.0.0.1:{rx.port}/hook?types=policy.alert&flush_ms=50"
                 "&backoff_max_ms=500")
        first = self.agent(*sinks)
        first.expected_returncode = -9
        with first:
            pids = self.call(3)
            alerts = self.wait_alerts(first, pids)
            time.sleep(1.0)  # the senders try, fail, and back off
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait(timeout=10)
        spool = os.path.join(self.state, "spool")
        self.assertTrue(os.path.isdir(spool), "no spool directory")
        refused = rx.requests("/hook")
        self.assertTrue(refused, "the webhook sink never tried to deliver")
        self.assertEqual({r.status for r in refused}, {503})
        self.assertEqual(rs.messages("tcp"), [])
        # Both receivers come back; a new agent on the same state dir delivers the spool.
        rs.start()
        rx.fail(None)
        with self.agent(*sinks) as second:
            pids2 = self.call(1)
            alerts += self.wait_alerts(second, pids2)
            want = {a["event_id"] for a in alerts}
            raws = rs.wait_for("tcp", len(want), timeout=aw.DATA_TIMEOUT)
            rx.wait_for(lambda reqs: want <= {e["event_id"] for r in reqs if r.status == 200
                                               for e in json.loads(r.body)},
                        timeout=aw.DATA_TIMEOUT, path_prefix="/hook")
        syslog_ids = [receivers.parse_rfc5424(r)["sd"]["agentwall@32473"]["event_id"]
                      for r in raws]
        self.assertEqual(set(syslog_ids), want)
        http_ids = [e["event_id"] for r in rx.requests("/hook") if r.status == 200
                    for e in json.loads(r.body)]
        self.assertEqual(set(http_ids), want)
        for r in rx.requests():
            self.assert_no_secret("webhook", r.body)
        for r in raws:
            self.assert_no_secret("syslog", r.encode())
        health = [r for r in second.records() if r.get("type") == "agent.health"][-1]
        for s in health["sinks"]:
            self.assertEqual(s["dropped"], 0, s)

    def test_metrics_endpoint(self):
        """Prometheus text on a loopback port: LLM calls by provider and model, alerts by
        rule, sink health."""
        port = receivers.free_ports(1)[0]
        with receivers.HttpReceiver() as rx:
            with self.agent(f"http://127.0.0.1:{rx.port}/hook?flush_ms=50",
                            extra=("--metrics", f"127.0.0.1:{port}")) as agent:
                pids = self.call(1)
                self.wait_alerts(agent, pids)
                deadline = time.monotonic() + aw.DATA_TIMEOUT
                text = ""
                while time.monotonic() < deadline:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                timeout=5) as r:
                        self.assertEqual(r.status, 200)
                        text = r.read().decode()
                    if 'rule="secret-to-llm"' in text and "agentwall_sink_delivered_total" in text:
                        break
                    time.sleep(0.3)
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        ex = [r for r in agent.records() if r.get("type") == "llm.exchange"
              and r["process"]["pid"] in pids][0]
        key = (f'agentwall_llm_exchanges_total{{provider="{ex["provider"]}",'
               f'model="{ex["model"]}"}}')
        self.assertGreaterEqual(samples.get(key, 0), 1, text)
        self.assertGreaterEqual(samples.get('agentwall_alerts_total{type="policy.alert",'
                                            'rule="secret-to-llm",action="alert"}', 0), 1, text)
        self.assertIn("agentwall_verdict_latency_seconds_bucket", text)
        self.assertIn('agentwall_sink_up{sink="http-127.0.0.1-%d-hook"} 1' % rx.port, text)
        self.assertGreater(samples["agentwall_captured_bytes_total"], 0)


if __name__ == "__main__":
    aw.main()
