#!/bin/sh
# The image's entrypoint: `elwing NAME [args]` runs one binary (gateway,
# tracker, library, ...: whatever the image was built with), `elwing migrate`
# applies the schema migrations once PostgreSQL answers (PGHOST, PGPORT,
# PGUSER, PGPASSWORD, PGDATABASE from the environment).
set -eu
libexec=${ELWING_LIBEXEC:-/usr/local/libexec/elwing}
share=${ELWING_SHARE:-/usr/local/share/elwing}

usage() {
    echo "usage: elwing NAME [--config] | elwing migrate" >&2
    printf 'NAME: %s\n' "$(ls "$libexec" | tr '\n' ' ')" >&2
}

name=${1:-}
case $name in
    migrate)
        # Wait for the database (the first start of an in-cluster PostgreSQL
        # runs initdb), then migrate; the Job retries if this fails.
        waited=0
        until pg_isready -q -t 2; do
            waited=$((waited + 2))
            if [ "$waited" -ge "${ELWING_DB_WAIT_S:-120}" ]; then
                echo "migrate: PostgreSQL at ${PGHOST:-?}:${PGPORT:-5432} did not answer" >&2
                exit 1
            fi
            sleep 2
        done
        exec "$share/scripts/migrate.sh"
        ;;
    "" | -h | --help | help)
        usage
        [ -n "$name" ]
        exit
        ;;
esac
case $name in
    */* | .*) usage; exit 2 ;;
esac
if [ ! -x "$libexec/$name" ]; then
    echo "elwing: no program '$name' in this image" >&2
    usage
    exit 2
fi
shift
exec "$libexec/$name" "$@"
