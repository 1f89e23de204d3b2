#!/usr/bin/env bash
# Model selection inside the training window, without the hidden truth and without the validation snapshot.
#
#   bench/model_dev.sh DB [NAME [KEY=VALUE ...]]
#
# `xinyong validate` trains on snapshots up to 15 months before the validation date (2023-09 for the district's
# 2024-12) and tests on the truth. This script splits that training window once more, out of time: it exports the
# training rows of every month (labels from the lenders' feeds, as known at the data cut-off), fits a card on the
# quarterly snapshots up to 2022-06 (as `score --train` would: the catalogue's monotonic directions, the [fit]
# settings of crates/credit/catalogue/scoring.toml) and prints its AUC on the monthly snapshots 2023-03 .. 2023-09.
# KEY=VALUE pairs override [fit] settings (e.g. max_bins=8, method=boosted_additive, boost.bins=16); EVERY=1
# trains on every month instead of every third. docs/models.md holds the figures it gave.
#
# Environment: XINYONG_BIN (default: $HOME/.cache/xinyong-target/release/xinyong), WORK (default
# /tmp/xinyong-model-dev), AS_OF (default 2026-01-10, the generated district's data cut-off), EVERY (3).
set -euo pipefail

DB=$1
NAME=${2:-base}
shift $(($# < 2 ? $# : 2))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${XINYONG_BIN:-$HOME/.cache/xinyong-target/release/xinyong}
WORK=${WORK:-/tmp/xinyong-model-dev}
AS_OF=${AS_OF:-2026-01-10}
mkdir -p "$WORK"

# Every month a snapshot: the scoring configuration with snapshot_every_months = 1.
if [ ! -f "$WORK/train_monthly.csv" ]; then
  sed 's/^snapshot_every_months = .*/snapshot_every_months = 1/' "$ROOT/crates/credit/catalogue/scoring.toml" \
    >"$WORK/monthly.toml"
  "$BIN" score --db "$DB" --as-of "$AS_OF" --config "$WORK/monthly.toml" --export-training "$WORK/train_monthly.csv"
fi

python3 - "$ROOT" "$WORK" "$NAME" "${EVERY:-3}" "$@" <<'PY'
import csv, sys, tomllib
root, work, name, every, overrides = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
features = tomllib.load(open(f"{root}/crates/credit/catalogue/features.toml", "rb"))["feature"]
def toml_value(v):
    return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
fit = {k: toml_value(v) for k, v in tomllib.load(open(f"{root}/crates/credit/catalogue/scoring.toml", "rb"))["fit"].items()}
boost = {"interactions": "0"}  # as score::fit_config: one shape per indicator
for o in overrides:  # values as TOML text, except that the method needs no quotes
    k, v = o.split("=", 1)
    if k.startswith("boost."):
        boost[k[6:]] = v
    else:
        fit[k] = f'"{v}"' if k == "method" else v
with open(f"{work}/{name}.toml", "w") as out:
    for k, v in fit.items():
        out.write(f"{k} = {v}\n")
    out.write("[monotonic_by_feature]\n")
    for f in features:
        out.write(f'{f["id"]} = "{"descending" if f["direction"] > 0 else "ascending"}"\n')
    out.write("[boost]\n")
    for k, v in boost.items():
        out.write(f"{k} = {v}\n")
rows = csv.reader(open(f"{work}/train_monthly.csv"))
head = next(rows)
train = csv.writer(open(f"{work}/train.csv", "w"))
dev = csv.writer(open(f"{work}/dev.csv", "w"))
train.writerow(head[2:])
dev.writerow(head[2:])
for r in rows:
    s = r[1]
    if s <= "2022-06" and int(s[5:7]) % every == 0:
        train.writerow(r[2:])
    elif "2023-03" <= s <= "2023-09":
        dev.writerow(r[2:])
PY

"$BIN" scorecard fit --csv "$WORK/train.csv" --target default_12m --out "$WORK/$NAME.json" \
  --config "$WORK/$NAME.toml" >"$WORK/$NAME.fit.txt"
"$BIN" scorecard eval --model "$WORK/$NAME.json" --csv "$WORK/dev.csv" --target default_12m >"$WORK/$NAME.eval.txt"
echo "$NAME: dev $(tail -1 "$WORK/$NAME.eval.txt"), $(($(wc -l <"$WORK/train.csv") - 1)) training rows," \
  "$(($(wc -l <"$WORK/dev.csv") - 1)) development rows, $(sed -n 3p "$WORK/$NAME.fit.txt" | sed 's/  */ /g')"
