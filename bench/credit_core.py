#!/usr/bin/env python3
"""The scoring core written as a data team would write it: vectorised pandas, and DuckDB SQL.

Computes, for every in-scope firm as of a date, the twelve indicators below (the exact semantics of
crates/credit/src/features.rs) and the card points of a model restricted to them, once with pandas and once
with DuckDB; times load and compute of each; checks both against the CSV of
`xinyong score --bench-core OUT.csv --model MODEL.json --as-of DATE` (the Rust core is the reference).

    python3 bench/credit_core.py config OUT.toml        # the scoring config of the benchmark card
    python3 bench/credit_core.py run --db DB --as-of DATE --model MODEL.json --ours OURS.csv \
        [--ours-load S --ours-compute S] [--ours-facts-load S --ours-facts-compute S] [--repeat N]

bench/credit_core.sh runs ours and this in the same run.
"""

import argparse
import datetime as dt
import re
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

try:  # the fastest JSON parser a data team would reach for; the standard library otherwise
    import orjson

    loads = orjson.loads
    JSON_LIB = "orjson"
except ImportError:  # pragma: no cover
    import json

    loads = json.loads
    JSON_LIB = "json"

ROOT = Path(__file__).resolve().parent.parent

# The indicators reimplemented here (ids of crates/credit/catalogue/features.toml).
INDICATORS = [
    "cap_years",
    "cap_equity_ratio",
    "ops_power_level",
    "ops_power_yoy",
    "ops_headcount",
    "ops_sales_12m",
    "ops_sales_yoy_3m",
    "pro_tax_burden",
    "sol_debt_ratio",
    "sol_max_overdue_12m",
    "sol_lenders",
    "dev_sales_growth",
]

# Monthly series: name -> (dataset, metric). `k` below is months back from the last month complete on T.
MONTHLY = {
    "power": ("power.daily", "power_kwh"),
    "insured": ("hrss.insured", "insured"),
    "invoices": ("tax.invoices", "invoice_amount"),
    "tax": ("tax.payments", "tax_paid"),
}
# Yearly statements, in order of preference (features.rs `statement`).
STATEMENTS = ["tax.financial_statements", "amr.annual_reports", "stats.above_scale"]
YEARLY = {"assets": "total_assets", "liabilities": "total_liabilities"}
HIST = 24  # months of monthly history the twelve indicators read (dev_sales_growth: k in [0, 24))


# ------------------------------------------------------------------------------------------------ dates


def month_index(d):
    return d.year * 12 + d.month - 1


def month_str(m):
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def last_complete_month(t):
    m = month_index(t)
    return m if (t + dt.timedelta(days=1)).month != t.month else m - 1


def max_statement_year(t):
    """Years whose 31 December is on or before T."""
    return t.year if (t.month, t.day) == (12, 31) else t.year - 1


class AsOf:
    def __init__(self, as_of):
        self.k = as_of[:10]  # known on this day (the strict as-of view: K = T)
        self.t = dt.date.fromisoformat(self.k)
        self.last = last_complete_month(self.t)
        self.first = self.last - HIST + 1
        self.max_year = max_statement_year(self.t)


KNOWN = "known_from <= :k AND (known_to IS NULL OR known_to > :k)"


# ------------------------------------------------------------------------------------------------ model


def card_features(model_json):
    """The card's features: name and bins (kind, lo, hi, special, points) as in crates/scorecard/src/model.rs."""
    import json

    m = json.loads(Path(model_json).read_text())
    card = m["card"] if "card" in m else m
    out = []

    def num(x):  # finite numbers, or the strings "inf" / "-inf"
        return float(x)

    for f in card["features"]:
        if f["kind"] != "numeric":
            raise SystemExit(f"feature {f['name']}: only numeric features are reimplemented (got {f['kind']})")
        if f["name"] not in INDICATORS:
            raise SystemExit(f"card feature {f['name']} is not among the reimplemented indicators")
        bins = []
        for b in f["bins"]:
            k = b["kind"]
            if k == "missing":
                bins.append(("missing", np.nan, np.nan, np.nan, b["points"]))
            elif isinstance(k, dict) and "range" in k:
                bins.append(("range", num(k["range"]["lo"]), num(k["range"]["hi"]), np.nan, b["points"]))
            elif isinstance(k, dict) and "special" in k:
                bins.append(("special", np.nan, np.nan, num(k["special"]), b["points"]))
            else:
                raise SystemExit(f"feature {f['name']}: bin kind {k!r} not handled")
        out.append((f["name"], bins))
    return out


