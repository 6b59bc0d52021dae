#!/usr/bin/env python3
"""Trains agentwall's learned prompt-injection model and writes its weights.

    scripts/train_injection_model.py [--data FILE ...] [--out FILE] [--cv K]

Default data: ../shared/eval/injection-dev.jsonl (public, MIT: PIGuard and BIPIA) and
scripts/data/injection-extra.jsonl (written for this project: ordinary and hard benign
prompts and tool results, direct and indirect attacks in several languages; scripts/data/README.md).
scripts/data/injection-holdout.jsonl is kept out of training on purpose. Default output:
agent/detect/data/injection_model.txt, which the build embeds.

Logistic regression over hashed word unigrams, word bigrams and character 4-grams, the exact
features agent/detect/ngram_model.cc computes (the unit test `detect: model features agree
with the training script` pins them), each counted twice: once in a table shared by all
text and once in the table of the text's view, a prompt (a user's or system message) or
content handed to the model (a tool's result or description). So "write a poem about the
sea" can weigh towards an attack inside a fetched web page, where BIPIA plants such
requests, and not in a user's own prompt, while what both views share is learned once.
The text is taken as the engine reads it: every row is first normalised by `agentwall scan
--normalized` (NFKC, look-alike letters folded, diacritics dropped), so "précédentes" is
learned as the "precedentes" the engine will see. The binary is `--agentwall`, else
$AGENTWALL_BIN, else build/agentwall: build it first. Standard library only; deterministic:
the same data gives the same weights byte for byte.

Data: JSON lines {"text", "label": 0|1, "role", ...}; "role" "tool" (or "tool_result",
"tool_description") is content, any other or none a prompt. Only files for training: the
evaluation's *-test.jsonl files are refused, so no figure measured on them comes from data
that shaped the model. Rows that are a benign e-mail with an attack pasted in are left out:
the attack alone is in the set too, and a 64-token window of the e-mail part is not an
attack.
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys

DIM_BITS = 20
# The weight tables, each 1 << DIM_BITS long: shared (0), then one per view.
PROMPT, CONTENT = 1, 2
TABLES = 3
WINDOW = 64
STRIDE = 32
MAX_TOKEN_FOR_GRAMS = 20
# Windows with fewer features are scaled as if they had this many (a feature counted once
# in each of its two tables, so 12 features): a two-word text carries little evidence
# either way, and must not score like a whole paragraph.
MIN_NORM = 24
# Texts of fewer words, and of fewer word bytes in all, get probability 0, as the agent
# scores them (too little to judge).
MIN_TOKENS = 4
# A benign row of more windows than this (a page of code, a licence) weighs this many
# windows in all, its windows sharing it.
ROW_WINDOWS = 4
# Sources whose tool rows are also trained as prompts (scripts/data/README.md).
BOTH_VIEWS = ("agentwall-extra18 ",)
MIN_WORD_BYTES = 24


def fnv(data: bytes) -> int:
    h = 2166136261
    for c in data:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


WORD_KIND, PAIR_KIND, GRAM_KIND = 0x1111111111111111, 0x2222222222222222, 0x3333333333333333


def feature(key: int, kind: int) -> int:
    return (((key ^ kind) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> (64 - DIM_BITS)


def is_word(c: int) -> bool:
    return (97 <= c <= 122) or (65 <= c <= 90) or (48 <= c <= 57) or c >= 0x80


# Words the model does not see (as ngram_model.cc): "example" is in the reserved host names
# the training attacks send data to far more often than the benign rows name them.
UNSEEN = {b"example", b"examples"}


def tokenize(b: bytes, gaps=None):
    """The words of `b`; with a list `gaps`, also, for each word but the last, whether the
    bytes up to the next word are code's (code_gap)."""
    out, i, n = [], 0, len(b)
    prev = None
    while i < n:
        while i < n and not is_word(b[i]):
            i += 1
        s = i
        while i < n and is_word(b[i]):
            i += 1
        if i > s and lower(b[s:i]) not in UNSEEN:
            if gaps is not None and prev is not None:
                gaps.append(code_gap(b[prev:s]))
            out.append(b[s:i])
            prev = i
    return out


PROSE_RUN = 6  # as NgramModel::kProseRun
CODE_MARKS = frozenset(b"(){}[];=<>|&\\$`")
CODE_JOINERS = frozenset(b".:_/")


def has_prose(gaps) -> bool:
    """Whether a window's gaps hold PROSE_RUN in a row that are not code's (a sentence)."""
    run = 0
    for g in gaps:
        run = 0 if g else run + 1
        if run >= PROSE_RUN:
            return True
    return False


def code_gap(gap: bytes) -> bool:
    """Whether the bytes between two words are code's, as read_words() marks them: a
    bracket, operator or code quote, or, with no space, member access, a scope, a path or an
    underscore."""
    if any(c in CODE_MARKS for c in gap):
        return True
    return any(c in CODE_JOINERS for c in gap) and not any(c <= 32 for c in gap)


def lower(b: bytes) -> bytes:
    return bytes(c + 32 if 65 <= c <= 90 else c for c in b)


