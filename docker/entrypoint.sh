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