# ------------------------------------------------------------------------------------------------ pandas


def pandas_load(db, a):
    """One SQL query per dataset group, JSON fields parsed into typed columns."""
    con = sqlite3.connect(db)
    p = {"k": a.k, "lo": month_str(a.first), "hi": month_str(a.last), "maxy": str(a.max_year)}
    data = {}
    for name, (ds, metric) in MONTHLY.items():
        df = pd.read_sql_query(
            f"SELECT fact_id, uscc, period, fields FROM facts WHERE dataset = :ds AND length(period) = 7 "
            f"AND period BETWEEN :lo AND :hi AND {KNOWN}",
            con,
            params={**p, "ds": ds},
        )
        key = "metric:" + metric
        df["v"] = pd.to_numeric(pd.Series([loads(s).get(key) for s in df["fields"]], dtype=object), errors="coerce")
        data[name] = df.drop(columns="fields")
    df = pd.read_sql_query(
        f"SELECT fact_id, uscc, dataset, period, fields FROM facts WHERE dataset IN "
        f"({','.join(repr(s) for s in STATEMENTS)}) AND length(period) = 4 AND period <= :maxy AND {KNOWN}",
        con,
        params=p,
    )
    js = [loads(s) for s in df["fields"]]
    for name, metric in YEARLY.items():
        df[name] = pd.to_numeric(pd.Series([j.get("metric:" + metric) for j in js], dtype=object), errors="coerce")
    data["yearly"] = df.drop(columns="fields")
    df = pd.read_sql_query(
        f"SELECT fact_id, uscc, known_from, fields FROM facts WHERE dataset = 'amr.registration' AND {KNOWN}",
        con,
        params=p,
    )
    reg = pd.DataFrame.from_records([loads(s) for s in df["fields"]], columns=["status", "founded", "dereg_date"])
    data["registration"] = pd.concat([df.drop(columns="fields"), reg], axis=1)
    df = pd.read_sql_query(
        f"SELECT fact_id, uscc, source, period, fields FROM facts WHERE dataset LIKE 'lender.%.loans' "
        f"AND length(period) = 7 AND period <= :hi AND {KNOWN}",
        con,
        params=p,
    )
    df["overdue_days"] = pd.to_numeric(
        pd.Series([loads(s).get("overdue_days") for s in df["fields"]], dtype=object), errors="coerce"
    )
    data["loans"] = df.drop(columns="fields")
    con.close()
    return data, sum(len(x) for x in data.values())


def months_back(period, last):
    return last - (period.str.slice(0, 4).astype(int) * 12 + period.str.slice(5, 7).astype(int) - 1)


