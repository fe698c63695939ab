#!/usr/bin/env bash
# Runs the unit tests and the API tests against both backends: the SQLite
# default, then PostgreSQL + Redis, and beside them the console's browser
# tests. The servers are the tests' own, started here in a temporary
# directory on free ports and stopped on the way out.
# Since they are always there, a test that would skip for want of one fails
# (AOP_TEST_REQUIRE_SERVICES=1), and so does an API test on pg that cannot
# reach them.
#   scripts/test.sh [PART]...   (default: lint unit sqlite pg console)
# PARTs: lint (docs/openapi.json under @redocly/cli's recommended rules, no
#        error and no warning; contrib/aop.service under systemd-analyze
#        verify, when systemd-analyze is there);
#        unit, sqlite, pg (the ASan+UBSan build, build/test/);
#        console (tests/console/: the web console in headless Chromium,
#        against build/test/aop on SQLite; with other parts it runs beside
#        them from the start, its output printed whole at the end);
#        tsan-unit, tsan-sqlite, tsan-pg, or tsan for all three (the
#        ThreadSanitizer build, build/tsan/: the unit tests and the Makefile's
#        TSAN_API_TESTS).
# The Makefile's filters pass through: T='store_ jwt_' for the unit tests,
# K=EXPR (pytest -k) or API_TESTS=NODE_IDS for the API tests, e.g.
#   K=refresh scripts/test.sh pg
set -euo pipefail
cd "$(dirname "$0")/.."

parts=()
for p in "$@"; do
  case "$p" in
    tsan) parts+=(tsan-unit tsan-sqlite tsan-pg) ;;
    *) parts+=("$p") ;;
  esac
done
[ ${#parts[@]} -eq 0 ] && parts=(lint unit sqlite pg console)

lint() {
  echo "lint: docs/openapi.json (@redocly/cli, recommended rules)"
  # --max-problems 0 --format=summary: the count of each rule's findings;
  # a warning fails too, so that the document stays clean.
  local out
  if ! out=$(build/tools/bin/node build/tools/node_modules/.bin/redocly lint --extends=recommended \
               --format=summary docs/openapi.json 2>&1); then
    build/tools/bin/node build/tools/node_modules/.bin/redocly lint --extends=recommended docs/openapi.json
    return 1
  fi
  if grep -Eq '^(warning|error) ' <<<"$out"; then
    build/tools/bin/node build/tools/node_modules/.bin/redocly lint --extends=recommended docs/openapi.json
    echo "lint: docs/openapi.json has warnings" >&2
    return 1
  fi
  if ! command -v systemd-analyze >/dev/null; then
    echo "lint: contrib/aop.service not checked: no systemd-analyze here"
    return 0
  fi
  echo "lint: contrib/aop.service (systemd-analyze verify)"
  # verify wants ExecStart's binary to exist: point it at this build.
  local unit bin=/bin/true
  for b in build/aop build/test/aop; do [ -x "$b" ] && bin=$PWD/$b && break; done
  unit=$(mktemp -d "${TMPDIR:-/tmp}/aop-unit.XXXXXX")
  sed "s|/usr/local/bin/aop|$bin|g" contrib/aop.service >"$unit/aop.service"
  local rc=0
  systemd-analyze verify --man=no "$unit/aop.service" || rc=1
  rm -rf "$unit"
  return $rc
}

# The lint needs no database: run it before starting any.
if [ "${parts[0]}" = lint ]; then
  lint
  parts=("${parts[@]:1}")
  [ ${#parts[@]} -eq 0 ] && exit 0
fi

# The browser tests need neither PostgreSQL nor Redis and use another core
# than the API tests most of the time: with other parts they start now, in
# the background, and are waited for at the end.
console_pid=""
console_log=""
if [ ${#parts[@]} -gt 1 ] && [[ " ${parts[*]} " == *" console "* ]]; then
  rest=()
  for p in "${parts[@]}"; do [ "$p" = console ] || rest+=("$p"); done
  parts=("${rest[@]}")
  console_log=$(mktemp "${TMPDIR:-/tmp}/aop-test-console.XXXXXX")
  make --no-print-directory console-test >"$console_log" 2>&1 &
  console_pid=$!
fi

# Waits for the background browser tests, prints their output; their status.
console_wait() {
  [ -n "$console_pid" ] || return 0
  local rc=0
  wait "$console_pid" || rc=$?
  console_pid=""
  echo "console (browser tests, run beside the others):"
  cat "$console_log"
  rm -f "$console_log"
  return $rc
}

svc=$(mktemp -d "${TMPDIR:-/tmp}/aop-test-services.XXXXXX")
cleanup() {
  console_wait || true
  scripts/services.sh stop "$svc" || true
  rm -rf "$svc"
}
trap cleanup EXIT
while IFS='=' read -r k v; do
  export "$k=$v"
done < <(scripts/services.sh start "$svc")
export AOP_TEST_PG_URL=$AOP_PG_URL AOP_TEST_REDIS_URL=$AOP_REDIS_URL
export AOP_TEST_REQUIRE_SERVICES=1

for p in "${parts[@]}"; do
  case "$p" in
    unit)
      make --no-print-directory unit
      tests/unit/check_runner.sh build/test/unit
      ;;
    sqlite) AOP_TEST_BACKEND=sqlite make --no-print-directory api ;;
    pg) AOP_TEST_BACKEND=pg make --no-print-directory api ;;
    tsan-unit) make --no-print-directory tsan-unit ;;
    tsan-sqlite) AOP_TEST_BACKEND=sqlite make --no-print-directory tsan-api ;;
    tsan-pg) AOP_TEST_BACKEND=pg make --no-print-directory tsan-api ;;
    lint) lint ;;
    console) make --no-print-directory console-test ;;
    *) echo "unknown part: $p (lint, unit, sqlite, pg, console, tsan, tsan-unit, tsan-sqlite, tsan-pg)" >&2
       exit 2 ;;
  esac
done

console_wait
