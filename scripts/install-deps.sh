#!/usr/bin/env bash
# Installs the Debian packages AOP needs, only those that are absent.
#   scripts/install-deps.sh build   libraries and tools to build and run `aop`
#   scripts/install-deps.sh test    the above plus what `make test` needs
#   scripts/install-deps.sh bench   build, the servers, and what `make bench` needs
#   scripts/install-deps.sh cluster build plus the PostgreSQL and Redis servers (`make run-cluster`)
#   scripts/install-deps.sh tsan    test plus gcc's ThreadSanitizer runtime (`make tsan`)
#   scripts/install-deps.sh fuzz    build plus clang and libFuzzer for `make fuzz`
# Several sets at once install in one go: scripts/install-deps.sh test tsan fuzz (CI).
set -euo pipefail

build_pkgs=(gcc make pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libhiredis-dev
            libssl-dev zlib1g-dev libcrypt-dev libjwt-dev libcurl4-openssl-dev tzdata)
service_pkgs=(postgresql redis-server redis-tools python3)
test_pkgs=(python3 python3-pytest python3-requests python3-jwt python3-bcrypt
           python3-psycopg2 python3-redis "${service_pkgs[@]}")
bench_pkgs=(wrk curl nginx-light python3 python3-requests "${service_pkgs[@]}")
tsan_pkgs=(libtsan2 "${test_pkgs[@]}")
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
for set in "${@:-build}"; do
  case "$set" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    tsan) want+=("${tsan_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    cluster) want+=("${service_pkgs[@]}") ;;
    fuzz) want+=("${fuzz_pkgs[@]}") ;;
    *) echo "usage: $0 build|test|tsan|bench|cluster|fuzz..." >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# The project starts its own PostgreSQL servers (scripts/services.sh): keep
# the package from creating and starting a system-wide cluster.
if [[ " ${missing[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  $sudo mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
