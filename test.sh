#!/usr/bin/env bash
# Runs the whole test suite on SQLite and Postgres.
# Starts a local Postgres first (installing it from Debian's package if needed), unless DBOS_TEST_POSTGRES_URL
# already points at one. Extra arguments go to `dotnet test` (for example --filter).
set -euo pipefail
cd "$(dirname "$0")"

# The interoperability tests run the real TypeScript SDK from npm: they need Node.js.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "Installing Debian's nodejs and npm packages for the interoperability tests"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
  else sudo -n apt-get update -q && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; fi
fi

# The dashboard's tests drive a real headless browser: Debian's chromium (Playwright uses it; it downloads none).
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium package for the dashboard's browser tests"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else sudo -n apt-get update -q && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ -z "${DBOS_TEST_POSTGRES_URL:-}" ]; then
  DBOS_TEST_POSTGRES_URL=$(scripts/ensure-postgres.sh)
  export DBOS_TEST_POSTGRES_URL
fi
echo "Postgres for the tests: ${DBOS_TEST_POSTGRES_URL%%//*}//…@${DBOS_TEST_POSTGRES_URL##*@}"

log=$(mktemp)
trap 'rm -f "$log" "$log.pack"' EXIT
set +e
# One line per finished test, so a long run shows its progress. A test still running after 5 minutes (the longest take
# about a minute) is hung: the run is stopped there and names it, instead of waiting for CI's own limit.
dotnet test Dbos.slnx -c Release --logger "console;verbosity=normal" --blame-hang-timeout 5m --blame-hang-dump-type none "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

if [ "$#" -eq 0 ]; then
  # Every package packs (warnings are errors there too), into the local feed docs/installation.md describes, and the
  # command line installs from it as a .NET tool.
  echo "Packaging check: scripts/pack-local.sh, then dotnet tool install of the dbos command line"
  rm -rf artifacts/packages artifacts/tool
  if scripts/pack-local.sh artifacts/packages >"$log.pack" 2>&1 \
    && dotnet tool install Dbos.Cli --tool-path artifacts/tool --add-source artifacts/packages >/dev/null \
    && artifacts/tool/dbos --help | grep -q "workflow"; then
    echo "Packed $(ls artifacts/packages/*.nupkg | wc -l) packages; dbos installed as a tool and runs."
  else
    cat "$log.pack"
    echo "The packages could not be packed, or the dbos tool could not be installed or run."
    status=1
  fi

  # The benchmark must keep running; a smoke run checks that, not its speed.
  echo "Benchmark smoke run:"
  if ! dotnet run -c Release --project bench/Dbos.Benchmarks -- --smoke --postgres-url "$DBOS_TEST_POSTGRES_URL" 2>/dev/null; then
    echo "The benchmark smoke run failed."
    status=1
  fi
fi

# The failed tests once more, with the start of their messages, just before the closing line: a long log is often read
# from its end only.
if grep -qE '^ +Failed [A-Za-z]' "$log"; then
  echo "Failed tests:"
  awk '/^ +Failed [A-Za-z]/ { print; shown = 0; inmsg = 1; next }
       inmsg && /^ +(Passed|Skipped|Failed) / { inmsg = 0 }
       inmsg && shown < 12 { print; shown++ }' "$log"
fi

# One plain closing line for the whole run, summed over the test projects.
# The console logger ends each test project with "Total tests: N" and then "Passed: N", "Failed: N", "Skipped: N" lines.
awk '/^Total tests: [0-9]+/ { seen = 1; counting = 1; next }
     counting && /^ +(Passed|Failed|Skipped): [0-9]+/ { gsub(":", ""); if ($1 == "Passed") p += $2; if ($1 == "Failed") f += $2; if ($1 == "Skipped") s += $2; next }
     { counting = 0 }
     END { if (seen) printf "%d passed, %d failed, %d skipped\n", p, f, s; else print "no test results found" }' "$log"
exit "$status"
