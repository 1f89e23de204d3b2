#!/usr/bin/env python3
"""Is there more in the indicators than the cards find? Checks on the development split of bench/model_dev.sh.

    bash bench/model_dev.sh DB base
    bash bench/model_dev.sh DB boosted method=boosted_additive
    python3 bench/model_dev_checks.py WORK DB

WORK is model_dev.sh's work directory (default /tmp/xinyong-model-dev): its train_monthly.csv (every month's
training rows, lenders' labels) and the two fitted cards base.json and boosted.json. DB is the store, read only
for each firm's size class and industry. Training rows: quarterly snapshots up to 2022-06; development rows: the
monthly snapshots 2023-03 .. 2023-09, as model_dev.sh. Prints the development AUC of each check (docs/models.md,
"Seventh session"). Needs pandas, numpy and scikit-learn. The cards' scores come from `xinyong scorecard eval
--scores` (XINYONG_BIN, default: $HOME/.cache/xinyong-target/release/xinyong); the first AUCs printed are the
cards' own development AUCs, as model_dev.sh prints them.
"""
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

work = sys.argv[1] if len(sys.argv) > 1 else "/tmp/xinyong-model-dev"
db = sys.argv[2]
Y = "default_12m"
BIN = os.environ.get("XINYONG_BIN", os.path.expanduser("~/.cache/xinyong-target/release/xinyong"))


def card_log_odds(name):
    """Every row's log-odds of bad under a fitted card, from `xinyong scorecard eval --scores` (row order kept)."""
    out = f"{work}/{name}.scores.csv"
    subprocess.run(
        [BIN, "scorecard", "eval", "--model", f"{work}/{name}.json", "--csv", f"{work}/train_monthly.csv",
         "--target", Y, "--id", "uscc", "--scores", out],
        check=True, stdout=subprocess.DEVNULL,
    )
    return pd.read_csv(out, dtype={"id": str})["log_odds_bad"].values


df = pd.read_csv(f"{work}/train_monthly.csv", dtype={"uscc": str})
month = df.snapshot.str[5:7].astype(int)
df["s"] = card_log_odds("base")
df["b"] = card_log_odds("boosted")
df["t"] = df.snapshot.str[:4].astype(int) * 12 + month
# The firm's mean card score over the 12 months before each snapshot (rows of the same firm, any month).
by = df.set_index(["uscc", "t"])["s"]
acc, cnt = np.zeros(len(df)), np.zeros(len(df))
for lag in range(1, 13):
    v = by.reindex(pd.MultiIndex.from_arrays([df.uscc, df.t - lag])).values
    ok = ~np.isnan(v)
    acc[ok] += v[ok]
    cnt[ok] += 1
df["past12"] = np.where(cnt > 0, acc / np.maximum(cnt, 1), np.nan)
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
reg = pd.read_sql_query(
    "SELECT uscc, json_extract(fields, '$.size_class') AS size, json_extract(fields, '$.industry') AS industry "
    "FROM facts WHERE dataset = 'amr.registration' AND known_to IS NULL",
    con,
).drop_duplicates("uscc")
df = df.merge(reg, on="uscc", how="left")
df["division"] = df.industry.str[:2]
tr = df[(df.snapshot <= "2022-06") & (month % 3 == 0)]
dv = df[(df.snapshot >= "2023-03") & (df.snapshot <= "2023-09")]
auc = lambda x: roc_auc_score(dv[Y], x)
print(f"training rows {len(tr)} ({tr[Y].sum()} defaults), development rows {len(dv)} ({dv[Y].sum()} defaults)")
print(f"WoE card: {auc(dv.s):.4f}; boosted additive card: {auc(dv.b):.4f}")

feats = [c for c in df.columns[2:] if c not in (Y, "s", "b", "t", "past12", "size", "industry", "division")]
feats = [c for c in feats if tr[c].nunique() > 1]


def gbm(**kw):
    m = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=8, min_samples_leaf=200, l2_regularization=1.0,
        random_state=0, **kw
    )
    m.fit(tr[feats], tr[Y])
    return auc(m.predict_proba(dv[feats])[:, 1])


print(f"gradient boosting, {len(feats)} indicators, interactions: {gbm():.4f}")
print(f"gradient boosting, one indicator per tree: {gbm(interaction_cst=[[i] for i in range(len(feats))]):.4f}")


def with_card(extra):
    """Logistic regression on the card's log-odds and the extra columns (numeric: value and presence;
    text: one indicator per value)."""
    def design(d):
        cols = [d.s.values]
        for c in extra:
            if not pd.api.types.is_numeric_dtype(d[c]):
                values = sorted(df[c].dropna().unique())
                cols.append(pd.get_dummies(d[c]).reindex(columns=values, fill_value=0).values.astype(float))
            else:
                cols += [d[c].fillna(0).values, d[c].notna().astype(float).values]
        return np.column_stack(cols)

    lr = LogisticRegression(max_iter=3000).fit(design(tr), tr[Y])
    return auc(lr.decision_function(design(dv)))


print(f"card + mean card score of the previous 12 months: {with_card(['past12']):.4f}")
print(f"card + size class: {with_card(['size']):.4f}")
print(f"card + industry division: {with_card(['division']):.4f}")
print(f"cards blended 1/2, 1/2: {auc(0.5 * dv.s + 0.5 * dv.b):.4f}; 1/4, 3/4: {auc(0.25 * dv.s + 0.75 * dv.b):.4f}")
ok = dv.pro_margin.notna() & dv.sol_debt_ratio.notna()
lev, mar = dv.sol_debt_ratio.clip(upper=1.4) - 0.45, dv.pro_margin - 0.07
print(f"margin alone: {roc_auc_score(dv[Y][ok], -mar[ok]):.4f}")
for a, b in [(12.5, 10), (12.5, 0), (12.5, -10), (12.5, -25)]:
    print(f"  {a} x debt ratio + {b} x margin: {roc_auc_score(dv[Y][ok], (a * lev + b * mar)[ok]):.4f}")
