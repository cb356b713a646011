#!/usr/bin/env bash
# Makes sure `prometheus` and `promtool` are on PATH: leaves installed ones
# alone, installs Debian's `prometheus` package (which has both) if either is
# missing. Starts nothing: `make observe` (deploy/observe.sh) runs its own
# Prometheus, so the package's own service (all interfaces, port 9090) is kept
# from starting and, under systemd, disabled.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

installed() { command -v prometheus >/dev/null && command -v promtool >/dev/null; }

report() { say "ok: $(promtool --version 2>&1 | head -n 1)"; }

if installed; then
    report
    exit 0
fi

# The package's postinst starts its own Prometheus where it can (all
# interfaces, port 9090, scraping itself): a policy-rc.d answering 101 ("do not
# start") keeps it stopped during the install, so port 9090 stays free for
# `make observe`. An existing policy (a container image's) is left as it is.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# dispatch311 deploy/ensure-prometheus.sh: no service starts while it installs\nexit 101\n' |
        as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    trap 'as_root rm -f "$policy"' EXIT
fi

# a postinst that still fails (no init system at all) leaves the binaries
# installed and usable: only their presence counts
apt_install prometheus || say "warning: apt-get reported an error installing prometheus; checking the binaries anyway"

installed || die "prometheus or promtool still not on PATH after installing Debian's prometheus package"
# under systemd the package also enabled its service for the next boot
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    say "disabling the package's own prometheus service (make observe runs its own)"
    as_root systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
report
