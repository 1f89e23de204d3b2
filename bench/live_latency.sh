#!/usr/bin/env bash
# The live path under load (issue 7): a district's later deliveries pushed by `xinyong feed simulate` to
# `xinyong serve` (SQLite), while a regulator's event stream (/api/v1/stream, server-sent events) is read.
# Measures, per event, from its outbox commit (the row's created_at, stamped as the push's transaction is
# written: the push is accepted then) to its arrival at the stream's reader (same machine, same clock):
# p50, p99, max; and the records a second the push API sustains (the feed's own count), first at a fixed
# RATE (default 200 records/s), then as fast as it goes (on the next pushes of the same feed).
# The store: the district's deliveries up to UNTIL (default 2025-10-31) ingested and scored as of UNTIL; the
# later ones are the feed. The regulator follows every township (each subscription covers at most 500 firms).
# Usage: bash bench/live_latency.sh [demo|district] [WORKDIR]   (REUSE=1 reuses an earlier run's store;
# DISTRICT=DIR reuses a generated district)
set -euo pipefail
scale=${1:-demo}
work=${2:-/tmp/xinyong-live-$scale}
rate=${RATE:-200}
pushes=${PUSHES:-60}
skip=${SKIP:-0}   # with REUSE=1: the pushes an earlier run sent (they would be replays now)
until=${UNTIL:-2025-10-31}
here=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/xinyong-target}"
(cd "$here" && cargo build --release -q --bin xinyong)
bin="$CARGO_TARGET_DIR/release/xinyong"
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GB; load $(cut -d' ' -f1-3 /proc/loadavg); scale $scale"
mkdir -p "$work"
district=${DISTRICT:-$work/district}
if [ "${REUSE:-}" = 1 ] && [ -f "$work/x.db" ]; then
  echo "reusing $work/x.db"
else
  rm -f "$work/x.db"*
  [ -d "$district/sources" ] || "$bin" gen --scale "$scale" --out "$district" >/dev/null
  /usr/bin/time -f "ingest until $until: %e s" "$bin" ingest --db "$work/x.db" --until "$until" "$district/sources" >/dev/null
  /usr/bin/time -f "score as of $until: %e s" "$bin" score --db "$work/x.db" --train --as-of "$until" >/dev/null
fi
"$bin" accounts demo --db "$work/x.db" --json >/dev/null
token=$("$bin" accounts token --db "$work/x.db" --user demo-regulator --label bench)
python3 - "$work/x.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("""INSERT OR IGNORE INTO subscriptions (user_id, kind, target, created_at)
  SELECT DISTINCT 'demo-regulator', 'township', json_extract(fields, '$.township'), 'bench'
  FROM facts WHERE dataset = 'amr.registration' AND known_to IS NULL AND json_extract(fields, '$.township') IS NOT NULL""")
c.commit()
print("subscriptions:", c.execute("SELECT COUNT(*) FROM subscriptions WHERE user_id = 'demo-regulator'").fetchone()[0])
PY
port=18632
base="http://127.0.0.1:$port"
"$bin" serve --db "$work/x.db" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done
measure() { # label feed-args...
  local label=$1; shift
  python3 - "$base" "$token" "$work/lat.txt" <<'PY' &
import json, sys, time, urllib.request
from datetime import datetime
base, token, out = sys.argv[1:4]
req = urllib.request.Request(base + "/api/v1/stream", headers={"Authorization": "Bearer " + token})
with urllib.request.urlopen(req) as r, open(out, "w") as f:
    for line in r:
        if line.startswith(b"data: "):
            now = time.time()
            e = json.loads(line[6:])
            made = datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")).timestamp()
            f.write(f"{(now - made) * 1000:.3f}\n")
            f.flush()
PY
  local reader=$!
  sleep 1
  "$bin" feed simulate --db "$work/x.db" --district "$district" --url "$base" --from "$(date -d "$until + 1 day" +%F)" "$@" \
    >"$work/feed.log" 2>&1 || { tail -5 "$work/feed.log"; exit 1; }
  sleep 2
  kill $reader 2>/dev/null || true
  wait $reader 2>/dev/null || true
  python3 - "$label" "$work/lat.txt" "$work/feed.log" <<'PY'
import sys
label, lat, feed = sys.argv[1:4]
xs = sorted(float(x) for x in open(lat) if x.strip())
done = [l for l in open(feed) if l.startswith("feed done")]
def pct(p):
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")
print(f"{label}: {done[0].strip() if done else 'feed: no summary'}")
print(f"{label}: {len(xs)} events streamed; commit to stream p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms, max {xs[-1] if xs else float('nan'):.1f} ms")
PY
}
measure "at ${rate} records/s" --rate "$rate" --skip "$skip" --limit "$pushes"
measure "as fast as it goes" --rate 1000000 --skip "$((skip + pushes))" --limit "$pushes"
echo "server peak memory: $(awk '/VmHWM/{print $2, $3}' /proc/$pid/status)"
