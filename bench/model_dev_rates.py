#!/usr/bin/env python3
"""A trial on the development split: counts over long windows per year of the firm's record, not raw.

    python3 bench/model_dev_rates.py WORK VARIANT

At the early training snapshots the platform's data are months old, so a 60-month count covers 6 to 18 months
of record, against 27 to 33 at the development snapshots and 48 at the validation date. VARIANT `rate` divides
each such count by the years of record (the window, the months since the data begin in 2021-01, and the firm's
age, whichever is shortest); `shrunk` adds one event to the count and two years to the record (a credibility
estimate, pulled towards 0.5 a year when the record is short); `none` writes the rows unchanged. Writes
WORK/VARIANT.json, WORK/VARIANT_dev.csv and prints the development AUC; bench/model_dev_compare.py then says
whether a difference is more than noise. Run bench/model_dev.sh DB base first (it writes WORK/base.toml).
"""
import csv, os, subprocess, sys

work, variant = sys.argv[1], sys.argv[2]
BIN = os.environ.get("XINYONG_BIN", os.path.expanduser("~/.cache/xinyong-target/release/xinyong"))
WINDOWS = {"sol_adverse_records_60m": 60, "dev_patents_36m": 36, "dev_subsidies_36m": 36,
           "ops_penalties_24m": 24, "sol_court_debtor_24m": 24}
rows = csv.reader(open(f"{work}/train_monthly.csv"))
head = next(rows)
ix = {h: i for i, h in enumerate(head)}
with open(f"{work}/{variant}_train.csv", "w") as ftr, open(f"{work}/{variant}_dev.csv", "w") as fdv:
    train, dev = csv.writer(ftr), csv.writer(fdv)
    train.writerow(head[2:])
    dev.writerow(head[2:])
    for r in rows:
        s = r[1]
        since = (int(s[:4]) - 2021) * 12 + int(s[5:7])
        age = float(r[ix["cap_years"]]) * 12 if r[ix["cap_years"]] else float("inf")
        for c, w in WINDOWS.items():
            if r[ix[c]] == "":
                continue
            months = max(1.0, min(w, since, age))
            if variant == "rate":
                r[ix[c]] = "%.6g" % (float(r[ix[c]]) * 12.0 / months)
            elif variant == "shrunk":
                r[ix[c]] = "%.6g" % ((float(r[ix[c]]) + 1.0) / (months / 12.0 + 2.0))
        if s <= "2022-06" and int(s[5:7]) % 3 == 0:
            train.writerow(r[2:])
        elif "2023-03" <= s <= "2023-09":
            dev.writerow(r[2:])
subprocess.run([BIN, "scorecard", "fit", "--csv", f"{work}/{variant}_train.csv", "--target", "default_12m",
                "--out", f"{work}/{variant}.json", "--config", f"{work}/base.toml"], check=True,
               stdout=subprocess.DEVNULL)
out = subprocess.run([BIN, "scorecard", "eval", "--model", f"{work}/{variant}.json", "--csv",
                      f"{work}/{variant}_dev.csv", "--target", "default_12m"], check=True, capture_output=True,
                     text=True).stdout
print(f"{variant}: dev {out.strip().splitlines()[-1]}")
