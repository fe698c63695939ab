#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL and Redis for tests, benchmarks and
# `make run-cluster`, in a directory of their own, on 127.0.0.1 only.
#
#   scripts/services.sh start DIR [pg|redis|all] [--durable]
#       initialises DIR on first use, starts the servers on free ports (the
#       ports of an earlier start are kept), and prints their URLs as
#       AOP_PG_URL=postgres://aop:PASSWORD@127.0.0.1:PORT/aop
#       AOP_REDIS_URL=redis://127.0.0.1:PORT
#       (also written to DIR/urls.env). Without --durable, PostgreSQL runs
#       with fsync off: fast, and only for data nobody keeps.
#   scripts/services.sh stop DIR [pg|redis|all]
#       stops what `start` started there (by the pids it recorded).
#
# PostgreSQL refuses to run as root: when run as root, the data directory is
# given to the `postgres` system user and the server runs as that user.
set -euo pipefail
shopt -s inherit_errexit

cmd=${1:-}
dir=${2:-}
what=${3:-all}
durable=0
for a in "$@"; do [ "$a" = "--durable" ] && durable=1; done
[ "$what" = "--durable" ] && what=all
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR [pg|redis|all] [--durable]" >&2
  exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  local data=$dir/pg port
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then
      chmod o+x "$dir"   # the postgres user must reach its data directory
      if ! runuser -u postgres -- test -x "$dir"; then
        echo "$0: the postgres user cannot reach $dir (a parent directory is private)" >&2
        exit 1
      fi
      chown postgres: "$data"
      chmod 700 "$data"
    fi
    local pw
    pw=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
    printf '%s\n' "$pw" > "$dir/pg.password"
    chmod 600 "$dir/pg.password"
    local pwfile=$dir/pg.pwfile
    printf '%s\n' "$pw" > "$pwfile"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"
    as_pg "$pgbin/initdb" -D "$data" -U aop --pwfile="$pwfile" -A scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/pg-initdb.log" 2>&1 \
      || { cat "$dir/pg-initdb.log" >&2; exit 1; }
    rm -f "$pwfile"
    free_port > "$dir/pg.port"
  fi
  port=$(cat "$dir/pg.port")
  local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data"
  opts+=" -c max_connections=400 -c shared_buffers=128MB"
  if [ "$durable" -eq 0 ]; then
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  as_pg "$pgbin/pg_ctl" -D "$data" -l "$data/server.log" -o "$opts" -w -t 60 start >/dev/null
  local pw
  pw=$(cat "$dir/pg.password")
  if ! PGPASSWORD=$pw psql -qAt -h 127.0.0.1 -p "$port" -U aop -d postgres \
         -c "SELECT 1 FROM pg_database WHERE datname = 'aop'" | grep -q 1; then
    PGPASSWORD=$pw psql -q -h 127.0.0.1 -p "$port" -U aop -d postgres -c "CREATE DATABASE aop" >/dev/null
  fi
  echo "AOP_PG_URL=postgres://aop:$pw@127.0.0.1:$port/aop"
}

pg_stop() {
  local data=$dir/pg
  [ -f "$data/postmaster.pid" ] || return 0
  as_pg "$pgbin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

redis_start() {
  local port
  [ -f "$dir/redis.port" ] || free_port > "$dir/redis.port"
  port=$(cat "$dir/redis.port")
  mkdir -p "$dir/redis"
  # volatile-lru: only keys with a TTL are ever evicted; generation counters
  # have none (src/infra/cache.h).
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/redis" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no \
    --databases 10000 --maxmemory 512mb --maxmemory-policy volatile-lru >/dev/null
  local i
  for i in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
  done
  echo "AOP_REDIS_URL=redis://127.0.0.1:$port"
}

redis_stop() {
  [ -f "$dir/redis.pid" ] || return 0
  local pid
  pid=$(cat "$dir/redis.pid")
  if kill "$pid" 2>/dev/null; then
    local i
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$dir/redis.pid"
}

case "$cmd" in
  start)
    out=""
    case "$what" in
      pg) out=$(pg_start) ;;
      redis) out=$(redis_start) ;;
      all) out=$(pg_start; redis_start) ;;
      *) echo "unknown service: $what" >&2; exit 2 ;;
    esac
    printf '%s\n' "$out"
    # Keep the other service's line when only one was (re)started.
    touch "$dir/urls.env"
    for line in $out; do
      key=${line%%=*}
      grep -v "^$key=" "$dir/urls.env" > "$dir/urls.env.new" || true
      echo "$line" >> "$dir/urls.env.new"
      mv "$dir/urls.env.new" "$dir/urls.env"
    done
    chmod 600 "$dir/urls.env"
    ;;
  stop)
    case "$what" in
      pg) pg_stop ;;
      redis) redis_stop ;;
      all) redis_stop; pg_stop ;;
      *) echo "unknown service: $what" >&2; exit 2 ;;
    esac
    ;;
  *) echo "usage: $0 start|stop DIR [pg|redis|all] [--durable]" >&2; exit 2 ;;
esac
