# Shared by the scripts in deploy/: sourced, never run. Defines helpers and the
# suite's layout and settings; it runs nothing by itself.
# shellcheck shell=bash disable=SC2034

deploy_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$deploy_dir/.." && pwd)
run_dir="$repo_root/.local/run"
log_dir="$repo_root/.local/logs"

# the four services, in start order
services=(intake routing dispatch survey)
# what `make run` starts: the services, then in front of them the console
# (the browser's way in) and the Open311 gateway (311 apps' REST way in)
processes=("${services[@]}" console open311)

# every script names itself in its messages so a long `make` output stays readable
log_tag=$(basename "${0%.sh}")
say() { printf '%s: %s\n' "$log_tag" "$*"; }
die() {
    printf '%s: error: %s\n' "$log_tag" "$*" >&2
    exit 1
}

# runs a command as root: directly when we are root, else through sudo
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root and sudo is not installed"
    fi
}

# installs Debian packages without questions (CI has no stdin)
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found: install $* with your package manager and run again"
    say "installing $* (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# runs psql against the local server as user postgres, unaligned output without
# headers; -w: never prompt for a password (CI has no stdin)
pg_sql() { PGCONNECT_TIMEOUT=5 psql -X -w -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres "$@"; }

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds; fails after SECONDS
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# true when something accepts TCP connections on HOST PORT
port_open() {
    # shellcheck disable=SC2016 # $1 and $2 expand in the inner shell
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# true when PID is a live process; a zombie (exited, not yet reaped) counts as dead
pid_alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    [[ -r /proc/$pid/stat ]] || return 0
    read -r _ _ state _ <"/proc/$pid/stat" || return 1
    [[ $state != Z ]]
}

# true when PID is gone (for wait_until)
pid_gone() { ! pid_alive "$1"; }

