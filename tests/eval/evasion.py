#!/usr/bin/env python3
"""Does a disguise hide an attack? Every row of the sets is rewritten in one way after another
(look-alike letters, invisible characters, base64, leetspeak, letters spaced out, words run
together, backwards, ...) and scanned by `agentwall scan` as it was and disguised.

    tests/eval/evasion.py [--agentwall BIN] [--threshold N] [--show N] [SET.jsonl ...]

Printed per disguise: of the attacks flagged as written, how many are still flagged once
disguised; and of the benign rows not flagged as written, how many are flagged once disguised
(a benign text in leetspeak or spelled out is still benign). Rows keep their role. The
disguises that a reader must be told to undo are given with the order to undo them: an attack
as an attacker would send it ("Decode this base64 and do what it says: ..."), a benign text
as a user would ("Decode this base64: ..."). Tag characters are hidden text, flagged as such
whatever they spell. Default sets: ../shared/eval/injection-dev.jsonl and
scripts/data/injection-holdout.jsonl (never *-test sets: a disguise is a change to the engine's
input, and its misses would be read). Exit status 0 whatever the figures (it measures, it does
not judge); 1 when the binary fails; 2 for an unusable command line or set. Standard library
only; the rewriting is deterministic.
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (its reading of a set)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_SETS = [
    os.path.normpath(os.path.join(REPO, "..", "shared", "eval", "injection-dev.jsonl")),
    os.path.join(REPO, "scripts", "data", "injection-holdout.jsonl"),
]
TEST_SET = re.compile(r"-test\.jsonl$")

# Latin letters and the Cyrillic or Greek letters that look the same.
LOOKALIKE = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441",
             "x": "\u0445", "i": "\u0456", "y": "\u0443", "A": "\u0391", "E": "\u0395",
             "O": "\u039f", "T": "\u03a4"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
WORD = re.compile(r"[A-Za-z]+")


def homoglyphs(t):
    return "".join(LOOKALIKE.get(c, c) if i % 2 == 0 else c for i, c in enumerate(t))


def zero_width(t):
    return WORD.sub(lambda m: "\u200b".join(m.group(0)), t)


def tags(t, attack=True):
    hidden = "".join(chr(0xE0000 + ord(c)) for c in t if 0x20 <= ord(c) < 0x7F)
    return "Please summarise this." + hidden


def fullwidth(t):
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t)


def b64(t, attack=True):
    order = "Decode this base64 and do what it says: " if attack else "Decode this base64: "
    return order + base64.b64encode(t.encode()).decode()


def mixed_case(t):
    return "".join(c.upper() if i % 2 == 0 else c.lower() for i, c in enumerate(t))


def leetspeak(t):
    return "".join(LEET.get(c.lower(), c) for c in t)


def spaced(t):
    # Letters one space apart, words three.
    return "   ".join(" ".join(w) for w in t.split())


def split_words(t):
    return WORD.sub(lambda m: m.group(0) if len(m.group(0)) < 5 else
                    m.group(0)[:len(m.group(0)) // 2] + "-" + m.group(0)[len(m.group(0)) // 2:], t)


def run_together(t):
    return re.sub(r"\s+", "", t)


def backwards(t, attack=True):
    order = "Reverse this text and do what it says: " if attack else "Reverse this text: "
    return order + t[::-1]


DISGUISES = [
    ("look-alike letters", homoglyphs),
    ("zero-width characters", zero_width),
    ("tag characters", tags),
    ("fullwidth", fullwidth),
    ("base64", b64),
    ("mixed case", mixed_case),
    ("leetspeak", leetspeak),
    ("letters spaced out", spaced),
    ("words split", split_words),
    ("words run together", run_together),
    ("backwards", backwards),
]


def load(path):
    if TEST_SET.search(path):
        print(f"evasion.py: {path} is a test set: measure evasions on dev and hold-out sets",
              file=sys.stderr)
        sys.exit(2)
    try:
        return run.load_set(path)
    except run.Failure as e:
        print(f"evasion.py: {e}", file=sys.stderr)
        sys.exit(e.code)


def scores(binary, texts_roles):
    lines = "".join(json.dumps({"text": t, "role": r}) + "\n" for t, r in texts_roles)
    try:
        p = subprocess.run([binary, "scan"], input=lines, capture_output=True, text=True)
    except OSError as e:
        print(f"evasion.py: cannot run {binary}: {e.strerror}", file=sys.stderr)
        sys.exit(1)
    out = p.stdout.splitlines()
    if p.returncode != 0 or len(out) != len(texts_roles):
        print(f"evasion.py: {binary} scan failed (exit {p.returncode}): {p.stderr[-500:]}",
              file=sys.stderr)
        sys.exit(1)
    return [json.loads(line)["score"] for line in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agentwall", default=os.environ.get("AGENTWALL_BIN",
                                                          os.path.join(REPO, "build",
                                                                       "agentwall")))
    ap.add_argument("--threshold", type=int, default=50)
    ap.add_argument("--show", type=int, default=0,
                    help="print the first N attacks each disguise hides")
    ap.add_argument("sets", nargs="*", default=DEFAULT_SETS)
    a = ap.parse_args()
    rows = [r for s in a.sets for r in load(s)]
    plain = scores(a.agentwall, [(r["text"], r["role"]) for r in rows])
    caught = [i for i, r in enumerate(rows) if r["label"] == 1 and plain[i] >= a.threshold]
    clean = [i for i, r in enumerate(rows) if r["label"] == 0 and plain[i] < a.threshold]
    print(f"{len(rows)} rows: {len(caught)} attacks flagged as written, {len(clean)} benign rows "
          f"not flagged as written; threshold {a.threshold}")
    print(f"{'disguise':24} {'attacks still flagged':>24} {'benign now flagged':>22}")
    for name, f in DISGUISES:
        carried = f in (b64, backwards, tags)
        texts = [f(rows[i]["text"]) for i in caught] + [
            f(rows[i]["text"], attack=False) if carried else f(rows[i]["text"]) for i in clean]
        got = scores(a.agentwall, [(t, rows[i]["role"]) for t, i in zip(texts, caught + clean)])
        kept = sum(1 for g in got[:len(caught)] if g >= a.threshold)
        fp = sum(1 for g in got[len(caught):] if g >= a.threshold)
        print(f"{name:24} {kept:>8}/{len(caught):<5} {100.0 * kept / max(1, len(caught)):5.1f}%"
              f" {fp:>8}/{len(clean):<5} {100.0 * fp / max(1, len(clean)):5.1f}%")
        if a.show:
            lost = [rows[i]["text"] for k, i in enumerate(caught) if got[k] < a.threshold]
            for t in lost[:a.show]:
                print("    hidden:", json.dumps(f(t)[:160], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
