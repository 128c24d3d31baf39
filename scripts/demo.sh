#!/usr/bin/env bash
# The embedded default: the example dbt project, a local store under .demo/, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
ferry=.venv/bin/dbt-ferry
project=(--project-dir examples/shop)
store="$PWD/.demo/store"
rm -rf .demo/store .demo/fetched
mkdir -p .demo

echo "==> package the example project (examples/shop)"
"$ferry" package "${project[@]}" --out .demo/build
echo
echo "==> publish it to the local store and promote it in environment 'local'"
"$ferry" publish "${project[@]}" --env local --store "$store" --from .demo/build --promote
echo
echo "==> list the releases"
"$ferry" releases "${project[@]}" --env local --store "$store"
echo
echo "==> fetch the channel's release, verify every checksum, extract it"
"$ferry" fetch "${project[@]}" --env local --store "$store" --dest .demo/fetched
echo
echo "Done. The store is in .demo/store, the fetched project in .demo/fetched"
echo "(cd .demo/fetched && ../../.venv/bin/dbt build) runs it with the 'local' profile."