def window_features(toks):
    """Every feature of the window, repeats included (counts, not presence: the agent sums
    weights per token once and adds up windows from prefix sums). As ngram_model.cc."""
    out = []
    hashes = [fnv(lower(w)) for w in toks]
    for t, w in enumerate(toks):
        out.append(feature(hashes[t], WORD_KIND))
        if len(w) <= MAX_TOKEN_FOR_GRAMS:
            p = b"<" + lower(w) + b">"
            grams = len(p) - 3 if len(p) >= 4 else 1
            for g in range(grams):
                gram = p[g:g + 4]
                out.append(feature((len(gram) << 32) | int.from_bytes(gram, "little"), GRAM_KIND))
        if t + 1 < len(toks):
            out.append(feature((hashes[t] << 32) | hashes[t + 1], PAIR_KIND))
    return out


def view_of(role: str) -> int:
    """The view a row's role puts it in, as the engine's Source does: a tool's result or
    description is content; anything else (user, system, unnamed) a prompt."""
    return CONTENT if role in ("tool", "tool_result", "tool_description") else PROMPT


def windows(text: str, view: int, skip_code: bool = False):
    """Each window's features: the shared index of every feature, then its index in the
    view's table (so a window holds its features twice). With `skip_code`, windows of code
    are left out, as the agent scores: it does not read them. Training keeps them: benign
    code teaches the model that code's words are no attack's."""
    gaps = []
    toks = tokenize(text.encode("utf-8", "surrogatepass"), gaps)
    if not toks:
        return []
    out, start = [], 0
    offset = view << DIM_BITS
    while True:
        end = min(len(toks), start + WINDOW)
        # A window of code (half its gaps or more) is not read by the agent.
        code = sum(gaps[start:end - 1])
        if not (skip_code and end - 1 - start > 0 and 2 * code >= end - 1 - start
                and not has_prose(gaps[start:end - 1])):
            f = window_features(toks[start:end])
            out.append(f + [x + offset for x in f])
        if end == len(toks):
            return out
        start += STRIDE


def load(paths):
    rows = []
    for path in paths:
        if "test" in os.path.basename(path):
            sys.exit(f"{path}: refusing to train on a test set (see ../shared/eval/README.md)")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    r = json.loads(line)
                    text, label = r["text"], int(r["label"])
                except (ValueError, KeyError, TypeError) as e:
                    sys.exit(f"{path}:{n}: expected {{\"text\": ..., \"label\": 0|1}}: {e}")
                if "email_train + attack_train" in r.get("source", ""):
                    continue
                view = view_of(r.get("role", "user"))
                rows.append((text, label, view))
                # Files are pasted into prompts as well as read by tools: the long benign
                # files of these sources teach the prompt view too.
                if view == CONTENT and r.get("source", "").startswith(BOTH_VIEWS):
                    rows.append((text, label, PROMPT))
    return rows


def normalize(texts, agentwall):
    """The texts as the engine's detectors read them, from one `agentwall scan --normalized`."""
    if not os.access(agentwall, os.X_OK):
        sys.exit(f"{agentwall}: not found; the model learns text as the engine normalises it, "
                 "so build the engine first (cmake --build build --target agentwall) or name "
                 "it with --agentwall or $AGENTWALL_BIN")
    payload = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    run = subprocess.run([agentwall, "scan", "--normalized"], input=payload.encode("utf-8"),
                         capture_output=True, check=False)
    out = run.stdout.decode("utf-8").splitlines()
    if run.returncode != 0 or len(out) != len(texts):
        sys.exit(f"{agentwall} scan --normalized failed (exit {run.returncode}): "
                 f"{run.stderr.decode(errors='replace')[:500]}")
    return [json.loads(line)["normalized"] for line in out]


def default_agentwall(root):
    return os.environ.get("AGENTWALL_BIN") or os.path.join(root, "build", "agentwall")


def scale(feats):
    """1 / sqrt of a window's feature count, a feature counted in each of its two tables."""
    return 1.0 / math.sqrt(max(len(feats), MIN_NORM))


def logit(w, bias, feats):
    return bias + sum(w[x] for x in feats) * scale(feats)


def probability(w, bias, text, view):
    """The model's probability for `text` in `view`: its most suspicious window's, as the
    agent scores (0 for a text of fewer than MIN_TOKENS words and MIN_WORD_BYTES bytes)."""
    toks = tokenize(text.encode("utf-8", "surrogatepass"))
    if len(toks) < MIN_TOKENS and sum(map(len, toks)) < MIN_WORD_BYTES:
        return 0.0
    best = max((logit(w, bias, f) for f in windows(text, view, skip_code=True) if f),
               default=None)
    return 0.0 if best is None else 1.0 / (1.0 + math.exp(-max(min(best, 30.0), -30.0)))


