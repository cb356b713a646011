#!/usr/bin/env bash
# Starts the compose stack (`make compose-up`): PostgreSQL, Redis, the four
# services, the console, the Open311 gateway and Prometheus, from the images
# `make images` builds (built first if one is missing). By default on the host's
# network, on loopback only, with compose.loopback.yaml's ports, the console's
# development sign-in and a development API key for the gateway;
# DISPATCH311_COMPOSE_LOOPBACK=0 runs compose.yaml alone, as a city would (the
# console then signs in through the identity provider named by
# DISPATCH311_CONSOLE_OIDC_*, the gateway takes the key files named by
# DISPATCH311_OPEN311_API_KEYS_FILE and _SIGNING_KEY_FILE). Makes development
# secrets once in .local/compose/secrets (kept: the data volumes are sealed and
# guarded with them), waits until every service, the console and the gateway
# answer, and says how to reach them.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=deploy/compose/lib.sh
source "$deploy_dir/compose/lib.sh"

start_timeout="${DISPATCH311_START_TIMEOUT:-120}"

# true when the containers' user (uid and gid 65532) may read FILE: compose
# bind-mounts a secret file with its owner and mode
readable_by_65532() {
    local owner group mode
    read -r owner group mode < <(stat -L -c '%u %g %a' "$1") || return 1
    mode=$((8#$mode))
    (((owner == 65532 && mode & 8#400) || (group == 65532 && mode & 8#040) || mode & 8#004))
}

# compose.yaml alone is the city's stack: its console signs in only through the
# identity provider (without one it refuses to start), and its gateway takes
# the city's API keys and its own signing key (without them it refuses to start)
if [[ $compose_loopback != 1 ]]; then
    for var in DISPATCH311_CONSOLE_OIDC_ISSUER DISPATCH311_CONSOLE_OIDC_CLIENT_ID DISPATCH311_CONSOLE_PUBLIC_URL; do
        [[ -n ${!var:-} ]] ||
            die "$var is not set: compose.yaml alone signs people in to the console through the city's identity provider (DISPATCH311_CONSOLE_OIDC_ISSUER, _CLIENT_ID, DISPATCH311_CONSOLE_PUBLIC_URL; deploy/compose/README.md); the loopback stack (the default) has the development sign-in"
    done
    for var in DISPATCH311_OPEN311_API_KEYS_FILE DISPATCH311_OPEN311_SIGNING_KEY_FILE; do
        [[ -n ${!var:-} ]] ||
            die "$var is not set: compose.yaml alone gives the Open311 gateway the city's API key file and its own signing key (DISPATCH311_OPEN311_API_KEYS_FILE, DISPATCH311_OPEN311_SIGNING_KEY_FILE; deploy/compose/README.md); the loopback stack (the default) makes development ones"
        [[ -f ${!var} && -s ${!var} ]] || die "$var=${!var} is not a file with something in it"
        readable_by_65532 "${!var}" ||
            die "$var=${!var}: the gateway runs as uid 65532 and could not read it (compose mounts it as it is): chown 65532:65532 it, mode 0400"
    done
fi

"$deploy_dir/ensure-docker.sh" --compose

missing=()
for name in "${processes[@]}" postgres redis prometheus; do
    docker image inspect "${DISPATCH311_IMAGE_PREFIX:-}dispatch311-$name:${DISPATCH311_IMAGE_TAG:-latest}" >/dev/null 2>&1 || missing+=("$name")
done
if ((${#missing[@]})); then
    say "images missing (${missing[*]}): building them (make images)"
    "$deploy_dir/build-images.sh"
fi

# Development secrets, made once. Owners: the services and the console run as
# 65532, PostgreSQL as 999, Redis as 998, and compose bind-mounts each file as it is.
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
    if [[ ! -s $secrets_dir/console-session-key ]]; then
        (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' >"$secrets_dir/console-session-key")
        say "made the console's session key"
    fi
    # the loopback console's development sign-in key: a copy of
    # auth-signing-key.pem its user may read, so the cli keeps reading the original
    if [[ $compose_loopback == 1 ]]; then
        [[ -s $secrets_dir/auth-signing-key.pem ]] ||
            die "no ${secrets_dir#"$repo_root"/}/auth-signing-key.pem for the console's development sign-in: remove auth-jwks.json beside it to make a new key set"
        as_root install -o 65532 -g 65532 -m 400 "$secrets_dir/auth-signing-key.pem" "$secrets_dir/console-signing-key.pem"
        # the loopback gateway signs its integrators' tokens with the same key
        # (dev1 in the development JWKS), and takes one development API key:
        # open311-api-key (for curl and the smoke test), its hash in open311-api-keys
        as_root install -o 65532 -g 65532 -m 400 "$secrets_dir/auth-signing-key.pem" "$secrets_dir/open311-signing-key.pem"
        if [[ ! -s $secrets_dir/open311-api-key || ! -s $secrets_dir/open311-api-keys ]]; then
            local key
            key="dev-$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')"
            (umask 077 && printf '%s\n' "$key" >"$secrets_dir/open311-api-key" &&
                printf '# <sha256 of the key> <integrator id> [survey-consent]\n%s dev-311-app survey-consent\n' \
                    "$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)" >"$secrets_dir/open311-api-keys.tmp")
            as_root install -o 65532 -g 65532 -m 400 "$secrets_dir/open311-api-keys.tmp" "$secrets_dir/open311-api-keys"
            rm -f "$secrets_dir/open311-api-keys.tmp"
            say "made a development API key for the Open311 gateway (integrator dev-311-app)"
        fi
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
        for var in PG REDIS INTAKE ROUTING DISPATCH SURVEY CONSOLE OPEN311 INTAKE_METRICS ROUTING_METRICS DISPATCH_METRICS SURVEY_METRICS CONSOLE_METRICS OPEN311_METRICS PROMETHEUS; do
            port_var="DISPATCH311_COMPOSE_${var}_PORT"
            if port_open 127.0.0.1 "${!port_var}"; then
                die "127.0.0.1:${!port_var} is in use by another program: stop it or set $port_var"
            fi
        done
    fi
    for svc in "${processes[@]}"; do
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
for svc in "${processes[@]}" prometheus; do
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
if [[ $compose_loopback == 1 ]]; then
    printf '  %-10s http://127.0.0.1:%s  (development sign-in as any role)\n' console "$(compose_port console)"
    printf '  %-10s http://127.0.0.1:%s/services.json  (api_key in %s)\n' \
        open311 "$(compose_port open311)" "${secrets_dir#"$repo_root"/}/open311-api-key"
else
    printf '  %-10s http://127.0.0.1:%s  (plain HTTP: browsers reach it through your TLS proxy, %s)\n' \
        console "$(compose_port console)" "$DISPATCH311_CONSOLE_PUBLIC_URL"
    printf '  %-10s http://127.0.0.1:%s  (plain HTTP: 311 apps reach it through your TLS proxy, %s)\n' \
        open311 "$(compose_port open311)" "${DISPATCH311_OPEN311_PUBLIC_URL:-DISPATCH311_OPEN311_PUBLIC_URL unset}"
fi
printf '  %-10s http://127.0.0.1:%s\n' prometheus "$(compose_port prometheus)"
echo
echo "the tour against it:  make compose-smoke"
echo "a token:              $(compose_cli) token --role integrator  (with DISPATCH311_AUTH_SIGNING_KEY=${secrets_dir#"$repo_root"/}/auth-signing-key.pem)"
echo "containers and logs:  docker ps --filter label=com.docker.compose.project=$compose_project; docker logs \$(docker ps -q --filter label=com.docker.compose.service=intake)"
echo "stop:                 make compose-down   (data volumes kept; DISPATCH311_COMPOSE_WIPE=1 removes them)"
