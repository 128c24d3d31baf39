#!/usr/bin/env bash
# The embedded default: the example dbt project, a local store and warehouse under .demo/, a local Prefect.
set -euo pipefail
cd "$(dirname "$0")/.."
ferry=.venv/bin/dbt-ferry
project=(--project-dir examples/shop)
demo="$PWD/.demo"
store="$demo/store"
export DBT_FERRY_CACHE_DIR="$demo/cache"     # the env pack is unpacked once, reused by later runs
export SHOP_DUCKDB_PATH="$demo/shop.duckdb"  # the warehouse outlives the run's work directory
rm -rf "$store" "$demo/build"
mkdir -p "$demo"

echo "==> package the example project with its environment, publish it, promote it in 'local'"
"$ferry" package "${project[@]}" --with-env --out "$demo/build"
"$ferry" publish "${project[@]}" --env local --store "$store" --from "$demo/build" --promote
echo
echo "==> run the channel's release as a Prefect flow on DuckDB"
status=0
"$ferry" run "${project[@]}" --env local --store "$store" || status=$?
echo
echo "Where to look:"
echo "  docs (one HTML file):  $store/docs/local/index.html"
echo "  timing chart:          $store/docs/local/timing.html"
echo "  history report:        $store/docs/local/history.html (dbt-ferry report: the runs over time)"
echo "  result tables:         $store/tables/ (Iceberg, SQLite catalog) — $ferry history --env local --store $store ${project[*]}"
echo "  run artifacts:         $store/runs/local/"
echo "  state for slim CI:     $store/state/local/manifest.json"
echo "  warehouse (DuckDB):    $SHOP_DUCKDB_PATH"
echo "  releases:              $ferry releases --env local --store $store ${project[*]}"
if [ -n "${PREFECT_API_URL:-}" ]; then
  echo "  Prefect UI:            the server behind PREFECT_API_URL ($PREFECT_API_URL)"
else
  echo "  Prefect UI:            .venv/bin/prefect server start, then open http://127.0.0.1:4200"
  echo "                         (the run was recorded by a temporary server in Prefect's local database)"
fi
exit "$status"
