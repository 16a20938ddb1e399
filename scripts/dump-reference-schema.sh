#!/usr/bin/env bash
# Regenerates tests/Dbos.Tests/Reference/dbos-sdk-5.3.0.schema.sql: lets the TypeScript SDK @dbos-inc/dbos-sdk 5.3.0
# (from npm) create a scratch system database, then dumps its dbos schema. The schema test compares the schema this
# library creates with that dump.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${DBOS_TEST_POSTGRES_URL:-$(scripts/ensure-postgres.sh)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
database="dbos_reference_$$"
(cd "$work" && npm init -y >/dev/null && npm install --silent @dbos-inc/dbos-sdk@5.3.0 >/dev/null)
cat > "$work/create.js" <<'JS'
const { DBOS } = require('@dbos-inc/dbos-sdk');
(async () => {
  DBOS.setConfig({ name: 'reference', systemDatabaseUrl: process.env.URL });
  await DBOS.launch();
  await DBOS.shutdown();
})().catch((e) => { console.error(e); process.exit(1); });
JS
(cd "$work" && URL="$server/$database" node create.js >&2)
export PGPASSWORD=${server#*://*:}; PGPASSWORD=${PGPASSWORD%%@*}
hostport=${server##*@}
user=${server#*://}; user=${user%%:*}
pg_dump -h "${hostport%%:*}" -p "${hostport##*:}" -U "$user" --schema-only -n dbos "$database" > tests/Dbos.Tests/Reference/dbos-sdk-5.3.0.schema.sql
psql -q -h "${hostport%%:*}" -p "${hostport##*:}" -U "$user" -d postgres -c "DROP DATABASE $database WITH (FORCE)"
echo "wrote tests/Dbos.Tests/Reference/dbos-sdk-5.3.0.schema.sql" >&2
