#!/usr/bin/env python3
"""Grouped cross-validation of the whole injection detection, rules and model, on data the
model may be trained on (never a *-test.jsonl set).

    tests/eval/engine_cv.py [--data FILE ...] [--folds K] [--misses N]

For each row: the rules' findings come from `agentwall scan` (the shipped model's finding
dropped), the model's probability from a model trained by scripts/train_injection_model.py's
own code on the other folds; they are combined as the engine does (weight = confidence x
severity, a detector counted once, score = 1 - product of (1 - weight), threshold 50; the model counts from p 0.65
with severity 0.625). Folds hold out groups, not rows: every PIGuard valid.json attack subset
and every BIPIA attack type (alone and inside e-mails) is held out whole, so a figure says how
the engine does on a kind of attack it was not trained on. Rows from a file whose name has
"holdout" are only measured, never trained on. Prints recall and false positives per family
(agentwall-extra rows per source). Approximate: the model's score on decoded (base64, ...)
text is left out. Standard library only; about a minute.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import train_injection_model as T  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--data', nargs='+', default=[
    os.path.join(ROOT, '..', 'shared', 'eval', 'injection-dev.jsonl'),
    os.path.join(ROOT, 'scripts', 'data', 'injection-extra.jsonl'),
    os.path.join(ROOT, 'scripts', 'data', 'injection-holdout.jsonl')])
ap.add_argument('--folds', type=int, default=5)
ap.add_argument('--bin', default=os.environ.get('AGENTWALL_BIN', os.path.join(ROOT, 'build', 'agentwall')))
ap.add_argument('--misses', type=int, default=0)
ap.add_argument('--noml', action='store_true', help='rules only')
ap.add_argument('--epochs', type=int, default=20)
ap.add_argument('--l2', type=float, default=1e-4)
ap.add_argument('--rate', type=float, default=0.2)
ap.add_argument('--only', default='', help='measure only rows whose source contains this')
ap.add_argument('--dump', metavar='FILE', help="write each row's source, role, label, rules' "
                "clean product and held-out model probability as JSON lines (to try other "
                "weights or thresholds without retraining)")
a = ap.parse_args()

rows = []
for p in a.data:
    if 'test' in os.path.basename(p):
        sys.exit(f'{p}: refusing a test set (../shared/eval/README.md)')
    for n, l in enumerate(open(p, encoding='utf-8'), 1):
        r = json.loads(l); r['file'] = p.split('/')[-1]; r['line'] = n; r['notrain'] = 'holdout' in p
        s = r.get('source', '')
        if s.startswith('BIPIA'):
            g = s[s.find('('):] if '(' in s and 'clean' not in s else s + str(n % 5)
        elif 'valid.json' in s or 'NotInject' in s:
            g = s if '(PINT' in s or '(BIPIA' in s else s + str(n % 7)
        else:
            g = r.get('group') or (s + str(n))
        r['group'] = g
        fam = s.split(' (')[0]
        if 'valid.json' in s or 'agentwall' in s: fam = s
        if s.startswith('BIPIA'): fam = s.split(' (')[0]
        r['fam'] = fam + ' [' + r.get('role', '') + ']'
        rows.append(r)

payload = ''.join(json.dumps({'text': r['text'], 'role': r.get('role', 'user')}, ensure_ascii=False) + '\n' for r in rows)
out = subprocess.run([a.bin, 'scan', '--normalized'], input=payload.encode(), capture_output=True).stdout.decode().splitlines()
assert len(out) == len(rows), (len(out), len(rows))
for r, line in zip(rows, out):
    res = json.loads(line)
    clean = 1.0; dets = []
    for reason in res['reasons']:
        # "pii.email (weight 0.32)", or "(weight 0.32; 2 findings, counted once)"
        m = re.match(r'(\S+) \(weight ([0-9.]+)[;)]', reason)
        if m.group(1) == 'injection.model': continue
        clean *= 1 - float(m.group(2)); dets.append(m.group(1))
    r['rule_clean'] = clean; r['dets'] = dets
    r['full_score'] = res['score']
    r['norm'] = res['normalized']  # what the model reads, as the engine does

# A group's fold is a hash of its name alone, so rows added later do not move the others
# between folds (and a figure that changes says what the new rows did, not a reshuffle).
fold_of = {g: zlib.crc32(g.encode()) % a.folds for g in set(r['group'] for r in rows)}
if not a.noml:
  for k in range(a.folds):
    train = T.samples_of((r['norm'], r['label'], T.view_of(r.get('role', 'user')))
                         for r in rows if fold_of[r['group']] != k
                         and 'email_train + attack_train' not in r.get('source', '')
                         and not r.get('notrain'))
    w, b = T.train(train, a.epochs, a.l2, a.rate)
    for r in rows:
        if fold_of[r['group']] != k: continue
        r['p'] = T.probability(w, b, r['norm'], T.view_of(r.get('role', 'user')))
for r in rows:
    clean = r['rule_clean']
    p = r.get('p', 0)
    if p >= 0.65: clean *= 1 - p * 0.625
    r['score'] = round(100 * (1 - clean))
    r['flag'] = r['score'] >= 50

if a.dump:
    with open(a.dump, 'w', encoding='utf-8') as f:
        for r in rows:
            f.write(json.dumps({k: r.get(k) for k in ('file', 'line', 'source', 'role', 'label',
                                                       'fam', 'notrain', 'rule_clean', 'p')}) + '\n')
agg = collections.defaultdict(lambda: [0, 0, 0, 0])
for r in rows:
    if a.only and a.only not in r.get('source', ''): continue
    for key in (r['fam'], 'ALL ' + r['file']):
        c = agg[key]
        if r['label']: c[0] += 1; c[1] += r['flag']
        else: c[2] += 1; c[3] += r['flag']
for k in sorted(agg):
    c = agg[k]
    rec = f"recall {c[1]}/{c[0]} = {100*c[1]/c[0]:.1f}%" if c[0] else ''
    fpr = f"FPR {c[3]}/{c[2]} = {100*c[3]/c[2]:.1f}%" if c[2] else ''
    print(f"{k:60s} {rec:28s} {fpr}")
if a.misses:
    print('--- misses')
    ms = [r for r in rows if r['label'] and not r['flag'] and (not a.only or a.only in r['source'])]
    for r in ms[:a.misses]: print(r['score'], round(r.get('p', 0), 2), r['source'][:40], r['role'], r['dets'], '|', r['text'][:200].replace('\n', ' '))
    print('--- FPs')
    for r in [r for r in rows if not r['label'] and r['flag'] and (not a.only or a.only in r['source'])][:a.misses]:
        print(r['score'], round(r.get('p', 0), 2), r['source'][:40], r['role'], r['dets'], '|', r['text'][:200].replace('\n', ' '))
