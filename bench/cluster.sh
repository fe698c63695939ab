#!/usr/bin/env bash
# bench/run.sh, section "cluster": the same reads and executions on
#   1. SQLite, one instance (the embedded default),
#   2. PostgreSQL + Redis, one instance,
#   3. PostgreSQL + Redis, three instances (one wrk per instance, at once;
#      figures summed),
# all in one run on this machine, so the ratios between them are what to
# read. PostgreSQL runs durable (fsync and synchronous_commit on), Redis
# without persistence; both are the benchmark's own (scripts/services.sh).
# Every process shares the same cores: on a 2-core machine three instances,
# PostgreSQL, Redis and wrk compete for two cores, so the three-instance
# figures show the cost of sharing state, not the gain of more machines.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${AOP_BIN:-build/aop}
DURATION=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-64}
work=$(mktemp -d)
chmod 711 "$work"   # PostgreSQL runs as the postgres user when this runs as root
pids=()
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  scripts/services.sh stop "$work/svc" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

while IFS='=' read -r k v; do export "$k=$v"; done < <(scripts/services.sh start "$work/svc" all --durable)
[ -n "${AOP_PG_URL:-}" ] && [ -n "${AOP_REDIS_URL:-}" ] || { echo "cannot start PostgreSQL and Redis" >&2; exit 1; }

# start N DATABASE_URL REDIS_URL [VAR=value...]: N instances; their base URLs in urls[]
urls=()
start() {
  local n=$1 db=$2 rd=$3 i port
  shift 3
  urls=()
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    env APP_ENV=test PORT=$port DATABASE_URL="$db" ${rd:+REDIS_URL=$rd} DATA_DIR="$work/var" \
      LOG_LEVEL=warn RATE_LIMIT_MAX=1000000000 AUTH_RATE_LIMIT_MAX=1000000000 BCRYPT_COST=10 \
      QUOTA_ACTIVE_EXECUTIONS=1000000 \
      JWT_ACCESS_SECRET=bench-access-secret-0123456789abcdef0123 \
      JWT_REFRESH_SECRET=bench-refresh-secret-0123456789abcdef012 \
      CREDENTIALS_KEY=YmVuY2gtY3JlZGVudGlhbHMta2V5LTMyLWJ5dGVzISE= \
      ADMIN_EMAIL=bench@example.com ADMIN_PASSWORD=bench-password "$@" \
      "$BIN" serve 2>>"$work/stderr" &
    pids+=($!)
    urls+=("http://127.0.0.1:$port")
    for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.05; done
  done
}

rss_mib() {
  local total=0 p
  for p in "${pids[@]}"; do total=$((total + $(awk '/^VmHWM/ {print $2}' "/proc/$p/status"))); done
  echo $((total / 1024))
}

