#!/usr/bin/env bash
# The scoring core against pandas and DuckDB, in the same run.
#
#   bench/credit_core.sh [demo|tenth]
#
# demo:  a copy of data/demo.db (1,500 firms, 3 years).
# tenth: a tenth of a district, generated and ingested once (2,100 firms, 5 years; a few minutes).
# Trains a card restricted to the twelve indicators bench/credit_core.py reimplements, then runs
# `xinyong score --bench-core` (ours: reading every fact, then from the loader's cache in the store) and
# bench/credit_core.py (pandas, DuckDB) on the same store, as of the data cut-off, REPEAT times each (the
# fastest run is reported), checks the outputs equal ours and prints the times and ratios.
#
# Environment: XINYONG_BIN (default: $HOME/.cache/xinyong-target/release/xinyong), WORK (scratch folder,
# default /tmp/xinyong-credit-core), REPEAT (default 3), AS_OF (default: the store's data cut-off).
# Needs python3 with pandas and duckdb (`pip install pandas duckdb`; orjson is used when installed).
set -euo pipefail

SCALE=${1:-demo}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${XINYONG_BIN:-$HOME/.cache/xinyong-target/release/xinyong}
WORK=${WORK:-/tmp/xinyong-credit-core}
REPEAT=${REPEAT:-3}
CLOCK=2026-01-20T00:00:00
mkdir -p "$WORK"
DB=$WORK/$SCALE.db

case $SCALE in
demo)
  [ -f "$DB" ] || cp "$ROOT/data/demo.db" "$DB"
  ;;
tenth)
  if [ ! -f "$DB" ]; then
    echo "generating a tenth district (2,100 firms) into $WORK/tenth ..."
    "$BIN" gen --scale district --enterprises 2100 --out "$WORK/tenth"
    "$BIN" ingest --db "$DB.part" --clock "$CLOCK" "$WORK/tenth/sources"
    mv "$DB.part" "$DB"
  fi
  ;;
*)
  echo "usage: $0 [demo|tenth]" >&2
  exit 2
  ;;
esac

AS_OF=${AS_OF:-$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT max(delivered_on) FROM batches").fetchone()[0])' "$DB")}
CONFIG=$WORK/core12.toml
MODEL=$WORK/model_$SCALE.json

# The card: the twelve indicators only (retrained when the config changes).
python3 "$ROOT/bench/credit_core.py" config "$CONFIG.new" >/dev/null
if ! cmp -s "$CONFIG.new" "$CONFIG"; then
  mv "$CONFIG.new" "$CONFIG"
  rm -f "$WORK"/model_*.json
else
  rm -f "$CONFIG.new"
fi
if [ ! -f "$MODEL" ]; then
  echo "training the benchmark card on $DB ..."
  "$BIN" score --db "$DB" --as-of "$AS_OF" --train --config "$CONFIG" --export-model "$MODEL" --clock "$CLOCK" |
    grep -E '^(scored|model:)' || true
fi

echo "== $SCALE: $DB as of $AS_OF; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Ours twice: reading every fact (XINYONG_FACT_CACHE=off), then from the loader's cache in the store (an
# untimed run between them writes the cache unless `ingest` already did; the fastest run is reported).
fastest() { # MODE: off | on
  local best="" line lc
  for i in $(seq "$REPEAT"); do
    if [ "$1" = off ]; then
      line=$(XINYONG_FACT_CACHE=off "$BIN" score --db "$DB" --as-of "$AS_OF" --model "$MODEL" --bench-core "$WORK/ours_facts_$SCALE.csv")
    else
      line=$("$BIN" score --db "$DB" --as-of "$AS_OF" --model "$MODEL" --bench-core "$WORK/ours_$SCALE.csv")
    fi
    echo "ours: $line" >&2
    lc=$(sed -E 's/.*load ([0-9.]+) s \(.*\), indicators and points ([0-9.]+) s.*/\1 \2/' <<<"$line")
    best=$(awk -v new="$lc" -v old="$best" 'BEGIN {
      split(new, n, " "); if (old == "") { print new; exit }
      split(old, o, " "); print (n[1] + n[2] < o[1] + o[2]) ? new : old }')
  done
  echo "$best"
}
read -r FACTS_LOAD FACTS_COMPUTE <<<"$(fastest off)"
"$BIN" score --db "$DB" --as-of "$AS_OF" --model "$MODEL" --bench-core "$WORK/ours_$SCALE.csv" >/dev/null # cache
read -r OURS_LOAD OURS_COMPUTE <<<"$(fastest on)"
cmp "$WORK/ours_facts_$SCALE.csv" "$WORK/ours_$SCALE.csv" # from the facts and from the cache: the same output

python3 "$ROOT/bench/credit_core.py" run --db "$DB" --as-of "$AS_OF" --model "$MODEL" \
  --ours "$WORK/ours_$SCALE.csv" --ours-load "$OURS_LOAD" --ours-compute "$OURS_COMPUTE" \
  --ours-facts-load "$FACTS_LOAD" --ours-facts-compute "$FACTS_COMPUTE" --repeat "$REPEAT"
