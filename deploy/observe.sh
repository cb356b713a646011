#!/usr/bin/env bash
# Starts Prometheus in the background, scraping the running suite's /metrics
# and evaluating the rules of deploy/prometheus/rules.yml, on
# http://127.0.0.1:9090 (DISPATCH311_PROMETHEUS_ADDR). Restarts a Prometheus it
# started before; `make stop` stops it with the suite (`--stop`: only it).
#
# It runs deploy/prometheus/prometheus.yml with each job's target set to where
# that service serves /metrics (DISPATCH311_<SERVICE>_METRICS_ADDR, as
# `make run` uses them), written with the rules to .local/prometheus/; the time
# series go to .local/prometheus/data, the log to .local/logs/prometheus.log,
# the pid to .local/run/prometheus.pid.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

start_timeout=30
template_dir="$deploy_dir/prometheus"
config="$prometheus_dir/prometheus.yml"
data_dir="$prometheus_dir/data"
log_file="$log_dir/prometheus.log"
pid_file="$run_dir/prometheus.pid"

case ${1:-} in
"") ;;
--stop)
    if prometheus_pid >/dev/null; then stop_prometheus; else say "no prometheus running"; fi
    exit 0
    ;;
*) die "usage: $0 [--stop]" ;;
esac

suite_env
addr=$(prometheus_addr)
[[ $addr =~ ^.+:[0-9]+$ ]] || die "DISPATCH311_PROMETHEUS_ADDR must be HOST:PORT, got '$addr'"
url="http://$(connect_addr "$addr")"
# where to connect to it ([::1]:9090 → ::1 9090 for bash's /dev/tcp)
conn_host=$(connect_addr "$addr")
conn_port=${conn_host##*:}
conn_host=${conn_host%:*}
conn_host=${conn_host#[}
conn_host=${conn_host%]}

"$deploy_dir/ensure-prometheus.sh"

stop_prometheus
mkdir -p "$prometheus_dir" "$data_dir" "$run_dir" "$log_dir"

# The effective configuration: the template with each job's targets line set
# to its service's metrics address.
targets=()
for svc in "${processes[@]}"; do
    targets+=("$svc=$(connect_addr "$(metrics_addr "$svc")")")
done
render_prometheus_config "$config" "${targets[@]}"
cp "$template_dir/rules.yml" "$prometheus_dir/rules.yml"
if ! check=$(promtool check config "$config" 2>&1); then
    printf '%s\n' "$check" >&2
    die "the configuration made from deploy/prometheus/ is invalid (promtool output above)"
fi

if port_open "$conn_host" "$conn_port"; then
    die "$addr is already in use by another program: stop it or set DISPATCH311_PROMETHEUS_ADDR"
fi

say "starting prometheus on $addr (log .local/logs/prometheus.log)"
# a subshell starts it so it is not this script's child and outlives it
(
    nohup prometheus \
        --config.file="$config" \
        --storage.tsdb.path="$data_dir" \
        --storage.tsdb.retention.time=15d \
        --storage.tsdb.retention.size=2GB \
        --web.listen-address="$addr" \
        </dev/null >"$log_file" 2>&1 &
    echo $! >"$pid_file"
)
pid=$(<"$pid_file")

# true when Prometheus answers GET PATH with 200 (plain bash: no curl needed)
http_ok() {
    # shellcheck disable=SC2016 # $1, $2 and $3 expand in the inner shell
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" &&
        printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3 &&
        head -n 1 <&3 | grep -q " 200 "' _ "$conn_host" "$conn_port" "$1" 2>/dev/null
}
ready() { http_ok /-/ready; }
deadline=$((SECONDS + start_timeout))
until ready; do
    if ! pid_alive "$pid"; then
        tail -n 20 "$log_file" >&2 || true
        rm -f "$pid_file"
        die "prometheus exited during start-up (log above, full log .local/logs/prometheus.log)"
    fi
    if ((SECONDS >= deadline)); then
        tail -n 20 "$log_file" >&2 || true
        stop_prometheus
        die "prometheus did not answer $url/-/ready within $start_timeout s (log above)"
    fi
    sleep 0.5
done

# Debian's build serves only the classic web UI, under /classic/
ui=$url
if ! http_ok /targets && http_ok /classic/targets; then ui=$url/classic; fi

echo
echo "prometheus is running: $url (pid $pid, log .local/logs/prometheus.log)"
scraped=()
for svc in "${processes[@]}"; do scraped+=("$svc $(connect_addr "$(metrics_addr "$svc")")"); done
echo "  scraping  $(printf '%s, ' "${scraped[@]}" | sed 's/, $//')"
echo "  targets   $ui/targets  (all six should be UP; a service not running shows DOWN)"
echo "  alerts    $ui/alerts  (rules: deploy/prometheus/rules.yml; what each means: deploy/README.md)"
echo "  rules     $ui/rules  (recorded series such as borough_priority_step:dispatch311_job_step_duration_seconds:p99_rate1h)"
echo "  query     curl -s '$url/api/v1/query?query=up'"
if ! "$deploy_dir/status.sh" --quiet; then
    echo "  the suite is not running: its targets stay DOWN until 'make run'"
fi
echo "  stop      make stop (stops the suite too), or deploy/observe.sh --stop"