# the pid recorded for SERVICE if that process is still this service, else nothing;
# checking the command line guards against a pid reused after a reboot
service_pid() {
    local pid_file="$run_dir/$1.pid" pid
    [[ -f $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        # grep without -q reads all its input: no SIGPIPE for tr under pipefail
        tr '\0' '\n' <"/proc/$pid/cmdline" | grep "dispatch311-$1\$" >/dev/null || return 1
    fi
    echo "$pid"
}

# the Prometheus `make observe` runs (deploy/observe.sh): its configuration,
# rules and time series under .local/prometheus, pid and log beside the services'
prometheus_dir="$repo_root/.local/prometheus"

# where that Prometheus listens
prometheus_addr() { echo "${DISPATCH311_PROMETHEUS_ADDR:-127.0.0.1:9090}"; }

# the pid of that Prometheus if it still runs; the command line must name its
# configuration, so a reused pid or another Prometheus is never taken for it
prometheus_pid() {
    local pid_file="$run_dir/prometheus.pid" pid
    [[ -f $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' '\n' <"/proc/$pid/cmdline" | grep -Fx -- "--config.file=$prometheus_dir/prometheus.yml" >/dev/null || return 1
    fi
    echo "$pid"
}

# stops that Prometheus if it runs: SIGTERM (it flushes its data), up to 10 s, then SIGKILL
stop_prometheus() {
    local pid
    if pid=$(prometheus_pid); then
        say "stopping prometheus (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_until 10 pid_gone "$pid"; then
            say "prometheus still running after 10 s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$run_dir/prometheus.pid"
}

# intake's contact key for development (`id:base64`): made once and kept in
# .local/dev-keys (ignored by git), so contacts sealed by one `make run` still
# open in the next; prints it
dev_contact_keys() {
    local dir="$repo_root/.local/dev-keys"
    local file="$dir/contact-keys"
    if [[ ! -s $file ]]; then
        (
            umask 077
            mkdir -p "$dir"
            printf 'dev1:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$file.tmp"
            mv "$file.tmp" "$file"
        ) || return 1
        printf '%s: made a development contact key in %s\n' "$log_tag" "${file#"$repo_root"/}" >&2
    fi
    cat "$file"
}

# where `make run` keeps the development token-signing key, its JWKS and a
# token per role (made by `dispatch311-cli dev-keys`, ignored by git)
dev_keys_dir="$repo_root/.local/dev-keys"
# development certificates for mutual TLS (DISPATCH311_MUTUAL_TLS=1 make run)
dev_certs_dir="$repo_root/.local/dev-certs"
dev_roles=(integrator public dispatcher officer supervisor survey_system auditor admin)

# Exports the suite's settings. Listen addresses can be overridden from the
# environment; the database and Redis are the local servers the ensure-*
# scripts provide, so an unrelated DATABASE_URL in the caller's shell does not leak in.
suite_env() {
    export DISPATCH311_DB_NAME="${DISPATCH311_DB_NAME:-dispatch311}"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DISPATCH311_DB_NAME"
    export REDIS_URL="redis://127.0.0.1:6379"
    export RUST_LOG="${RUST_LOG:-info}"
    # a key set in the environment wins (e.g. one shared by a team's database)
    if [[ -z ${DISPATCH311_CONTACT_KEYS:-} ]]; then
        DISPATCH311_CONTACT_KEYS=$(dev_contact_keys) || die "cannot make a development contact key in .local/dev-keys"
    fi
    export DISPATCH311_CONTACT_KEYS
    # the services verify tokens with the public key; the cli signs with the private one
    export DISPATCH311_AUTH_JWKS="${DISPATCH311_AUTH_JWKS:-$dev_keys_dir/auth-jwks.json}"
    export DISPATCH311_AUTH_SIGNING_KEY="${DISPATCH311_AUTH_SIGNING_KEY:-$dev_keys_dir/auth-signing-key.pem}"
    # dispatch signs checkpoints of its event log with this key (auditors get
    # event-log.vkey beside it); in production it comes from the city's secrets
    export DISPATCH311_EVENT_LOG_KEY="${DISPATCH311_EVENT_LOG_KEY:-$dev_keys_dir/event-log-key.pem}"
    # complainants' photos (metadata stripped): intake writes, dispatch reads
    export DISPATCH311_PHOTO_DIR="${DISPATCH311_PHOTO_DIR:-$repo_root/.local/photos}"
    export DISPATCH311_INTAKE_ADDR="${DISPATCH311_INTAKE_ADDR:-127.0.0.1:50051}"
    export DISPATCH311_ROUTING_ADDR="${DISPATCH311_ROUTING_ADDR:-127.0.0.1:50052}"
    export DISPATCH311_DISPATCH_ADDR="${DISPATCH311_DISPATCH_ADDR:-127.0.0.1:50053}"
    export DISPATCH311_SURVEY_ADDR="${DISPATCH311_SURVEY_ADDR:-127.0.0.1:50054}"
    # the console, on loopback: a developer's browser reaches it over plain HTTP
    export DISPATCH311_CONSOLE_ADDR="${DISPATCH311_CONSOLE_ADDR:-127.0.0.1:8311}"
    export DISPATCH311_OPEN311_ADDR="${DISPATCH311_OPEN311_ADDR:-127.0.0.1:8312}"
    # each service's /metrics for Prometheus, on loopback (no auth on it)
    export DISPATCH311_INTAKE_METRICS_ADDR="${DISPATCH311_INTAKE_METRICS_ADDR:-127.0.0.1:9151}"
    export DISPATCH311_ROUTING_METRICS_ADDR="${DISPATCH311_ROUTING_METRICS_ADDR:-127.0.0.1:9152}"
    export DISPATCH311_DISPATCH_METRICS_ADDR="${DISPATCH311_DISPATCH_METRICS_ADDR:-127.0.0.1:9153}"
    export DISPATCH311_SURVEY_METRICS_ADDR="${DISPATCH311_SURVEY_METRICS_ADDR:-127.0.0.1:9154}"
    export DISPATCH311_CONSOLE_METRICS_ADDR="${DISPATCH311_CONSOLE_METRICS_ADDR:-127.0.0.1:9155}"
    export DISPATCH311_OPEN311_METRICS_ADDR="${DISPATCH311_OPEN311_METRICS_ADDR:-127.0.0.1:9156}"
    # optional mutual TLS on every service and between them, with development
    # certificates; a suite started so is remembered (make tour, make status)
    local scheme=http
    if [[ ${DISPATCH311_MUTUAL_TLS:-} == 1 || (-z ${DISPATCH311_MUTUAL_TLS:-} && -e $run_dir/mutual-tls) ]]; then
        export DISPATCH311_MUTUAL_TLS=1
        export DISPATCH311_TLS_CERT="${DISPATCH311_TLS_CERT:-$dev_certs_dir/service.pem}"
        export DISPATCH311_TLS_KEY="${DISPATCH311_TLS_KEY:-$dev_certs_dir/service-key.pem}"
        export DISPATCH311_TLS_CA="${DISPATCH311_TLS_CA:-$dev_certs_dir/ca.pem}"
        scheme=https
    fi
    local svc addr_var url_var
    for svc in "${services[@]}"; do
        addr_var="DISPATCH311_${svc^^}_ADDR"
        url_var="DISPATCH311_${svc^^}_URL"
        export "$url_var=${!url_var:-$scheme://$(connect_addr "${!addr_var}")}"
    done
}

# the console's session key for development (32 bytes, base64): made once
# and kept in .local/dev-keys, so a restarted console keeps everyone signed in
dev_console_session_key() {
    local file="$repo_root/.local/dev-keys/console-session-key"
    if [[ ! -s $file ]]; then
        (
            umask 077
            mkdir -p "$(dirname "$file")"
            head -c 32 /dev/urandom | base64 | tr -d '\n' >"$file.tmp"
            mv "$file.tmp" "$file"
        ) || return 1
    fi
    cat "$file"
}

# the Open311 gateway's development API key: made once, kept in .local/dev-keys
# (open311-api-key, for curl) with the gateway's key file beside it (its hash
# only, as production keeps them); prints the key file's path
dev_open311_keys() {
    local dir="$repo_root/.local/dev-keys"
    if [[ ! -s $dir/open311-api-key || ! -s $dir/open311-api-keys ]]; then
        (
            umask 077
            mkdir -p "$dir"
            local key
            key="dev-$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=' | head -c 32)"
            printf '%s\n' "$key" >"$dir/open311-api-key"
            printf '# <sha256 of the key> <integrator> [survey-consent]\n%s dev-311-app survey-consent\n' \
                "$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)" >"$dir/open311-api-keys"
        ) || return 1
    fi
    echo "$dir/open311-api-keys"
}

# the listen address of SERVICE (after suite_env)
service_addr() {
    local var="DISPATCH311_${1^^}_ADDR"
    echo "${!var}"
}

# where SERVICE serves /metrics
metrics_addr() {
    local var="DISPATCH311_${1^^}_METRICS_ADDR"
    echo "${!var}"
}

# a listen address turned into one a client can connect to (0.0.0.0 → 127.0.0.1)
connect_addr() {
    local host=${1%:*} port=${1##*:}
    case $host in
    0.0.0.0 | "" | "[::]") host=127.0.0.1 ;;
    esac
    echo "$host:$port"
}

# Keeps the kernel from handing the services' listen ports out as the local
# port of outgoing connections (they lie in Linux's ephemeral range, 32768-60999):
# a service's Redis or PostgreSQL connection made a moment earlier could
# otherwise hold the port another service is about to listen on.
reserve_listen_ports() {
    local file=/proc/sys/net/ipv4/ip_local_reserved_ports svc ports=() current
    for svc in "${processes[@]}"; do
        ports+=("$(service_addr "$svc" | sed 's/.*://')" "$(metrics_addr "$svc" | sed 's/.*://')")
    done
    current=$(cat "$file" 2>/dev/null) || return 0
    local wanted
    wanted=$(printf '%s\n' "${ports[@]}" | paste -sd, -)
    [[ -n $current ]] && wanted="$current,$wanted"
    if ! { echo "$wanted" >"$file"; } 2>/dev/null && ! { echo "$wanted" | as_root tee "$file" >/dev/null; } 2>/dev/null; then
        say "warning: cannot reserve ports ${ports[*]} (ip_local_reserved_ports); a start may rarely find one taken"
    fi
}

# true when SERVICE's address accepts connections
service_answers() {
    local addr
    addr=$(connect_addr "$(service_addr "$1")")
    local host=${addr%:*}
    host=${host#[}
    port_open "${host%]}" "${addr##*:}"
}

# render_prometheus_config OUT JOB=HOST:PORT...: deploy/prometheus/prometheus.yml
# with each job's targets line set to the address given for it (`make observe`
# and the compose stack); fails when a job has no such line, so a template that
# no longer matches fails here rather than scraping the wrong port
render_prometheus_config() {
    local out=$1
    shift
    {
        echo "# Made from deploy/prometheus/prometheus.yml with these targets;"
        echo "# edit that file, not this one."
        awk -v targets="$*" '
            BEGIN {
                n = split(targets, pairs, " ")
                for (i = 1; i <= n; i++) {
                    split(pairs[i], kv, "=")
                    addr[kv[1]] = kv[2]
                }
            }
            /^[[:space:]]*- job_name:/ { job = $NF; gsub(/["\047]/, "", job) }
            /^[[:space:]]*- targets:/ && (job in addr) {
                sub(/\[.*\]/, "[\"" addr[job] "\"]")
                done[job] = 1
            }
            { print }
            END {
                for (j in addr) if (!(j in done)) {
                    print "no targets line for job " j " in the template" > "/dev/stderr"
                    exit 1
                }
            }
        ' "$deploy_dir/prometheus/prometheus.yml"
    } >"$out.tmp" || die "cannot make $out from deploy/prometheus/prometheus.yml"
    mv "$out.tmp" "$out"
}
