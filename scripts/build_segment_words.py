#!/usr/bin/env python3
"""Builds agent/detect/data/segment_words.txt: the words the detection engine uses to read
text whose words run together ("ignoreallpreviousinstructions"), one `word count` per line,
most frequent first.

    scripts/build_segment_words.py [--out FILE] [SET.jsonl ...]

The words are those of the training sets (default: ../shared/eval/injection-dev.jsonl and
scripts/data/injection-extra.jsonl): runs of ASCII letters, camelCase split at its humps,
lower-cased, of 2 to 16 letters ("a" and "i" too), seen twice or more. A word that is two
words each twenty times as common run together ("ignoreall", "systemprompt", written so by
attack rows and constants) is left out, or the engine would read it as one word. Files whose names say `test` are refused: nothing measured
on them may come from them. Standard library only; the same input gives the same file.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_SETS = [os.path.join(REPO, "..", "shared", "eval", "injection-dev.jsonl"),
                os.path.join(HERE, "data", "injection-extra.jsonl")]
OUT = os.path.join(REPO, "agent", "detect", "data", "segment_words.txt")
WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
MAX_LETTERS = 16  # a run of 17 or more is what the engine takes for words run together


def count_words(paths: list[str]) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for path in paths:
        if re.search(r"test", os.path.basename(path)):
            sys.exit(f"build_segment_words.py: {path} is a test set; build from training sets only")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    text = json.loads(line)["text"]
                except (ValueError, KeyError) as e:
                    sys.exit(f"build_segment_words.py: {path}:{n}: not a JSON row with text ({e})")
                for w in WORD.findall(text):
                    if len(w) <= MAX_LETTERS:
                        counts[w.lower()] += 1
    return counts


def run_together(word: str, counts: collections.Counter) -> bool:
    """A rare word that is two much commoner words one after the other."""
    n = counts[word]
    if len(word) < 6:
        return False
    for cut in range(2, len(word) - 1):
        a, b = word[:cut], word[cut:]
        if counts[a] >= 20 * n and counts[b] >= 20 * n:
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("sets", nargs="*", default=DEFAULT_SETS)
    args = ap.parse_args()
    counts = count_words(args.sets)
    words = [(w, n) for w, n in counts.items()
             if n >= 2 and (len(w) >= 2 or w in ("a", "i")) and not run_together(w, counts)]
    words.sort(key=lambda wn: (-wn[1], wn[0]))
    with open(args.out, "w", encoding="ascii") as f:
        for w, n in words:
            f.write(f"{w} {n}\n")
    print(f"build_segment_words.py: {len(words)} words to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
