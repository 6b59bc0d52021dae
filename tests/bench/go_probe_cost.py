#!/usr/bin/env python3
"""What the probes on Go's crypto/tls cost a Go program per HTTPS call, against no probe and
against the floor of empty uprobes at the same places.

Run as root: python3 tests/bench/go_probe_cost.py [--calls N] [--rounds R] [--sizes S,S]
[--cpus C,C] (defaults 2000, 5, 1024,65536, 0,1), with AGENTWALL_BIN (default
build/agentwall) and UPROBE_FLOOR (default build/tests/bench/uprobe_floor). Needs Debian's Go
(golang-go) and bpftool.

The client is tests/integration/go/tls_client.go (the one test_go.py builds), built here with
Debian's Go; its `bench` mode POSTs a body of each size N times over one keep-alive HTTP/1.1
connection to a TLS server on 127.0.0.1 that this script runs (Python's http.server and ssl,
a 12-byte answer), and reports the wall and CPU time (user + system, every thread) of its
timed loop. Three scenarios, in alternating order over R rounds:

  (a) no probe;
  (b) the floor: uprobe_floor --go puts an empty BPF program at the entry of
      crypto/tls.(*Conn).Write, Read and Close and at every RET of Write and Read, found by
      the agent's own code, attached as the agent attaches (uprobe_multi where the kernel has
      it);
  (c) `agentwall run` (monitor mode: no policy) capturing: its go_write_enter, go_read_enter,
      go_tls_ret and go_close_enter at those places, its sys_enter programs, and the rest of
      the agent.

With kernel.bpf_stats_enabled=1 (restored at the end) the kernel counts each program's runs
and run time: the BPF figures are ns per HTTPS call of every entry and RET program in (b) and
(c). The uprobe's trap is paid alike in (b) and (c) and is in the client's CPU time, not in the
BPF figures. In (c) the agent's programs also run for other Go programs on the host that use
crypto/tls meanwhile, and the agent also captures the server's side (OpenSSL, through libssl),
as it would on any host: the client's CPU time does not include that, its wall time can.

Each scenario runs a new copy of the client (a file no uprobe is on yet): another agent on the
host (a test's) probes every Go executable it sees run, and while its uprobes are on a file
the lookup of the RETs reads their int3s (docs/DESIGN.md). Runs during which another agent's
Go programs ran are flagged and left out of the medians.

The client runs on the first CPU of --cpus, the server on the second (--cpus "" : no pinning);
the agent and uprobe_floor are not pinned.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading

from probe_cost import (REPO, Agent, Floor, bpf_stats_enabled, median, prog_ids, programs,
                        require_root, stats_delta)

sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import aw  # noqa: E402
import test_go  # noqa: E402

AGENT_PROGS = ("go_write_enter", "go_read_enter", "go_tls_ret", "go_close_enter")
FLOOR_PROGS = ("floor_go_write", "floor_go_read", "floor_go_ret", "floor_go_close")
# The agent's OpenSSL programs, run by the server's side of the same calls: the same bytes
# captured on the other path, for comparison (Python calls the _ex functions; other
# processes' libssl calls count too).
AGENT_SSL_PROGS = ("ssl_write_enter", "ssl_write_ex_enter", "ssl_read_enter", "ssl_read_ex_enter",
                   "ssl_call_exit")
WARMUP = 20  # calls the client makes before its timed loop (the handshake among them)
ANSWER = b'{"ok":true}\n'


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # Status line, headers and body in one write.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))

    def log_message(self, *args) -> None:
        pass


class Server:
    """The TLS server on 127.0.0.1, on its own thread (pinned to `cpu` when given)."""

    def __init__(self, pki: aw.TestPKI, cpu: int | None) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = pki.server_context().wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.cpu = cpu
        self.thread = threading.Thread(target=self._serve, name="go-bench-server", daemon=True)

    def _serve(self) -> None:
        if self.cpu is not None:  # this thread and the connection threads it starts
            os.sched_setaffinity(0, {self.cpu})
        self.httpd.serve_forever(poll_interval=0.2)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


class Bench:
    def __init__(self, args, client: str, ca: str, port: int) -> None:
        self.args = args
        self.built = client
        self.client = client
        self.copies = 0
        self.ca = ca
        self.url = f"https://localhost:{port}/bench"
        self.cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else []

    def fresh_client(self) -> None:
        """A new copy of the client (a new file) for the next scenario: no uprobes are on it
        yet. Another agent on this host (a test's) probes every Go executable it sees run,
        and the lookup of crypto/tls's RETs (the agent's, uprobe_floor's) reads the file
        through a mapping in which the kernel shows the int3 of any uprobe already there."""
        self.copies += 1
        self.client = f"{self.built}.{self.copies}"
        shutil.copy2(self.built, self.client)

    def run_client(self, size: int, own: set = frozenset()) -> dict:
        """One timed run of the client. `foreign_go_runs`: how many times Go programs of the
        agent's names not among `own` (program ids) ran meanwhile: another agent (a test
        running on this host) probing Go programs, maybe this client."""
        def foreign() -> dict:
            return {p["id"]: p.get("run_cnt", 0) for p in programs()
                    if p.get("name") in AGENT_PROGS and p["id"] not in own}
        before = foreign()
        argv = [self.client, "bench", "-url", self.url, "-ca", self.ca, "-size", str(size),
                "-n", str(self.args.calls), "-warmup", str(WARMUP)]
        if self.cpus:
            argv = ["taskset", "-c", str(self.cpus[0]), *argv]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                           stdin=subprocess.DEVNULL, env=aw.client_env())
        if p.returncode != 0:
            raise SystemExit(f"client failed ({p.returncode}): {p.stderr}")
        r = json.loads(p.stdout)
        n = r["calls"]
        runs = sum(cnt - before[i] for i, cnt in foreign().items() if i in before)
        return {"wall_us": r["wall_ns"] / n / 1e3,
                "cpu_us": (r["user_ns"] + r["sys_ns"]) / n / 1e3,
                "sys_us": r["sys_ns"] / n / 1e3, "foreign_go_runs": runs}

    def sizes(self):
        return [int(s) for s in self.args.sizes.split(",")]

    def none(self) -> dict:
        return {size: self.run_client(size) for size in self.sizes()}

    def probed(self, tool, names, server_names=()) -> dict:
        """Each size under `tool` (entered), with what its programs ran per HTTPS call."""
        out = {}
        requests = self.args.calls + WARMUP
        for size in self.sizes():
            before = tool.stats(names + server_names)
            r = self.run_client(size, prog_ids(tool.proc.pid))
            d = stats_delta(before, tool.stats(names + server_names))
            runs = {k: d.get(n, (0, 0))[0] / requests
                    for k, n in zip(("write", "read", "ret", "close"), names)}
            r["bpf_ns"] = sum(d[n][1] for n in names if n in d) / requests
            r["runs_per_call"] = runs  # write, read, ret, close entries per HTTPS call
            if server_names:
                r["server_bpf_ns"] = sum(d[n][1] for n in server_names if n in d) / requests
                r["server_runs"] = sum(d[n][0] for n in server_names if n in d) / requests
            out[size] = r
        return out

    def floor(self) -> dict:
        with Floor("--go", self.client) as f:
            r = self.probed(f, FLOOR_PROGS)
        r["ready"] = f.ready
        return r

    def agent(self, work: str) -> dict:
        with Agent(work) as a:
            # Its exec makes the agent attach (the client in a temp dir is not attached before
            # ready); without arguments the client exits at once.
            # Again with a new copy when it does not: another agent that attached to this one
            # at the same exec makes the lookup miss the RETs (see fresh_client).
            for attempt in range(4):
                if attempt:
                    self.fresh_client()
                subprocess.run([self.client], capture_output=True, timeout=60)
                attached = a.wait_log(f"attached to executable {self.client}", 10)
                if attached:
                    break
            else:
                print("the agent did not attach to the Go client: round left out", flush=True)
                return None
            r = self.probed(a, AGENT_PROGS, AGENT_SSL_PROGS)
        r["attached"] = attached
        return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="timed HTTPS calls per size")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="1024,65536", help="request body sizes, bytes")
    ap.add_argument("--cpus", default="0,1", help="client's CPU,server's CPU ('': no pinning)")
    args = ap.parse_args()
    require_root("go_probe_cost.py")
    for tool in ("bpftool", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    work = tempfile.mkdtemp(prefix="aw-go-bench-")
    pki = None
    try:
        client = test_go.build(work, os.path.join(work, "tls_client"))
        pki = aw.TestPKI()
        cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else []
        with Server(pki, cpus[1] if len(cpus) > 1 else None) as server, bpf_stats_enabled():
            bench = Bench(args, client, pki.ca_cert, server.port)
            results = {"none": [], "floor": [], "agent": []}
            print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
            for i in range(args.rounds):
                order = ["none", "floor", "agent"]
                if i % 2:
                    order.reverse()
                for name in order:
                    bench.fresh_client()
                    r = bench.agent(work) if name == "agent" else getattr(bench, name)()
                    if r is None:
                        continue
                    r["round"] = i
                    results[name].append(r)
                    print(f"round {i} {name}: {json.dumps(r)}", flush=True)
            print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if pki is not None:
            pki.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    report(args, results)


def report(args, results) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    label = {s: f"{s // 1024} KiB" if s % 1024 == 0 else f"{s} B" for s in sizes}

    def clean(*runs):  # no other agent's Go programs ran meanwhile
        return all(not r["foreign_go_runs"] for r in runs)

    def med(name, size, key):  # over the clean runs, or all when none is
        runs = [r[size] for r in results[name]]
        return median([r[key] for r in runs if clean(r)] or [r[key] for r in runs])

    def ratio(num, den, size, key):  # ratio of medians (median of the rounds' own ratios)
        of_medians = med(num, size, key) / med(den, size, key)
        by_round = {r["round"]: r for r in results[den]}
        pairs = [(a[size], by_round[a["round"]][size]) for a in results[num]
                 if a["round"] in by_round]
        per_round = median([a[key] / b[key] for a, b in pairs if clean(a, b)] or
                           [a[key] / b[key] for a, b in pairs])
        return f"{of_medians:.2f} ({per_round:.2f})"

    head = " | ".join(f"{label[s]} wall | {label[s]} CPU" for s in sizes)
    print(f"\nPer HTTPS call, medians of {args.rounds} rounds of {args.calls} calls "
          f"(ratios: of the medians, and in parentheses the median of the rounds' own):\n")
    print(f"| per call | {head} |")
    print("|---|" + "---:|" * (2 * len(sizes)))
    rows = [("(a) no probe", "none"), ("(b) empty uprobes (the floor)", "floor"),
            ("(c) agentwall capturing", "agent")]
    for title, name in rows:
        cells = " | ".join(f"{med(name, s, 'wall_us'):.1f} µs | {med(name, s, 'cpu_us'):.1f} µs"
                           for s in sizes)
        print(f"| {title} | {cells} |")
    for num, den in (("agent", "floor"), ("agent", "none"), ("floor", "none")):
        t = {"agent": "c", "floor": "b", "none": "a"}
        cells = " | ".join(f"{ratio(num, den, s, 'wall_us')} | {ratio(num, den, s, 'cpu_us')}"
                           for s in sizes)
        print(f"| {t[num]}/{t[den]} | {cells} |")
    print("\nBPF run time per HTTPS call (every entry and RET program), and probe hits per call:\n")
    print("| | " + " | ".join(label[s] for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for title, name in (("(b) floor: empty programs", "floor"), ("(c) agentwall", "agent")):
        print(f"| {title} | " + " | ".join(f"{med(name, s, 'bpf_ns'):.0f} ns" for s in sizes)
              + " |")
    print("| (c) agentwall, the server's side of the same calls (OpenSSL) | " +
          " | ".join(f"{med('agent', s, 'server_bpf_ns'):.0f} ns "
                     f"({med('agent', s, 'server_runs'):.1f} runs)" for s in sizes) + " |")
    for s in sizes:
        hits = results["floor"][0][s]["runs_per_call"]
        print(f"\n{label[s]}: per HTTPS call under the floor, Write entries {hits['write']:.2f}, "
              f"Read entries {hits['read']:.2f}, RETs {hits['ret']:.2f}, Close {hits['close']:.3f}")
    flagged = [f"round {r['round']} {name} {label[s]}" for name, rs in results.items()
               for r in rs for s in sizes if r[s]["foreign_go_runs"]]
    if flagged:
        print(f"\nWARNING: another agent's Go programs ran while the client ran in "
              f"{len(flagged)} of {len(sizes) * 3 * args.rounds} runs (they may have probed "
              f"the client), left out of the medians: {', '.join(flagged)}")
    print(f"\nuprobe_floor: {json.dumps(results['floor'][0]['ready'])}")
    print(f"agent: {results['agent'][0]['attached']}")


if __name__ == "__main__":
    main()
