#!/usr/bin/env bash
# The web platform under load, on both stores in one run: a generated district ingested and scored into SQLite,
# migrated into PostgreSQL; each store served in turn by `xinyong serve` (rate limits off, plain HTTP on the
# loopback) and hit by oha (a fixed-rate load tool from crates.io, with latency correction for coordinated
# omission) over 200 connections:
#   static  /static/style.css                       (the baseline: the server without the store)
#   page    /firm/USCC, public view, 1,000 firms    (the enterprise overview page)
#   api     /api/v1/firms/USCC as the regulator     (the whole overview as JSON; each read audit-logged)
# after a cold pass over the URLs (each firm's overview built once and kept by the server's cache; timed),
# first at a constant RATE requests per second (default 500) for DURATION (default 30s), then as fast as it
# goes for the same time (the maximum sustained throughput); and the server's peak memory (VmHWM).
# Usage: bash bench/web_load.sh [demo|tenth|district] [WORKDIR]
#   REUSE=1 reuses the stores of an earlier run of the same command; OHA names the oha binary
#   (default: oha on PATH, else ~/.local/oha/bin/oha; install: cargo install oha --locked --root ~/.local/oha).
set -euo pipefail
scale=${1:-demo}
work=${2:-/tmp/xinyong-webbench-$scale}
rate=${RATE:-500}
dur=${DURATION:-30s}
here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/xinyong-target}"
(cd "$here" && cargo build --release -q --bin xinyong)
bin="$CARGO_TARGET_DIR/release/xinyong"
oha=${OHA:-$(command -v oha || echo "$HOME/.local/oha/bin/oha")}
[[ -x "$oha" ]] || { echo "no oha at $oha: cargo install oha --locked --root ~/.local/oha" >&2; exit 2; }
case $scale in
  demo) gen=(--scale demo) ;;
  tenth) gen=(--scale district --enterprises 2100) ;;
  district) gen=(--scale district) ;;
  *) echo "unknown scale $scale"; exit 2 ;;
esac
admin=${XINYONG_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
name=xinyong_webbench_$scale
pg="${admin%/*}/$name"
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GB; load $(cut -d' ' -f1-3 /proc/loadavg); scale $scale; $("$oha" --version)"
if [ "${REUSE:-}" = 1 ] && [ -f "$work/x.db" ]; then
  echo "reusing $work"
else
  rm -rf "$work"
  mkdir -p "$work"
  "$bin" gen "${gen[@]}" --out "$work/district" >/dev/null
  /usr/bin/time -f "ingest (SQLite): %e s" "$bin" ingest --db "$work/x.db" "$work/district/sources" >/dev/null
  /usr/bin/time -f "score (SQLite): %e s" "$bin" score --db "$work/x.db" --train >/dev/null
  psql "$admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
  /usr/bin/time -f "migrate to PostgreSQL: %e s" "$bin" migrate --from "$work/x.db" --to "$pg" >/dev/null
fi
port=18631
cat >"$work/bench.toml" <<EOF
listen = "127.0.0.1:$port"
hsts = false
secure_cookies = false
rate_per_sec = 0.0
search_limit = 1000
EOF
report() { # label json
  python3 - "$1" "$2" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
j = json.load(open(path))
s, p = j["summary"], j["latencyPercentiles"]
codes = j.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k.startswith("2"))
tot = sum(codes.values()) or 1
print(f"{label:<34} {s['requestsPerSec']:>9.1f} req/s  p50 {p['p50']*1000:>8.2f} ms  p99 {p['p99']*1000:>9.2f} ms  "
      f"2xx {100*ok/tot:.1f}% of {tot}")
PY
}
for store in sqlite postgres; do
  db="$work/x.db"; [ "$store" = postgres ] && db="$pg"
  "$bin" accounts demo --db "$db" --json >/dev/null
  token=$("$bin" accounts token --db "$db" --user demo-regulator --label bench)
  "$bin" serve --db "$db" --config "$work/bench.toml" >"$work/serve-$store.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  base="http://127.0.0.1:$port"
  # 1,000 firms (or all), from the API's search of the commonest word in names.
  curl -sf -H "Authorization: Bearer $token" "$base/api/v1/firms?q=%E5%85%AC%E5%8F%B8&limit=1000" |
    python3 -c 'import json,sys; [print(f["uscc"]) for f in json.load(sys.stdin)["firms"]]' >"$work/firms.txt"
  sed "s|^|$base/firm/|" "$work/firms.txt" >"$work/page-urls.txt"
  sed "s|^|$base/api/v1/firms/|" "$work/firms.txt" >"$work/api-urls.txt"
  echo "== $store: $(wc -l <"$work/firms.txt") firms in the URL lists; serve pid $pid"
  run() { # label extra-args...
    local label=$1; shift
    "$oha" --no-tui --output-format json -c 200 -z "$dur" "$@" >"$work/oha.json"
    report "$store $label" "$work/oha.json"
  }
  # The cold pass: every URL once (each overview built from the store and kept: the server's cache), timed.
  # The measured runs below are the steady state after it.
  for list in page api; do
    hdr=""; [ "$list" = api ] && hdr="Bearer $token"
    python3 - "$work/$list-urls.txt" "$hdr" "$store" "$list" <<'PY'
import sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
urls = open(sys.argv[1]).read().split()
def get(u):
    r = urllib.request.Request(u, headers={"Authorization": sys.argv[2]} if sys.argv[2] else {})
    with urllib.request.urlopen(r) as f:
        f.read()
t = time.time()
with ThreadPoolExecutor(8) as ex:
    list(ex.map(get, urls))
print(f"{sys.argv[3]} cold pass, {sys.argv[4]}: {len(urls)} URLs in {time.time() - t:.1f} s (8 at a time)")
PY
  done
  run "static @${rate}/s" -q "$rate" --latency-correction "$base/static/style.css"
  run "page @${rate}/s" -q "$rate" --latency-correction --urls-from-file "$work/page-urls.txt"
  run "api @${rate}/s" -q "$rate" --latency-correction -H "Authorization: Bearer $token" --urls-from-file "$work/api-urls.txt"
  run "static max" "$base/static/style.css"
  run "page max" --urls-from-file "$work/page-urls.txt"
  run "api max" -H "Authorization: Bearer $token" --urls-from-file "$work/api-urls.txt"
  echo "$store server peak memory: $(awk '/VmHWM/{print $2, $3}' /proc/$pid/status)"
  kill -INT "$pid"; wait "$pid" || true
done
