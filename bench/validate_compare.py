#!/usr/bin/env python3
"""Two models against the truth, on the same firms: a paired bootstrap of their AUC difference.

    python3 bench/validate_compare.py A_SCORES.csv B_SCORES.csv

Each file is written by `xinyong validate ... --scores FILE` (uscc, pd, score, grade, oracle_pd, default), one
per model, on the same district. Prints both AUCs against the true defaults, the oracle's, and the mean, standard
deviation and share of 1,000 firm resamples in which B beats A. Needs numpy and scikit-learn.
"""
import csv, sys
import numpy as np
from sklearn.metrics import roc_auc_score

def read(path):
    return {r["uscc"]: r for r in csv.DictReader(open(path))}

a, b = read(sys.argv[1]), read(sys.argv[2])
assert a.keys() == b.keys(), "the two files hold different populations"
firms = sorted(a)
y = np.array([int(a[f]["default"]) for f in firms])
assert all(a[f]["default"] == b[f]["default"] for f in firms), "the two files disagree on the truth"
pa = np.array([float(a[f]["pd"]) for f in firms])
pb = np.array([float(b[f]["pd"]) for f in firms])
po = np.array([float(a[f]["oracle_pd"]) for f in firms])
rng = np.random.default_rng(1)
d = []
for _ in range(1000):
    i = rng.integers(0, len(firms), len(firms))
    d.append(roc_auc_score(y[i], pb[i]) - roc_auc_score(y[i], pa[i]))
d = np.array(d)
oracle, auc_a, auc_b = roc_auc_score(y, po), roc_auc_score(y, pa), roc_auc_score(y, pb)
print(f"{len(firms)} firms, {y.sum()} true defaults; AUC A {auc_a:.4f} ({auc_a / oracle:.3f} of the oracle), "
      f"B {auc_b:.4f} ({auc_b / oracle:.3f}), oracle {oracle:.4f}; B - A {auc_b - auc_a:+.4f}; over {len(d)} "
      f"resamples: mean {d.mean():+.4f}, sd {d.std():.4f}, B better in {100 * (d > 0).mean():.0f} % (not a p-value)")
