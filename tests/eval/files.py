#!/usr/bin/env python3
"""How often do ordinary files, read by an agent's tool, look like an injection?

    tests/eval/files.py [--agentwall PATH] [--threshold T] [--chunk BYTES] [--files N]
                        [--show N] [--json FILE] [--role tool|user]

A coding agent's commonest tool result is a file it read: source code, a README, a
licence. None is an attack, and a detector that flags them alerts on every session. This
scans real files of this machine, never trained on and not in the repository, as tool
results (`"role": "tool"`; with `--role user` as a user's prompt: a file pasted in), in
chunks of `--chunk` bytes (8 KiB: a file-reading tool's page), three per file at most (its
start, middle and end), and prints per group how many chunks were flagged and by which
detector first:

- python: the Python standard library (/usr/lib/python3*/, .py files)
- c-header: C headers (/usr/include)
- licenses: /usr/share/common-licenses
- copyright: Debian copyright files (/usr/share/doc/*/copyright)
- js, minified-js, ts-declarations, readme, package-json: the npm packages of the
  integration tests' clients (tests/integration/clients/node_modules, present once
  `make test-deps` or the CI has run; $AW_NODE_MODULES names another)

Files are picked by a fixed rule (sorted paths, evenly spaced, `--files` per group), so two
runs on one machine read the same chunks. A group with no files here is skipped and said so.
Every flagged chunk is a false positive. Metrics are reported, never asserted. Standard
library only.
"""

import argparse
import collections
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NODE = os.environ.get("AW_NODE_MODULES") or os.path.join(REPO, "tests", "integration", "clients",
                                                         "node_modules")

GROUPS = [
    ("python", ["/usr/lib/python3*/**/*.py"]),
    ("c-header", ["/usr/include/**/*.h"]),
    ("licenses", ["/usr/share/common-licenses/*"]),
    ("copyright", ["/usr/share/doc/*/copyright"]),
    ("js", [NODE + "/**/*.js"]),
    ("minified-js", [NODE + "/**/*.min.js"]),
    ("ts-declarations", [NODE + "/**/*.d.ts"]),
    ("readme", [NODE + "/**/README.md"]),
    ("package-json", [NODE + "/**/package.json"]),
]
MIN_BYTES = 500  # smaller files and chunks are not a page of anything


def pick(patterns, n, exclude):
    """`n` files matching `patterns`, evenly spaced over the sorted list: the same on every
    run. `exclude`: paths another group took (a .min.js is not also plain js)."""
    paths = sorted({p for pat in patterns for p in glob.glob(pat, recursive=True)
                    if p not in exclude and os.path.isfile(p)
                    and os.path.getsize(p) >= MIN_BYTES})
    if len(paths) <= n:
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def chunks(path, size):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8", errors="replace")
    starts = sorted({0, max(0, len(text) // 2 - size // 2), max(0, len(text) - size)})
    out = []
    for s in starts:
        c = text[s:s + size]
        if len(c.encode()) >= MIN_BYTES and c not in out:
            out.append(c)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agentwall", default=os.environ.get("AGENTWALL_BIN") or
                    os.path.join(REPO, "build", "agentwall"))
    ap.add_argument("--threshold", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=8192, help="characters per chunk (8192)")
    ap.add_argument("--files", type=int, default=40, help="files per group (40)")
    ap.add_argument("--show", type=int, default=0, help="print the first N flagged chunks")
    ap.add_argument("--json", metavar="FILE", help="write each chunk's file, group and result")
    ap.add_argument("--role", default="tool", choices=("tool", "user"),
                    help="scan the chunks as a tool's result (default) or as a user's prompt: "
                    "users paste files into prompts too")
    a = ap.parse_args()
    if not os.access(a.agentwall, os.X_OK):
        sys.exit(f"{a.agentwall}: not found or not executable: build it (make build) or name it "
                 "with --agentwall")

    rows, taken = [], set()
    for group, patterns in GROUPS:
        files = pick(patterns, a.files, taken)
        taken.update(files)
        if not files:
            print(f"{group}: no files here, skipped", file=sys.stderr)
            continue
        for path in files:
            for c in chunks(path, a.chunk):
                rows.append({"group": group, "file": path, "text": c})
    if not rows:
        sys.exit("no files to read")
    payload = "".join(json.dumps({"text": r["text"], "role": a.role}) + "\n" for r in rows)
    run = subprocess.run([a.agentwall, "scan", "--threshold", str(a.threshold)],
                         input=payload.encode(), capture_output=True)
    lines = run.stdout.decode().splitlines()
    if run.returncode != 0 or len(lines) != len(rows):
        sys.exit(f"{a.agentwall} scan failed (exit {run.returncode}): "
                 f"{run.stderr.decode()[-500:]}")

    by = collections.OrderedDict()
    first = collections.Counter()
    show = a.show
    for r, line in zip(rows, lines):
        res = json.loads(line)
        r["result"] = res
        g = by.setdefault(r["group"], [0, 0, set()])
        g[0] += 1
        g[2].add(r["file"])
        if res["flagged"]:
            g[1] += 1
            reason = res["reasons"][0].split(" ")[0] if res["reasons"] else "?"
            first[reason] += 1
            if show > 0:
                show -= 1
                print(f"  flagged {r['file']}: score {res['score']}: {'; '.join(res['reasons'][:3])}")
    total = sum(g[0] for g in by.values())
    flagged = sum(g[1] for g in by.values())
    print(f"{'group':18s} {'files':>6s} {'chunks':>7s}  flagged")
    for group, (n, f, files) in by.items():
        print(f"{group:18s} {len(files):6d} {n:7d}  {f:4d}  {100.0 * f / n:5.1f}%")
    print(f"{'ALL':18s} {len(taken):6d} {total:7d}  {flagged:4d}  {100.0 * flagged / total:5.1f}%")
    if first:
        print("first reason of the flagged: " +
              ", ".join(f"{k} {v}" for k, v in first.most_common(6)))
    if a.json:
        with open(a.json, "w") as f:
            for r in rows:
                f.write(json.dumps({"group": r["group"], "file": r["file"],
                                    "result": r["result"]}) + "\n")


if __name__ == "__main__":
    main()
