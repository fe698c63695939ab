#!/usr/bin/env bash
# make test-container: builds the Dockerfile's image with podman and runs it
# as an operator would: start it on a fresh volume, wait for its HEALTHCHECK,
# register, create and execute a workflow, load the web console, stop it
# (SIGTERM: exit 0), start a new container on the same volume and find the
# account, the workflow and the execution still there. Minutes long (a base
# image, apt, a build), so not part of `make test`.
#
# No image registry is needed: unless BASE names an image, the base is
# localhost/debian:12-base, made once with debootstrap from the Debian mirror
# this machine's apt uses. Podman runs with runc, host networking and explicit
# ulimits (the defaults are refused in some VMs).
#   BASE=debian:12-slim scripts/test-container.sh    # a registry's base instead
#   KEEP_IMAGE=1 ...                                 # keep localhost/aop:test
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=localhost/aop:test
BASE_IMAGE=${BASE:-localhost/debian:12-base}
PODMAN=(podman --runtime runc)
LIMITS=(--network host --ulimit nofile=1024:1024 --ulimit nproc=1000:1000)
name=aop-test-$$
volume=aop-test-data-$$
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
work=$(mktemp -d "${TMPDIR:-/tmp}/aop-container.XXXXXX")

step() { echo "test-container: $*"; }
fail() {
  echo "test-container: FAILED: $*" >&2
  "${PODMAN[@]}" logs "$name" 2>&1 | tail -30 >&2 || true
  exit 1
}

cleanup() {
  "${PODMAN[@]}" rm -f -t 5 "$name" >/dev/null 2>&1 || true
  "${PODMAN[@]}" volume rm -f "$volume" >/dev/null 2>&1 || true
  [ -n "${KEEP_IMAGE:-}" ] || "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The Debian mirror apt uses here (deb822 or one-line sources).
debian_mirror() {
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'
  } | grep -v security | head -1
}

if [ -z "${BASE:-}" ] && ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt"
  step "building $BASE_IMAGE with debootstrap from $mirror"
  root="$work/rootfs"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  tar -C "$root" -c . | "${PODMAN[@]}" import - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
fi

step "building $IMAGE (base $BASE_IMAGE)"
t0=$SECONDS
"${PODMAN[@]}" build "${LIMITS[@]}" --format docker --build-arg BASE="$BASE_IMAGE" \
  --build-arg COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  -t "$IMAGE" . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; fail "podman build"; }
step "built in $((SECONDS - t0)) s; image size $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE") bytes"

[ "$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")" = aop ] ||
  fail "the image does not run as the aop user"
"${PODMAN[@]}" image inspect --format '{{json .Config.Volumes}}' "$IMAGE" | grep -q /var/lib/aop ||
  fail "the image declares no /var/lib/aop volume"

"${PODMAN[@]}" volume create "$volume" >/dev/null
secret() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
JWT_A=$(secret)
JWT_R=$(secret)
CRED_KEY=$(secret) # production requires it (base64 of 32 bytes)

start() {
  # Without systemd podman cannot time the periodic checks and says so on
  # stderr (kept in podman.log): the test runs the check itself below.
  "${PODMAN[@]}" run -d --name "$name" "${LIMITS[@]}" -v "$volume:/var/lib/aop" \
    -e HOST=127.0.0.1 -e PORT="$port" -e JWT_ACCESS_SECRET="$JWT_A" -e JWT_REFRESH_SECRET="$JWT_R" \
    -e CREDENTIALS_KEY="$CRED_KEY" "$IMAGE" >/dev/null 2>>"$work/podman.log" || { cat "$work/podman.log" >&2; fail "podman run"; }
  for _ in $(seq 1 100); do
    curl -fsS "$url/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "$url/health" >/dev/null || fail "no answer on /health"
  "${PODMAN[@]}" healthcheck run "$name" >/dev/null || fail "the HEALTHCHECK failed"
  [ "$("${PODMAN[@]}" exec "$name" id -u)" != 0 ] || fail "the server runs as root"
}

stop() {
  "${PODMAN[@]}" stop -t 30 "$name" >/dev/null 2>>"$work/podman.log"
  rc=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$name")
  [ "$rc" = 0 ] || fail "the server exited with $rc on SIGTERM"
  "${PODMAN[@]}" rm "$name" >/dev/null 2>>"$work/podman.log"
}

# api METHOD PATH [BODY]: prints "<status> <body>" (token in $TOKEN, if set).
api() {
  local args=(-sS -o "$work/body" -w '%{http_code}' -X "$1" "$url$2" -H 'Content-Type: application/json')
  [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
  [ $# -ge 3 ] && args+=(-d "$3")
  local code
  code=$(curl "${args[@]}")
  echo "$code $(cat "$work/body")"
}
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]);
for k in sys.argv[2].split("."): v=v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True))' "$1" "$2"; }
expect() { # expect STATUS "<status> <body>"
  [ "${2%% *}" = "$1" ] || fail "expected $1, got: $2"
  printf '%s' "${2#* }"
}

step "first start on a fresh volume"
start
email="ops-$$@example.com"
body=$(expect 201 "$(api POST /api/auth/register "{\"email\":\"$email\",\"password\":\"a-long-password\",\"name\":\"Ops\"}")")
TOKEN=$(field "$body" accessToken)
wf=$(expect 201 "$(api POST /api/workflows '{"name":"Greet","status":"active","definition":{"nodes":[{"id":"greet","type":"transform","config":{"output":{"text":"Hello {{input.name}}"}}}]}}')")
wf_id=$(field "$wf" id)
run=$(expect 200 "$(api POST "/api/workflows/$wf_id/execute" '{"input":{"name":"Ada"},"wait":true}')")
exec_id=$(field "$run" id)
[ "$(field "$run" status)" = succeeded ] || fail "execution: $run"
[ "$(field "$run" output.greet.text)" = "Hello Ada" ] || fail "execution output: $run"
step "registered, ran workflow $wf_id: execution $exec_id succeeded"
page=$(curl -fsS "$url/console/workflows") || fail "no console at /console/workflows"
grep -q '<div id="app">' <<<"$page" || fail "the console's page: $page"
app=$(grep -o '/console/assets/[0-9a-f]*/app.js' <<<"$page") || fail "the page names no app.js"
curl -fsS -o /dev/null "$url$app" || fail "the console's $app"
step "the web console is served (its page and $app)"
stop

step "second start on the same volume"
TOKEN=
start
body=$(expect 200 "$(api POST /api/auth/login "{\"email\":\"$email\",\"password\":\"a-long-password\"}")")
TOKEN=$(field "$body" accessToken)
again=$(expect 200 "$(api GET "/api/executions/$exec_id")")
[ "$(field "$again" status)" = succeeded ] && [ "$(field "$again" output.greet.text)" = "Hello Ada" ] ||
  fail "the execution did not survive the restart: $again"
wf2=$(expect 200 "$(api GET "/api/workflows/$wf_id")")
[ "$(field "$wf2" name)" = Greet ] || fail "the workflow did not survive the restart: $wf2"
stop

step "passed: the account, the workflow and the execution survived a restart on the volume"
