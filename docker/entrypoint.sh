#!/bin/sh
# Export the versions recorded when the image was built (Lean toolchain, Mathlib and REPL
# revisions; computed then, so they cannot be plain ENV lines), then run the command.
# A variable already set (docker run -e, compose) wins over the recorded value.
#
# Started as root (user: "0", runAsUser: 0), it never runs the service as root: it switches to
# SERVICE_USER (default `sieve`). With SIEVE_LEAN_SANDBOX=uid the service keeps exactly three
# capabilities (CAP_SETUID, CAP_SETGID: start Lean as the `lean` user; CAP_KILL: kill it again),
# which it clears for Lean before exec; otherwise it keeps none.
set -eu

BUILD_ENV=${BUILD_ENV_FILE:-/etc/sieve/build.env}

if [ -r "$BUILD_ENV" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            '' | '#'*) continue ;;
        esac
        name=${line%%=*}
        if ! printenv "$name" >/dev/null 2>&1; then
            export "$line"
        fi
    done <"$BUILD_ENV"
fi

# docker-compose.yml: the Redis password lives in a file the redis service writes (REDIS_PASSWORD,
# or one generated on its first start and kept in a volume). A SIEVE_REDIS_URL without a password
# gets it here, so the operator never has to write one down. The file is the service user's
# alone (mode 0400): Lean, another uid, cannot read it.
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    waited=0
    while [ ! -s "$REDIS_PASSWORD_FILE" ] && [ "$waited" -lt "${REDIS_PASSWORD_WAIT_S:-30}" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    case "${SIEVE_REDIS_URL:-}" in
        '' | *://*@*) ;;
        *://*)
            if [ -s "$REDIS_PASSWORD_FILE" ]; then
                password=$(cat "$REDIS_PASSWORD_FILE")
                SIEVE_REDIS_URL="${SIEVE_REDIS_URL%%://*}://:${password}@${SIEVE_REDIS_URL#*://}"
                export SIEVE_REDIS_URL
                unset password
            else
                echo "sieve-entrypoint: no Redis password in $REDIS_PASSWORD_FILE;" \
                    "serving without the Redis cache" >&2
                unset SIEVE_REDIS_URL
            fi
            ;;
    esac
    unset REDIS_PASSWORD_FILE
fi

if [ "$(id -u)" = 0 ]; then
    user=${SERVICE_USER:-sieve}
    uid=$(id -u "$user")
    gid=$(id -g "$user")
    if [ "${SIEVE_LEAN_SANDBOX:-}" = uid ]; then
        caps=-all,+setuid,+setgid,+kill
        exec setpriv --reuid="$uid" --regid="$gid" --init-groups \
            --inh-caps="$caps" --ambient-caps="$caps" --bounding-set="$caps" -- "$@"
    fi
    exec setpriv --reuid="$uid" --regid="$gid" --init-groups \
        --inh-caps=-all --bounding-set=-all -- "$@"
fi

exec "$@"
