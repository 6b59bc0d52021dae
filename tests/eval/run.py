#!/usr/bin/env python3
"""Measures the detection engine on labelled JSON-lines sets with `agentwall scan`.

    tests/eval/run.py [--agentwall PATH] [--threshold T] [--by family|source|both]
                      [--misses N] [--json FILE] [SET.jsonl ...]

Each row is {"text": ..., "label": 0|1, "source": ..., "role": "user"|"tool"}; text and role
go to `agentwall scan --timing --threshold T`, one process per set. Printed per set: an
overall line, one per role, and one per source family (the source without its trailing
"(...)"), each followed by its sources when it has several: rows, attacks, recall on
attacks, false-positive rate on benign rows, precision, F1, and the engine's latency
percentiles from each result's "elapsed_us". See README.md here for what each column means.

Metrics are reported, never asserted: the exit status is 0 unless agentwall fails (1) or
the command line or a set is unusable (2). Standard library only.
"""

import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SETS = os.path.normpath(os.path.join(REPO, "..", "shared", "eval"))
TEST_SET = re.compile(r"-test\.jsonl$")


class Failure(Exception):
    def __init__(self, msg, code):
        super().__init__(msg)
        self.code = code


def family_of(source):
    """'BIPIA attack_train (Cookie Theft)' -> 'BIPIA attack_train'; the subset in
    parentheses is shown one level down (see --by)."""
    f = re.sub(r"\s*\([^()]*\)\s*$", "", source)
    return f or source


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(k, len(sorted_values)) - 1]


def metrics(rows):
    tp = sum(1 for r in rows if r["label"] and r["flagged"])
    fn = sum(1 for r in rows if r["label"] and not r["flagged"])
    fp = sum(1 for r in rows if not r["label"] and r["flagged"])
    tn = sum(1 for r in rows if not r["label"] and not r["flagged"])
    attacks, benign = tp + fn, fp + tn
    recall = tp / attacks if attacks else None
    fpr = fp / benign if benign else None
    precision = tp / (tp + fp) if tp + fp else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall > 0 else
          (0.0 if precision is not None and recall is not None else None))
    lat = sorted(r["elapsed_us"] for r in rows if r["elapsed_us"] is not None)
    return {
        "rows": len(rows), "attacks": attacks, "benign": benign,
        "tp": tp, "fn": fn, "fp": fp, "tn": tn,
        "recall": recall, "fpr": fpr, "precision": precision, "f1": f1,
        "latency_us": {
            "p50": percentile(lat, 50), "p90": percentile(lat, 90),
            "p99": percentile(lat, 99), "max": lat[-1] if lat else None,
            "mean": sum(lat) / len(lat) if lat else None,
        },
    }


def load_set(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except ValueError as e:
                    raise Failure(f"{path}:{n}: not JSON ({e})", 2)
                if not isinstance(r, dict) or not isinstance(r.get("text"), str):
                    raise Failure(f"{path}:{n}: expected an object with a string \"text\"", 2)
                label = r.get("label")
                if label not in (0, 1, True, False):
                    raise Failure(f"{path}:{n}: \"label\" must be 0 or 1, not {label!r}", 2)
                role = r.get("role")
                rows.append({
                    "line": n, "text": r["text"], "label": int(label),
                    "source": str(r.get("source") or "(no source)"),
                    "role": role if isinstance(role, str) else None,
                })
    except OSError as e:
        raise Failure(f"{path}: {e.strerror}", 2)
    return rows


def scan(agentwall, threshold, rows, path):
    payload = "".join(
        json.dumps({"text": r["text"], "role": r["role"]} if r["role"] else {"text": r["text"]},
                   ensure_ascii=False) + "\n"
        for r in rows)
    cmd = [agentwall, "scan", "--timing", "--threshold", str(threshold)]
    try:
        p = subprocess.run(cmd, input=payload.encode("utf-8"), capture_output=True)
    except OSError as e:
        raise Failure(f"cannot run {agentwall}: {e.strerror} (build it, or pass --agentwall)", 1)
    err = p.stderr.decode("utf-8", "replace").strip()
    if p.returncode != 0 and "timing" in err:
        raise Failure(f"{agentwall} scan does not know --timing: rebuild it ({err[-300:]})", 1)
    if p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} < {path}: exit status {p.returncode}: {err[-2000:]}", 1)
    out = p.stdout.decode("utf-8", "replace").splitlines()
    if len(out) != len(rows):
        raise Failure(f"{' '.join(cmd)} < {path}: {len(out)} results for {len(rows)} rows", 1)
    for r, line in zip(rows, out):
        try:
            res = json.loads(line)
        except ValueError:
            raise Failure(f"{path}:{r['line']}: agentwall printed something that is not JSON: "
                          f"{line[:200]}", 1)
        if "error" in res or "flagged" not in res:
            raise Failure(f"{path}:{r['line']}: agentwall: {res.get('error', line[:200])}", 1)
        if "elapsed_us" not in res:
            raise Failure(f"{agentwall} scan does not know --timing (no \"elapsed_us\" in its "
                          "output): rebuild it", 1)
        r["flagged"] = bool(res["flagged"])
        r["score"] = res.get("score")
        r["elapsed_us"] = float(res["elapsed_us"])
        r["detectors"] = [f.get("detector", "?") for f in res.get("findings", [])]


