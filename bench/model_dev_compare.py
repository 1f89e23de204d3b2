#!/usr/bin/env python3
"""Is one card really better than another on the development split? A paired bootstrap over firms.

    python3 bench/model_dev_compare.py WORK A.json A_DEV.csv B.json B_DEV.csv

WORK is bench/model_dev.sh's directory (its train_monthly.csv names the firm of each development row); each
card is scored on its own development CSV (the same rows, in model_dev.sh's order, perhaps with indicators
transformed) by `xinyong scorecard eval --scores`. The development rows are monthly snapshots of the same firms,
so the resampling draws firms, not rows. Prints both AUCs, the mean difference B - A over 200 resamples, its
standard deviation and the share of resamples where B wins. Needs numpy and scikit-learn.
"""
import csv, os, subprocess, sys, tempfile
import numpy as np
from sklearn.metrics import roc_auc_score

work, model_a, dev_a, model_b, dev_b = sys.argv[1:6]
BIN = os.environ.get("XINYONG_BIN", os.path.expanduser("~/.cache/xinyong-target/release/xinyong"))

def log_odds(model, dev):
    with tempfile.NamedTemporaryFile(suffix=".csv") as out:
        subprocess.run([BIN, "scorecard", "eval", "--model", model, "--csv", dev, "--target", "default_12m",
                        "--scores", out.name], check=True, stdout=subprocess.DEVNULL)
        return np.array([float(r["log_odds_bad"]) for r in csv.DictReader(open(out.name))])

rows = csv.reader(open(f"{work}/train_monthly.csv"))
next(rows)
firm = [r[0] for r in rows if "2023-03" <= r[1] <= "2023-09"]
y = np.array([int(r["default_12m"]) for r in csv.DictReader(open(dev_a))])
y_b = np.array([int(r["default_12m"]) for r in csv.DictReader(open(dev_b))])
assert np.array_equal(y, y_b), "the two development files hold different rows"
a, b = log_odds(model_a, dev_a), log_odds(model_b, dev_b)
assert len(firm) == len(y) == len(a) == len(b), "the development files are not model_dev.sh's rows"
ids = {f: i for i, f in enumerate(sorted(set(firm)))}
g = np.array([ids[f] for f in firm])
order = np.argsort(g, kind="stable")
starts = np.searchsorted(g[order], np.arange(len(ids)))
ends = np.searchsorted(g[order], np.arange(len(ids)), side="right")
rng = np.random.default_rng(1)
d = []
for _ in range(200):
    idx = np.concatenate([order[starts[p]:ends[p]] for p in rng.integers(0, len(ids), len(ids))])
    d.append(roc_auc_score(y[idx], b[idx]) - roc_auc_score(y[idx], a[idx]))
d = np.array(d)
auc_a, auc_b = roc_auc_score(y, a), roc_auc_score(y, b)
print(f"AUC A {auc_a:.4f}, B {auc_b:.4f}, B - A {auc_b - auc_a:+.4f}; over {len(d)} resamples of {len(ids)} firms: "
      f"mean {d.mean():+.4f}, sd {d.std():.4f}, B better in {100 * (d > 0).mean():.0f} % (not a p-value)")
