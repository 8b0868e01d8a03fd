#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: installs the server with apt-get if missing, runs it
# as the postgres user on a loopback port with its data in /tmp, and prints its SQLAlchemy URL.
# usage: scripts/postgres.sh start|stop
set -euo pipefail
PORT=${CONNECTOR_PG_PORT:-55432}
DATA=${CONNECTOR_PG_DATA:-/tmp/connector-pg}
# Off for the tests (nothing to keep); the benchmarks turn it on (bench/postgres.py).
FSYNC=${CONNECTOR_PG_FSYNC:-off}
URL="postgresql://connector@127.0.0.1:$PORT/connector"

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

case "${1:-start}" in
start)
  if [ -z "$(bin_dir)" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >/dev/null
  fi
  BIN=$(bin_dir)
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if ! as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA"; [ "$(id -u)" = 0 ] && chown postgres "$DATA"
      as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null
    fi
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
      -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=$FSYNC -c max_connections=200" \
      start >/dev/null
  fi
  # Every time (a server left from an older run gets it too): the tests' role may end other
  # sessions, so DROP DATABASE ... WITH (FORCE) also ends an autovacuum worker busy there.
  as_pg "$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE ROLE connector LOGIN CREATEDB" \
    >/dev/null 2>&1 || true
  as_pg "$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres \
    -c "SET client_min_messages = warning; GRANT pg_signal_backend TO connector" \
    >/dev/null
  as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres -O connector connector \
    >/dev/null 2>&1 || true
  echo "$URL"
  ;;
stop)
  BIN=$(bin_dir)
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
