#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 and lets user postgres in
# without a password (trust, loopback only), then creates the suite's database.
# Leaves a working server alone, starts a stopped Debian cluster, installs
# PostgreSQL from Debian's packages if it is missing.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

host=127.0.0.1
port=5432
db_name="${DISPATCH311_DB_NAME:-dispatch311}"
# a marker so the trust rules are added once, however often this runs
hba_marker="# dispatch311: trust user postgres on loopback"

[[ $db_name =~ ^[a-z_][a-z0-9_]*$ ]] || die "DISPATCH311_DB_NAME must be a lowercase identifier, got '$db_name'"

accepting() { pg_isready -q -h "$host" -p "$port"; }
query_works() { pg_sql -d postgres -c 'select 1' >/dev/null 2>&1; }

# the Debian cluster this script manages: the first version under /etc/postgresql with a "main" cluster
cluster_version() {
    local dir
    for dir in /etc/postgresql/*/main; do
        [[ -d $dir ]] || continue
        basename "$(dirname "$dir")"
        return 0
    done
    return 1
}

server_installed() {
    command -v pg_ctlcluster >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# listen on loopback port 5432 (takes effect at the next start)
configure_listen() {
    local conf="/etc/postgresql/$1/main/conf.d/90-dispatch311.conf"
    [[ -f $conf ]] && return 0
    say "configuring cluster $1/main to listen on $host:$port"
    printf "# dispatch311 development server: loopback only\nlisten_addresses = '%s'\nport = %s\n" "$host" "$port" |
        as_root tee "$conf" >/dev/null
}

# trust user postgres on loopback, ahead of Debian's password rules (first match wins)
configure_trust() {
    local hba="/etc/postgresql/$1/main/pg_hba.conf" tmp
    as_root grep -qF "$hba_marker" "$hba" && return 0
    say "allowing user postgres without a password on loopback ($hba)"
    tmp=$(mktemp)
    {
        echo "$hba_marker"
        echo "local   all   postgres                 trust"
        echo "host    all   postgres   127.0.0.1/32  trust"
        echo "host    all   postgres   ::1/128       trust"
        echo
        as_root cat "$hba"
    } >"$tmp"
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
}

cluster() { as_root pg_ctlcluster --skip-systemctl-redirect "$1" main "$2"; }

# psql and pg_isready come with the client package, which scripts need even
# when the server runs elsewhere
if ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
    apt_install postgresql-client
fi

if accepting && query_works; then
    say "ok: postgresql answers on $host:$port"
else
    fresh=false
    if ! server_installed; then
        apt_install postgresql postgresql-client
        fresh=true
    fi
    if ! version=$(cluster_version); then
        version=$(basename "$(compgen -G '/usr/lib/postgresql/*' | sort -V | tail -n 1)")
        say "creating cluster $version/main"
        as_root pg_createcluster --port "$port" "$version" main
        fresh=true
    fi
    if $fresh; then
        configure_listen "$version"
        configure_trust "$version"
        # the package may have started the cluster before it was configured
        if accepting; then cluster "$version" restart; fi
    fi

    if ! accepting; then
        say "starting postgresql cluster $version/main"
        cluster "$version" start || true
        if ! wait_until 30 accepting; then
            as_root tail -n 20 "/var/log/postgresql/postgresql-$version-main.log" >&2 || true
            die "postgresql did not accept connections on $host:$port within 30 s (log above)"
        fi
    fi

    if ! query_works; then
        configure_trust "$version"
        cluster "$version" reload
    fi
    if ! wait_until 10 query_works; then
        pg_sql -d postgres -c 'select 1' >&2 || true
        die "postgresql on $host:$port does not let user postgres in without a password (error above)"
    fi
    say "ok: postgresql started and answers on $host:$port"
fi

if [[ -z $(pg_sql -d postgres -c "select 1 from pg_database where datname = '$db_name'") ]]; then
    say "creating database $db_name"
    pg_sql -d postgres -c "create database $db_name"
else
    say "ok: database $db_name exists"
fi
