#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each, one after the other, and
# fails when any of them finds something.
#   tests/fuzz/run.sh [SECONDS]      (default: $FUZZ_SECONDS, else 15)
# `make fuzz` builds the targets first and calls this.
#
# The targets are the files tests/fuzz/*.c, each built as build/fuzz/<name>,
# so a new target is run as soon as its file exists. Target <name> starts
# from its seeds in tests/fuzz/corpus/<name>/ (committed; read only) and from
# what earlier runs found in build/fuzz/corpus/<name>/, where new inputs go.
# A target without seeds starts from nothing, and says so.
#
# A crash, a leak, a sanitizer report, an input that runs longer than
# FUZZ_INPUT_TIMEOUT seconds (default 60: only a hang takes that long) or one
# that takes more than 2 GB fails the target: its log is printed and the input
# kept in build/fuzz/artifacts/. Every target runs even after one has failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-${FUZZ_SECONDS:-15}}
input_timeout=${FUZZ_INPUT_TIMEOUT:-60}
mkdir -p build/fuzz/artifacts build/fuzz/logs

shopt -s nullglob
sources=(tests/fuzz/*.c)
if [ ${#sources[@]} -eq 0 ]; then
  echo "fuzz: no targets in tests/fuzz/" >&2
  exit 1
fi

failed=()
for src in "${sources[@]}"; do
  name=$(basename "$src" .c)
  bin=build/fuzz/$name
  seeds=tests/fuzz/corpus/$name
  work=build/fuzz/corpus/$name
  log=build/fuzz/logs/$name.log
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is not built (make fuzz builds every target)" >&2
    failed+=("$name")
    continue
  fi
  mkdir -p "$work"
  dirs=("$work")
  nseeds=0
  if [ -d "$seeds" ]; then
    dirs+=("$seeds")
    nseeds=$(find "$seeds" -type f | wc -l)
  else
    echo "fuzz: $name has no seeds in $seeds/; starting from nothing"
  fi
  "$bin" -max_total_time="$seconds" -timeout="$input_timeout" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$name-" "${dirs[@]}" \
    >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  found=$(find "$work" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-22s ok      %ss, %s runs, %s, %s seeds, %s inputs kept\n' \
      "$name" "$seconds" "${runs:-?}" "${cov:-cov: ?}" "$nseeds" "$found"
  else
    printf 'fuzz: %-22s FAILED  exit %s; log %s, input kept in build/fuzz/artifacts/\n' \
      "$name" "$rc" "$log"
    tail -60 "$log" | sed 's/^/  | /'
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#sources[@]} targets, ${seconds}s each, nothing found"
