#!/usr/bin/env bash
# Checks that the unit runner's counts are honest (scripts/test.sh runs this
# after the unit tests):
#   - without AOP_TEST_PG_URL the PostgreSQL variants are reported skipped,
#     not passed, and the run still succeeds;
#   - with AOP_TEST_REQUIRE_SERVICES=1 the same run fails;
#   - a filter that matches no test is refused with exit status 2;
#   - --list with a filter lists only the tests it selects.
#   tests/unit/check_runner.sh [RUNNER]   (default build/test/unit)
set -uo pipefail
cd "$(dirname "$0")/../.."

unit=${1:-build/test/unit}
export ASAN_OPTIONS=detect_leaks=1
out=$(mktemp "${TMPDIR:-/tmp}/aop-check-runner.XXXXXX")
trap 'rm -f "$out"' EXIT
problems=0

bad() {
  echo "check_runner: $*" >&2
  sed 's/^/  | /' "$out" >&2
  problems=$((problems + 1))
}

# The counts on the runner's last line: "P F S".
counts() {
  tail -1 "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p'
}

env -u AOP_TEST_PG_URL -u AOP_TEST_REQUIRE_SERVICES "$unit" store_ >"$out" 2>&1
rc=$?
read -r passed failed skipped <<<"$(counts)"
if [ "$rc" -ne 0 ] || [ "${failed:-x}" != 0 ] || [ "${skipped:-0}" -eq 0 ] ||
   ! grep -q '^skipped [0-9]* in store_tests: AOP_TEST_PG_URL is not set' "$out"; then
  bad "without AOP_TEST_PG_URL: want exit 0, 0 failed and the PostgreSQL tests skipped (exit $rc)"
fi

env -u AOP_TEST_PG_URL AOP_TEST_REQUIRE_SERVICES=1 "$unit" store_ >"$out" 2>&1
rc=$?
read -r passed failed skipped <<<"$(counts)"
if [ "$rc" -eq 0 ] || [ "${failed:-0}" -eq 0 ] || [ "${skipped:-x}" != 0 ]; then
  bad "AOP_TEST_REQUIRE_SERVICES=1 without AOP_TEST_PG_URL: want a failed run, no skips (exit $rc)"
fi

"$unit" store_ no_such_test_ >"$out" 2>&1
rc=$?
if [ "$rc" -ne 2 ] || ! grep -q 'no_such_test_' "$out"; then
  bad "a filter matching nothing: want exit 2 and the filter named (exit $rc)"
fi

"$unit" --list jwt_round >"$out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] || [ ! -s "$out" ] || grep -qv '^jwt_tests jwt_round' "$out"; then
  bad "--list jwt_round: want only jwt_tests' jwt_round* tests (exit $rc)"
fi

[ "$problems" -eq 0 ] && echo "check_runner: skips, required services, filters and --list behave"
exit $((problems > 0))
