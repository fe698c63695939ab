#!/usr/bin/env bash
# Measures the release build on this machine: throughput and latency under
# wrk, next to nginx answering a fixed JSON body of the same size (the
# reference: ratios to it, measured in the same run, are what to compare
# across machines), and the server's memory.
#   bench/run.sh            (make bench calls it after building build/aop)
#   BENCH_ROUNDS=5 BENCH_ROUND_SECONDS=2   the auth and workflows rows: rounds of nginx
#                                         then the row, each that long; medians reported
#   BENCH_ONLY=executions bench/run.sh    only the named sections (comma-separated:
#                                         auth, workflows, executions, events, triggers, agents,
#                                         cluster);
#                                         default all
#   BENCH_BACKLOG=10000                   cluster: queued executions the engine drains alone
#   BENCH_ONLY=per-request bench/run.sh   (only when named) instructions and Redis round trips
#                                         per request, counted; PER_REQUEST_BASE=other/aop
#                                         puts another build beside this one
#   BENCH_ONLY=soak bench/run.sh          the soak (only when named): SOAK_SECONDS (600) of
#                                         mixed traffic on SOAK_CONNECTIONS (64), memory and
#                                         file descriptors read at SOAK_MARK_SECONDS (120)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${AOP_BIN:-build/aop}
DURATION=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-64}
ONLY=${BENCH_ONLY:-}
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
named() { [[ ",$ONLY," == *",$1,"* ]]; }

