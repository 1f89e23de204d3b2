#!/usr/bin/env python3
"""Where the model's AUC falls short of the oracle's, measured against the generator's hidden truth.

    xinyong validate --db DB --truth DISTRICT/truth --scores SCORES.csv
    python3 bench/oracle_gap.py DISTRICT SCORES.csv DB

A diagnosis, never a fit: nothing here feeds the model. The generator's monthly hazard is
sigmoid(b + x - cycle): b is the firm's baseline log-odds (industry, size, age and a firm effect), x its
current deviation (an AR(1) process). This splits the oracle's 12-month PD into the two and asks which one the
model's PD misses: the AUC of each alone, how the model's log-odds load on them, and the 5-fold cross-validated
AUC of a logistic regression of the true defaults on the model's log-odds with each added. It then asks whether
the registration (industry division, size class, age, capital) explains b, and whether a firm's mean pre-tax
margin over one, two or four years adds to the model. Reads a SQLite store. Needs pandas, scikit-learn and
scipy. docs/models.md holds the figures it gave.
"""
import sqlite3
import sys

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score as auc
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

district, scores, db = sys.argv[1:4]
logit = lambda p: np.log(p / (1 - p))

v = pd.read_csv(scores, dtype={"uscc": str})
truth = pd.read_csv(f"{district}/truth/firms.csv", dtype={"uscc": str})
hazard = pd.read_csv(f"{district}/truth/pd_monthly.csv", dtype={"uscc": str})
# The validation month: the one whose 12-month PD is the oracle_pd of the scores file.
month = (
    hazard.merge(v[["uscc", "oracle_pd"]], on="uscc")
    .assign(gap=lambda h: (h.pd12 - h.oracle_pd).abs())
    .groupby("month")
    .gap.mean()
    .idxmin()
)
hazard = hazard[hazard.month == month]
d = v.merge(truth[["uscc", "baseline_logodds"]], on="uscc").merge(hazard[["uscc", "monthly_hazard"]], on="uscc")
d["b"] = d.baseline_logodds
# The cycle is the same for every firm in a month. The truth file rounds the hazard to 6 decimals: clip it.
d["x"] = logit(d.monthly_hazard.clip(1e-7, 1 - 1e-7)) - d.b
d["lpd"] = logit(d.pd.clip(1e-12, 1 - 1e-12))
print(f"validation month {month}: {len(d)} firms, {d.default.sum()} true defaults")
for c, name in [("pd", "model PD"), ("oracle_pd", "oracle PD"), ("b", "baseline b alone"), ("x", "deviation x alone")]:
    print(f"AUC {name}: {auc(d.default, d[c]):.4f}")
print(
    f"Spearman of the model's log-odds with b {spearmanr(d.lpd, d.b)[0]:.3f}, with x {spearmanr(d.lpd, d.x)[0]:.3f}"
)
X = np.column_stack([np.ones(len(d)), d.b, d.x])
beta = np.linalg.lstsq(X, d.lpd, rcond=None)[0]
r2 = 1 - ((d.lpd - X @ beta) ** 2).sum() / ((d.lpd - d.lpd.mean()) ** 2).sum()
print(f"model log-odds = {beta[0]:.2f} + {beta[1]:.2f} b + {beta[2]:.2f} x (R2 {r2:.3f}); sd b {d.b.std():.2f}, sd x {d.x.std():.2f}")
folds = StratifiedKFold(5, shuffle=True, random_state=1)


def cv_auc(frame):
    p = cross_val_predict(LogisticRegression(max_iter=1000), frame, d.default, cv=folds, method="predict_proba")
    return auc(d.default, p[:, 1])


for cols in [["lpd"], ["lpd", "b"], ["lpd", "x"], ["lpd", "b", "x"], ["b", "x"]]:
    print(f"cross-validated AUC on {' + '.join(cols)}: {cv_auc(d[cols]):.4f}")

con = sqlite3.connect(db)
reg = pd.read_sql(
    "SELECT uscc, json_extract(fields, '$.industry') AS ind, json_extract(fields, '$.size_class') AS size, "
    "json_extract(fields, '$.founded') AS founded, json_extract(fields, '$.reg_capital') AS cap "
    "FROM facts WHERE dataset = 'amr.registration' AND known_to IS NULL",
    con,
).drop_duplicates("uscc")
r = d.merge(reg, on="uscc", how="left")
year = int(month[:4]) + int(month[5:]) / 12
R = pd.get_dummies(pd.DataFrame({"div": r.ind.astype(str).str[:2], "size": r["size"].astype(str)}))
age = year - pd.to_datetime(r.founded, errors="coerce").dt.year
R["lage"] = np.log1p(age.fillna(age.median()).clip(0))
R["lcap"] = np.log1p(r.cap.fillna(0).clip(0))
# The register as it stands at the cut-off (b does not change over time).
bhat = cross_val_predict(LinearRegression(), R, r.b, cv=KFold(5, shuffle=True, random_state=1))
print(
    f"share of b's variance the registration explains (industry division, size, age, capital; cross-validated): "
    f"{1 - ((r.b - bhat) ** 2).sum() / ((r.b - r.b.mean()) ** 2).sum():.3f}"
)

fs = pd.read_sql(
    "SELECT uscc, CAST(period AS INTEGER) AS year, json_extract(fields, '$.\"metric:revenue\"') AS rev, "
    "json_extract(fields, '$.\"metric:ebit\"') AS ebit, json_extract(fields, '$.\"metric:interest_expense\"') AS int "
    "FROM facts WHERE dataset = 'tax.financial_statements' AND known_to IS NULL",
    con,
)
fs = fs[fs.rev > 0].assign(m=lambda s: (s.ebit - s["int"]) / s.rev)  # pre-tax margin (the card's is net)
last = int(month[:4])
margins = fs[fs.year <= last].pivot_table(index="uscc", columns="year", values="m")
m = d.merge(margins, left_on="uscc", right_index=True, how="left")
# Every window on the same firms: those with a statement for the last year.
ok = m[last].notna() if last in m.columns else pd.Series(False, index=m.index)
print(f"mean pre-tax margins, on the {ok.mean():.0%} of the firms with a statement for {last}:")
for n in (1, 2, 4):
    cols = [y for y in range(last - n + 1, last + 1) if y in m.columns]
    mean = m[cols].mean(axis=1).where(ok)
    frame = pd.DataFrame({"lpd": d.lpd, "margin": mean.fillna(mean.median()).clip(-0.3, 0.3), "na": (~ok).astype(float)})
    print(
        f"  over {n} year(s): Spearman with b {spearmanr(d.b[ok], mean[ok])[0]:.3f}; "
        f"cross-validated AUC with the model's log-odds {cv_auc(frame):.4f}"
    )