def to_date(s):
    return pd.to_datetime(s.astype(object).where(s.notna()).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")


def pandas_compute(data, a, card):
    t = pd.Timestamp(a.t)
    # Scope: the registration known on K (latest delivery), founded by T, active or deregistered after T.
    reg = data["registration"].sort_values(["known_from", "fact_id"]).drop_duplicates("uscc", keep="last")
    reg = reg.set_index("uscc").sort_index()
    founded, dereg = to_date(reg["founded"]), to_date(reg["dereg_date"])
    scope = (founded.isna() | (founded <= t)) & ((reg["status"] == "active") | (dereg > t))
    out = pd.DataFrame(index=reg.index[scope])
    out.index.name = "uscc"
    out["cap_years"] = ((t - founded[scope]).dt.days / 365.25).clip(lower=0)

    # Monthly series as firm x months-back matrices (the latest version of each month: highest fact id).
    def matrix(name):
        df = data[name].dropna(subset=["v"])
        df = df.assign(k=months_back(df["period"], a.last)).sort_values("fact_id")
        df = df.drop_duplicates(["uscc", "k"], keep="last")
        return df.pivot(index="uscc", columns="k", values="v").reindex(index=out.index, columns=range(HIST))

    def window(m, lo, n):
        w = m.iloc[:, lo : lo + n]
        return w.sum(axis=1, min_count=1), w.count(axis=1)

    def ratio(m, n, lag):
        # Only the months present in both windows (month k with month k + lag), at least n - 1 of them.
        a = m.iloc[:, 0:n].to_numpy()
        b = m.iloc[:, lag : lag + n].to_numpy()
        both = ~np.isnan(a) & ~np.isnan(b)
        pairs = both.sum(axis=1)
        sa = pd.Series(np.where(both, a, 0.0).sum(axis=1), index=m.index)
        sb = pd.Series(np.where(both, b, 0.0).sum(axis=1), index=m.index)
        ok = (pairs > 0) & (pairs + 1 >= n) & (sb > 0)
        return (sa / sb - 1).clip(upper=3).where(ok)

    def ln1(x):  # ln(1 + max(x, 0)), as written (not log1p: the same rounding as the reference)
        return np.log(1 + x.clip(lower=0))

    power, insured, invoices, tax = (matrix(n) for n in ("power", "insured", "invoices", "tax"))
    s, c = window(power, 0, 3)
    out["ops_power_level"] = ln1(s / c.clip(lower=1))
    out["ops_power_yoy"] = ratio(power, 3, 12)
    out["ops_headcount"] = ln1(insured.iloc[:, 0].fillna(insured.iloc[:, 1]).fillna(insured.iloc[:, 2]))
    sales, _ = window(invoices, 0, 12)
    out["ops_sales_12m"] = ln1(sales)
    out["ops_sales_yoy_3m"] = ratio(invoices, 3, 12)
    out["dev_sales_growth"] = ratio(invoices, 12, 12)
    taxes, _ = window(tax, 0, 12)
    out["pro_tax_burden"] = (taxes / sales).clip(upper=1).where(sales > 0)

    # Yearly statements: per metric, the first source (in order of preference) with a year ended by T; in it
    # the latest year (ties: the lowest fact id).
    y = data["yearly"].assign(year=lambda d: d["period"].astype(int), prio=lambda d: d["dataset"].map(STATEMENTS.index))
    best = {}
    for name in YEARLY:
        b = y.dropna(subset=[name]).sort_values(["prio", "year", "fact_id"], ascending=[True, False, True])
        best[name] = b.drop_duplicates("uscc").set_index("uscc")[[name, "year"]].reindex(out.index)
    assets, liab = best["assets"]["assets"], best["liabilities"]["liabilities"]
    same_year = best["assets"]["year"] == best["liabilities"]["year"]
    out["cap_equity_ratio"] = ((assets - liab) / assets).clip(-3, 1).where((assets > 0) & same_year)
    out["sol_debt_ratio"] = (liab / assets).clip(upper=3).where(assets > 0)

    # Loans: borrowers (any report by the last month), worst overdue over 12 months, lenders over 3 months.
    loans = data["loans"].assign(k=lambda d: months_back(d["period"], a.last))
    borrower = out.index.isin(loans["uscc"].unique())
    od = np.trunc(loans["overdue_days"].fillna(0))
    worst = od[loans["k"] < 12].groupby(loans["uscc"]).max()
    out["sol_max_overdue_12m"] = worst.reindex(out.index).fillna(0).where(borrower)
    lenders = loans[loans["k"] < 3].groupby("uscc")["source"].nunique()
    out["sol_lenders"] = lenders.reindex(out.index).fillna(0).astype(float)

    out = out.replace([np.inf, -np.inf], np.nan)[INDICATORS]
    out["points"] = pandas_points(out, card)
    return out


def pandas_points(out, card):
    total = np.zeros(len(out))
    for name, bins in card:
        x = out[name].to_numpy(dtype=float)
        missing = next((b[4] for b in bins if b[0] == "missing"), bins[-1][4])
        ranges = [b for b in bins if b[0] == "range"]
        conds = [np.isnan(x)] + [x == b[3] for b in bins if b[0] == "special"]
        choices = [missing] + [b[4] for b in bins if b[0] == "special"]
        conds += [(x >= b[1]) & (x < b[2]) for b in ranges]
        choices += [b[4] for b in ranges]
        # Outside every range (+inf, hand-edited ranges): the nearest end.
        default = np.where(x < ranges[0][1], ranges[0][4], ranges[-1][4]) if ranges else missing
        total += np.select(conds, choices, default)
    return total


# ------------------------------------------------------------------------------------------------ DuckDB


def duckdb_load(db):
    """The facts of the datasets the indicators read, every version, copied from SQLite into DuckDB."""
    import duckdb

    con = sqlite3.connect(db)
    datasets = [d for d, _ in MONTHLY.values()] + STATEMENTS + ["amr.registration"]
    df = pd.read_sql_query(
        "SELECT fact_id, uscc, source, dataset, period, fields, known_from, known_to FROM facts "
        f"WHERE dataset IN ({','.join(repr(d) for d in datasets)}) OR dataset LIKE 'lender.%.loans'",
        con,
    )
    con.close()
    d = duckdb.connect()
    d.register("facts_df", df)
    d.execute("CREATE TABLE facts AS SELECT * FROM facts_df")
    d.unregister("facts_df")
    return d, len(df)


def duckdb_compute(d, a, card):
    rows = []
    for name, bins in card:
        missing = next((b[4] for b in bins if b[0] == "missing"), bins[-1][4])
        ranges = [b for b in bins if b[0] == "range"]
        rows.append((name, "missing", 0, None, None, None, missing))
        for i, b in enumerate(bins):
            if b[0] == "special":
                rows.append((name, "special", 0, None, None, b[3], b[4]))
            elif b[0] == "range":
                rows.append((name, "range", 1 + i, b[1], b[2], None, b[4]))
        if ranges:  # outside every range: the nearest end
            rows.append((name, "below", 1000, ranges[0][1], None, None, ranges[0][4]))
            rows.append((name, "above", 1001, None, None, None, ranges[-1][4]))
    bins = pd.DataFrame(rows, columns=["feature", "kind", "prio", "lo", "hi", "special", "points"])
    bins = bins.astype({"lo": float, "hi": float, "special": float})
    d.register("bins", bins)
    d.execute("CREATE OR REPLACE MACRO ln1(x) AS CASE WHEN x IS NOT NULL THEN ln(1 + greatest(x, 0)) END")

    monthly = " UNION ALL ".join(
        f"SELECT uscc, period, fact_id, '{n}' AS series, "
        f"TRY_CAST(json_extract_string(fields, '$.\"metric:{m}\"') AS DOUBLE) AS v FROM known WHERE dataset = '{ds}'"
        for n, (ds, m) in MONTHLY.items()
    )
    yearly = " UNION ALL ".join(
        f"SELECT uscc, period, fact_id, dataset, '{n}' AS metric, "
        f"TRY_CAST(json_extract_string(fields, '$.\"metric:{m}\"') AS DOUBLE) AS v FROM known "
        f"WHERE dataset IN ({','.join(repr(s) for s in STATEMENTS)})"
        for n, m in YEARLY.items()
    )
    prio = "CASE dataset " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATEMENTS)) + " END"

    def win(series, lo, n, agg="sum"):
        return f"{agg}(v) FILTER (WHERE series = '{series}' AND k >= {lo} AND k < {lo + n})"

    def ratio(series, n):
        # Over `paired` (month k with month k + 12, both present): at least n - 1 pairs among the first n months.
        f = f"FILTER (WHERE series = '{series}' AND k < {n})"
        return (
            f"CASE WHEN count(*) {f} + 1 >= {n} AND count(*) {f} > 0 AND sum(vb) {f} > 0 "
            f"THEN least(sum(va) {f} / sum(vb) {f} - 1, 3) END"
        )

    # NULL-safe: DuckDB's greatest/least skip NULLs, so every clamp is guarded.
    sql = f"""
WITH known AS (
  SELECT * FROM facts WHERE known_from <= $k AND (known_to IS NULL OR known_to > $k)
),
reg AS (
  SELECT uscc, json_extract_string(fields, '$.status') AS status,
         TRY_CAST(substr(json_extract_string(fields, '$.founded'), 1, 10) AS DATE) AS founded,
         TRY_CAST(substr(json_extract_string(fields, '$.dereg_date'), 1, 10) AS DATE) AS dereg
  FROM known WHERE dataset = 'amr.registration'
  QUALIFY row_number() OVER (PARTITION BY uscc ORDER BY known_from DESC, fact_id DESC) = 1
),
scope AS (
  SELECT uscc, CASE WHEN founded IS NOT NULL THEN greatest(date_diff('day', founded, $t) / 365.25, 0) END AS cap_years
  FROM reg
  WHERE (founded IS NULL OR founded <= $t) AND (status = 'active' OR dereg > $t)
),
monthly AS (
  SELECT uscc, series, k, arg_max(v, fact_id) AS v FROM (
    SELECT *, $last - (TRY_CAST(substr(period, 1, 4) AS INT) * 12 + TRY_CAST(substr(period, 6, 2) AS INT) - 1) AS k
    FROM ({monthly}) WHERE v IS NOT NULL AND length(period) = 7
  ) WHERE k >= 0 AND k < {HIST}
  GROUP BY ALL
),
m AS (
  SELECT uscc,
    ln1({win('power', 0, 3)} / greatest({win('power', 0, 3, 'count')}, 1)) AS ops_power_level,
    ln1(arg_min(v, k) FILTER (WHERE series = 'insured' AND k < 3)) AS ops_headcount,
    ln1({win('invoices', 0, 12)}) AS ops_sales_12m,
    CASE WHEN {win('invoices', 0, 12)} > 0 AND {win('tax', 0, 12, 'count')} > 0
      THEN least({win('tax', 0, 12)} / {win('invoices', 0, 12)}, 1) END
      AS pro_tax_burden
  FROM monthly GROUP BY uscc
),
paired AS (
  SELECT a.uscc, a.series, a.k, a.v AS va, b.v AS vb
  FROM monthly a JOIN monthly b ON a.uscc = b.uscc AND a.series = b.series AND b.k = a.k + 12
),
pr AS (
  SELECT uscc,
    {ratio('power', 3)} AS ops_power_yoy,
    {ratio('invoices', 3)} AS ops_sales_yoy_3m,
    {ratio('invoices', 12)} AS dev_sales_growth
  FROM paired GROUP BY uscc
),
stmt AS (
  SELECT uscc, metric, v, TRY_CAST(period AS INT) AS year FROM ({yearly})
  WHERE v IS NOT NULL AND length(period) = 4 AND TRY_CAST(period AS INT) <= $maxy
  QUALIFY row_number() OVER (PARTITION BY uscc, metric ORDER BY {prio}, year DESC, fact_id) = 1
),
y AS (
  SELECT a.uscc,
    CASE WHEN a.v > 0 AND a.year = l.year THEN least(greatest((a.v - l.v) / a.v, -3), 1) END AS cap_equity_ratio,
    CASE WHEN a.v > 0 THEN least(l.v / a.v, 3) END AS sol_debt_ratio
  FROM stmt a JOIN stmt l ON a.uscc = l.uscc AND a.metric = 'assets' AND l.metric = 'liabilities'
),
loans AS (
  SELECT uscc, source,
         $last - (TRY_CAST(substr(period, 1, 4) AS INT) * 12 + TRY_CAST(substr(period, 6, 2) AS INT) - 1) AS k,
         trunc(coalesce(TRY_CAST(json_extract_string(fields, '$.overdue_days') AS DOUBLE), 0)) AS overdue
  FROM known WHERE dataset LIKE 'lender.%.loans' AND length(period) = 7
),
l AS (
  SELECT uscc, coalesce(max(overdue) FILTER (WHERE k < 12), 0) AS sol_max_overdue_12m,
         count(DISTINCT source) FILTER (WHERE k < 3) AS lenders
  FROM loans WHERE k >= 0 GROUP BY uscc
),
ind AS (
  SELECT s.uscc, s.cap_years, y.cap_equity_ratio, m.ops_power_level, pr.ops_power_yoy, m.ops_headcount,
         m.ops_sales_12m, pr.ops_sales_yoy_3m, m.pro_tax_burden, y.sol_debt_ratio, l.sol_max_overdue_12m,
         CAST(coalesce(l.lenders, 0) AS DOUBLE) AS sol_lenders, pr.dev_sales_growth
  FROM scope s LEFT JOIN m USING (uscc) LEFT JOIN pr USING (uscc) LEFT JOIN y USING (uscc) LEFT JOIN l USING (uscc)
),
long AS (
  SELECT uscc, feature, x FROM (SELECT uscc, {', '.join(n for n, _ in card)} FROM ind)
  UNPIVOT INCLUDE NULLS (x FOR feature IN ({', '.join(n for n, _ in card)}))
),
pts AS (
  SELECT uscc, feature, arg_min(b.points, b.prio) AS points
  FROM long JOIN bins b USING (feature)
  WHERE CASE WHEN x IS NULL OR isnan(x) THEN b.kind = 'missing'
             ELSE (b.kind = 'special' AND x = b.special) OR (b.kind = 'range' AND x >= b.lo AND x < b.hi)
               OR (b.kind = 'below' AND x < b.lo) OR b.kind = 'above' END
  GROUP BY ALL
)
SELECT ind.uscc, {', '.join('ind.' + c for c in INDICATORS)}, p.points
FROM ind JOIN (SELECT uscc, sum(points) AS points FROM pts GROUP BY uscc) p USING (uscc)
ORDER BY uscc
"""
    params = {"k": a.k, "t": a.t, "last": a.last, "maxy": a.max_year}
    out = d.execute(sql, params).df().set_index("uscc")
    d.unregister("bins")
    return out.astype(float)


