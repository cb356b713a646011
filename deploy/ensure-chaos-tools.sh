#!/usr/bin/env bash
# What the chaos run needs beyond the suite's servers: the `fault` TCP fault
# proxy (crates.io's fault-cli; its connection faults: resets, blackholes,
# delays), installed with cargo when missing, and PostgreSQL's and Redis's
# server binaries (it runs servers of its own, so it can restart them and
# cut their connections without touching the machine's).
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# the version whose run documents the chaos run writes (tests/src/chaos/servers.rs)
fault_version=1.2.1
if [[ $(fault --version 2>/dev/null) != "fault ${fault_version}" ]]; then
    say "installing the fault proxy (fault-cli ${fault_version}, once)"
    cargo install fault-cli --version "${fault_version}" --locked
fi
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    die "PostgreSQL's server binaries are missing (deploy/ensure-postgres.sh installs them)"
command -v redis-server >/dev/null ||
    die "redis-server is missing (deploy/ensure-redis.sh installs it)"
say "ok: $(fault --version), $(compgen -G '/usr/lib/postgresql/*/bin/initdb' | tail -1), $(command -v redis-server)"