# wrk_all LABEL PATH [wrk args]: one wrk per instance at once; prints a row
# with the summed requests/s and the worst p50/p99 of the instances.
wrk_all() {
  local label=$1 path=$2
  shift 2
  local n=${#urls[@]} c=$((CONNS / ${#urls[@]})) i
  local wrks=()
  for i in "${!urls[@]}"; do
    wrk -t$((n == 1 ? 2 : 1)) -c"$c" -d"${DURATION}s" --latency "$@" "${urls[$i]}$path" >"$work/wrk.$i" &
    wrks+=($!)
  done
  for i in "${wrks[@]}"; do wait "$i" || true; done
  cat "$work"/wrk.* | /usr/bin/python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
rps = sum(float(x) for x in re.findall(r"Requests/sec:\s+([\d.]+)", text))
p50 = max(ms(x) for x in re.findall(r"^\s+50%\s+(\S+)", text, re.M))
p99 = max(ms(x) for x in re.findall(r"^\s+99%\s+(\S+)", text, re.M))
bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
print("| %s | %.0f | %.2f ms | %.2f ms |%s" % (sys.argv[1], rps, p50, p99, " non-2xx: %d" % bad if bad else ""))
' "$label"
  rm -f "$work"/wrk.*
}

token=""
login() {
  token=$(curl -fs -X POST -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password"}' "${urls[0]}/api/auth/login" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
}

measure() {
  local label=$1
  login
  local auth="Authorization: Bearer $token"
  /usr/bin/python3 bench/seed_workflows.py "${urls[0]}" "$token" 1 1 >"$work/one.id"
  local one
  one=$(head -1 "$work/one.id")
  wf3=$(/usr/bin/python3 bench/exec_bench.py wf3 "${urls[0]}" "$token")
  echo
  echo "$label:"
  echo
  echo "| request | requests/s | p50 | p99 |"
  echo "|---|---|---|---|"
  wrk_all "GET /api/auth/me" "/api/auth/me" -H "$auth"
  wrk_all "GET /api/workflows/:id (cached)" "/api/workflows/$one" -H "$auth"
  wrk_all "GET /api/workflows?limit=20 (cached)" "/api/workflows?limit=20" -H "$auth"
  local t0
  t0=$(date +%s.%N)
  BENCH_TOKEN=$token wrk_all "POST /api/workflows/:id/execute, 3 transforms, 202" \
    "/api/workflows/$wf3/execute" -s bench/execute.lua
  /usr/bin/python3 bench/exec_bench.py drain "${urls[0]}" "$token" "$wf3" "$t0" | grep -v '^|---' |
    sed -e 's/ (wrk counted ? answers)//' -e 's/^/    /' || true
  echo
  echo "peak RSS of the instance(s), together: $(rss_mib) MiB"
}

# backlog DATABASE_URL REDIS_URL [VAR=value...]: the engine alone. The
# instance is stopped, BENCH_BACKLOG queued copies of the last 3-transform
# execution are written straight into the database (as a burst of executes
# leaves them, PostgreSQL's statistics not refreshed), and one instance is
# started to drain them; the rate is from the first start to the last finish.
wf3=""
backlog() {
  local db=$1 rd=$2 n=${BENCH_BACKLOG:-10000}
  shift 2
  stop_all
  /usr/bin/python3 bench/backlog.py fill "$db" "$wf3" "$n"
  start 1 "$db" "$rd" "$@"
  echo "    engine alone, a backlog of $n: $(/usr/bin/python3 bench/backlog.py rate "$db" "$wf3" "$n")"
}

echo
echo "cluster: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "PostgreSQL $(psql --version | awk '{print $3}') (durable), Redis $(redis-server --version | awk '{print $3}' | tr -d 'v='); wrk: $CONNS connections in all, ${DURATION}s per row"

start 1 "sqlite://$work/aop.db" ""
measure "SQLite, one instance"
backlog "sqlite://$work/aop.db" ""
stop_all

pg=$(/usr/bin/python3 - "$AOP_PG_URL" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit((u.scheme, u.netloc, "/", "", "")))
PY
)
mkdb() { psql -q "$AOP_PG_URL" -c "CREATE DATABASE $1" >/dev/null; echo "${pg}$1"; }

# Requests on these wait on network round trips (Redis, PostgreSQL) rather
# than on the CPU: more HTTP threads than cores keep the cores busy.
net=(HTTP_THREADS=8)
db=$(mkdb bench_one)
start 1 "$db" "$AOP_REDIS_URL/1" "${net[@]}"
measure "PostgreSQL + Redis, one instance, HTTP_THREADS=8"
backlog "$db" "$AOP_REDIS_URL/1" "${net[@]}"
stop_all

db=$(mkdb bench_three)
start 1 "$db" "$AOP_REDIS_URL/2" "${net[@]}"   # the first applies the migrations alone
firsturl=("${urls[@]}")
start 2 "$db" "$AOP_REDIS_URL/2" "${net[@]}"
urls=("${firsturl[@]}" "${urls[@]}")
measure "PostgreSQL + Redis, three instances, HTTP_THREADS=8 each"
stop_all