# ------------------------------------------------------------------------------------------------ check


def compare(name, got, ours, rel=1e-9, pts_tol=1e-6):
    """Per indicator: firms whose values differ (one missing and not the other, or beyond `rel` relative)."""
    problems = []
    only_ours = ours.index.difference(got.index)
    only_got = got.index.difference(ours.index)
    if len(only_ours) or len(only_got):
        problems.append(f"firms only in ours: {len(only_ours)} {list(only_ours[:3])}; only in {name}: "
                        f"{len(only_got)} {list(only_got[:3])}")
    idx = ours.index.intersection(got.index)
    lines = []
    for c in INDICATORS + ["points"]:
        a, b = got.loc[idx, c].to_numpy(float), ours.loc[idx, c].to_numpy(float)
        na, nb = np.isnan(a), np.isnan(b)
        both = ~na & ~nb
        diff = np.abs(a - b)
        scale = np.maximum(np.abs(a), np.abs(b))
        if c == "points":
            bad = (na != nb) | (both & (diff > pts_tol))
        else:
            bad = (na != nb) | (both & (diff > rel * scale + 1e-300))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(both & (scale > 0), diff / scale, 0.0)
        lines.append((c, int(both.sum()), int((na & nb).sum()), int(bad.sum()), float(r.max(initial=0.0)),
                      float(np.where(both, diff, 0).max(initial=0.0))))
        for i in np.flatnonzero(bad)[:5]:
            problems.append(f"{c} {idx[i]}: {name} {a[i]!r} ours {b[i]!r}")
    return lines, problems


