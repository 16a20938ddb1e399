#!/usr/bin/env bash
# Makes a local Postgres available to the test suite and prints its URL.
# Installs Debian's postgresql package if it is missing, starts the cluster (Postgres refuses to run as root, so the
# cluster runs as the postgres user through pg_ctlcluster), and creates the role the tests log in as.
set -euo pipefail

log() { echo "ensure-postgres: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else
    log "need root (or sudo) to run: $*"; exit 1; fi
}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  else sudo -n -u postgres "$@"; fi
}

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  log "installing Debian's postgresql package"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi

cluster=$(pg_lsclusters -h | head -n 1 || true)
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  log "creating cluster $version/main"
  as_root pg_createcluster "$version" main >&2
  cluster=$(pg_lsclusters -h | head -n 1)
fi

read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  log "starting cluster $version/$name on port $port"
  as_root pg_ctlcluster "$version" "$name" start >&2
fi

for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || { log "Postgres did not become ready on port $port"; exit 1; }

as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 -d postgres >&2 <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbos') THEN
    CREATE ROLE dbos LOGIN SUPERUSER PASSWORD 'dbos';
  END IF;
END
$$;
SQL

echo "postgresql://dbos:dbos@127.0.0.1:$port"
