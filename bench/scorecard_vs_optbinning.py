#!/usr/bin/env python3
"""`xinyong scorecard` against optbinning + scikit-learn on the Polish bankruptcy year-1 file.

Times one fit on the whole file (wall clock; ours includes process start and CSV parsing, theirs includes
pandas.read_csv) and the 5-fold cross-validated AUC on the same folds: StratifiedKFold(5, shuffle=True,
random_state=0). Our folds are exported as a column and handed to `xinyong scorecard cv --fold-column`.

Usage: python3 bench/scorecard_vs_optbinning.py [--bin PATH/TO/xinyong] [--data FILE] [--repeat N]
Needs: pip install optbinning scikit-learn pandas
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import pandas as pd
from optbinning import BinningProcess
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "polish_bankruptcy_1year.csv")
DEFAULT_BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "target")), "release", "xinyong")
TARGET = "class"


def optbinning_fit(X, y):
    bp = BinningProcess(list(X.columns), selection_criteria={"iv": {"min": 0.02}})
    bp.fit(X, y)
    lr = LogisticRegression(max_iter=2000).fit(bp.transform(X, metric="woe"), y)
    return bp, lr


def time_optbinning(path):
    t0 = time.perf_counter()
    d = pd.read_csv(path)
    X, y = d.drop(columns=[TARGET]), d[TARGET]
    optbinning_fit(X, y)
    return time.perf_counter() - t0


def cv_optbinning(d, folds):
    X, y = d.drop(columns=[TARGET]), d[TARGET]
    aucs = []
    t0 = time.perf_counter()
    for tr, te in folds:
        bp, lr = optbinning_fit(X.iloc[tr], y.iloc[tr])
        p = lr.predict_proba(bp.transform(X.iloc[te], metric="woe"))[:, 1]
        aucs.append(roc_auc_score(y.iloc[te], p))
    return aucs, time.perf_counter() - t0


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def time_ours(binary, path, method, out):
    t0 = time.perf_counter()
    run([binary, "scorecard", "fit", "--csv", path, "--target", TARGET, "--out", out, "--method", method])
    return time.perf_counter() - t0


def cv_ours(binary, fold_csv, method):
    t0 = time.perf_counter()
    out = run([binary, "scorecard", "cv", "--csv", fold_csv, "--target", TARGET, "--folds", "5",
               "--fold-column", "fold", "--method", method])
    secs = time.perf_counter() - t0
    aucs = [float(line.rsplit("AUC", 1)[1]) for line in out.splitlines() if line.startswith("fold ")]
    return aucs, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3, help="timed fits per tool (median reported)")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    d = pd.read_csv(a.data)
    y = d[TARGET]
    print(f"data: {os.path.abspath(a.data)}: {len(d)} rows, {d.shape[1] - 1} features, {int(y.sum())} bad")
    print(f"xinyong: {os.path.abspath(a.bin)}; cores: {os.cpu_count()}")
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(d, y))
    with tempfile.TemporaryDirectory() as tmp:
        fold_csv = os.path.join(tmp, "folds.csv")
        fold = pd.Series(0, index=d.index)
        for k, (_, te) in enumerate(folds):
            fold.iloc[te] = k
        d.assign(fold=fold).to_csv(fold_csv, index=False)
        model = os.path.join(tmp, "m.json")

        t_opt = statistics.median(time_optbinning(a.data) for _ in range(a.repeat))
        rows = [("optbinning BinningProcess + LogisticRegression", t_opt, *cv_optbinning(d, folds))]
        for method, label in [("woe", "xinyong scorecard --method woe"), ("boosted", "xinyong scorecard (boosted, default)")]:
            t = statistics.median(time_ours(a.bin, a.data, method, model) for _ in range(a.repeat))
            rows.append((label, t, *cv_ours(a.bin, fold_csv, method)))

    print()
    print(f"| {'method':<48} | fit, whole file (s) | speed-up over optbinning | 5-fold CV (s) | 5-fold AUC (mean) | per fold |")
    print(f"|{'-' * 50}|---|---|---|---|---|")
    for label, t, aucs, cv_secs in rows:
        folds_txt = " ".join(f"{x:.4f}" for x in aucs)
        print(f"| {label:<48} | {t:.3f} | {t_opt / t:.1f}× | {cv_secs:.1f} | {statistics.mean(aucs):.4f} | {folds_txt} |")


if __name__ == "__main__":
    main()
