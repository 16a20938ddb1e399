#!/usr/bin/env bash
# Checks that the Dbos library works under NativeAOT, as src/Dbos's IsAotCompatible claims: publishes
# tests/Dbos.AotCheck with PublishAot (trimming and AOT warnings fail the publish), then runs the native executable:
#   1. a four-step workflow killed with SIGKILL after step 2 resumes at step 3 when run again, and no step runs twice
#      (each step appends to a ledger file); on SQLite, and on Postgres;
#   2. a queued workflow whose string input and output go through the default serializer runs;
#   3. without an application version, launch fails with the error that says to set one (there is no IL to hash),
#      and DBOS__APPVERSION is enough to set one.
# Installs clang and zlib's headers from Debian when missing (the native linker needs them). Postgres: the one at
# DBOS_TEST_POSTGRES_URL, else the one scripts/ensure-postgres.sh starts. Takes about 1.5 minutes on 2 cores (3 on a
# busy machine), nearly all of it the native compilation. Exits non-zero, with a message saying what failed, on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

fail() {
  echo "AOT check FAILED: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
[ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing Debian's ${missing[*]} for the NativeAOT linker"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
pg_database=""
cleanup() {
  if [ -n "$pg_database" ]; then
    psql -q "$pg_url/postgres" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

out=artifacts/aot-check
rm -rf "$out"
echo "AOT check: publishing tests/Dbos.AotCheck with NativeAOT"
if ! dotnet publish tests/Dbos.AotCheck -c Release -o "$out" -nologo >"$work/publish.log" 2>&1; then
  cat "$work/publish.log"
  fail "the NativeAOT publish of tests/Dbos.AotCheck failed (trimming and AOT warnings are errors)"
fi
if grep -E ": warning [A-Z]+[0-9]+" "$work/publish.log"; then
  fail "the NativeAOT publish reported the warnings above"
fi
exe=$(pwd)/$out/Dbos.AotCheck
[ -x "$exe" ] || fail "the publish made no native executable at $exe"
echo "AOT check: published in $((SECONDS - started)) s; $(du -h "$exe" | cut -f1) executable"

# Runs the executable in folder $1 with the system database $2 (empty: SQLite in that folder); the rest are arguments.
run() {
  local dir=$1 url=$2
  shift 2
  (cd "$dir" && env -u DBOS__APPVERSION DBOS_SYSTEM_DATABASE_URL="$url" timeout 120 "$exe" "$@")
}

# The crash-and-resume check on one system database: $1 names it, $2 is its URL (empty: a SQLite file).
crash_and_resume() {
  local name=$1 url=$2 dir="$work/$1"
  mkdir -p "$dir"
  (cd "$dir" && exec env -u DBOS__APPVERSION DBOS_SYSTEM_DATABASE_URL="$url" AOTCHECK_BLOCK_AFTER=2 "$exe" run order-1) >"$dir/first.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    grep -q "^checkpointed 2$" "$dir/first.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q "^checkpointed 2$" "$dir/first.log"; then
    kill -9 "$pid" 2>/dev/null || true
    cat "$dir/first.log"
    fail "$name: the first run did not reach step 2"
  fi
  kill -9 "$pid"
  local status=0
  # (The shell's own "Killed" notice for the job goes to /dev/null: the kill is the point.)
  { wait "$pid"; } 2>/dev/null || status=$?
  [ "$status" -eq 137 ] || fail "$name: the first run was not killed by SIGKILL (exit status $status)"
  [ "$(cat "$dir/ledger.txt")" = "$(printf 'step1\nstep2')" ] || fail "$name: after the kill the ledger is not step1, step2: $(tr '\n' ' ' <"$dir/ledger.txt")"

  if ! run "$dir" "$url" run order-1 >"$dir/second.log" 2>&1; then
    cat "$dir/second.log"
    fail "$name: the second run failed"
  fi
  grep -q "Recovering 1 pending workflow" "$dir/second.log" || { cat "$dir/second.log"; fail "$name: the second run did not recover the workflow at launch"; }
  grep -qx 'result {"orderId":"order-1","total":100}' "$dir/second.log" || { cat "$dir/second.log"; fail "$name: the second run did not print the expected result"; }
  [ "$(cat "$dir/ledger.txt")" = "$(printf 'step1\nstep2\nstep3\nstep4')" ] \
    || fail "$name: the ledger is not step1 to step4 once each: $(tr '\n' ' ' <"$dir/ledger.txt")"

  if ! run "$dir" "$url" greet ada >"$dir/greet.log" 2>&1 || ! grep -qx "greeted hello ada" "$dir/greet.log"; then
    cat "$dir/greet.log"
    fail "$name: the queued workflow with the default serializer did not run"
  fi
  echo "AOT check: $name: killed after step 2, resumed at step 3, each step ran once; the default serializer works"
}

crash_and_resume sqlite ""

if [ -z "${DBOS_TEST_POSTGRES_URL:-}" ]; then
  DBOS_TEST_POSTGRES_URL=$(scripts/ensure-postgres.sh)
fi
pg_url=${DBOS_TEST_POSTGRES_URL%/}
pg_database="dbos_aot_check_$$"
crash_and_resume postgres "$pg_url/$pg_database"

# Without a version there is no IL to hash: launch must fail, saying what to set.
mkdir -p "$work/no-version"
status=0
run "$work/no-version" "" run order-2 --no-version >"$work/no-version.log" 2>&1 || status=$?
expected="The default application version is a hash of the workflows' code, but the IL of workflow 'four-steps' is not available (this runtime compiles ahead of time and keeps no IL). Set DbosConfig.ApplicationVersion (or DBOS__APPVERSION) to a version that changes whenever workflow code changes."
if [ "$status" -ne 3 ] || ! grep -qxF "launch failed: $expected" "$work/no-version.log"; then
  cat "$work/no-version.log"
  fail "without an application version, launch did not fail with the expected error (exit status $status)"
fi
(cd "$work/no-version" && DBOS__APPVERSION=from-environment timeout 120 "$exe" run order-3 --no-version) >"$work/env-version.log" 2>&1 \
  && grep -q "^launched version from-environment " "$work/env-version.log" \
  || { cat "$work/env-version.log"; fail "DBOS__APPVERSION did not set the application version"; }
echo "AOT check: without an application version launch fails with the error naming DbosConfig.ApplicationVersion; DBOS__APPVERSION sets one"

echo "AOT check passed in $((SECONDS - started)) s."
