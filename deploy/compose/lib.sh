# Shared by the compose scripts and deploy/build-images.sh: sourced after
# deploy/common.sh, never run.
# shellcheck shell=bash disable=SC2034,SC2154 # deploy_dir, repo_root: common.sh

compose_dir="$deploy_dir/compose"
# the stack's generated files: secrets, the loopback Prometheus configuration
compose_state="$repo_root/.local/compose"
compose_project=dispatch311

# 1 (default): the stack on the host's network, listening on loopback only, on
# ports that leave the host's own PostgreSQL, Redis and `make run` suite alone
# (compose.loopback.yaml); 0: compose.yaml alone, as a city runs it
compose_loopback="${DISPATCH311_COMPOSE_LOOPBACK:-1}"

# Where the loopback stack listens. compose.loopback.yaml has the same defaults.
export DISPATCH311_COMPOSE_PG_PORT="${DISPATCH311_COMPOSE_PG_PORT:-55432}"
export DISPATCH311_COMPOSE_REDIS_PORT="${DISPATCH311_COMPOSE_REDIS_PORT:-56379}"
export DISPATCH311_COMPOSE_INTAKE_PORT="${DISPATCH311_COMPOSE_INTAKE_PORT:-51051}"
export DISPATCH311_COMPOSE_ROUTING_PORT="${DISPATCH311_COMPOSE_ROUTING_PORT:-51052}"
export DISPATCH311_COMPOSE_DISPATCH_PORT="${DISPATCH311_COMPOSE_DISPATCH_PORT:-51053}"
export DISPATCH311_COMPOSE_SURVEY_PORT="${DISPATCH311_COMPOSE_SURVEY_PORT:-51054}"
export DISPATCH311_COMPOSE_INTAKE_METRICS_PORT="${DISPATCH311_COMPOSE_INTAKE_METRICS_PORT:-51151}"
export DISPATCH311_COMPOSE_ROUTING_METRICS_PORT="${DISPATCH311_COMPOSE_ROUTING_METRICS_PORT:-51152}"
export DISPATCH311_COMPOSE_DISPATCH_METRICS_PORT="${DISPATCH311_COMPOSE_DISPATCH_METRICS_PORT:-51153}"
export DISPATCH311_COMPOSE_SURVEY_METRICS_PORT="${DISPATCH311_COMPOSE_SURVEY_METRICS_PORT:-51154}"
# the console: its pages (plain HTTP) and its /metrics
export DISPATCH311_COMPOSE_CONSOLE_PORT="${DISPATCH311_COMPOSE_CONSOLE_PORT:-58311}"
export DISPATCH311_COMPOSE_CONSOLE_METRICS_PORT="${DISPATCH311_COMPOSE_CONSOLE_METRICS_PORT:-51155}"
# the Open311 gateway: its REST API (plain HTTP) and its /metrics
export DISPATCH311_COMPOSE_OPEN311_PORT="${DISPATCH311_COMPOSE_OPEN311_PORT:-58312}"
export DISPATCH311_COMPOSE_OPEN311_METRICS_PORT="${DISPATCH311_COMPOSE_OPEN311_METRICS_PORT:-51156}"
export DISPATCH311_COMPOSE_PROMETHEUS_PORT="${DISPATCH311_COMPOSE_PROMETHEUS_PORT:-59090}"

# the port a client on this machine reaches SERVICE (or the console, the gateway,
# prometheus) at
compose_port() {
    local svc=$1
    if [[ $compose_loopback == 1 ]]; then
        local var="DISPATCH311_COMPOSE_${svc^^}_PORT"
        echo "${!var}"
    else
        # compose.yaml publishes the standard ports
        case $svc in
        intake) echo 50051 ;; routing) echo 50052 ;; dispatch) echo 50053 ;; survey) echo 50054 ;;
        console) echo 8311 ;; open311) echo 8312 ;; prometheus) echo 9090 ;;
        *) return 1 ;;
        esac
    fi
}

