#!/usr/bin/env bash
# Runs the unit tests and the API tests against both backends: the SQLite
# default, then PostgreSQL + Redis. The servers are the tests' own, started
# here in a temporary directory on free ports and stopped on the way out.
#   scripts/test.sh [unit|sqlite|pg]...   (default: all three, in that order)
set -euo pipefail
cd "$(dirname "$0")/.."

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(unit sqlite pg)

svc=$(mktemp -d "${TMPDIR:-/tmp}/aop-test-services.XXXXXX")
cleanup() {
  scripts/services.sh stop "$svc" || true
  rm -rf "$svc"
}
trap cleanup EXIT
while IFS='=' read -r k v; do
  export "$k=$v"
done < <(scripts/services.sh start "$svc")
export AOP_TEST_PG_URL=$AOP_PG_URL AOP_TEST_REDIS_URL=$AOP_REDIS_URL

for p in "${parts[@]}"; do
  case "$p" in
    unit) make --no-print-directory unit ;;
    sqlite) AOP_TEST_BACKEND=sqlite make --no-print-directory api ;;
    pg) AOP_TEST_BACKEND=pg make --no-print-directory api ;;
    *) echo "unknown part: $p (unit, sqlite, pg)" >&2; exit 2 ;;
  esac
done
