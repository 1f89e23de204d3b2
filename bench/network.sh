#!/usr/bin/env bash
# The guarantee-network analysis against networkx and igraph, in the same run.
#
#   bench/network.sh            # district (21,000 firms) and 300,000 firms, with networkx and igraph; 3 million ours only
#   SIZES="21000" bench/network.sh
#
# Writes graphs with `xinyong gen --graph-only` (the district generator's structure) under WORK, runs
# `xinyong network --graph DIR --out ours.csv` under /usr/bin/time (analysis time and peak memory), then
# bench/network_vs_networkx.py on the same graph (components checked equal, every firm's DebtRank checked
# equal to 1e-9, times best of REPEAT). Graphs above NX_MAX firms are analysed by ours only.
# Environment: XINYONG_BIN (default: $HOME/.cache/xinyong-target/release/xinyong), WORK (default
# /tmp/xinyong-network-bench), REPEAT (default 3), NX_MAX (default 300000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${XINYONG_BIN:-$HOME/.cache/xinyong-target/release/xinyong}
WORK=${WORK:-/tmp/xinyong-network-bench}
REPEAT=${REPEAT:-3}
NX_MAX=${NX_MAX:-300000}
SIZES=${SIZES:-21000 300000 3000000}
mkdir -p "$WORK"
echo "== $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $SIZES; do
  dir=$WORK/g$n
  [ -f "$dir/edges.csv" ] || "$BIN" gen --graph-only --firms "$n" --out "$dir"
  echo "== $n firms"
  for i in $(seq "$REPEAT"); do
    /usr/bin/time -f "peak RSS %M KB, wall %e s" "$BIN" network --graph "$dir" --out "$dir/ours.csv" 2>&1 | grep -E "analysis|peak RSS|graph "
  done
  if [ "$n" -le "$NX_MAX" ]; then
    python3 "$ROOT/bench/network_vs_networkx.py" "$dir" "$dir/ours.csv" --repeat "$REPEAT"
  fi
done
