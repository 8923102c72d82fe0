#!/bin/sh
# Export the versions recorded when the image was built (Lean toolchain, Mathlib and REPL
# revisions; computed then, so they cannot be plain ENV lines), then run the command.
# A variable already set (docker run -e, compose) wins over the recorded value.
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

exec "$@"
