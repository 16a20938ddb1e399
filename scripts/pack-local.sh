#!/usr/bin/env bash
# Packs every package of the repository (the projects under src/: Dbos, Dbos.Extensions.Hosting, Dbos.Dashboard,
# Dbos.EntityFrameworkCore and the dbos tool, Dbos.Cli) into a local NuGet feed, artifacts/packages by default.
# Usage: scripts/pack-local.sh [output-folder]. Extra settings go through the environment, for example
# VERSION_SUFFIX=dev.1 for prerelease packages. See docs/installation.md for consuming the feed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-artifacts/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)

suffix=()
if [ -n "${VERSION_SUFFIX:-}" ]; then suffix=(--version-suffix "$VERSION_SUFFIX"); fi

for project in src/*/*.csproj; do
  dotnet pack "$project" -c Release -o "$out" -v quiet -nologo "${suffix[@]}"
done
ls -1 "$out"