def fmt_rate(num, den):
    if not den:
        return "—"
    return f"{100.0 * num / den:5.1f}% {num}/{den}"


def fmt_pct(x):
    return "—" if x is None else f"{100.0 * x:5.1f}%"


def fmt_f1(x):
    return "—" if x is None else f"{x:.3f}"


def fmt_us(x):
    if x is None:
        return "—"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


COLUMNS = ["rows", "attacks", "recall (TP/attacks)", "FPR (FP/benign)", "precision", "F1",
           "p50 µs", "p90 µs", "p99 µs", "max µs"]


def cells(m):
    lat = m["latency_us"]
    return [str(m["rows"]), str(m["attacks"]), fmt_rate(m["tp"], m["attacks"]),
            fmt_rate(m["fp"], m["benign"]), fmt_pct(m["precision"]), fmt_f1(m["f1"]),
            fmt_us(lat["p50"]), fmt_us(lat["p90"]), fmt_us(lat["p99"]), fmt_us(lat["max"])]


def print_table(lines):
    """lines: [(label, metrics or None)]; None prints the label alone as a heading."""
    width = max([len(l) for l, _ in lines] + [5])
    rows = [cells(m) for _, m in lines if m is not None]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(COLUMNS)]
    print("  ".join([" " * width] + [c.rjust(w) for c, w in zip(COLUMNS, widths)]))
    for label, m in lines:
        if m is None:
            print(label)
            continue
        print("  ".join([label.ljust(width)] + [c.rjust(w) for c, w in zip(cells(m), widths)]))


def group(rows, key):
    out = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def evaluate(path, rows, by):
    """The report of one set: overall, per role, per family and per source."""
    overall = metrics(rows)
    roles = {k: metrics(v) for k, v in sorted(group(rows, lambda r: r["role"] or "(none)").items())}
    families = []
    for fam, frows in sorted(group(rows, lambda r: family_of(r["source"])).items()):
        sources = [{"source": s, **metrics(srows)}
                   for s, srows in sorted(group(frows, lambda r: r["source"]).items())]
        families.append({"family": fam, **metrics(frows), "sources": sources})
    lines = [("ALL", overall)]
    if len(roles) > 1:
        lines += [(f"  role={k}", m) for k, m in roles.items()]
    for f in families:
        if by in ("family", "both"):
            lines.append((f["family"], f))
        if by in ("source", "both") and (by == "source" or len(f["sources"]) > 1):
            for s in f["sources"]:
                label = s["source"]
                if by == "both":
                    label = "  " + (label[len(f["family"]):].strip() or label)
                lines.append((label, s))
    return {"path": path, "name": os.path.basename(path), "test_set": bool(TEST_SET.search(path)),
            "overall": overall, "by_role": roles, "families": families}, lines


def one_line(text, n=160):
    t = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return t if len(t) <= n else t[: n - 1] + "…"


