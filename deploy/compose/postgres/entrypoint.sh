#!/bin/bash
# Runs PostgreSQL in the container. On first start (an empty data volume) makes
# the cluster and the role and database the services use, with the password of
# POSTGRES_PASSWORD_FILE (a secret); then runs the server in the foreground.
# Settings: PGPORT (5432), PG_LISTEN_ADDRESSES (*), POSTGRES_DB and POSTGRES_USER
# (dispatch311); extra arguments go to postgres (e.g. -c shared_buffers=1GB).
set -euo pipefail

db=${POSTGRES_DB:-dispatch311}
user=${POSTGRES_USER:-dispatch311}
password_file=${POSTGRES_PASSWORD_FILE:-/run/secrets/db_password}
socket_dir=/run/postgresql
say() { printf 'dispatch311-postgres: %s\n' "$*" >&2; }

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    [[ -r $password_file ]] || { say "error: cannot read the password file $password_file"; exit 1; }
    [[ -s $password_file ]] || { say "error: the password file $password_file is empty"; exit 1; }
    say "first start: making the cluster in $PGDATA"
    # the superuser only through the socket, as the postgres user; everyone else
    # over TCP with a password
    initdb -D "$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    printf '%s\n' "host $db $user all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$socket_dir" start >/dev/null
    # the password is read by psql itself, never on a command line
    psql -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -U postgres -d postgres \
        -v user="$user" -v db="$db" -v password_file="$password_file" <<'SQL'
\set password `cat :'password_file'`
CREATE ROLE :"user" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"user";
SQL
    pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
    say "made role $user and database $db"
fi

exec postgres -D "$PGDATA" \
    -c listen_addresses="${PG_LISTEN_ADDRESSES:-*}" \
    -c unix_socket_directories="$socket_dir" \
    "$@"
