#!/usr/bin/env bash
# Installs the Debian packages AOP needs, only those that are absent.
#   scripts/install-deps.sh build   libraries and tools to build and run `aop`
#   scripts/install-deps.sh test    the above plus what `make test` needs
#   scripts/install-deps.sh bench   build, the servers, and what `make bench` needs
#   scripts/install-deps.sh cluster build plus the PostgreSQL and Redis servers (`make run-cluster`)
#   scripts/install-deps.sh tsan    test plus gcc's ThreadSanitizer runtime (`make tsan`)
#   scripts/install-deps.sh fuzz    build plus clang and libFuzzer for `make fuzz`
#   scripts/install-deps.sh lint    npm and @redocly/cli (in build/tools), systemd-analyze
#   scripts/install-deps.sh container  podman, runc and debootstrap (`make test-container`)
# `test` includes `lint`: make test lints docs/openapi.json and contrib/aop.service.
# Several sets at once install in one go: scripts/install-deps.sh test tsan fuzz (CI).
set -euo pipefail

build_pkgs=(gcc make pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libhiredis-dev
            libssl-dev zlib1g-dev libcrypt-dev libjwt-dev libcurl4-openssl-dev tzdata)
service_pkgs=(postgresql redis-server redis-tools python3)
lint_pkgs=(systemd)
# chromium, chromium-driver and python3-selenium: the console's browser tests (tests/console/).
test_pkgs=(python3 python3-pytest python3-requests python3-jwt python3-bcrypt
           python3-psycopg2 python3-redis python3-jsonschema chromium chromium-driver
           python3-selenium "${service_pkgs[@]}" "${lint_pkgs[@]}")
bench_pkgs=(wrk curl nginx-light python3 python3-requests valgrind "${service_pkgs[@]}")
tsan_pkgs=(libtsan2 "${test_pkgs[@]}")
fuzz_pkgs=(clang libclang-rt-14-dev)
container_pkgs=(podman runc debootstrap curl python3)

# The OpenAPI linter, pinned: installed from npm into build/tools. It needs
# Node.js 20.19 or later (22.12 or later past 20) where Debian 12 has 18:
# on such a machine a pinned Node.js 22 (LTS) comes from npm too
# (node-linux-<arch>).
# build/tools/bin/node is the one the linter runs on (scripts/test.sh).
REDOCLY_VERSION=2.77.0
NODE_VERSION=22.23.5
redocly=build/tools/node_modules/.bin/redocly

want=("${build_pkgs[@]}")
for set in "${@:-build}"; do
  case "$set" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    tsan) want+=("${tsan_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    cluster) want+=("${service_pkgs[@]}") ;;
    fuzz) want+=("${fuzz_pkgs[@]}") ;;
    lint) want+=("${lint_pkgs[@]}") ;;
    container) want+=("${container_pkgs[@]}") ;;
    *) echo "usage: $0 build|test|tsan|bench|cluster|fuzz|lint|container..." >&2; exit 2 ;;
  esac
done

# npm packages (today only the linter), once the Debian ones are in place.
node_fits() { # NODE: true when it runs the linter
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit(a >= 22 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null
}

npm_tools() {
  case " $* " in *" test "* | *" lint "*) ;; *) return 0 ;; esac
  cd "$(dirname "$0")/.."
  local pkgs=("@redocly/cli@$REDOCLY_VERSION") node=build/tools/bin/node arch
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  mkdir -p build/tools/bin
  if node_fits "$(command -v node || echo node)"; then
    ln -sfn "$(command -v node)" "$node"
  else # one npm install for all: another would prune what the first put there
    pkgs+=("node-linux-$arch@$NODE_VERSION")
    ln -sfn "../node_modules/node-linux-$arch/bin/node" "$node"
  fi
  node_fits "$node" && [ "$("$node" "$redocly" --version 2>/dev/null)" = "$REDOCLY_VERSION" ] &&
    return 0
  echo "installing: ${pkgs[*]} (npm, build/tools)" >&2
  npm install --prefix build/tools --no-save --no-audit --no-fund --loglevel=error \
    "${pkgs[@]}" >/dev/null
}

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# npm: Debian's package, unless the machine already has an npm command
# (a Node.js from elsewhere brings its own, and Debian's would conflict).
case " $* " in
  *" test "* | *" lint "*) command -v npm >/dev/null || missing+=(npm) ;;
esac

if [ ${#missing[@]} -eq 0 ]; then
  npm_tools "${@:-build}"
  exit 0
fi

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
npm_tools "${@:-build}"
