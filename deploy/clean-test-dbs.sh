#!/usr/bin/env bash
# Drops the databases named d311_test_* that tests left behind when they
# crashed (a passing test drops its own). Do not run it while tests run.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

sql() { PGCONNECT_TIMEOUT=5 psql -X -w -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres -d postgres "$@"; }

mapfile -t names < <(sql -c "select datname from pg_database where datname like 'd311\_test\_%'")
if ((${#names[@]} == 0)); then
    say "no test databases left"
    exit 0
fi
for name in "${names[@]}"; do
    # the names come from the catalogue but are quoted anyway
    sql -c "drop database if exists \"$name\" with (force)"
done
say "dropped ${#names[@]} test databases"
