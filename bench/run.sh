#!/usr/bin/env bash
# Measures the release build on this machine: throughput and latency of the
# operations routes under wrk, and the server's memory. Ratios between routes
# measured in the same run are what to compare across machines.
#   bench/run.sh            (make bench calls it after building build/aop)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${AOP_BIN:-build/aop}
DURATION=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-64}

work=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APP_ENV=test PORT=$port DATABASE_URL="sqlite://$work/aop.db" DATA_DIR="$work/var" \
  LOG_LEVEL=warn RATE_LIMIT_MAX=1000000000 "$BIN" serve 2>"$work/stderr" &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.05
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }

idle=$(rss_kb)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -srm)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "wrk: 2 threads, $CONNS connections, ${DURATION}s per route"
echo
echo "| route | requests/s | p50 | p99 | ratio to /health |"
echo "|---|---|---|---|---|"
base=""
for spec in /health /ready /metrics "/metrics gzip"; do
  route=${spec%% *}
  hdr=()
  [ "$spec" != "$route" ] && hdr=(-H "Accept-Encoding: gzip")
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:$port$route")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -n "$base" ] || base=$rps
  ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2f", a/b}')
  echo "| $spec | $rps | $p50 | $p99 | $ratio |${errs:+ non-2xx: $errs}"
done
echo
echo "memory: idle RSS $((idle / 1024)) MiB, peak RSS $(( $(hwm_kb) / 1024 )) MiB, after load $(( $(rss_kb) / 1024 )) MiB"
