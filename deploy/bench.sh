#!/usr/bin/env bash
# The benchmark: starts a release build of the suite on a fresh database
# (dispatch311_bench) with the city's real precinct map when the data is
# present, runs the load generator against it, prints its figures, and stops
# the suite. A suite started by `make run` is stopped first (same ports).
# Expects Redis and PostgreSQL up (deploy/ensure-deps.sh).
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dispatch311-target}"
cd "$repo_root"

export DISPATCH311_DB_NAME=dispatch311_bench
export DISPATCH311_PROFILE=release
# logging every request would measure the log writer
export RUST_LOG="${RUST_LOG:-warn}"
export DISPATCH311_REDIS_PREFIX="bench:"
# the benchmark measures capacity, not the per-integrator limits
export DISPATCH311_RATE_LIMIT_PER_SECOND="${DISPATCH311_RATE_LIMIT_PER_SECOND:-1000000}"

say "fresh database $DISPATCH311_DB_NAME and Redis prefix $DISPATCH311_REDIS_PREFIX"
"$deploy_dir/stop-suite.sh" --services-only
pg_sql -d postgres -c "DROP DATABASE IF EXISTS $DISPATCH311_DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DISPATCH311_DB_NAME"
redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "${DISPATCH311_REDIS_PREFIX}*" | xargs -r redis-cli -h 127.0.0.1 -p 6379 del >/dev/null

cargo build --release -p dispatch311-tests --bin dispatch311-bench
"$deploy_dir/run-suite.sh" >/dev/null
trap '"$deploy_dir/stop-suite.sh" --services-only >/dev/null' EXIT
suite_env
# the same rows through the Open311 gateway too, with its development key
export DISPATCH311_OPEN311_URL="http://$(connect_addr "$DISPATCH311_OPEN311_ADDR")"
DISPATCH311_OPEN311_API_KEY=$(<"$repo_root/.local/dev-keys/open311-api-key")
export DISPATCH311_OPEN311_API_KEY
"$CARGO_TARGET_DIR/release/dispatch311-bench" "$@"
