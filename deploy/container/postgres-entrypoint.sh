#!/bin/sh
# The PostgreSQL image's entry point: on first start make a cluster in $PGDATA with POSTGRES_USER as
# its superuser (password POSTGRES_PASSWORD, required) and the database POSTGRES_DB, accepting
# password logins from the network; then run the server in the foreground as PID 1.
set -eu

if [ "${1:-}" != postgres ]; then
  exec "$@"
fi
shift

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres: set POSTGRES_PASSWORD (the superuser's password) for the first start" >&2
    exit 64
  fi
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode: nothing listens (a health check stays red) until the cluster is ready.
    echo "CREATE DATABASE \"$db\" OWNER \"$user\"" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres: made the cluster in $PGDATA (user $user, database $db)" >&2
fi

exec postgres -c listen_addresses='*' "$@"
