#!/usr/bin/env bash
# Stops the services started by run-suite.sh: SIGTERM (they drain and shut down
# gracefully), up to 10 s to exit, then SIGKILL. Removes the pid files. Also
# stops the Prometheus of `make observe` (deploy/observe.sh) unless called with
# --services-only (run-suite.sh restarting the suite: Prometheus keeps scraping).
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

services_only=false
case ${1:-} in
"") ;;
--services-only) services_only=true ;;
*) die "usage: $0 [--services-only]" ;;
esac

grace_seconds=10

pids=()
names=()
for svc in "${processes[@]}"; do
    if pid=$(service_pid "$svc"); then
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
        names+=("$svc")
    fi
done

if ((${#pids[@]} == 0)); then
    say "no suite running"
else
    say "stopping ${names[*]}"
    all_exited() {
        local pid
        for pid in "${pids[@]}"; do
            if pid_alive "$pid"; then return 1; fi
        done
    }
    if ! wait_until "$grace_seconds" all_exited; then
        for i in "${!pids[@]}"; do
            if pid_alive "${pids[$i]}"; then
                say "dispatch311-${names[$i]} still running after $grace_seconds s: killing it"
                kill -KILL "${pids[$i]}" 2>/dev/null || true
            fi
        done
    fi
    say "stopped"
fi
for svc in "${processes[@]}"; do
    rm -f "$run_dir/$svc.pid"
done
# a suite started with mutual TLS is forgotten with it (make run asks again)
rm -f "$run_dir/mutual-tls"

$services_only || stop_prometheus