def read_ours(path):
    ours = pd.read_csv(path, dtype={"uscc": str}).set_index("uscc")
    return ours[INDICATORS + ["points"]].astype(float)


# ------------------------------------------------------------------------------------------------ main


def write_config(out):
    cat = (ROOT / "crates/credit/catalogue/features.toml").read_text()
    ids = re.findall(r'^id = "(\w+)"', cat, re.M)
    missing = [i for i in INDICATORS if i not in ids]
    if missing:
        raise SystemExit(f"not in the catalogue: {missing}")
    base = (ROOT / "crates/credit/catalogue/scoring.toml").read_text().rstrip() + "\n"
    # The card keeps every one of the twelve (no IV floor, no wrong-sign drop), so that all are scored.
    base = re.sub(r"^iv_min = .*$", "iv_min = 0.0\ndrop_wrong_sign = false", base, flags=re.M)
    excl = "".join(f'  "{i}",\n' for i in ids if i not in INDICATORS)
    Path(out).write_text(
        base + "# bench/credit_core.py: the card uses only the indicators it reimplements.\nexclude = [\n" + excl + "]\n"
    )
    print(f"wrote {out}: card restricted to {len(INDICATORS)} indicators ({len(ids) - len(INDICATORS)} excluded)")


def run(args):
    a = AsOf(args.as_of)
    card = card_features(args.model)
    ours = read_ours(args.ours)
    import duckdb

    print(f"as of {a.k} (last complete month {month_str(a.last)}); {len(INDICATORS)} indicators, "
          f"card of {len(card)} features; pandas {pd.__version__} ({JSON_LIB}), duckdb {duckdb.__version__}, "
          f"best of {args.repeat}")
    results, outputs, read = {}, {}, {}
    con = sqlite3.connect(args.db)
    n_all, n_known = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {KNOWN}) FROM facts", {"k": a.k}
    ).fetchone()
    con.close()
    print(f"store: {n_all} facts, {n_known} known on {a.k}; ours reads every fact delivered by then")
    for engine in ("pandas", "duckdb"):
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            if engine == "pandas":
                data, rows = pandas_load(args.db, a)
                t1 = time.perf_counter()
                out = pandas_compute(data, a, card)
            else:
                data, rows = duckdb_load(args.db)
                t1 = time.perf_counter()
                out = duckdb_compute(data, a, card)
                data.close()
            t2 = time.perf_counter()
            del data
            if best is None or t2 - t0 < best[0] + best[1]:
                best = (t1 - t0, t2 - t1)
        results[engine] = best
        outputs[engine] = out
        read[engine] = rows

    all_ok = True
    for engine, out in outputs.items():
        lines, problems = compare(engine, out, ours)
        n_bad = sum(x[3] for x in lines)
        all_ok &= n_bad == 0 and not problems
        print(f"\n{engine} vs ours: {len(out)} firms ({len(ours)} in ours); "
              f"{'all equal' if n_bad == 0 and not problems else f'{n_bad} differing values'}")
        print(f"  {'column':<22}{'both':>6}{'both NA':>9}{'differ':>8}{'max rel diff':>14}{'max abs diff':>14}")
        for c, nb, nn, bad, r, d in lines:
            print(f"  {c:<22}{nb:>6}{nn:>9}{bad:>8}{r:>14.2e}{d:>14.2e}")
        for p in problems[:20]:
            print("  !", p)

    print(f"\nrows read: pandas {read['pandas']} (the versions known on {a.k} of the datasets and months the "
          f"indicators need), duckdb {read['duckdb']} (every version of those datasets)")
    # "ours" reads the loader's records from the store's cache (as a recompute after `ingest` does);
    # "ours/facts" reads every fact and parses its JSON (XINYONG_FACT_CACHE=off).
    ol, oc = args.ours_load, args.ours_compute
    fl, fc = args.ours_facts_load, args.ours_facts_compute
    has_f = fl is not None and fc is not None
    print(f"\n{'engine':<11}{'load s':>9}{'compute s':>11}{'total s':>9}{'total / ours':>14}{'compute / ours':>16}"
          + (f"{'total / ours/facts':>20}" if has_f else ""))
    rows = []
    if ol is not None and oc is not None:
        rows.append(("ours", ol, oc))
    if has_f:
        rows.append(("ours/facts", fl, fc))
    rows += [(e, l, c) for e, (l, c) in results.items()]
    for engine, l, c in rows:
        tot = f"{(l + c) / (ol + oc):>14.1f}" if ol is not None else f"{'':>14}"
        cmp_ = f"{c / oc:>16.1f}" if oc else f"{'':>16}"
        tf = f"{(l + c) / (fl + fc):>20.1f}" if has_f else ""
        print(f"{engine:<11}{l:>9.3f}{c:>11.3f}{l + c:>9.3f}{tot}{cmp_}{tf}")
    print(f"\noutputs {'match' if all_ok else 'DIFFER'}: indicators to 1e-9 relative, points to 1e-6")
    return 0 if all_ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("config", help="write the scoring config of the benchmark card")
    c.add_argument("out")
    r = sub.add_parser("run", help="pandas and DuckDB against ours")
    r.add_argument("--db", required=True)
    r.add_argument("--as-of", required=True)
    r.add_argument("--model", required=True)
    r.add_argument("--ours", required=True, help="the CSV of xinyong score --bench-core")
    r.add_argument("--ours-load", type=float)
    r.add_argument("--ours-compute", type=float)
    r.add_argument("--ours-facts-load", type=float, help="ours reading the facts (no cache)")
    r.add_argument("--ours-facts-compute", type=float)
    r.add_argument("--repeat", type=int, default=1, help="runs per engine; the fastest is reported")
    args = ap.parse_args()
    if args.cmd == "config":
        write_config(args.out)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