# runs compose on the stack: the v2 plugin where the engine has it, else
# Debian's docker-compose (v1); the files are written for both
compose() {
    local files=(-f "$compose_dir/compose.yaml")
    [[ $compose_loopback == 1 ]] && files+=(-f "$compose_dir/compose.loopback.yaml")
    if docker compose version >/dev/null 2>&1; then
        docker compose -p "$compose_project" "${files[@]}" "$@"
    else
        docker-compose -p "$compose_project" "${files[@]}" "$@"
    fi
}

# `compose up -d` with the files in force. On loopback the published ports of
# compose.yaml go: they mean nothing on the host's network, and docker-compose v1
# refuses them there while an override cannot take a key away. So the merged
# configuration (`compose config`, secrets interpolated: kept 0600 in
# .local/compose) without its `ports:` blocks is what starts.
compose_up() {
    if [[ $compose_loopback != 1 ]]; then
        compose up -d "$@"
        return
    fi
    local resolved="$compose_state/compose.resolved.yaml"
    (
        umask 077
        compose config >"$resolved.tmp"
        awk '
            /^    ports:$/ { skip = 1; next }
            skip && (/^    - / || /^      /) { next }
            { skip = 0; print }
        ' "$resolved.tmp" >"$resolved"
        rm -f "$resolved.tmp"
    )
    if docker compose version >/dev/null 2>&1; then
        docker compose -p "$compose_project" -f "$resolved" up -d "$@"
    else
        docker-compose -p "$compose_project" -f "$resolved" up -d "$@"
    fi
}

# the stack's secret files (made by up.sh for development; see compose.yaml)
secrets_dir="$compose_state/secrets"

# the cli the scripts use: the release build `make images` makes, else a debug one
compose_cli() {
    local dir="${CARGO_TARGET_DIR:-$HOME/.cache/dispatch311-target}" profile
    for profile in release debug; do
        if [[ -x $dir/$profile/dispatch311-cli ]]; then
            echo "$dir/$profile/dispatch311-cli"
            return 0
        fi
    done
    die "no dispatch311-cli in $dir/{release,debug}: run 'make images' first"
}

# Exports what the compose files interpolate. The three secrets the services
# and the console take as variables are read from their files; without them (a
# stack never started) placeholders let `down` and `ps` parse the files. The
# gateway's key files: the caller's (compose.yaml alone; up.sh checks them
# first), else the development ones the loopback override mounts anyway.
compose_env() {
    export DISPATCH311_SECRETS_DIR="$secrets_dir"
    export DISPATCH311_COMPOSE_STATE="$compose_state"
    export DISPATCH311_OPEN311_API_KEYS_FILE="${DISPATCH311_OPEN311_API_KEYS_FILE:-$secrets_dir/open311-api-keys}"
    export DISPATCH311_OPEN311_SIGNING_KEY_FILE="${DISPATCH311_OPEN311_SIGNING_KEY_FILE:-$secrets_dir/open311-signing-key.pem}"
    if [[ -r $secrets_dir/contact-keys && -r $secrets_dir/redis-password && -r $secrets_dir/console-session-key ]]; then
        DISPATCH311_CONTACT_KEYS=$(<"$secrets_dir/contact-keys")
        DISPATCH311_REDIS_PASSWORD=$(<"$secrets_dir/redis-password")
        DISPATCH311_CONSOLE_SESSION_KEY=$(<"$secrets_dir/console-session-key")
    else
        DISPATCH311_CONTACT_KEYS=none
        DISPATCH311_REDIS_PASSWORD=none
        DISPATCH311_CONSOLE_SESSION_KEY=none
    fi
    export DISPATCH311_CONTACT_KEYS DISPATCH311_REDIS_PASSWORD DISPATCH311_CONSOLE_SESSION_KEY
}

# true when something answers on 127.0.0.1 at the port of SERVICE (or prometheus)
compose_answers() { port_open 127.0.0.1 "$(compose_port "$1")"; }

# the ids of the stack's containers, running or not
compose_containers() {
    docker ps -a -q --filter "label=com.docker.compose.project=$compose_project"
}
