#!/usr/bin/env bash
# Shows which services of the suite run, on which address, and whether they
# accept connections. Exits non-zero unless all four run (`--quiet`: only the status).
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

quiet=false
[[ ${1:-} == --quiet ]] && quiet=true
suite_env

running=0
for svc in "${services[@]}"; do
    addr=$(service_addr "$svc")
    if ! pid=$(service_pid "$svc"); then
        state="stopped"
    elif service_answers "$svc"; then
        state="running (pid $pid)"
        running=$((running + 1))
    else
        state="started, not listening yet (pid $pid)"
    fi
    $quiet || printf '  %-9s %-17s %s\n' "$svc" "$addr" "$state"
done
((running == ${#services[@]}))
