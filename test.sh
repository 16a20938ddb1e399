#!/usr/bin/env bash
# Runs the whole test suite on SQLite and Postgres.
# Starts a local Postgres first (installing it from Debian's package if needed), unless DBOS_TEST_POSTGRES_URL
# already points at one. Extra arguments go to `dotnet test` (for example --filter).
set -euo pipefail
cd "$(dirname "$0")"

if [ -z "${DBOS_TEST_POSTGRES_URL:-}" ]; then
  DBOS_TEST_POSTGRES_URL=$(scripts/ensure-postgres.sh)
  export DBOS_TEST_POSTGRES_URL
fi
echo "Postgres for tests: ${DBOS_TEST_POSTGRES_URL%%:*}://…@${DBOS_TEST_POSTGRES_URL##*@}"

dotnet test Dbos.slnx -c Release --logger "console;verbosity=normal" "$@"
