#!/usr/bin/env bash
# Smoke test of the verifier image on a real Docker engine, without Lean.
#
#   sudo deploy/smoke.sh          # or as a user of a running engine (DOCKER_HOST, docker group)
#
# Builds docker/verifier.Dockerfile with --build-arg LEAN_STAGE=lean-double (everything of the
# real image except the Lean stage: the REPL double stands in for the REPL at the same paths,
# users and permissions) and starts it as docker-compose.yml does (the options are read from
# that file by deploy/compose_args.py: user, environment, security options, memory limit,
# health check, the read-only password volume), with Redis started the same way. Then:
#   - the service becomes healthy and ready, with Redis as its cache;
#   - `sieve-verifier selftest` over HTTP and `sieve-verifier selftest --sandbox` inside the
#     container: every verdict right, 0 escapes;
#   - with Docker's defaults instead of the compose security options, the service refuses to
#     start and names the fix;
#   - uid mode (SIEVE_LEAN_SANDBOX=uid, user "0"): the same two selftests pass;
#   - the Redis password was generated on first start, kept, and given to both.
# It prints a table and exits 0 only if every check holds; 77 when no engine can be had.
#
# No registry needed: when the base image cannot be pulled, it is made with debootstrap (root)
# and `docker import`; Python packages come from PyPI through a local index of wheels
# downloaded on the host first (so the build needs no TLS to PyPI from inside). When no engine
# answers and this runs as root, it starts its own dockerd (data under the cache directory, no
# iptables, no bridge) and stops it again; it never stops anything it did not start.
#
# Environment: SIEVE_SMOKE_CACHE (default ~/.cache/sieve-smoke: base image tarball, wheels and
# the started engine's data, so a second run reuses every layer), SIEVE_SMOKE_KEEP=1 (leave the
# containers and images), SIEVE_SMOKE_INDEX_PORT (default 38417), DOCKER (the CLI).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CACHE=${SIEVE_SMOKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sieve-smoke}
PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.11-slim-bookworm}
REDIS_IMAGE=${REDIS_IMAGE:-}
IMAGE=sieve-verifier:smoke
BASE_LOCAL=sieve-smoke-base:bookworm
REDIS_LOCAL=sieve-smoke-redis:bookworm
INDEX_PORT=${SIEVE_SMOKE_INDEX_PORT:-38417}
PREFIX=sieve-smoke
DOCKER=${DOCKER:-docker}
START=$(date +%s)

mkdir -p "$CACHE"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sieve-smoke.XXXXXX")
LOG=$WORK/log
: >"$LOG"

STARTED_DOCKERD=""
RUN_DIR=""
CONTAINERS=()
VOLUMES=()
RESULTS=()
FAILED=0

