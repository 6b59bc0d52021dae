#!/usr/bin/env python3
"""What enforcement costs: per-call latency of an LLM client under the kernel gate, against the
same client with no agent, in one run.

  sudo python3 tests/bench/enforce_bench.py [--calls 300] [--rounds 2]

Scenarios, each a fresh client process making CALLS sequential chat-completion requests (with
a keep-alive HTTPS connection, Python http.client over the system OpenSSL) to a loopback TLS
server in this process:
  none        no agent
  monitor     `agentwall run` with the same policy in monitor mode: captured and judged, the
              gate off (the cost of capture and judging alone)
  ungated     `agentwall run` enforcing a policy that gates another cgroup: the client is
              captured and judged, never held
  gated-allow the client's cgroup is gated: every write is held, judged, resumed (no rule fires)
  gated-block as gated-allow, but every request carries a secret and is blocked (the client
  reconnects after each failure)
For each: client-side p50/p99 per call and the ratio of p50 to `none`; for the gated ones the
agent's own verdict latency (hold to resume: p50/p99/max, from its final agent.health).
Scenario order is reversed every other round. Only processes this script starts are gated;
the cgroup it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import aw  # noqa: E402  (test PKI, cgroup root)

SECRET = "sk-proj-" + "Z9x8C7v6B5n4M3a2S1d0" * 2 + "QwErTyUiOpAsDfGh"

CLIENT = r"""
import http.client, json, ssl, sys, time
port, cafile, calls, secret = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
ctx = ssl.create_default_context(cafile=cafile)
def conn():
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
c = conn()
user = "summarise the weather report for Paris" + (" using key " + SYS_SECRET if secret else "")
body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 50,
                   "messages": [{"role": "user", "content": user}]})
lat, failed = [], 0
for i in range(calls):
    t0 = time.perf_counter()
    try:
        c.request("POST", "/v1/chat/completions", body,
                  {"content-type": "application/json", "authorization": "Bearer sk-test"})
        c.getresponse().read()
    except Exception:
        failed += 1
        c.close()
        c = conn()
    lat.append(time.perf_counter() - t0)
print(json.dumps({"lat": lat, "failed": failed}))
""".replace("SYS_SECRET", repr(SECRET))

ANSWER = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "model": "gpt-4o-mini",
                     "choices": [{"index": 0, "finish_reason": "stop", "message": {
                         "role": "assistant", "content": "Sunny, 21 degrees."}}],
                     "usage": {"prompt_tokens": 20, "completion_tokens": 6,
                               "total_tokens": 26}}).encode()


def serve(sock, ctx, stop):
    """HTTP/1.1 keep-alive: one JSON answer per request."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            raw, _ = sock.accept()
        except OSError:
            continue
        threading.Thread(target=handle, args=(raw, ctx), daemon=True).start()


def handle(raw, ctx):
    try:
        s = ctx.wrap_socket(raw, server_side=True)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(rest) < length:
                chunk = s.recv(65536)
                if not chunk:
                    return
                rest += chunk
            buf = rest[length:]
            s.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                      + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
    except (OSError, ssl.SSLError):
        pass
    finally:
        raw.close()