def print_misses(path, rows, n, agentwall):
    missed = [r for r in rows if r["label"] and not r["flagged"]][:n]
    false_pos = [r for r in rows if not r["label"] and r["flagged"]][:n]
    for title, items in ((f"first {len(missed)} missed attacks", missed),
                         (f"first {len(false_pos)} false positives", false_pos)):
        print(f"\n{title} (line: source, score{', detectors' if items is false_pos else ''}):")
        for r in items:
            extra = f", {' '.join(r['detectors'])}" if items is false_pos else ""
            print(f"  {r['line']}: {r['source']} [{r['role'] or '-'}], score {r['score']}{extra}")
            print(f"      {one_line(r['text'])}")
        if not items:
            print("  (none)")
    if missed or false_pos:
        print(f"\nReproduce one: sed -n LINEp {path} | {agentwall} scan")


def main():
    ap = argparse.ArgumentParser(
        description="Recall, false-positive rate and latency of `agentwall scan` on labelled sets.")
    ap.add_argument("sets", nargs="*", help=f"JSON-lines sets (default: every *.jsonl in {DEFAULT_SETS})")
    ap.add_argument("--agentwall", default=os.environ.get("AGENTWALL_BIN",
                                                          os.path.join(REPO, "build", "agentwall")),
                    help="the agentwall binary (default: $AGENTWALL_BIN or <repo>/build/agentwall)")
    ap.add_argument("--threshold", type=int, default=50,
                    help="score (0-100) from which a row counts as flagged (default 50, as agentwall scan)")
    ap.add_argument("--by", choices=["family", "source", "both"], default="both",
                    help="rows of the table: source families, sources, or both (default)")
    ap.add_argument("--misses", type=int, default=0, metavar="N",
                    help="print the first N missed attacks and N false positives of each set "
                         "(not of *-test.jsonl sets, see --show-test-misses)")
    ap.add_argument("--show-test-misses", action="store_true",
                    help="with --misses, print them for *-test.jsonl sets too (for analysis after "
                         "the final measurement only: never tune on them)")
    ap.add_argument("--json", metavar="FILE", help="also write the metrics as JSON to FILE ('-': stdout)")
    a = ap.parse_args()
    if not 0 <= a.threshold <= 100:
        ap.error("--threshold must be from 0 to 100")
    if a.misses < 0:
        ap.error("--misses must be >= 0")
    sets = a.sets or sorted(glob.glob(os.path.join(DEFAULT_SETS, "*.jsonl")))
    if not sets:
        print(f"run.py: no *.jsonl sets in {DEFAULT_SETS}", file=sys.stderr)
        return 2
    agentwall = a.agentwall

    report = {"agentwall": agentwall, "threshold": a.threshold, "sets": []}
    try:
        for i, path in enumerate(sets):
            rows = load_set(path)
            if not rows:
                print(f"{path}: no rows", file=sys.stderr)
                continue
            scan(agentwall, a.threshold, rows, path)
            result, lines = evaluate(path, rows, a.by)
            report["sets"].append(result)
            lengths = sorted(len(r["text"].encode("utf-8")) for r in rows)
            if i:
                print()
            print(f"== {path}: {len(rows)} rows, {result['overall']['attacks']} attacks, "
                  f"threshold {a.threshold}; text {percentile(lengths, 50)} bytes median, "
                  f"{lengths[-1]} max")
            if result["test_set"]:
                print("   (a *-test.jsonl set: for measuring only, never for tuning)")
            print_table(lines)
            if a.misses:
                if result["test_set"] and not a.show_test_misses:
                    print(f"\n(misses not shown for {os.path.basename(path)}: a test set is never "
                          "looked at row by row while tuning; --show-test-misses overrides)")
                else:
                    print_misses(path, rows, a.misses, agentwall)
    except Failure as e:
        print(f"run.py: {e}", file=sys.stderr)
        return e.code
    if a.json:
        text = json.dumps(report, indent=1, ensure_ascii=False)
        if a.json == "-":
            print(text)
        else:
            with open(a.json, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