say() { printf '[smoke %4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }

# check NAME OK|FAIL DETAIL: one row of the final table.
check() {
    RESULTS+=("$1"$'\t'"$2"$'\t'"$3")
    [ "$2" = ok ] || FAILED=1
    say "$2: $1 ($3)"
}

table() {
    printf '\n%-52s %-5s %s\n' "check" "" "detail"
    printf '%-52s %-5s %s\n' "-----" "" "------"
    local row name result detail
    for row in "${RESULTS[@]}"; do
        IFS=$'\t' read -r name result detail <<<"$row"
        printf '%-52s %-5s %s\n' "$name" "$result" "$detail"
    done
    printf '\n%s in %ss\n' "$([ "$FAILED" = 0 ] && echo PASS || echo FAIL)" \
        "$(($(date +%s) - START))"
}

cleanup() {
    local status=$?
    set +e
    if [ "${SIEVE_SMOKE_KEEP:-0}" != 1 ]; then
        for c in "${CONTAINERS[@]}"; do $DOCKER rm -f "$c" >/dev/null 2>&1; done
        for v in "${VOLUMES[@]}"; do $DOCKER volume rm -f "$v" >/dev/null 2>&1; done
    fi
    if [ -n "$STARTED_DOCKERD" ]; then
        say "stopping the dockerd this run started (pid $STARTED_DOCKERD)"
        kill "$STARTED_DOCKERD" 2>/dev/null
        for _ in $(seq 60); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
        # dockerd leaves its default network namespace mounted under the exec root
        awk -v dir="$RUN_DIR/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r mount; do umount "$mount"; done
        rm -rf "$RUN_DIR"
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() {
    say "SKIP: $*"
    exit 77
}

# --- 1. an engine ---------------------------------------------------------------------------------
engine_up() { $DOCKER info >/dev/null 2>&1; }

if ! command -v "$DOCKER" >/dev/null 2>&1; then
    skip "no docker CLI (install docker.io or Docker Engine)"
fi
if engine_up; then
    check "engine" ok "$($DOCKER version --format '{{.Server.Version}}' 2>/dev/null) (running)"
else
    if [ "$(id -u)" != 0 ]; then skip "no Docker engine answers and this is not root"; fi
    if ! command -v dockerd >/dev/null 2>&1; then skip "no engine answers and dockerd is absent"; fi
    RUN_DIR=/run/sieve-smoke-$$
    mkdir -p "$RUN_DIR" "$CACHE/docker"
    export DOCKER_HOST="unix://$RUN_DIR/docker.sock"
    say "starting dockerd (data root $CACHE/docker)"
    dockerd --iptables=false --ip-forward=false --bridge=none --data-root "$CACHE/docker" \
        --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.pid" --host "$DOCKER_HOST" \
        >"$WORK/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 60); do
        engine_up && break
        kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
        sleep 1
    done
    if ! engine_up; then
        tail -n 20 "$WORK/dockerd.log" >&2 || true
        skip "dockerd did not start (log above)"
    fi
    check "engine" ok "$($DOCKER version --format '{{.Server.Version}}') (started by this run)"
fi

# BuildKit builds only the stages the image uses (the Lean stage is never built). Docker >= 23
# uses it through buildx; the 20.10 CLI has it built in. A newer CLI without buildx cannot.
BUILD_CLI=""
for cli in "$DOCKER" /usr/bin/docker; do
    command -v "$cli" >/dev/null 2>&1 || continue
    if $cli buildx version >/dev/null 2>&1; then BUILD_CLI=$cli; break; fi
    version=$($cli version --format '{{.Client.Version}}' 2>/dev/null || echo 99)
    if [ "${version%%.*}" -lt 23 ] 2>/dev/null; then BUILD_CLI=$cli; break; fi
done
if [ -z "$BUILD_CLI" ]; then
    skip "no BuildKit: install the buildx plugin (docker-buildx) or use a Docker 20.10 CLI"
fi

# The compose file names the AppArmor profile; where the kernel enforces AppArmor, Docker refuses
# to start the container until the profile is loaded (a host step, see README and docs/sandbox-and-docker.md).
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] &&
    [ -z "${VERIFIER_APPARMOR_PROFILE:-}" ] && [ -r /sys/kernel/security/apparmor/profiles ] &&
    ! grep -qs '^sieve-verifier ' /sys/kernel/security/apparmor/profiles; then
    check "AppArmor profile loaded" FAIL \
        "load it first: sudo apparmor_parser -r -W docker/apparmor/sieve-verifier"
    table
    exit 1
fi

# --- 2. the base image ----------------------------------------------------------------------------
has_image() { $DOCKER image inspect "$1" >/dev/null 2>&1; }

base_from_debootstrap() {
    local tarball=$CACHE/base-bookworm.tar
    if [ ! -s "$tarball" ]; then
        [ "$(id -u)" = 0 ] || skip "$PYTHON_IMAGE cannot be pulled and debootstrap needs root"
        command -v debootstrap >/dev/null 2>&1 || skip "$PYTHON_IMAGE cannot be pulled; no debootstrap"
        local rootfs=$WORK/rootfs
        say "making the base with debootstrap (Debian 12 + python3, pip)"
        nice debootstrap --variant=minbase \
            --include=python3,python3-pip,python3-venv,ca-certificates \
            bookworm "$rootfs" http://deb.debian.org/debian >>"$LOG" 2>&1
        # As the python image has it: `python` and `pip` on PATH, installing system-wide.
        ln -sf python3 "$rootfs/usr/bin/python"
        rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
        tar -C "$rootfs" -cf "$tarball.new" . && mv "$tarball.new" "$tarball"
        rm -rf "$rootfs"
    fi
    $DOCKER import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
        "$tarball" "$BASE_LOCAL" >>"$LOG"
}

if has_image "$PYTHON_IMAGE" || $DOCKER pull -q "$PYTHON_IMAGE" >>"$LOG" 2>&1; then
    BASE=$PYTHON_IMAGE
    check "base image" ok "$BASE"
