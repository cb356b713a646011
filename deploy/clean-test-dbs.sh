#!/usr/bin/env bash
# Drops the databases named d311_test_* that tests left behind when they
# crashed (a passing test drops its own). Do not run it while tests run.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

listed=$(pg_sql -d postgres -c "select datname from pg_database where datname like 'd311\_test\_%'")
if [[ -z $listed ]]; then
    say "no test databases left"
    exit 0
fi
mapfile -t names <<<"$listed"
for name in "${names[@]}"; do
    # the names come from the catalogue but are quoted anyway
    pg_sql -d postgres -c "drop database if exists \"$name\" with (force)"
done
say "dropped ${#names[@]} test databases"
