#!/usr/bin/env python3
"""What a change to the engine changes: two `agentwall` binaries scan the same rows, and the
differences are counted.

    tests/eval/compare.py OLD_BIN NEW_BIN [--as-tool] [--show N] [SET.jsonl ...]

Each row of each set ({"text": ..., "role": ..., "label": ...}; `label` optional, so any
`agentwall scan` input works) is scanned by both binaries as its own role and, with
--as-tool, once more as a tool result. Printed per set: rows whose output differs at all,
rows whose score differs, and rows whose verdict (flagged at 50) changed, split by label
(attacks caught or lost, benign rows newly flagged or cleared). A row of a *-test set is
counted but never shown. Exit status 0 whatever the differences (it reports, it does not
judge); 1 when a binary fails, 2 for an unusable command line or set. Standard library only.

Use it to show that a speed change leaves the output byte for byte the same (every count
0), or where a detection change moves verdicts, before measuring quality with run.py.
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SETS = [
    os.path.normpath(os.path.join(REPO, "..", "shared", "eval", f))
    for f in ("injection-dev.jsonl", "injection-test.jsonl")
] + [os.path.join(REPO, "scripts", "data", f)
     for f in ("injection-extra.jsonl", "injection-holdout.jsonl")]
TEST_SET = re.compile(r"-test\.jsonl$")


def load(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    text = r["text"]
                except (ValueError, KeyError, TypeError):
                    sys.exit(f"compare.py: {path}:{n}: not a JSON object with \"text\"")
                rows.append({"text": text, "role": r.get("role", "user"),
                             "label": r.get("label")})
    except OSError as e:
        sys.exit(f"compare.py: cannot read {path}: {e.strerror}")
    return rows


def scan(binary, rows):
    lines = "".join(json.dumps({"text": r["text"], "role": r["role"]}) + "\n" for r in rows)
    try:
        p = subprocess.run([binary, "scan"], input=lines, capture_output=True, text=True)
    except OSError as e:
        print(f"compare.py: cannot run {binary}: {e.strerror}", file=sys.stderr)
        sys.exit(1)
    out = p.stdout.splitlines()
    if p.returncode != 0 or len(out) != len(rows):
        print(f"compare.py: {binary} scan failed (exit {p.returncode}, {len(out)} results for "
              f"{len(rows)} rows): {p.stderr.strip()[:300]}", file=sys.stderr)
        sys.exit(1)
    return [json.loads(o) for o in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("sets", nargs="*", default=DEFAULT_SETS)
    ap.add_argument("--as-tool", action="store_true",
                    help="also scan every row as a tool result")
    ap.add_argument("--show", type=int, default=5, metavar="N",
                    help="print the first N rows whose verdict changed, per set (default 5)")
    a = ap.parse_args()
    for b in (a.old, a.new):
        if not os.access(b, os.X_OK):
            ap.error(f"{b} is not an executable agentwall")
    total = 0
    for path in a.sets:
        rows = load(path)
        if a.as_tool:
            rows = rows + [dict(r, role="tool_result") for r in rows]
        old, new = scan(a.old, rows), scan(a.new, rows)
        differ = sum(o != n for o, n in zip(old, new))
        scores = sum(o["score"] != n["score"] for o, n in zip(old, new))
        moved = {}
        shown = []
        for r, o, n in zip(rows, old, new):
            if o["flagged"] == n["flagged"]:
                continue
            kind = {1: "attack", 0: "benign"}.get(r["label"], "unlabelled")
            key = f"{kind} {'flagged' if n['flagged'] else 'cleared'}"
            moved[key] = moved.get(key, 0) + 1
            if len(shown) < a.show and not TEST_SET.search(path):
                shown.append(f"    {key}: {r['role']} {o['score']} -> {n['score']} "
                             f"{r['text'][:100]!r}")
        total += differ
        summary = ", ".join(f"{k} {v}" for k, v in sorted(moved.items())) or "none"
        print(f"{os.path.basename(path)}: {len(rows)} rows, {differ} differ, {scores} in score, "
              f"verdicts changed: {summary}")
        for line in shown:
            print(line)
    print(f"all sets: {total} rows differ")


if __name__ == "__main__":
    main()
