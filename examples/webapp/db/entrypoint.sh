#!/bin/sh
# First start: make the cluster in the (empty) volume, allow password logins over the network,
# create the application's database. Every start: exec the server as the postgres user (setpriv
# execs in place, so the stop signal reaches postgres itself).
set -eu
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising the cluster in $PGDATA"
    printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > /tmp/pwfile
    chown postgres /tmp/pwfile
    runuser -u postgres -- initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    rm -f /tmp/pwfile
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "CREATE DATABASE ${POSTGRES_DB:-app};" | runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null
fi
echo "starting postgres"
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA"
