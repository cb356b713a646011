#!/usr/bin/env bash
# The smoke test of the compose stack (`make compose-smoke`): waits until the
# services answer, runs the two-minute tour against them (`dispatch311-cli tour`:
# a complaint filed at intake, followed through routing to its precinct's
# dispatch queue, and a referral), checks that the console answers `ok` on
# /healthz, that the Open311 gateway does too and lists routing's services
# (GET /services.json, with a token it signs itself; on loopback also an
# integrator's requests with the development API key), then that Prometheus
# scrapes all four services, the console and the gateway. Fails if any step does.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=deploy/compose/lib.sh
source "$deploy_dir/compose/lib.sh"

wait_secs="${DISPATCH311_START_TIMEOUT:-60}"
cli=$(compose_cli)
[[ -r $secrets_dir/auth-signing-key.pem ]] || die "no signing key in ${secrets_dir#"$repo_root"/}: start the stack with 'make compose-up'"

for svc in "${processes[@]}" prometheus; do
    wait_until "$wait_secs" compose_answers "$svc" ||
        die "$svc does not answer on 127.0.0.1:$(compose_port "$svc"): is the stack up (make compose-up)?"
done

# the cli signs its own development tokens with the stack's key; nothing from
# the caller's shell (a token, TLS files, the `make run` suite's addresses) leaks in
unset DISPATCH311_TOKEN DISPATCH311_TLS_CERT DISPATCH311_TLS_KEY DISPATCH311_TLS_CA
export DISPATCH311_AUTH_SIGNING_KEY="$secrets_dir/auth-signing-key.pem"
DISPATCH311_INTAKE_URL="http://127.0.0.1:$(compose_port intake)"
DISPATCH311_ROUTING_URL="http://127.0.0.1:$(compose_port routing)"
DISPATCH311_DISPATCH_URL="http://127.0.0.1:$(compose_port dispatch)"
export DISPATCH311_INTAKE_URL DISPATCH311_ROUTING_URL DISPATCH311_DISPATCH_URL
say "the tour against $DISPATCH311_INTAKE_URL (routing $DISPATCH311_ROUTING_URL, dispatch $DISPATCH311_DISPATCH_URL)"
"$cli" tour || die "the tour failed against the compose stack"

# the console: its health route over plain HTTP (the image has no probe of its own)
console="http://127.0.0.1:$(compose_port console)"
health=$(curl -fsS --max-time 5 "$console/healthz") || die "the console ($console) does not answer GET /healthz"
[[ $health == ok ]] || die "the console's /healthz answered '$health', not 'ok'"
say "the console answers: $console/healthz"

# the Open311 gateway: its health route, then the service list it reads from
# routing (a JSON array of services), which proves its signing key is one the
# services trust; on loopback, an integrator's requests with the development key
open311="http://127.0.0.1:$(compose_port open311)"
health=$(curl -fsS --max-time 5 "$open311/healthz") || die "the gateway ($open311) does not answer GET /healthz"
[[ $health == ok ]] || die "the gateway's /healthz answered '$health', not 'ok'"
body=$(curl -fsS --max-time 10 "$open311/services.json") ||
    die "the gateway ($open311) does not answer GET /services.json (its log: docker logs of service open311)"
[[ $body == \[*\] && $body == *'"service_code"'* ]] ||
    die "the gateway's /services.json is not a JSON array of services: ${body:0:200}"
say "the gateway answers: $open311/services.json ($(grep -o '"service_code"' <<<"$body" | wc -l) services)"
if [[ $compose_loopback == 1 ]]; then
    [[ -r $secrets_dir/open311-api-key ]] || die "no ${secrets_dir#"$repo_root"/}/open311-api-key: start the stack with 'make compose-up'"
    body=$(curl -fsS --max-time 10 --get --data-urlencode "api_key=$(<"$secrets_dir/open311-api-key")" "$open311/requests.json") ||
        die "the gateway ($open311) refused GET /requests.json with the development API key"
    [[ $body == \[*\] ]] || die "the gateway's /requests.json is not a JSON array: ${body:0:200}"
    say "the gateway takes the development API key: $open311/requests.json"
fi

# Prometheus scrapes every 10 s: give it a few rounds to see the services, the
# console and the gateway up (a job each)
prometheus="http://127.0.0.1:$(compose_port prometheus)"
wanted_up=${#processes[@]}
all_up() {
    local body
    body=$(curl -fsS --max-time 5 "$prometheus/api/v1/query?query=sum(up)" 2>/dev/null) || return 1
    [[ $body =~ \"value\":\[[0-9.]+,\"$wanted_up\"\] ]]
}
if ! wait_until 60 all_up; then
    curl -fsS --max-time 5 "$prometheus/api/v1/targets" >&2 || true
    die "Prometheus ($prometheus) does not see the four services, the console and the gateway up"
fi
say "Prometheus scrapes the four services, the console and the gateway: $prometheus/api/v1/targets"
say "smoke test passed"
