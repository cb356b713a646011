#!/bin/bash
# Runs redis-server in the foreground with /etc/redis/dispatch311.conf, on
# REDIS_PORT (6379) and REDIS_BIND (every address), requiring the password of
# REDIS_PASSWORD_FILE (a secret). The password reaches Redis through a
# configuration file on a tmpfs, never through a command line.
set -euo pipefail

password_file=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
say() { printf 'dispatch311-redis: %s\n' "$*" >&2; }
[[ -s $password_file ]] || { say "error: cannot read the password file $password_file"; exit 1; }
password=$(<"$password_file")
[[ $password =~ ^[A-Za-z0-9._~-]+$ ]] || { say "error: the password must be letters, digits and . _ ~ - (it goes into a URL)"; exit 1; }

conf=/run/redis/dispatch311.conf
(
    umask 077
    {
        echo "include /etc/redis/dispatch311.conf"
        echo "port ${REDIS_PORT:-6379}"
        echo "bind ${REDIS_BIND:-* -::*}"
        echo "requirepass $password"
    } >"$conf"
)
exec redis-server "$conf" "$@"