else
    BASE=$BASE_LOCAL
    if has_image "$BASE"; then
        check "base image" ok "$BASE (cached; $PYTHON_IMAGE cannot be pulled)"
    else
        base_from_debootstrap
        check "base image" ok "$BASE (debootstrap + docker import; $PYTHON_IMAGE cannot be pulled)"
    fi
fi

# --- 3. wheels, served on 127.0.0.1 as a package index ----------------------------------------------
# Downloaded by pip in the base image itself (its Python decides which wheels fit), trusting the
# host's CA bundle (a TLS-inspecting proxy's CA included), then served by the base image on
# 127.0.0.1: the build's `pip install` then needs nothing from outside.
INDEX_ARGS=()
INDEX_NAME=$PREFIX-index
mkdir -p "$CACHE/wheels"
ca_args=()
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -s "$bundle" ]; then
        ca_args=(-v "$bundle:/smoke/ca.crt:ro" -e PIP_CERT=/smoke/ca.crt)
        break
    fi
done
say "downloading wheels for .[verifier] in $BASE (cached in $CACHE/wheels)"
if nice $DOCKER run --rm --network host "${ca_args[@]}" -e PIP_DISABLE_PIP_VERSION_CHECK=1 \
    -v "$ROOT/pyproject.toml:/smoke/src/pyproject.toml:ro" \
    -v "$ROOT/README.md:/smoke/src/README.md:ro" \
    -v "$ROOT/verifier_service:/smoke/src/verifier_service:ro" \
    -v "$CACHE/wheels:/smoke/wheels" "$BASE" sh -c \
    'cp -r /smoke/src /tmp/src && pip download -q --only-binary=:all: --dest /smoke/wheels \
        "/tmp/src[verifier]" "setuptools>=68"' >>"$LOG" 2>&1; then
    $DOCKER rm -f "$INDEX_NAME" >/dev/null 2>&1 || true
    CONTAINERS+=("$INDEX_NAME")
    $DOCKER run -d --name "$INDEX_NAME" --network host -v "$CACHE/wheels:/smoke/wheels:ro" \
        "$BASE" python3 -c '
import http.server, re, sys
from pathlib import Path
index = Path("/tmp/index/simple")
for wheel in sorted(Path("/smoke/wheels").glob("*.whl")):
    page = index / re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    page.mkdir(parents=True, exist_ok=True)
    (page / wheel.name).symlink_to(wheel)
    with (page / "index.html").open("a") as out:
        out.write(f"<a href=\"{wheel.name}\">{wheel.name}</a>\n")
handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory="/tmp/index")
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
' "$INDEX_PORT" >>"$LOG"
    INDEX_ARGS=(--build-arg "PIP_INDEX_URL=http://127.0.0.1:$INDEX_PORT/simple/")
else
    tail -n 5 "$LOG" >&2
    say "wheel download failed; the build will use PyPI"
fi

# --- 4. the image (and a Redis where redis:7-alpine cannot be pulled) ----------------------------
say "building $IMAGE (LEAN_STAGE=lean-double) with $BUILD_CLI"
build_start=$(date +%s)
if DOCKER_BUILDKIT=1 nice $BUILD_CLI build --network host -f docker/verifier.Dockerfile \
    --build-arg LEAN_STAGE=lean-double --build-arg "PYTHON_IMAGE=$BASE" "${INDEX_ARGS[@]}" \
    -t "$IMAGE" . >>"$LOG" 2>&1; then
    check "image builds without Lean" ok "$IMAGE, $(($(date +%s) - build_start)) s"
else
    tail -n 40 "$LOG" >&2
    check "image builds without Lean" FAIL "build failed (log above)"
    table
    exit 1
fi
$DOCKER rm -f "$INDEX_NAME" >/dev/null 2>&1 || true

if [ -z "$REDIS_IMAGE" ]; then
    if has_image redis:7-alpine || $DOCKER pull -q redis:7-alpine >>"$LOG" 2>&1; then
        REDIS_IMAGE=redis:7-alpine
    else
        # Debian's Redis 7 with a docker-entrypoint.sh that drops to the redis user, as the
        # official image's does.
        printf '%s\n' \
            "FROM $BASE" \
            'RUN apt-get update && apt-get install -y --no-install-recommends redis-server \' \
            ' && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data \' \
            " && printf '%s\\n' '#!/bin/sh' 'exec setpriv --reuid=redis --regid=redis --init-groups \"\$@\"' \\" \
            '      > /usr/local/bin/docker-entrypoint.sh && chmod 0755 /usr/local/bin/docker-entrypoint.sh' \
            'WORKDIR /data' >"$WORK/redis.Dockerfile"
        DOCKER_BUILDKIT=1 nice $BUILD_CLI build --network host -f "$WORK/redis.Dockerfile" \
            -t "$REDIS_LOCAL" "$WORK" >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; REDIS_LOCAL=""; }
        REDIS_IMAGE=$REDIS_LOCAL
    fi
