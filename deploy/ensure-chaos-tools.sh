#!/usr/bin/env bash
# What the chaos run needs beyond the suite's servers: iptables (its
# connection faults; installed from Debian's packages when missing, as root)
# and PostgreSQL's and Redis's server binaries (it runs servers of its own,
# so it can restart them and cut their connections without touching the
# machine's). Without root the run goes on without connection faults.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! command -v iptables >/dev/null; then
    if [[ $(id -u) == 0 ]]; then
        apt_install iptables
    else
        say "iptables is missing and this is not root: the chaos run will skip connection faults"
    fi
fi
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    die "PostgreSQL's server binaries are missing (deploy/ensure-postgres.sh installs them)"
command -v redis-server >/dev/null ||
    die "redis-server is missing (deploy/ensure-redis.sh installs it)"
say "ok: $(iptables -V 2>/dev/null || echo 'no iptables'), $(compgen -G '/usr/lib/postgresql/*/bin/initdb' | tail -1), $(command -v redis-server)"