def policy(cgroup_rel: str, mode: str = "enforce") -> str:
    return f"""mode: {mode}
settings:
  verdict_timeout_ms: 100
rules:
  - rule: bench-block-secrets
    match:
      traffic: {{kind: llm, direction: request}}
      process: {{cgroup: "{cgroup_rel}"}}
    when:
      findings: {{category: secret}}
    action: block
    severity: high
"""


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--agent", default=os.path.join(REPO, "build", "agentwall"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("enforce_bench: run as root (the agent loads BPF programs)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="aw-enforce-bench-")
    pki = aw.TestPKI()
    root = None
    with open("/proc/self/mounts") as f:
        for line in f:
            p = line.split()
            if p[2] == "cgroup2":
                root = p[1]
    if not root:
        print("enforce_bench: no cgroup v2 hierarchy mounted", file=sys.stderr)
        return 2
    gated = os.path.join(root, f"aw-bench-{os.getpid()}")
    other = os.path.join(root, f"aw-bench-{os.getpid()}-other")
    os.mkdir(gated)
    os.mkdir(other)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert, pki.key)
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    stop = threading.Event()
    threading.Thread(target=serve, args=(sock, ctx, stop), daemon=True).start()
    client_py = os.path.join(tmp, "client.py")
    with open(client_py, "w") as f:
        f.write(CLIENT)

    def run_client(secret: bool) -> dict:
        argv = ["sh", "-c", f'echo $$ > {gated}/cgroup.procs && exec "$@"', "sh", sys.executable,
                client_py, str(port), pki.ca_cert, str(a.calls), "1" if secret else "0"]
        out = subprocess.run(argv, capture_output=True, timeout=600)
        if out.returncode != 0:
            raise SystemExit(f"client failed: {out.stderr.decode()[-2000:]}")
        return json.loads(out.stdout)

    def with_agent(cgroup_rel: str, secret: bool, mode: str = "enforce"):
        pol = os.path.join(tmp, "policy.yaml")
        with open(pol, "w") as f:
            f.write(policy(cgroup_rel, mode))
        ready, events = os.path.join(tmp, "ready"), os.path.join(tmp, "events.jsonl")
        for p in (ready, events):
            if os.path.exists(p):
                os.unlink(p)
        agent = subprocess.Popen([a.agent, "run", "--policy", pol, "--ready-file", ready,
                                  "--events", events, "--health-interval", "0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = time.monotonic()
            while not os.path.exists(ready):
                if agent.poll() is not None or time.monotonic() - t0 > 60:
                    raise SystemExit("agent did not start")
                time.sleep(0.05)
            res = run_client(secret)
        finally:
            agent.send_signal(signal.SIGINT)
            agent.wait(timeout=30)
        health = [json.loads(l) for l in open(events) if '"agent.health"' in l]
        res["verdict"] = health[-1]["enforce"]["verdict_latency_us"] if health else None
        res["holds"] = health[-1]["enforce"]["holds"] if health else None
        return res

    scenarios = {
        "none": lambda: run_client(False),
        "monitor": lambda: with_agent("/" + os.path.basename(gated), False, "monitor"),
        "ungated": lambda: with_agent("/" + os.path.basename(other), False),
        "gated-allow": lambda: with_agent("/" + os.path.basename(gated), False),
        "gated-block": lambda: with_agent("/" + os.path.basename(gated), True),
    }
    results = {k: [] for k in scenarios}
    try:
        for r in range(a.rounds):
            order = list(scenarios) if r % 2 == 0 else list(reversed(scenarios))
            for name in order:
                results[name].append(scenarios[name]())
    finally:
        stop.set()
        for d in (gated, other):
            try:
                os.rmdir(d)
            except OSError as e:
                print(f"enforce_bench: cannot remove {d}: {e}", file=sys.stderr)
        pki.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(pct(r["lat"], 50) for r in results["none"]) * 1e6
    print(f"# Enforcement benchmark: {a.calls} calls x {a.rounds} rounds per scenario\n")
    print("| scenario | p50 per call (us) | p99 (us) | p50 vs none | verdict p50 / p99 / max (us) | holds | failed calls |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        p50 = statistics.median(pct(r["lat"], 50) for r in runs) * 1e6
        p99 = statistics.median(pct(r["lat"], 99) for r in runs) * 1e6
        v = runs[-1].get("verdict")
        vtxt = f"{v['p50']:.0f} / {v['p99']:.0f} / {v['max']:.0f}" if v and runs[-1].get("holds") else "-"
        print(f"| {name} | {p50:.0f} | {p99:.0f} | {p50 / base:.2f}x | {vtxt} | "
              f"{runs[-1].get('holds', '-')} | {sum(r['failed'] for r in runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
