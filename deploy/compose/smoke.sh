#!/usr/bin/env bash
# The smoke test of the compose stack (`make compose-smoke`): waits until the
# services answer, runs the two-minute tour against them (`dispatch311-cli tour`:
# a complaint filed at intake, followed through routing to its precinct's
# dispatch queue, and a referral), then checks that Prometheus scrapes all four
# services. Fails if any step does.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
# shellcheck source=deploy/compose/lib.sh
source "$deploy_dir/compose/lib.sh"

wait_secs="${DISPATCH311_START_TIMEOUT:-60}"
cli=$(compose_cli)
[[ -r $secrets_dir/auth-signing-key.pem ]] || die "no signing key in ${secrets_dir#"$repo_root"/}: start the stack with 'make compose-up'"

for svc in "${services[@]}" prometheus; do
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

# Prometheus scrapes every 10 s: give it a few rounds to see all four up
prometheus="http://127.0.0.1:$(compose_port prometheus)"
all_up() {
    local body
    body=$(curl -fsS --max-time 5 "$prometheus/api/v1/query?query=sum(up)" 2>/dev/null) || return 1
    [[ $body =~ \"value\":\[[0-9.]+,\"4\"\] ]]
}
if ! wait_until 60 all_up; then
    curl -fsS --max-time 5 "$prometheus/api/v1/targets" >&2 || true
    die "Prometheus ($prometheus) does not see the four services up"
fi
say "Prometheus scrapes the four services: $prometheus/api/v1/targets"
say "smoke test passed"