fi

# --- 5. containers as compose starts them -----------------------------------------------------------
# compose_args SERVICE [VAR=VALUE...]: the compose file's options for SERVICE, read in the image.
compose_args() {
    local service=$1
    shift
    # Only the given variables (env -i): the image's own ENV must not stand in for the shell's.
    $DOCKER run --rm --network none --entrypoint env \
        -v "$ROOT/docker-compose.yml:/smoke/docker-compose.yml:ro" \
        -v "$ROOT/deploy/compose_args.py:/smoke/compose_args.py:ro" \
        "$IMAGE" -i PATH=/usr/local/bin:/usr/bin:/bin "$@" \
        python3 /smoke/compose_args.py /smoke/docker-compose.yml "$service"
}

# run_service NAME SERVICE NETWORK [compose_args overrides...] -- [extra docker run options]
# Starts SERVICE as compose would; named volumes become $PREFIX-<name>; NETWORK is `none` or
# `container:X` (this engine has no bridge; the services share one network namespace and reach
# each other on 127.0.0.1).
RUN_OPTS=()
RUN_ENTRY=()
RUN_CMD=()
compose_options() {
    local service=$1
    shift
    RUN_OPTS=()
    RUN_ENTRY=()
    RUN_CMD=()
    local line
    local lines
    lines=$(compose_args "$service" "$@") || return 1
    while IFS= read -r line; do
        case "$line" in
            VOLUME:*)
                local spec=${line#VOLUME:}
                VOLUMES+=("$PREFIX-${spec%%:*}")
                RUN_OPTS+=(--volume "$PREFIX-$spec")
                ;;
            BIND:*)
                local spec=${line#BIND:}
                local source=${spec%%:*}
                case "$source" in /*) ;; *) source=$ROOT/${source#./} ;; esac
                RUN_OPTS+=(--volume "$source:${spec#*:}")
                ;;
            SIEVE_ENTRYPOINT:*) mapfile -t RUN_ENTRY < <(json_lines "${line#SIEVE_ENTRYPOINT:}") ;;
            SIEVE_COMMAND:*) mapfile -t RUN_CMD < <(json_lines "${line#SIEVE_COMMAND:}") ;;
            *) RUN_OPTS+=("$line") ;;
        esac
    done <<<"$lines"
}
json_lines() { $DOCKER run --rm --network none --entrypoint python3 "$IMAGE" -c \
    'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$1"; }

wait_healthy() {  # NAME SECONDS: 0 when healthy
    local name=$1 limit=$2 state
    for _ in $(seq "$limit"); do
        state=$($DOCKER inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$name" 2>/dev/null || echo gone)
        case "$state" in
            healthy) return 0 ;;
            exited | dead | gone) return 1 ;;
        esac
        sleep 1
    done
    return 1
}

in_container() { $DOCKER exec -e COLUMNS=200 "$@"; }

ready_json() {  # NAME: /ready's body, from inside the container
    in_container "$1" python3 -c '
import json, sys, urllib.request, urllib.error
for _ in range(120):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:8000/ready", timeout=5).read()
        print(body.decode()); sys.exit(0)
    except urllib.error.HTTPError as e:
        last = e.read().decode()
    except OSError as e:
        last = str(e)
    import time; time.sleep(1)
print(last); sys.exit(1)'
}

# Redis, as compose starts it (its password: generated, kept in the redis-password volume).
REDIS_NAME=$PREFIX-redis
$DOCKER rm -f "$REDIS_NAME" "$PREFIX-verifier" "$PREFIX-defaults" "$PREFIX-uid" >/dev/null 2>&1 || true
$DOCKER volume rm -f "$PREFIX-redis-data" "$PREFIX-redis-password" >/dev/null 2>&1 || true
NET=none
if [ -n "$REDIS_IMAGE" ]; then
    compose_options redis
    CONTAINERS+=("$REDIS_NAME")
    entry=("${RUN_ENTRY[@]}")
    $DOCKER run -d --name "$REDIS_NAME" --network none "${RUN_OPTS[@]}" \
        --entrypoint "${entry[0]}" "$REDIS_IMAGE" "${entry[@]:1}" "${RUN_CMD[@]}" >>"$LOG"
    if wait_healthy "$REDIS_NAME" 60; then
        check "redis healthy (generated password)" ok "$REDIS_IMAGE"
    else
        $DOCKER logs "$REDIS_NAME" 2>&1 | tail -n 20 >&2
        check "redis healthy (generated password)" FAIL "$REDIS_IMAGE did not become healthy"
    fi
    NET=container:$REDIS_NAME
    REDIS_URL_OVERRIDE=(SIEVE_REDIS_URL=redis://127.0.0.1:6379/0)
else
    check "redis healthy (generated password)" FAIL "no Redis image could be had"
    REDIS_URL_OVERRIDE=()
fi

# start_verifier NAME [compose overrides...] -- [docker run options...]
start_verifier() {
    local name=$1
    shift
    local overrides=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do overrides+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    compose_options verifier "${REDIS_URL_OVERRIDE[@]}" "${overrides[@]}"
    CONTAINERS+=("$name")
    $DOCKER rm -f "$name" >/dev/null 2>&1 || true
    $DOCKER run -d --name "$name" --network "$NET" "${RUN_OPTS[@]}" "$@" "$IMAGE" >>"$LOG"
}

selftests() {  # NAME LABEL [docker exec options]
    local name=$1 label=$2
    shift 2
    local ready
    if ready=$(ready_json "$name"); then
        local backend
        backend=$(printf '%s' "$ready" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("cache_backend"))' 2>/dev/null || echo "?")
        if [ -n "$REDIS_IMAGE" ] && [ "$backend" != redis ]; then
            check "$label: ready, Redis cache" FAIL "cache backend $backend: $ready"
        else
            check "$label: ready, Redis cache" ok "cache_backend=$backend"
        fi
    else
        check "$label: ready, Redis cache" FAIL "$ready"
    fi
    local out=$WORK/$name.selftest
    if in_container "$@" "$name" sieve-verifier selftest --url http://127.0.0.1:8000 \
        --wait-ready 120 >"$out" 2>&1; then
        check "$label: selftest over HTTP" ok "$(grep -o '[0-9]*/[0-9]* verdicts right.*accepted [0-9]*' "$out" | head -n 1)"
    else
        cat "$out" >&2
        check "$label: selftest over HTTP" FAIL "$(tail -n 1 "$out")"
    fi
    out=$WORK/$name.sandbox
    if in_container "$@" "$name" sieve-verifier selftest --sandbox >"$out" 2>&1; then
        check "$label: selftest --sandbox" ok "$(grep -E 'sandbox holds|escaped' "$out" | tail -n 1)"
    else
        cat "$out" >&2
        check "$label: selftest --sandbox" FAIL "$(grep -E 'escaped|cannot' "$out" | tail -n 1)"
    fi
    cat "$WORK/$name.sandbox" >&2
}

