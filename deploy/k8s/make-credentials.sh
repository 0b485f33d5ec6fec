#!/bin/sh
# make-credentials.sh OVERLAY_DIR - writes OVERLAY_DIR/credentials.env, the
# Secret `elwing-credentials` that overlay generates, with random passwords.
# The database login and the SMTP login come from the environment when set
# (an external database: PGUSER=... PGPASSWORD=... ./make-credentials.sh
# overlays/external-postgres). It never overwrites a file; credentials.env
# is ignored by git. Keys are documented in credentials.env.example.
set -eu
dir=${1:?usage: make-credentials.sh OVERLAY_DIR}
out=$dir/credentials.env
[ -d "$dir" ] || { echo "make-credentials.sh: no folder $dir" >&2; exit 1; }
if [ -e "$out" ]; then
    echo "make-credentials.sh: $out exists; delete it first to make new credentials" >&2
    exit 1
fi
# A letter, then 48 hex digits: safe inside a URL, and nats-server (which
# parses a $VARIABLE's value as a config value) reads it as a string, never
# as a number such as 1e5 or 12k.
rand() { printf 'p%s' "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"; }
nats_password=$(rand)
umask 077
cat >"$out" <<EOT
PGUSER=${PGUSER:-elwing}
PGPASSWORD=${PGPASSWORD:-$(rand)}
NATS_USER=elwing
NATS_PASSWORD=$nats_password
NATS_URL=nats://elwing:$nats_password@nats:4222
NATS_EVENTS_USER=events
NATS_EVENTS_PASSWORD=$(rand)
SMTP_USER=${SMTP_USER:-}
SMTP_PASSWORD=${SMTP_PASSWORD:-}
EOT
echo "wrote $out"
