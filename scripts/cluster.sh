#!/usr/bin/env bash
# `make run-cluster`: the production shape on one machine. Starts PostgreSQL
# and Redis in ./var/cluster (kept between runs) and three `aop serve`
# instances sharing them on ports 3001, 3002 and 3003 (CLUSTER_PORT: the
# first port; CLUSTER_SIZE: how many). Logs go to ./var/cluster/aop-N.log.
# Ctrl-C (or SIGTERM) stops the instances, then the servers.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=var/cluster
first=${CLUSTER_PORT:-3001}
size=${CLUSTER_SIZE:-3}
mkdir -p "$dir"
chmod 700 "$dir"

pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/services.sh stop "$dir"
}
trap 'echo "stopping the cluster"; stop_all; exit 0' INT TERM
trap stop_all EXIT

while IFS='=' read -r k v; do
  export "$k=$v"
done < <(scripts/services.sh start "$dir" all --durable)

# One pair of token secrets for every instance: a token one signs, all accept;
# and one credentials key, which PostgreSQL requires.
if [ ! -f "$dir/jwt.env" ]; then
  (umask 077
   echo "JWT_ACCESS_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')" > "$dir/jwt.env"
   echo "JWT_REFRESH_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')" >> "$dir/jwt.env"
   echo "CREDENTIALS_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >> "$dir/jwt.env")
fi
if ! grep -q '^CREDENTIALS_KEY=' "$dir/jwt.env"; then # a cluster made before the vault
  (umask 077; echo "CREDENTIALS_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >> "$dir/jwt.env")
fi
while IFS='=' read -r k v; do export "$k=$v"; done < "$dir/jwt.env"

export DATABASE_URL=$AOP_PG_URL REDIS_URL=$AOP_REDIS_URL DATA_DIR=$dir/data
# The first instance applies the migrations; the others find them done.
LOG_FILE=$dir/migrate.log ./build/aop migrate >/dev/null
for i in $(seq 1 "$size"); do
  port=$((first + i - 1))
  PORT=$port LOG_FILE=$dir/aop-$i.log ./build/aop serve &
  pids+=($!)
  echo "instance $i: http://127.0.0.1:$port (log: $dir/aop-$i.log)"
done
echo "PostgreSQL: ${AOP_PG_URL%%:*}://…@${AOP_PG_URL##*@}   Redis: $AOP_REDIS_URL"
echo "Ctrl-C stops the cluster."
wait -n "${pids[@]}" || true
echo "an instance exited; stopping the cluster" >&2
