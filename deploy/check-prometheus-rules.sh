#!/usr/bin/env bash
# Checks deploy/prometheus/ with promtool (ensure-prometheus.sh installs it when
# missing): the scrape configuration, the rules' syntax and PromQL, then the
# rules' unit tests (rules_test.yml: every alert fires on its bad case and
# stays quiet on a healthy one). Part of `make test`; fails on the first problem.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$deploy_dir/ensure-prometheus.sh"
cd "$repo_root"

# check WHAT COMMAND...: runs COMMAND, shows its output and fails if it fails
check() {
    local what=$1 output
    shift
    if ! output=$("$@" 2>&1); then
        printf '%s\n' "$output" >&2
        die "$what: FAILED ($*; promtool's output above)"
    fi
    say "ok: $what"
}

check "scrape configuration" promtool check config deploy/prometheus/prometheus.yml
check "rules" promtool check rules deploy/prometheus/rules.yml
check "rule unit tests" promtool test rules deploy/prometheus/rules_test.yml
