#!/usr/bin/env bash
# Side by side: the sequential, concurrent, queued and one-by-one queued workloads with DBOS for .NET (bench/Dbos.Benchmarks on Postgres)
# and with the TypeScript SDK (@dbos-inc/dbos-sdk, bench.js) on the same Postgres, one after the other, then one table.
#   bash bench/peer-ts/run.sh [--smoke] [--postgres-url URL]
# --smoke goes to both (tiny counts: checks that everything runs). The Postgres URL is the server (default
# DBOS_TEST_POSTGRES_URL, else postgresql://dbos:dbos@127.0.0.1:5432); each side creates and drops its own scratch
# database on it. The npm packages are installed into bench/peer-ts/node_modules on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
sdk_version=5.3.0

smoke=()
url=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --smoke) smoke=(--smoke); shift ;;
    --postgres-url)
      [ "$#" -ge 2 ] || { echo "--postgres-url needs a value" >&2; exit 2; }
      url=(--postgres-url "$2"); shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

for tool in dotnet node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "This comparison needs $tool, which is not installed (Node.js 20 or newer with npm, and the .NET SDK)." >&2
    exit 1
  fi
done

installed=$(cd "$here" && node -p "try { require('./node_modules/@dbos-inc/dbos-sdk/package.json').version } catch { 'none' }")
if [ "$installed" != "$sdk_version" ]; then
  echo "Installing @dbos-inc/dbos-sdk $sdk_version into $here/node_modules (found: $installed)" >&2
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

work=$(mktemp -d)
child=""
trap 'rm -rf "$work"' EXIT
# Each side runs in the background so that a signal to this script reaches it, and it drops its scratch database.
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; wait "$child" || true; fi; exit 130' INT TERM HUP
run() {
  "$@" &
  child=$!
  local status=0
  wait "$child" || status=$?
  child=""
  return "$status"
}

echo "== DBOS for .NET (bench/Dbos.Benchmarks)" >&2
run dotnet run -c Release --project "$root/bench/Dbos.Benchmarks" -- --backend postgres --only Sequential,Concurrent,Queue,QueueOneByOne \
  --json "$work/dotnet.json" ${smoke[@]+"${smoke[@]}"} ${url[@]+"${url[@]}"} >&2
echo "== @dbos-inc/dbos-sdk $sdk_version (bench/peer-ts/bench.js)" >&2
run node "$here/bench.js" --json "$work/ts.json" ${smoke[@]+"${smoke[@]}"} ${url[@]+"${url[@]}"} >&2
node "$here/compare.js" "$work/dotnet.json" "$work/ts.json"
if [ "${#smoke[@]}" -gt 0 ]; then
  echo "(smoke run: the figures are not meaningful)"
fi
