#!/usr/bin/env python3
"""How long a library the agent has never seen stays unprobed.

Run as root: python3 tests/bench/attach_latency.py [ROUNDS] (default 20), with
AGENTWALL_BIN pointing at the agent (default build/agentwall).

For each round, libssl.so.3 and libcrypto.so.3 are copied to a new directory (new
inodes, so nothing is known about them), and a Python child with LD_LIBRARY_PATH set to
that directory imports ssl: its dynamic loader maps the copy, the kernel reports the
mmap, and the agent attaches. The agent logs, per attachment, the time from the kernel's
event to the last probe attached; this prints the distribution. A TLS call the process
makes inside that window is not captured (docs/DESIGN.md, "Attach latency").
"""

import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.environ.get("AGENTWALL_BIN", os.path.join(REPO, "build", "agentwall"))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def libdir_of_ssl() -> str:
    for line in open(f"/proc/{os.getpid()}/maps"):
        path = line.split()[-1]
        if os.path.basename(path).startswith("libssl.so"):
            return os.path.dirname(path)
    raise SystemExit("this python has no libssl mapped")


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("attach_latency.py loads BPF programs: run it as root")
    libdir = libdir_of_ssl()
    work = tempfile.mkdtemp(prefix="aw-attach-")
    ready = os.path.join(work, "ready")
    err_path = os.path.join(work, "agent.err")
    with open(err_path, "wb") as err:
        agent = subprocess.Popen([AGENT, "run", "--ready-file", ready, "--events", os.devnull,
                                  "--health-interval", "0"], stdout=subprocess.DEVNULL,
                                 stderr=err)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if agent.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("agent did not start:\n" + open(err_path).read())
            time.sleep(0.05)
        for i in range(ROUNDS):
            d = os.path.join(work, f"r{i}")
            os.mkdir(d)
            for lib in ("libssl.so.3", "libcrypto.so.3"):
                shutil.copy(os.path.join(libdir, lib), d)
            subprocess.run([sys.executable, "-c", "import time, ssl; time.sleep(0.3)"],
                           env={**os.environ, "LD_LIBRARY_PATH": d}, check=True)
        time.sleep(0.5)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    text = open(err_path).read()
    shutil.rmtree(work, ignore_errors=True)
    ms = [float(m) for m in re.findall(r"attach latency ([0-9.]+) ms", text)]
    if len(ms) < ROUNDS:
        print(f"warning: {ROUNDS} libraries loaded, {len(ms)} attachments measured", file=sys.stderr)
    if not ms:
        raise SystemExit(text)
    ms.sort()
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    print(f"attach latency over {len(ms)} late-loaded libraries: min {ms[0]:.1f} ms, "
          f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    main()