work=$(mktemp -d)
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
nport=$(free_port)
pid=""
npid=""
spid=""
lpid=""
cleanup() {
  [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  [ -n "$spid" ] && { kill -TERM "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; }
  [ -n "$lpid" ] && { kill -TERM "$lpid" 2>/dev/null || true; wait "$lpid" 2>/dev/null || true; }
  [ -n "$npid" ] && { kill -TERM "$npid" 2>/dev/null || true; wait "$npid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# The reference: nginx, as many workers as cores, no access log, a 240-byte
# JSON body (the size of GET /api/auth/me's answer).
body=$(printf '{"id":"01a21418-4302-745a-a8da-ee7c0e82a6ae","email":"bench@example.com","name":"Bench","role":"admin","preferences":{},"isActive":true,"createdAt":"2026-11-25T19:04:24.066Z","updatedAt":"2026-11-25T19:04:24.066Z","lastLoginAt":null}')
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$nport;
    location / { default_type application/json; return 200 '$body'; }
  }
}
CONF
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
npid=$!

# start_aop [VAR=value...]: serves $work/aop.db on $port with the given extra
# settings (a fixed JWT secret, so tokens outlive a restart) and waits for it.
# One user starts every execution here, so its quota of active executions is
# lifted: wrk builds a backlog far past the default 1000.
start_aop() {
  env APP_ENV=test PORT=$port DATABASE_URL="sqlite://$work/aop.db" DATA_DIR="$work/var" \
    LOG_LEVEL=warn RATE_LIMIT_MAX=1000000000 AUTH_RATE_LIMIT_MAX=1000000000 BCRYPT_COST=12 \
    QUOTA_ACTIVE_EXECUTIONS=1000000 \
    JWT_ACCESS_SECRET=bench-access-secret-0123456789abcdef0123 \
    JWT_REFRESH_SECRET=bench-refresh-secret-0123456789abcdef012 \
    ADMIN_EMAIL=bench@example.com ADMIN_PASSWORD=bench-password "$@" \
    "$BIN" serve 2>>"$work/stderr" &
  pid=$!
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 &&
      curl -fs "http://127.0.0.1:$nport/" >/dev/null 2>&1 && break
    sleep 0.05
  done
}
stop_aop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}
start_aop

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
idle=$(rss_kb)

token=$(curl -fs -X POST -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password"}' \
  "http://127.0.0.1:$port/api/auth/login" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
api="http://127.0.0.1:$port/api"
auth="Authorization: Bearer $token"

cat >"$work/flood.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"email":"bench@example.com","password":"not-the-password"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# run_wrk LABEL URL [wrk args...] -> prints a table row; sets RPS, P99_MS and
# WRK_OUT (wrk's whole report)
base=""
run_wrk() {
  local label=$1 url=$2
  shift 2
  local out rps p50 p99 errs ratio
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -n "$base" ] || base=$rps
  ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2f", a/b}')
  echo "| $label | $rps | $p50 | $p99 | $ratio |${errs:+ non-2xx: $errs}"
  RPS=$rps
  WRK_OUT=$out
  P99_MS=$(awk -v v="$p99" 'BEGIN { if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else printf "%.3f", v*1000 }')
}

# run_pair LABEL URL [wrk args...] -> prints a table row measured against
# nginx in turns: ROUNDS rounds of ROUND_S seconds each, nginx then the row.
# Per round: requests/s and the server's CPU time per request (user + system,
# from /proc; nginx's master and workers), each against nginx's of that round.
# The row reports medians over the rounds (each ratio from its own round) and
# the range of the rate ratios. CPU per request is what other load on the
# machine moves least: the rate ratio needs the cores to itself, the CPU ratio
# does not. Sets RPS, P99_MS and base (nginx's median) as run_wrk does.
ROUNDS=${BENCH_ROUNDS:-5}
ROUND_S=${BENCH_ROUND_SECONDS:-2}
HZ=$(getconf CLK_TCK)
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else printf "%.3f", v*1000 }'; }
# ticks PID...: CPU clock ticks the processes have used
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
# measured PIDS -- wrk args...: runs wrk; sets OUT, REQS and CPU_US (µs a request)
measured() {
  local pids=() c0
  while [ "$1" != -- ]; do pids+=("$1"); shift; done
  shift
  c0=$(ticks "${pids[@]}")
  OUT=$(wrk -t2 -c"$CONNS" -d"${ROUND_S}s" "$@")
  REQS=$(awk '/requests in/ {print $1}' <<<"$OUT")
  CPU_US=$(awk -v a="$c0" -v b="$(ticks "${pids[@]}")" -v n="$REQS" -v hz="$HZ" \
    'BEGIN { printf "%.2f", (n > 0 ? (b - a) / hz / n * 1e6 : 0) }')
}
run_pair() {
  local label=$1 url=$2
  shift 2
  local n r ncpu rpss="" nrpss="" ratios="" cpus="" ncpus="" cratios="" p50s="" p99s="" errs=0 e
  local npids
  read -r -a npids <<<"$npid $(pgrep -P "$npid" | tr '\n' ' ')"
  for _ in $(seq "$ROUNDS"); do
    measured "${npids[@]}" -- "http://127.0.0.1:$nport/"
    n=$(awk '/Requests\/sec/ {print $2}' <<<"$OUT")
    ncpu=$CPU_US
    measured "$pid" -- --latency "$@" "$url"
    r=$(awk '/Requests\/sec/ {print $2}' <<<"$OUT")
    e=$(awk '/Non-2xx/ {print $NF}' <<<"$OUT")
    errs=$((errs + ${e:-0}))
    nrpss+=" $n" rpss+=" $r" ncpus+=" $ncpu" cpus+=" $CPU_US"
    ratios+=" $(awk -v a="$r" -v b="$n" 'BEGIN {printf "%.3f", a/b}')"
    cratios+=" $(awk -v a="$CPU_US" -v b="$ncpu" 'BEGIN {printf "%.3f", (a > 0 ? b/a : 0)}')"
    p50s+=" $(to_ms "$(awk '$1=="50%" {print $2}' <<<"$OUT")")"
    p99s+=" $(to_ms "$(awk '$1=="99%" {print $2}' <<<"$OUT")")"
  done
  RPS=$(median <<<"$rpss")
  base=$(median <<<"$nrpss")
  P99_MS=$(median <<<"$p99s")
  local lo hi
  lo=$(tr ' ' '\n' <<<"$ratios" | grep . | sort -g | head -1)
  hi=$(tr ' ' '\n' <<<"$ratios" | grep . | sort -g | tail -1)
  printf '| %s | %.0f | %.2f | %.2f–%.2f | %.1f / %.1f | %.2f | %.3f ms | %.3f ms |%s\n' "$label" \
    "$RPS" "$(median <<<"$ratios")" "$lo" "$hi" "$(median <<<"$cpus")" "$(median <<<"$ncpus")" \
    "$(median <<<"$cratios")" "$(median <<<"$p50s")" "$P99_MS" \
    "$([ "$errs" -gt 0 ] && echo " non-2xx: $errs")"
}
PAIR_HEAD="| request | requests/s | ratio to nginx | ratios' range | CPU µs a request (this / nginx) | CPU ratio to nginx | p50 | p99 |
|---|---|---|---|---|---|---|---|"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "wrk: 2 threads, $CONNS connections; auth and workflows rows: $ROUNDS rounds of ${ROUND_S}s, nginx then the row, medians; other rows ${DURATION}s"