service_identity() {  # NAME LABEL CAPEFF: the `serve` process runs as sieve with exactly CAPEFF
    local found
    found=$(in_container "$1" python3 -c '
from pathlib import Path
for proc in Path("/proc").iterdir():
    try:
        cmd = (proc / "cmdline").read_bytes().split(b"\0")
        if b"serve" in cmd and any(part.endswith(b"/sieve-verifier") for part in cmd):
            status = dict(l.split(":\t", 1) for l in (proc / "status").read_text().splitlines() if ":\t" in l)
            print(status["Uid"].split()[0], status["CapEff"].strip(), status["CapBnd"].strip())
            break
    except OSError:
        pass
' 2>&1)
    if [ "${found% *}" = "10000 $3" ]; then
        check "$2: service is uid 10000, CapEff $3" ok "uid, CapEff, CapBnd: $found"
    else
        check "$2: service is uid 10000, CapEff $3" FAIL "uid, CapEff, CapBnd: $found"
    fi
}

# 5a. bwrap mode, exactly as compose starts it.
say "starting the verifier as docker-compose.yml does (bwrap)"
start_verifier "$PREFIX-verifier"
up_start=$(date +%s)
if wait_healthy "$PREFIX-verifier" 180; then
    check "bwrap: container healthy" ok "$(($(date +%s) - up_start)) s after start"
    selftests "$PREFIX-verifier" bwrap
    service_identity "$PREFIX-verifier" bwrap 0000000000000000
else
    $DOCKER logs "$PREFIX-verifier" 2>&1 | tail -n 30 >&2
    check "bwrap: container healthy" FAIL "not healthy in 180 s (log above)"
fi

# 5b. Docker's defaults: no seccomp=unconfined, no systempaths=unconfined. It must refuse.
say "starting the verifier with Docker's default security options"
compose_options verifier "${REDIS_URL_OVERRIDE[@]}"
defaults=()
for option in "${RUN_OPTS[@]}"; do
    case "$option" in --security-opt=seccomp=* | --security-opt=systempaths=*) ;; *) defaults+=("$option") ;; esac
