#!/usr/bin/env bash
# Generation and ingest throughput beside DuckDB's plain load of the same UTF-8 CSV files, in one run.
# Usage: bench/ingest_vs_duckdb.sh [demo|tenth|district] [WORKDIR]
# Needs: python3 with duckdb (pip install duckdb), GNU time (/usr/bin/time).
set -euo pipefail
scale=${1:-demo}
work=${2:-/tmp/xinyong-bench-$scale}
here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/xinyong-target}"
(cd "$here" && cargo build --release -q)
bin="$CARGO_TARGET_DIR/release/xinyong"
case $scale in
  demo) gen=(--scale demo) ;;
  tenth) gen=(--scale district --enterprises 2100) ;;
  district) gen=(--scale district) ;;
  *) echo "unknown scale $scale"; exit 2 ;;
esac
rm -rf "$work"; mkdir -p "$work"
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GB; scale $scale"
/usr/bin/time -f "gen: %e s, peak RSS %M KB" "$bin" gen "${gen[@]}" --out "$work/district"
# The UTF-8 CSV files (declared UTF-8 in the registry; DuckDB skips their few injected bad rows).
python3 - "$work" "$here/crates/registry/sources" <<'PY'
import glob, json, os, sys, tomllib
work, regdir = sys.argv[1], sys.argv[2]
utf8 = set()
for f in glob.glob(os.path.join(regdir, "*.toml")):
    for d in tomllib.load(open(f, "rb")).get("dataset", []):
        if d["format"] == "csv" and d.get("encoding", "utf-8") == "utf-8":
            utf8.add(d["id"])
src = os.path.join(work, "district")
files = rows = 0
for line in open(os.path.join(src, "manifest.jsonl")):
    m = json.loads(line)
    if m["dataset"] not in utf8:
        continue
    dst = os.path.join(work, "utf8", m["path"])
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    os.link(os.path.join(src, m["path"]), dst)
    files += 1
    rows += m["rows"]
print(f"utf-8 csv subset: {files} files, {rows} data rows")
PY
/usr/bin/time -f "xinyong ingest (utf-8 csv subset): %e s, peak RSS %M KB" "$bin" ingest --db "$work/utf8.db" "$work/utf8/sources"
du -sh "$work/utf8.db" | sed 's/^/size: /'
/usr/bin/time -f "duckdb load (utf-8 csv subset): %e s, peak RSS %M KB" python3 - "$work" <<'PY'
import duckdb, glob, os, sys, collections
work = sys.argv[1]
by_ds = collections.defaultdict(list)
for p in glob.glob(os.path.join(work, "utf8", "sources", "*", "*.csv")) + glob.glob(os.path.join(work, "utf8", "sources", "*", "*.csv.gz")):
    by_ds[os.path.basename(p).split("__")[0]].append(p)
con = duckdb.connect(os.path.join(work, "duck.db"))
n = 0
for ds, files in sorted(by_ds.items()):
    t = ds.replace(".", "_")
    con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_csv({sorted(files)!r}, header=true, union_by_name=true, ignore_errors=true)")
    n += con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
con.close()
print(f"duckdb rows loaded: {n}")
PY
du -sh "$work/duck.db" | sed 's/^/size: /'
if [ "${INCREMENTAL_ALL:-}" = 1 ]; then
  # The rest of the district (GB18030 CSV, xlsx, JSON lines) into the same store: the UTF-8 files are
  # recognised by content hash and skipped, so full ingest time = the subset's time + this.
  /usr/bin/time -f "xinyong ingest (the rest, into the same store): %e s, peak RSS %M KB" "$bin" ingest --db "$work/utf8.db" "$work/district/sources"
  du -sh "$work/utf8.db" | sed 's/^/size: /'
elif [ "${SKIP_ALL:-}" != 1 ]; then
  /usr/bin/time -f "xinyong ingest (all files): %e s, peak RSS %M KB" "$bin" ingest --db "$work/all.db" "$work/district/sources"
  du -sh "$work/all.db" | sed 's/^/size: /'
fi
