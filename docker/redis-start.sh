#!/bin/sh
# Start Redis with a password, so `docker compose up` needs no hand-made .env.
#
#   redis-start.sh PASSWORD_FILE COMMAND [ARG...]
#
# The password is REDIS_PASSWORD when set; otherwise the one kept in PASSWORD_FILE (a volume
# shared with the verifier, read-only there); otherwise 32 random bytes in hex, generated now and
# kept there for every later start. It is written to PASSWORD_FILE each start (so changing
# REDIS_PASSWORD reaches the verifier too), owned by REDIS_PASSWORD_OWNER (the verifier's
# service user) with mode 0400: no other uid (Lean's included) can read it. Then COMMAND runs
# with `--requirepass PASSWORD` appended.
set -eu

file=$1
shift

if [ -n "${REDIS_PASSWORD:-}" ]; then
    password=$REDIS_PASSWORD
elif [ -s "$file" ]; then
    password=$(cat "$file")
else
    password=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
    echo "redis-start: generated a Redis password in $file (set REDIS_PASSWORD to choose one)" >&2
fi
case "$password" in
    *[!A-Za-z0-9._~-]*)
        echo "redis-start: REDIS_PASSWORD must use URL-safe characters (A-Z a-z 0-9 . _ ~ -)" >&2
        exit 2
        ;;
esac

umask 077
mkdir -p "$(dirname "$file")"
printf '%s' "$password" >"$file.new"
if [ -n "${REDIS_PASSWORD_OWNER:-}" ]; then
    chown "$REDIS_PASSWORD_OWNER" "$file.new"
fi
chmod 0400 "$file.new"
mv -f "$file.new" "$file"
unset REDIS_PASSWORD

exec "$@" --requirepass "$password"