def train(samples, epochs, l2, rate):
    """AdaGrad on the logistic loss, classes weighted to balance. `samples` are rows, each
    (its windows' features, label). A benign row's windows are all benign. An attack's label
    says that one of its windows carries the attack, not that all do: a 300-word page with
    one injected sentence has windows of ordinary page text. So from the second epoch on an
    attack of several windows trains only its most suspicious one (multiple-instance
    learning); training every window as an attack taught the model that ordinary documents
    are attacks."""
    w = [0.0] * (TABLES << DIM_BITS)
    g2 = [1e-8] * (TABLES << DIM_BITS)
    bias, bias_g2 = 0.0, 1e-8
    pos = sum(1 for _, y in samples if y)
    neg = sum(min(len(ws), ROW_WINDOWS) for ws, y in samples if not y)
    total = pos + neg
    cw = {1: total / (2.0 * max(pos, 1)), 0: total / (2.0 * max(neg, 1))}
    order = list(range(len(samples)))
    rng = random.Random(20261126)
    for epoch in range(epochs):
        rng.shuffle(order)
        for i in order:
            wins, y = samples[i]
            if y and epoch > 0 and len(wins) > 1:
                wins = [max(wins, key=lambda f: logit(w, bias, f))]
            # A long benign document weighs as ROW_WINDOWS windows in all, shared by its
            # windows: pages of code count as much as a few prompts, not as hundreds.
            share = 1.0 if y else min(1.0, ROW_WINDOWS / len(wins))
            for feats in wins:
                v = scale(feats)
                z = logit(w, bias, feats)
                p = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
                g = (p - y) * cw[y] * share
                for f in feats:
                    gf = g * v + l2 * w[f]
                    g2[f] += gf * gf
                    w[f] -= rate * gf / math.sqrt(g2[f])
                bias_g2 += g * g
                bias -= rate * g / math.sqrt(bias_g2)
    return w, bias


def samples_of(rows):
    """(windows' features, label) per (text, label, view) row with any words."""
    out = [([f for f in windows(text, view) if f], y) for text, y, view in rows]
    return [(wins, y) for wins, y in out if wins]


def cross_validate(rows, folds, args):
    """Out-of-fold probabilities (max over windows, as the agent scores) per threshold: how
    to pick where the model's word starts to count without looking at any test set."""
    rng = random.Random(7)
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    probs = [0.0] * len(rows)
    for k in range(folds):
        held = set(idx[k::folds])
        samples = samples_of(r for i, r in enumerate(rows) if i not in held)
        w, bias = train(samples, args.epochs, args.l2, args.rate)
        for i in held:
            probs[i] = probability(w, bias, rows[i][0], rows[i][2])
    pos = [p for p, (_, y, _) in zip(probs, rows) if y]
    neg = [p for p, (_, y, _) in zip(probs, rows) if not y]
    for th in (0.5, 0.6, 0.7, 0.8, 0.9):
        print(f"threshold {th:.1f}: recall {sum(p >= th for p in pos) / len(pos):.3f} "
              f"false positives {sum(p >= th for p in neg) / len(neg):.3f} "
              f"({len(pos)} attacks, {len(neg)} benign, {folds}-fold out-of-fold)")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+",
                    default=[os.path.join(root, "..", "shared", "eval", "injection-dev.jsonl"),
                             os.path.join(root, "scripts", "data", "injection-extra.jsonl")])
    ap.add_argument("--out", default=os.path.join(root, "agent", "detect", "data",
                                                  "injection_model.txt"))
    ap.add_argument("--agentwall", default=default_agentwall(root),
                    help="the engine binary that normalises the text (default: $AGENTWALL_BIN, "
                         "else build/agentwall)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--cv", type=int, metavar="K",
                    help="report K-fold cross-validated recall and false positives, write nothing")
    ap.add_argument("--features", metavar="TEXT",
                    help="print the feature indices of TEXT as one window and exit")
    args = ap.parse_args()
    if args.features is not None:
        print(" ".join(map(str, sorted(set(window_features(tokenize(args.features.encode())))))))
        return
    rows = load(args.data)
    texts = normalize([r[0] for r in rows], args.agentwall)
    rows = [(t, y, v) for t, (_, y, v) in zip(texts, rows)]
    if args.cv:
        cross_validate(rows, args.cv, args)
        return
    samples = samples_of(rows)
    n_windows = sum(len(ws) for ws, _ in samples)
    w, bias = train(samples, args.epochs, args.l2, args.rate)
    nonzero = [(i, x) for i, x in enumerate(w) if abs(x) >= 1e-4]
    with open(args.out, "w", encoding="ascii") as f:
        f.write("# agentwall prompt-injection model: written by scripts/train_injection_model.py\n")
        f.write(f"# trained on: {', '.join(os.path.basename(p) for p in args.data)}; "
                f"{len(rows)} rows, {n_windows} windows; epochs={args.epochs} "
                f"l2={args.l2} rate={args.rate}\n")
        f.write(f"agentwall-ngram-model 2 {DIM_BITS} {WINDOW} {STRIDE}\n")
        f.write(f"# feature i of the shared table is index i, of the prompt table "
                f"{PROMPT << DIM_BITS} + i, of the content table {CONTENT << DIM_BITS} + i\n")
        f.write(f"bias {bias:.6g}\n")
        for i, x in nonzero:
            f.write(f"{i} {x:.5g}\n")
    print(f"{args.out}: {len(nonzero)} weights from {len(rows)} rows ({n_windows} windows)")


if __name__ == "__main__":
    main()
