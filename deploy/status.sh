#!/usr/bin/env bash
# Shows which services of the suite run, on which address, and whether they
# accept connections, and whether the Prometheus of `make observe` runs. Exits
# non-zero unless the four services, the console and the gateway run (`--quiet`: only the status).
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

quiet=false
[[ ${1:-} == --quiet ]] && quiet=true
suite_env

running=0
for svc in "${processes[@]}"; do
    addr=$(service_addr "$svc")
    if ! pid=$(service_pid "$svc"); then
        state="stopped"
    elif service_answers "$svc"; then
        state="running (pid $pid)"
        running=$((running + 1))
    else
        state="started, not listening yet (pid $pid)"
    fi
    $quiet || printf '  %-10s %-17s %s\n' "$svc" "$addr" "$state"
done
if ! $quiet; then
    if pid=$(prometheus_pid); then
        state="running (pid $pid): http://$(connect_addr "$(prometheus_addr)")"
    else
        state="stopped (make observe starts it)"
    fi
    printf '  %-10s %-17s %s\n' prometheus "$(prometheus_addr)" "$state"
fi
((running == ${#processes[@]}))
