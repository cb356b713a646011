#!/bin/bash
# The container's health check: Redis answers PING with the stack's password.
set -euo pipefail
REDISCLI_AUTH=$(<"${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}") \
    redis-cli -h 127.0.0.1 -p "${REDIS_PORT:-6379}" ping | grep -qx PONG
