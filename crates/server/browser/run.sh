#!/usr/bin/env bash
# The end-to-end browser suite of the web platform: builds a small synthetic district (gen, ingest, score) in
# a temporary folder, creates the demo accounts, serves it on a free loopback port and walks it in headless
# Chromium (walk.test.mjs: the public pages; account.test.mjs: logins, authorisation; node:test +
# playwright-core). Usage: run.sh [path/to/xinyong] (default: $CARGO_TARGET_DIR/release/xinyong).
# Chromium: $CHROMIUM, else /usr/bin/chromium (Debian: apt-get install -y chromium fonts-noto-cjk).
# Screenshots land in screenshots/ beside this file. Exits non-zero when any test fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${CARGO_TARGET_DIR:-$HOME/.cache/xinyong-target}"
bin="$(realpath -m "${1:-$target/release/xinyong}")"
chromium="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$bin" ]] || { echo "run.sh: no xinyong binary at $bin (cargo build --release --bin xinyong)" >&2; exit 2; }
[[ -x "$chromium" ]] || { echo "run.sh: no Chromium at $chromium (apt-get install -y chromium fonts-noto-cjk)" >&2; exit 2; }
export CHROMIUM="$chromium"

cd "$here"
[[ -d node_modules/playwright-core ]] || npm ci --silent --no-audit --no-fund

work="$(mktemp -d "${TMPDIR:-/tmp}/xinyong-browser.XXXXXX")"
server=""
cleanup() {
  if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== a small district (150 firms) in $work"
"$bin" gen --scale demo --enterprises 150 --out "$work/district" >"$work/gen.log" 2>&1 ||
  { cat "$work/gen.log" >&2; exit 1; }
# The deliveries up to the end of October; the later ones are the live feed a test plays (feed simulate).
"$bin" ingest --db "$work/x.db" --clock 2026-01-20T00:00:00 --until 2025-10-31 "$work/district/sources" >"$work/ingest.log" 2>&1 ||
  { cat "$work/ingest.log" >&2; exit 1; }
"$bin" score --db "$work/x.db" --train --as-of 2025-10-31 --clock 2026-02-01T00:00:00 >"$work/score.log" 2>&1 ||
  { cat "$work/score.log" >&2; exit 1; }
"$bin" stats --db "$work/x.db" >"$work/stats.log"
"$bin" accounts demo --db "$work/x.db" --json >"$work/accounts.json"
head -1 "$work/stats.log"

# A free port: the kernel picks one; the tiny race until serve binds it is harmless on a CI machine.
port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
url="http://127.0.0.1:$port"
echo "== xinyong serve at $url"
"$bin" serve --db "$work/x.db" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
healthy() {
  node -e 'fetch(process.argv[1]).then(r => r.text()).then(t => process.exit(t.trim() === "ok" ? 0 : 1), () => process.exit(1))' \
    "$url/healthz"
}
for _ in $(seq 100); do
  healthy && break
  kill -0 "$server" 2>/dev/null || { echo "run.sh: xinyong serve died" >&2; cat "$work/serve.log" >&2; exit 1; }
  sleep 0.2
done
healthy || { echo "run.sh: $url/healthz never answered ok" >&2; cat "$work/serve.log" >&2; exit 1; }

echo "== the walk in headless Chromium ($("$chromium" --version 2>/dev/null | head -1))"
rm -rf screenshots
status=0
XINYONG_URL="$url" SCREENSHOTS="$here/screenshots" ACCOUNTS="$work/accounts.json" DISTRICT="$work/district" \
  XINYONG_BIN="$bin" XINYONG_DB="$work/x.db" \
  node --test --test-reporter=spec walk.test.mjs account.test.mjs || status=$?
if [[ $status -ne 0 ]]; then
  echo "== the server's log" >&2
  cat "$work/serve.log" >&2
fi
exit "$status"