if want auth; then
echo
echo "$PAIR_HEAD"
run_pair "GET /health" "http://127.0.0.1:$port/health"
run_pair "GET /ready" "http://127.0.0.1:$port/ready"
run_pair "GET /metrics" "http://127.0.0.1:$port/metrics"
run_pair "GET /metrics, gzip" "http://127.0.0.1:$port/metrics" -H "Accept-Encoding: gzip"
run_pair "GET /api/auth/me, bearer" "http://127.0.0.1:$port/api/auth/me" \
  -H "Authorization: Bearer $token"
me_p99=$P99_MS

# The same while a second client floods login with wrong passwords (bcrypt
# cost 12 on the slow-work pool; what it cannot queue is answered 503), nginx's
# rounds included.
wrk -t1 -c16 -d"$((2 * ROUNDS * ROUND_S + 2))s" -s "$work/flood.lua" \
  "http://127.0.0.1:$port/api/auth/login" >"$work/flood.out" 2>&1 &
flood=$!
sleep 1
run_pair "GET /api/auth/me, bearer, during a login flood" "http://127.0.0.1:$port/api/auth/me" \
  -H "Authorization: Bearer $token"
flood_p99=$P99_MS
wait "$flood" || true
echo
flood_rps=$(awk '/Requests\/sec/ {print $2}' "$work/flood.out")
flood_non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/flood.out")
echo "login flood: $flood_rps requests/s answered (${flood_non2xx:-0} non-2xx: 401 after bcrypt, or 503 when the pool's queue was full)"
echo "p99 of GET /api/auth/me: $me_p99 ms alone, $flood_p99 ms during the flood ($(awk -v a="$flood_p99" -v b="$me_p99" 'BEGIN {printf "%.2f", a/b}')x)"
fi

