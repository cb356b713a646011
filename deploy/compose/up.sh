#!/usr/bin/env bash
# Starts the compose stack (`make compose-up`): PostgreSQL, Redis, the four
# services and Prometheus, from the images `make images` builds (built first if
# one is missing). By default on the host's network, on loopback only, with
# compose.loopback.yaml's ports; DISPATCH311_COMPOSE_LOOPBACK=0 runs compose.yaml
# alone, as a city would. Makes development secrets once in .local/compose/secrets
# (kept: the data volumes are sealed and guarded with them), waits until every
# service answers, and says how to reach it.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=deploy/compose/lib.sh
source "$deploy_dir/compose/lib.sh"

start_timeout="${DISPATCH311_START_TIMEOUT:-120}"

"$deploy_dir/ensure-docker.sh" --compose

missing=()
for name in "${services[@]}" postgres redis prometheus; do
    docker image inspect "${DISPATCH311_IMAGE_PREFIX:-}dispatch311-$name:${DISPATCH311_IMAGE_TAG:-latest}" >/dev/null 2>&1 || missing+=("$name")
done
if ((${#missing[@]})); then
    say "images missing (${missing[*]}): building them (make images)"
    "$deploy_dir/build-images.sh"
fi

# Development secrets, made once. Owners: the services run as 65532, PostgreSQL
# as 999, Redis as 998, and compose bind-mounts each file as it is.
make_secrets() {
    local cli pw
    cli=$(compose_cli)
    mkdir -p "$secrets_dir"
    chmod 700 "$compose_state" "$secrets_dir" 2>/dev/null || true
    if [[ ! -s $secrets_dir/auth-jwks.json || ! -s $secrets_dir/event-log-key.pem ]]; then
        "$cli" dev-keys --dir "$secrets_dir" >/dev/null
        say "made development token and event-log keys in ${secrets_dir#"$repo_root"/}"
    fi
    if [[ ! -s $secrets_dir/contact-keys ]]; then
        (umask 077 && printf 'dev1:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$secrets_dir/contact-keys")
        say "made a development contact key"
    fi
    if [[ ! -s $secrets_dir/db-password ]]; then
        pw=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        (umask 077 && printf '%s\n' "$pw" >"$secrets_dir/db-password" &&
            printf '*:*:*:dispatch311:%s\n' "$pw" >"$secrets_dir/db-pgpass")
        say "made a database password"
    fi
    if [[ ! -s $secrets_dir/redis-password ]]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secrets_dir/redis-password")
        say "made a Redis password"
    fi
    # the public keys: anyone may read; the rest: their one reader
    chmod 444 "$secrets_dir/auth-jwks.json"
    as_root chown 65532:65532 "$secrets_dir/event-log-key.pem" "$secrets_dir/db-pgpass"
    chmod 400 "$secrets_dir/event-log-key.pem"
    chmod 600 "$secrets_dir/db-pgpass"
    as_root chown 999:999 "$secrets_dir/db-password"
    as_root chown 998:998 "$secrets_dir/redis-password"
    chmod 400 "$secrets_dir/db-password" "$secrets_dir/redis-password"
}
make_secrets
compose_env

targets=()
if [[ $compose_loopback == 1 ]]; then
    # nothing else may hold the stack's ports (a container of this stack may)
    if [[ -z $(docker ps -q --filter "label=com.docker.compose.project=$compose_project") ]]; then
        for var in PG REDIS INTAKE ROUTING DISPATCH SURVEY INTAKE_METRICS ROUTING_METRICS DISPATCH_METRICS SURVEY_METRICS PROMETHEUS; do
            port_var="DISPATCH311_COMPOSE_${var}_PORT"
            if port_open 127.0.0.1 "${!port_var}"; then
                die "127.0.0.1:${!port_var} is in use by another program: stop it or set $port_var"
            fi
        done
    fi
    for svc in "${services[@]}"; do
        port_var="DISPATCH311_COMPOSE_${svc^^}_METRICS_PORT"
        targets+=("$svc=127.0.0.1:${!port_var}")
    done
    render_prometheus_config "$compose_state/prometheus.yml" "${targets[@]}"
    chmod 644 "$compose_state/prometheus.yml"
    say "starting the stack on loopback (compose.yaml + compose.loopback.yaml)"
else
    say "starting the stack on its own network (compose.yaml)"
fi

compose_up --no-build --remove-orphans

fail_start() {
    printf '%s: error: %s; its last log lines:\n' "$log_tag" "$1" >&2
    compose logs --tail 30 "$2" >&2 || true
    exit 1
}
deadline=$((SECONDS + start_timeout))
for svc in "${services[@]}" prometheus; do
    until compose_answers "$svc"; do
        ((SECONDS < deadline)) || fail_start "$svc did not answer on 127.0.0.1:$(compose_port "$svc") within $start_timeout s" "$svc"
        sleep 0.5
    done
done

echo
echo "dispatch311 runs in containers (compose project $compose_project):"
for svc in "${services[@]}"; do
    printf '  %-10s 127.0.0.1:%s\n' "$svc" "$(compose_port "$svc")"
done
printf '  %-10s http://127.0.0.1:%s\n' prometheus "$(compose_port prometheus)"
echo
echo "the tour against it:  make compose-smoke"
echo "a token:              $(compose_cli) token --role integrator  (with DISPATCH311_AUTH_SIGNING_KEY=${secrets_dir#"$repo_root"/}/auth-signing-key.pem)"
echo "containers and logs:  docker ps --filter label=com.docker.compose.project=$compose_project; docker logs \$(docker ps -q --filter label=com.docker.compose.service=intake)"
echo "stop:                 make compose-down   (data volumes kept; DISPATCH311_COMPOSE_WIPE=1 removes them)"
