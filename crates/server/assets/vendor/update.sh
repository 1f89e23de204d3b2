#!/usr/bin/env bash
# Refreshes the vendored Apache ECharts from the npm registry (version pinned here).
set -euo pipefail
version=5.6.0
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
(cd "$tmp" && npm pack "echarts@$version" --silent >/dev/null && tar xzf "echarts-$version.tgz")
cp "$tmp/package/dist/echarts.min.js" "$here/echarts.min.js"
cp "$tmp/package/LICENSE" "$here/ECHARTS-LICENSE"
rm -rf "$tmp"
echo "echarts $version vendored"
