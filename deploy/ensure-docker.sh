#!/usr/bin/env bash
# Makes a container engine answer (`docker info`) and, with --compose, a compose
# tool. A running engine is left alone; a missing one is installed from
# Debian's packages (docker.io) and its daemon started: through systemd where
# systemd runs, else in the background (log in /var/log/dockerd.log). Says what
# it did, so a build log shows whether this machine's engine was touched.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

want_compose=false
for arg in "$@"; do
    case $arg in
    --compose) want_compose=true ;;
    *) die "unknown option $arg (only --compose)" ;;
    esac
done

engine_answers() { docker info >/dev/null 2>&1; }

if engine_answers; then
    say "container engine: running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')), left alone"
else
    # a client alone (no daemon on this machine) is not enough: Debian's docker.io brings dockerd
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
        apt_install docker.io
        say "installed Debian's docker.io (engine $(dockerd --version 2>/dev/null | sed 's/^Docker version //'))"
    fi
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        say "starting the engine: systemctl start docker"
        as_root systemctl start docker
    else
        # no systemd: run dockerd detached from this shell, so it outlives `make`
        say "starting the engine: dockerd in the background (log /var/log/dockerd.log)"
        as_root bash -c 'setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &'
    fi
    if ! wait_until 60 engine_answers; then
        tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || true
        die "the container engine did not answer within 60 s (docker info)"
    fi
    say "container engine: started ($(docker version --format '{{.Server.Version}}'))"
fi

if $want_compose; then
    # the v2 plugin where the engine has it; else Debian's docker-compose (v1):
    # the compose files are written for both
    if docker compose version >/dev/null 2>&1; then
        say "compose: docker compose ($(docker compose version --short 2>/dev/null || echo v2))"
    elif command -v docker-compose >/dev/null; then
        say "compose: docker-compose ($(docker-compose version --short 2>/dev/null || echo '?'))"
    else
        apt_install docker-compose
        say "installed Debian's docker-compose ($(docker-compose version --short 2>/dev/null || echo '?'))"
    fi
fi
