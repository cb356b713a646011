#!/usr/bin/env bash
# Makes sure Redis answers on 127.0.0.1:6379: leaves a running server alone,
# starts an installed one, installs Redis from Debian's packages if it is missing.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

host=127.0.0.1
port=6379
data_dir=/var/lib/redis
log_file=/var/log/redis/ci.log

redis_answers() {
    [[ $(redis-cli -h "$host" -p "$port" ping 2>/dev/null) == PONG ]]
}

if command -v redis-cli >/dev/null && redis_answers; then
    say "ok: redis answers on $host:$port"
    exit 0
fi

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server redis-tools
    # the package may have started its own server
    if wait_until 3 redis_answers; then
        say "ok: redis answers on $host:$port"
        exit 0
    fi
fi

if port_open "$host" "$port"; then
    die "something on $host:$port accepts connections but does not answer PING like redis: stop it and run again"
fi

say "starting redis-server on $host:$port (log $log_file)"
as_root mkdir -p "$data_dir" "$(dirname "$log_file")"
# no persistence: the queue's source of truth is PostgreSQL, Redis is only transport
as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" \
    --save "" --appendonly no --dir "$data_dir" --logfile "$log_file"

if ! wait_until 15 redis_answers; then
    as_root tail -n 20 "$log_file" >&2 || true
    die "redis-server did not answer on $host:$port within 15 s (log above, full log $log_file)"
fi
say "ok: redis started and answers on $host:$port"
