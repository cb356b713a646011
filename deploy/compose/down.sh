#!/usr/bin/env bash
# Stops the compose stack (`make compose-down`) and removes its containers; the
# services get SIGTERM and drain. The data volumes (PostgreSQL, Redis, photos,
# Prometheus) are kept unless DISPATCH311_COMPOSE_WIPE=1. Fails if a container
# of the stack is left afterwards.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=deploy/compose/lib.sh
source "$deploy_dir/compose/lib.sh"

if ! docker info >/dev/null 2>&1; then
    say "no container engine answers: nothing to stop"
    exit 0
fi
compose_env
flags=(--remove-orphans)
if [[ ${DISPATCH311_COMPOSE_WIPE:-0} == 1 ]]; then
    flags+=(--volumes)
    say "stopping the stack and removing its data volumes"
else
    say "stopping the stack (data volumes kept)"
fi
compose down "${flags[@]}"

left=$(compose_containers)
[[ -z $left ]] || die "containers of the stack are left: $(echo "$left" | tr '\n' ' ')"
say "no container of the stack is left"