done
CONTAINERS+=("$PREFIX-defaults")
$DOCKER run -d --name "$PREFIX-defaults" --network "$NET" "${defaults[@]}" "$IMAGE" >>"$LOG"
status=timeout
for _ in $(seq 90); do
    if [ "$($DOCKER inspect -f '{{.State.Status}}' "$PREFIX-defaults" 2>/dev/null)" = exited ]; then
        status=$($DOCKER inspect -f '{{.State.ExitCode}}' "$PREFIX-defaults")
        break
    fi
    sleep 1
done
logs=$($DOCKER logs "$PREFIX-defaults" 2>&1 || true)
if [ "$status" != timeout ] && [ "$status" != 0 ] &&
    grep -q 'seccomp=unconfined' <<<"$logs" && grep -q 'systempaths=unconfined' <<<"$logs"; then
    check "defaults: refuses to start, names the fix" ok "exit $status; names seccomp=unconfined, systempaths=unconfined"
else
    printf '%s\n' "$logs" | tail -n 20 >&2
    check "defaults: refuses to start, names the fix" FAIL "exit status $status"
fi
$DOCKER rm -f "$PREFIX-defaults" >/dev/null 2>&1 || true

# 5c. uid mode as docs/sandbox-and-docker.md describes it: SIEVE_LEAN_SANDBOX=uid and user "0".
say "starting the verifier in uid mode (user 0)"
$DOCKER rm -f "$PREFIX-verifier" >/dev/null 2>&1 || true
start_verifier "$PREFIX-uid" SIEVE_LEAN_SANDBOX=uid -- --user 0
up_start=$(date +%s)
if wait_healthy "$PREFIX-uid" 180; then
    check "uid: container healthy" ok "$(($(date +%s) - up_start)) s after start"
    selftests "$PREFIX-uid" uid
    # CAP_KILL, CAP_SETGID, CAP_SETUID (bits 5, 6, 7) and nothing else
    service_identity "$PREFIX-uid" uid 00000000000000e0
    if grep -q 'not isolated in uid mode' "$WORK/$PREFIX-uid.sandbox" 2>/dev/null; then
        check "uid: table shows what uid mode leaves open" ok "network reachable, marked as such"
    else
        check "uid: table shows what uid mode leaves open" FAIL "no 'not isolated in uid mode' row"
    fi
else
    $DOCKER logs "$PREFIX-uid" 2>&1 | tail -n 30 >&2
    check "uid: container healthy" FAIL "not healthy in 180 s (log above)"
fi

# 5d. The Redis password: generated once, kept in the volume, readable by the service user only.
if [ -n "$REDIS_IMAGE" ]; then
    pw_stat=$($DOCKER exec "$REDIS_NAME" stat -c '%u:%g %a %s' /run/sieve-redis/password 2>&1 || true)
    first=$($DOCKER exec "$REDIS_NAME" cat /run/sieve-redis/password 2>/dev/null || true)
    $DOCKER restart "$REDIS_NAME" >/dev/null 2>&1 || true
    wait_healthy "$REDIS_NAME" 60 || true
    second=$($DOCKER exec "$REDIS_NAME" cat /run/sieve-redis/password 2>/dev/null || true)
    if [ "$pw_stat" = "10000:10000 400 64" ] && [ -n "$first" ] && [ "$first" = "$second" ]; then
        check "redis password generated and kept" ok "64 hex chars, 10000:10000 0400, same after restart"
    else
        check "redis password generated and kept" FAIL "file: $pw_stat; kept: $([ "$first" = "$second" ] && echo yes || echo no)"
    fi
fi

table
[ "$FAILED" = 0 ]
