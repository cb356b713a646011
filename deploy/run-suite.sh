#!/usr/bin/env bash
# Builds the four services, the console and the Open311 gateway and starts them in the background, each with its log
# in .local/logs/<service>.log and its pid in .local/run/<service>.pid. Stops a
# suite already running first, so running it again restarts everything.
# Expects Redis and PostgreSQL up (deploy/ensure-deps.sh).
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

start_timeout="${DISPATCH311_START_TIMEOUT:-60}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dispatch311-target}"
# debug for development; the benchmark runs a release build
profile="${DISPATCH311_PROFILE:-debug}"
case $profile in
debug) build_flags=() ;;
release) build_flags=(--release) ;;
*) die "DISPATCH311_PROFILE must be debug or release, not $profile" ;;
esac
bin_dir="$CARGO_TARGET_DIR/$profile"

cd "$repo_root"
# a Prometheus of `make observe` keeps running and scrapes the new suite
"$deploy_dir/stop-suite.sh" --services-only

say "building the services (cargo build --bins ${build_flags[*]}, target dir $CARGO_TARGET_DIR)"
cargo build --bins "${build_flags[@]}"

# settings are exported after the build: cargo never sees DATABASE_URL
suite_env
mkdir -p "$run_dir" "$log_dir"
# the development token and event-log keys, made once (keys set in the environment win)
if [[ $DISPATCH311_AUTH_JWKS == "$dev_keys_dir/auth-jwks.json" || $DISPATCH311_EVENT_LOG_KEY == "$dev_keys_dir/event-log-key.pem" ]]; then
    "$bin_dir/dispatch311-cli" dev-keys --dir "$dev_keys_dir" >/dev/null
fi
# DISPATCH311_MUTUAL_TLS=1: development certificates, made once
if [[ ${DISPATCH311_MUTUAL_TLS:-} == 1 ]]; then
    if [[ $DISPATCH311_TLS_CA == "$dev_certs_dir/ca.pem" ]]; then
        "$bin_dir/dispatch311-cli" dev-certs --dir "$dev_certs_dir" >/dev/null
    fi
    touch "$run_dir/mutual-tls"
fi

for svc in "${processes[@]}"; do
    [[ -x $bin_dir/dispatch311-$svc ]] || die "the build made no binary dispatch311-$svc"
    if service_answers "$svc"; then
        die "$(service_addr "$svc") is already in use by another program: stop it or set DISPATCH311_${svc^^}_ADDR"
    fi
done

reserve_listen_ports

start_service() {
    local svc=$1
    # a subshell starts the service so it is not this script's child and outlives it
    (
        export OTEL_SERVICE_NAME="dispatch311-$svc"
        DISPATCH311_METRICS_ADDR=$(metrics_addr "$svc")
        export DISPATCH311_METRICS_ADDR
        if [[ $svc == console ]]; then
            # development: sign in as any role with the development key
            # (marked so on the page), cookies over plain HTTP on loopback
            DISPATCH311_CONSOLE_SESSION_KEY=$(dev_console_session_key)
            export DISPATCH311_CONSOLE_SESSION_KEY DISPATCH311_CONSOLE_DEV_SIGN_IN=true
            export DISPATCH311_CONSOLE_SECURE_COOKIES=false
        fi
        if [[ $svc == open311 ]]; then
            # one development key, for the integrator dev-311-app
            DISPATCH311_OPEN311_API_KEYS=$(dev_open311_keys)
            export DISPATCH311_OPEN311_API_KEYS
            export DISPATCH311_OPEN311_PUBLIC_URL="http://$(connect_addr "$DISPATCH311_OPEN311_ADDR")"
        fi
        nohup "$bin_dir/dispatch311-$svc" </dev/null >"$log_dir/$svc.log" 2>&1 &
        echo $! >"$run_dir/$svc.pid"
    )
}

# prints why SERVICE stopped, stops the rest, and fails
fail_start() {
    local svc=$1 reason=$2
    printf '%s: error: dispatch311-%s %s; last lines of %s:\n' "$log_tag" "$svc" "$reason" ".local/logs/$svc.log" >&2
    tail -n 30 "$log_dir/$svc.log" >&2 || true
    "$deploy_dir/stop-suite.sh" --services-only >&2
    exit 1
}

for svc in "${processes[@]}"; do
    start_service "$svc"
done

deadline=$((SECONDS + start_timeout))
for svc in "${processes[@]}"; do
    pid=$(<"$run_dir/$svc.pid")
    until service_answers "$svc"; do
        pid_alive "$pid" || fail_start "$svc" "exited during start-up"
        ((SECONDS < deadline)) || fail_start "$svc" "did not listen on $(service_addr "$svc") within $start_timeout s"
        sleep 0.2
    done
done

echo
echo "dispatch311 is running:"
for svc in "${processes[@]}"; do
    printf '  %-9s %-17s pid %-7s log .local/logs/%s.log\n' "$svc" "$(service_addr "$svc")" "$(<"$run_dir/$svc.pid")" "$svc"
done
echo "metrics for Prometheus: $(for svc in "${processes[@]}"; do printf 'http://%s/metrics ' "$(connect_addr "$(metrics_addr "$svc")")"; done)"
echo
# a development token per role, valid 12 hours, kept for copy and paste
if [[ -r $DISPATCH311_AUTH_SIGNING_KEY ]]; then
    mkdir -p "$dev_keys_dir/tokens"
    echo "every call needs a bearer token; development tokens (12 h, also in .local/dev-keys/tokens/<role>):"
    for role in "${dev_roles[@]}"; do
        token=$("$bin_dir/dispatch311-cli" token --role "$role")
        (umask 077 && printf '%s\n' "$token" >"$dev_keys_dir/tokens/$role")
        printf '  %-13s %s\n' "$role" "$token"
    done
    if [[ ${DISPATCH311_MUTUAL_TLS:-} == 1 ]]; then
        grpcurl_transport="-cacert $DISPATCH311_TLS_CA -cert $DISPATCH311_TLS_CERT -key $DISPATCH311_TLS_KEY"
        echo "mutual TLS is on: callers present a certificate of $DISPATCH311_TLS_CA"
    else
        grpcurl_transport="-plaintext"
    fi
    echo "  e.g. grpcurl $grpcurl_transport -H \"authorization: Bearer \$(cat .local/dev-keys/tokens/integrator)\" $(connect_addr "$DISPATCH311_ROUTING_ADDR") dispatch311.routing.v1.RoutingService/ListRoutingRules"
    echo "  more: dispatch311-cli token --role ROLE [--subject ID] (README: Access)"
    echo
fi
traces_endpoint=${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-${OTEL_EXPORTER_OTLP_ENDPOINT:-}}
if [[ -n $traces_endpoint ]]; then
    echo "traces:  sent to $traces_endpoint (see deploy/README.md)"
else
    echo "traces:  not exported; to see them in Jaeger: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 make run (deploy/README.md)"
fi
echo "console: http://$(connect_addr "$DISPATCH311_CONSOLE_ADDR")  (the board and the officer's screen; development sign-in as any role)"
echo "open311: http://$(connect_addr "$DISPATCH311_OPEN311_ADDR")/services.json  (GeoReport v2; api_key in .local/dev-keys/open311-api-key)"
echo "try it:  make tour     (the two-minute tour)"
echo "logs:    make logs     (or .local/logs/<service>.log)"
echo "status:  make status"
echo "metrics: make observe  (Prometheus with the alert rules: http://$(connect_addr "$(prometheus_addr)"))"
echo "stop:    make stop"