# ---- workflows ----
if want workflows; then
/usr/bin/python3 bench/seed_workflows.py "http://127.0.0.1:$port" "$token" 1 1 >"$work/one.id"
one=$(head -1 "$work/one.id")
seed_start=$(date +%s.%N)
/usr/bin/python3 bench/seed_workflows.py "http://127.0.0.1:$port" "$token" 9999 8 >"$work/ids"
seed_s=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b-a}')
head -200 "$work/ids" >"$work/ids200"
cat >"$work/put.lua" <<'LUA'
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")}
request = function()
  return wrk.format("PUT", "/api/workflows/" .. ids[math.random(#ids)], headers,
                    '{"description":"edited by the benchmark"}')
end
LUA
echo
echo "workflows: 10,000 created through the API in ${seed_s}s (12-node definitions)"
echo
echo "$PAIR_HEAD"
run_pair "GET /api/workflows/:id, cached" "$api/workflows/$one" -H "$auth"
run_pair "GET /api/workflows?limit=20, 10,000 workflows, cached" "$api/workflows?limit=20" -H "$auth"
run_pair "GET /api/workflows?limit=20&status=active&sort=name" \
  "$api/workflows?limit=20&status=active&sort=name" -H "$auth"
BENCH_IDS="$work/one.id" BENCH_TOKEN=$token \
  run_pair "PUT /api/workflows/:id, one hot workflow" "$api/workflows" -s "$work/put.lua"
hot_rps=$RPS
BENCH_IDS="$work/ids200" BENCH_TOKEN=$token \
  run_pair "PUT /api/workflows/:id, 200 distinct workflows" "$api/workflows" -s "$work/put.lua"
distinct_rps=$RPS
echo
echo "PUT throughput, one hot workflow vs 200 distinct: $(awk -v a="$hot_rps" -v b="$distinct_rps" 'BEGIN {printf "%.2f", a/b}')x"
hot_version=$(curl -fs -H "$auth" "$api/workflows/$one" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
hot_history=$(curl -fs -H "$auth" "$api/workflows/$one/versions?limit=1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])')
echo "hot workflow after the run: version $hot_version, $hot_history history entries"
echo
echo "memory: idle RSS $((idle / 1024)) MiB, peak RSS $(( $(hwm_kb) / 1024 )) MiB, after load $(( $(rss_kb) / 1024 )) MiB"

# The same reads with the cache off: every request reads the database.
stop_aop
start_aop CACHE_MAX_BYTES=0
echo
echo "with CACHE_MAX_BYTES=0 (no cache):"
echo
echo "$PAIR_HEAD"
run_pair "GET /api/workflows/:id, no cache" "$api/workflows/$one" -H "$auth"
run_pair "GET /api/workflows?limit=20, 10,000 workflows, no cache" "$api/workflows?limit=20" -H "$auth"
run_pair "GET /api/workflows?limit=20&status=active&sort=name, no cache" \
  "$api/workflows?limit=20&status=active&sort=name" -H "$auth"
fi

# ---- executions ----
# 1. 40 sequential transforms with {"wait": true}, one client; 2. a 3-transform
# workflow started by wrk (202, no wait), then polled until every execution has
# ended; 3. 1,000 executions of one http node calling a server that answers
# after 1 s, on a fresh server process so that its peak RSS is this test's.
if want executions; then
echo
echo "executions: $(nproc) cores ($(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
stop_aop
start_aop HTTP_NODE_ALLOW_PRIVATE=true
echo
/usr/bin/python3 bench/exec_bench.py seq "http://127.0.0.1:$port" "$token" "${BENCH_EXEC_RUNS:-200}" ||
  echo "FAILED: 40 sequential transforms"

echo
if wf3=$(/usr/bin/python3 bench/exec_bench.py wf3 "http://127.0.0.1:$port" "$token"); then
  echo "| request | requests/s | p50 | p99 | ratio to nginx |"
  echo "|---|---|---|---|---|"
  [ -n "$base" ] || run_wrk "nginx, fixed 240-byte JSON" "http://127.0.0.1:$nport/"
  exec_start=$(date +%s.%N)
  BENCH_TOKEN=$token run_wrk "POST /api/workflows/:id/execute, 3 transforms, 202" \
    "$api/workflows/$wf3/execute" -s bench/execute.lua
  printf '%s\n' "$WRK_OUT" >"$work/exec.wrk"
  echo
  /usr/bin/python3 bench/exec_bench.py drain "http://127.0.0.1:$port" "$token" "$wf3" \
    "$exec_start" "$work/exec.wrk" "$base" || echo "FAILED: 3-transform throughput"
  echo "memory after the runs above: peak RSS $(( $(hwm_kb) / 1024 )) MiB, now $(( $(rss_kb) / 1024 )) MiB"
  # Synchronous: each connection waits for its execution's end (200 with
  # the execution), 16 connections (target: 5,000 a second, p99 < 20 ms).
  echo
  echo "| request | requests/s | p50 | p99 | ratio to nginx |"
  echo "|---|---|---|---|---|"
  for round in 1 2 3; do
    CONNS=16 BENCH_TOKEN=$token run_wrk "POST /api/workflows/:id/execute \`{\"wait\": true}\`, 3 transforms, 16 connections ($round)" \
      "$api/workflows/$wf3/execute" -s bench/execute_wait.lua
  done
else
  echo "FAILED: creating the 3-transform workflow"
fi

echo
/usr/bin/python3 bench/slow_server.py 0 1 >"$work/slow.port" 2>>"$work/slow.stderr" &
spid=$!
for _ in $(seq 100); do [ -s "$work/slow.port" ] && break; sleep 0.05; done
sport=$(head -1 "$work/slow.port")
stop_aop
start_aop HTTP_NODE_ALLOW_PRIVATE=true
slow_idle=$(rss_kb)
/usr/bin/python3 bench/exec_bench.py slow "http://127.0.0.1:$port" "$token" \
  "http://127.0.0.1:$sport/slow" "${BENCH_SLOW_COUNT:-1000}" 32 || echo "FAILED: slow http executions"
echo
echo "memory (fresh server, this test only): idle RSS $((slow_idle / 1024)) MiB, peak RSS (VmHWM) $(( $(hwm_kb) / 1024 )) MiB (target < 200 MB), after $(( $(rss_kb) / 1024 )) MiB"
kill -TERM "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
spid=""
fi

# ---- events ----
# 1. BENCH_STREAMS (1000) concurrent event streams, each following an execution
# of a 40-node flow (bench/events_bench.py): every event delivered, event ts ->
# client, RSS added; with nodes of 500 ms, then of 100 ms. 2. 3-transform executions a second with event rows (this
# build) and without (main's binary, built here from `git archive main`, or
# BENCH_MAIN_BIN), in turns on fresh databases, three times each: the best of
# each is compared (other load on the machine only ever slows a run down).
login() {
  curl -fs -X POST -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password"}' \
    "http://127.0.0.1:$port/api/auth/login" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])'
}
# exec3_rate BINARY LABEL: a fresh database, wrk posting 3-transform executions
# for DURATION seconds, then the rate at which they completed, and the server's
# CPU time (user + system) per execution: what other load on the machine
# changes least.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
exec3_rate() {
  local bin=$1 label=$2 t w out c0 c1 n
  stop_aop
  rm -f "$work"/aop.db*
  BIN=$bin start_aop
  t=$(login)
  w=$(/usr/bin/python3 bench/exec_bench.py wf3 "http://127.0.0.1:$port" "$t")
  local s0
  s0=$(date +%s.%N)
  c0=$(cpu_ticks)
  BENCH_TOKEN=$t wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/execute.lua \
    "http://127.0.0.1:$port/api/workflows/$w/execute" >"$work/ev.wrk"
  out=$(/usr/bin/python3 bench/exec_bench.py drain "http://127.0.0.1:$port" "$t" "$w" "$s0" "$work/ev.wrk")
  c1=$(cpu_ticks)
  RATE=$(grep -o '[0-9.]* executions completed a second' <<<"$out" | awk '{print $1}')
  n=$(grep -o '^3-transform executions: [0-9]*' <<<"$out" | awk '{print $3}')
  CPU_US=$(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0) printf "%.0f", (b - a) / hz / n * 1e6; else print "?" }')
  echo "| $label | ${RATE:-?} | ${n:-?} | $CPU_US |"
}
if want events; then
echo
echo "events: $(nproc) cores ($(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
# streams_run NODE_MS: a fresh server, the streams of events_bench.py
streams_run() {
  stop_aop
  rm -f "$work"/aop.db*
  start_aop HTTP_NODE_ALLOW_PRIVATE=true SSE_MAX_STREAMS=100000 HTTP_MAX_CONNECTIONS=8000 \
    HTTP_MAX_CONNECTIONS_PER_IP=8000
  echo
  /usr/bin/python3 bench/events_bench.py streams "http://127.0.0.1:$port" "$(login)" "$pid" \
    "${BENCH_STREAMS:-1000}" "$1" || echo "FAILED: event streams"
}
if [ "${BENCH_STREAMS:-1000}" != 0 ]; then  # BENCH_STREAMS=0: the throughput alone
  streams_run 500
  streams_run 100 # four times the pace: near what this machine keeps up with
fi
echo
main_bin=${BENCH_MAIN_BIN:-$work/main/build/aop}
mkdir -p "$work/main"
if [ -x "$main_bin" ] || { git archive main | tar -x -C "$work/main" &&
     make -s -C "$work/main" build/aop >"$work/main.build" 2>&1; }; then
  echo "| 3-transform executions (wrk ${DURATION}s, $CONNS connections, fresh SQLite) | completed a second | executions | server CPU µs per execution |"
  echo "|---|---|---|---|"
  rates_main=() rates_this=() cpu_main=() cpu_this=()
  for round in 1 2 3; do
    exec3_rate "$main_bin" "main (no event rows), run $round"; rates_main+=("$RATE"); cpu_main+=("$CPU_US")
    exec3_rate "$BIN" "this build (event rows), run $round"; rates_this+=("$RATE"); cpu_this+=("$CPU_US")
  done
  echo
  awk -v a="${rates_this[*]}" -v b="${rates_main[*]}" -v ca="${cpu_this[*]}" -v cb="${cpu_main[*]}" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); split(ca, p, " "); split(cb, q, " ");
    sa = 0; sb = 0; pa = 1e18; pb = 1e18;
    for (i = 1; i <= n; i++) {
      if (x[i] > sa) sa = x[i]; if (y[i] > sb) sb = y[i];
      if (p[i] + 0 < pa) pa = p[i]; if (q[i] + 0 < pb) pb = q[i] }
    printf "best of %d: %.0f executions a second with event rows, %.0f without: %.1f %% %s;\n",
      n, sa, sb, (sb - sa) / sb * 100, sa <= sb ? "below" : "above (none lost)"
    printf "least CPU: %.0f µs an execution with event rows, %.0f without: %+.1f %% (target: at most 10 %% slower)\n",
      pa, pb, (pa - pb) / pb * 100 }'
else
  echo "FAILED: building main's binary for the comparison (see $work/main.build)"
fi
BIN=${AOP_BIN:-build/aop}
fi

# ---- triggers ----
# 1. Async webhook calls (auth none, then hmac) against a 3-transform workflow,
# next to the execute route in the same run; 2. 10,000 enabled hourly schedules,
# idle: the scheduler thread's CPU over BENCH_IDLE_SECONDS (10); 3. 200
# schedules due every second for 10 s: lateness of their runs.
if want triggers; then
echo
echo "triggers: $(nproc) cores, $(uname -srm), date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
stop_aop
rm -f "$work"/aop.db*
start_aop
t=$(login)
wf3=$(/usr/bin/python3 bench/exec_bench.py wf3 "http://127.0.0.1:$port" "$t")
read -r hook_none hook_hmac hook_secret < <(/usr/bin/python3 bench/triggers_bench.py hooks \
  "http://127.0.0.1:$port" "$t" "$wf3")
/usr/bin/python3 bench/triggers_bench.py hmac_lua "$hook_secret" "$work/hmac.lua"
cat >"$work/hook.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"x":1}'
wrk.headers["Content-Type"] = "application/json"
LUA
echo
echo "| request | requests/s | p50 | p99 | ratio to execute |"
echo "|---|---|---|---|---|"
base=""
BENCH_TOKEN=$t run_wrk "POST /api/workflows/:id/execute, 3 transforms, 202" \
  "http://127.0.0.1:$port/api/workflows/$wf3/execute" -s bench/execute.lua
run_wrk "POST /hooks/:id, auth none, async, 202" "http://127.0.0.1:$port/hooks/$hook_none" \
  -s "$work/hook.lua"
run_wrk "POST /hooks/:id, auth hmac, async, 202" "http://127.0.0.1:$port/hooks/$hook_hmac" \
  -s "$work/hmac.lua"
base=""
echo "(targets: none at least 0.90, hmac at least 0.85 of execute)"

stop_aop
rm -f "$work"/aop.db*
start_aop
t=$(login)
/usr/bin/python3 bench/triggers_bench.py schedules "http://127.0.0.1:$port" "$t" 10000 "0 * * * *"
sched_tid=$(grep -l '^aop-scheduler$' /proc/"$pid"/task/*/comm | head -1 | xargs dirname)
idle_s=${BENCH_IDLE_SECONDS:-10}
s0=$(awk '{print $14 + $15}' "$sched_tid/stat")
p0=$(cpu_ticks)
sleep "$idle_s"
s1=$(awk '{print $14 + $15}' "$sched_tid/stat")
p1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
echo
echo "10,000 hourly schedules, idle ${idle_s}s: scheduler thread $(awk -v a="$s0" -v b="$s1" -v s="$idle_s" -v hz="$hz" 'BEGIN {printf "%.2f", 100*(b-a)/hz/s}') % of a core (target < 1 %), whole server $(awk -v a="$p0" -v b="$p1" -v s="$idle_s" -v hz="$hz" 'BEGIN {printf "%.2f", 100*(b-a)/hz/s}') %"

stop_aop
rm -f "$work"/aop.db*
start_aop
t=$(login)
since=$(date +%s)
/usr/bin/python3 bench/triggers_bench.py schedules "http://127.0.0.1:$port" "$t" 200 "* * * * * *"
sleep 10
echo
echo "200 schedules due every second, 10 s:"
/usr/bin/python3 bench/triggers_bench.py lateness "http://127.0.0.1:$port" "$t" "$((since + 2))"
fi

# ---- cluster ----
# The reads and executions above on SQLite, PostgreSQL + Redis with one
# instance, and with three (bench/cluster.sh).
if want agents; then
  echo
  echo "agents: $(nproc) cores ($(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  /usr/bin/python3 bench/agent_server.py 0 >"$work/agent.port" &
  apid=$!
  for _ in $(seq 100); do [ -s "$work/agent.port" ] && break; sleep 0.05; done
  fake="http://127.0.0.1:$(head -1 "$work/agent.port")"
  stop_aop
  rm -f "$work"/aop.db*
  start_aop HTTP_NODE_ALLOW_PRIVATE=true LLM_BASE_URL="$fake/v1" HTTP_MAX_CONNECTIONS=8000 \
    HTTP_MAX_CONNECTIONS_PER_IP=8000
  echo
  /usr/bin/python3 bench/agent_bench.py overhead "http://127.0.0.1:$port" "$(login)" "$fake" \
    "${BENCH_AGENT_RUNS:-30}" || echo "FAILED: agent overhead"
  stop_aop
  rm -f "$work"/aop.db*
  start_aop HTTP_NODE_ALLOW_PRIVATE=true LLM_BASE_URL="$fake/v1" HTTP_MAX_CONNECTIONS=8000 \
    HTTP_MAX_CONNECTIONS_PER_IP=8000
  echo
  /usr/bin/python3 bench/agent_bench.py load "http://127.0.0.1:$port" "$(login)" "$fake" "$pid" \
    "${BENCH_AGENTS:-500}" || echo "FAILED: agents at once"
  kill -TERM "$apid" 2>/dev/null || true
  wait "$apid" 2>/dev/null || true
fi

if want cluster; then
  stop_aop
  AOP_BIN=$BIN bench/cluster.sh || echo "FAILED: cluster"
fi

# ---- per request, counted ----
# Only when named (BENCH_ONLY=per-request): instructions per request under
# callgrind, and Redis round trips per request on PostgreSQL + Redis
# (bench/per_request.py), for $BIN and, when PER_REQUEST_BASE names another
# build (an earlier commit's build/aop), for that one beside it.
if named per-request; then
  stop_aop
  bins=("$BIN")
  [ -n "${PER_REQUEST_BASE:-}" ] && bins=("$PER_REQUEST_BASE" "$BIN")
  echo
  echo "instructions per request (callgrind; 1 HTTP thread, SQLite, warm):"
  /usr/bin/python3 bench/per_request.py instructions "${bins[@]}" || echo "FAILED: instructions"
  chmod 711 "$work" # PostgreSQL runs as the postgres user when this runs as root
  svc="$work/per-request-svc"
  while IFS='=' read -r k v; do export "$k=$v"; done < <(scripts/services.sh start "$svc" all)
  echo
  echo "Redis per request (PostgreSQL + Redis, one connection):"
  /usr/bin/python3 bench/per_request.py trips "$AOP_PG_URL" "$AOP_REDIS_URL" "$svc/redis.pid" \
    "${bins[@]}" || echo "FAILED: trips"
  scripts/services.sh stop "$svc" >/dev/null 2>&1 || true
fi

# ---- soak ----
# Only when named (BENCH_ONLY=soak): SOAK_SECONDS of mixed traffic from
# bench/soak.py on SOAK_CONNECTIONS keep-alive connections against a fresh
# server: reads, workflow updates, executions whose http and llm nodes call
# local fakes (bench/slow_server.py, bench/llm_server.py, answering after
# SOAK_UPSTREAM_DELAY seconds), and logins, which the auth rate limit (30 a
# minute here) answers 429 once spent. Reports requests/s by kind, errors,
# and the server's RSS and open file descriptors over time.
if named soak; then
  soak_s=${SOAK_SECONDS:-600}
  soak_mark=${SOAK_MARK_SECONDS:-120}
  [ "$soak_mark" -lt "$soak_s" ] || soak_mark=$((soak_s / 2))
  delay=${SOAK_UPSTREAM_DELAY:-0.05}
  echo
  echo "soak: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  /usr/bin/python3 bench/slow_server.py 0 "$delay" >"$work/soak-http.port" 2>>"$work/soak-http.stderr" &
  spid=$!
  /usr/bin/python3 bench/llm_server.py 0 "$delay" soak-llm-key >"$work/soak-llm.port" \
    2>>"$work/soak-llm.stderr" &
  lpid=$!
  for _ in $(seq 100); do [ -s "$work/soak-http.port" ] && [ -s "$work/soak-llm.port" ] && break; sleep 0.05; done
  stop_aop
  start_aop HTTP_NODE_ALLOW_PRIVATE=true \
    LLM_BASE_URL="http://127.0.0.1:$(head -1 "$work/soak-llm.port")/v1" LLM_API_KEY=soak-llm-key \
    AUTH_RATE_LIMIT_MAX=30 AUTH_RATE_LIMIT_WINDOW_MS=60000 ACCESS_TOKEN_TTL=$((soak_s + 3600))
  soak_token=$(curl -fs -X POST -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password"}' \
    "http://127.0.0.1:$port/api/auth/login" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
  /usr/bin/python3 bench/soak.py "http://127.0.0.1:$port" "$soak_token" bench@example.com \
    bench-password "$pid" "http://127.0.0.1:$(head -1 "$work/soak-http.port")/soak" "$soak_s" \
    "${SOAK_CONNECTIONS:-64}" "$soak_mark" || echo "FAILED: soak"
  lines=$(grep -c . "$work/stderr" || true)
  echo "server log (LOG_LEVEL=warn, every server of this run): $lines lines$([ "$lines" -gt 0 ] && echo ", the last:")"
  tail -5 "$work/stderr" | sed 's/^/  /'
fi
