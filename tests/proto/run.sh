#!/usr/bin/env bash
# tests/proto/run.sh - the offline checks of proto/openapi.yaml and
# proto/asyncapi.yaml (check.mjs says which). Installs what it needs when
# missing:
#   node, npm                         Debian packages (nodejs npm), via apt-get
#   @redocly/cli, @asyncapi/parser,   npm, pinned in package-lock.json,
#   ajv, ajv-formats, yaml            `npm ci` into tests/proto/node_modules
# The linters then run with no network: Redocly's telemetry and update
# check are off, its rules come from tests/proto/redocly.yaml only, and the
# AsyncAPI parser follows local $refs only.
# Prints "ok NAME" / "FAIL NAME: why" a check (details on stderr), then
# "N passed, N failed"; exits non-zero on any failure. `run.sh --only WORD`
# runs the checks whose name contains WORD.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
give_up() { # give_up WHY: one failed check, and the summary line
    printf 'FAIL install: %s\n0 passed, 1 failed\n' "$1"
    exit 1
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "proto checks: installing nodejs npm" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
        give_up "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null ||
        give_up "apt-get install nodejs npm failed"
fi
# @redocly/cli 2 wants Node 20.19 or later.
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
         process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    give_up "node $(node --version) is older than 20.19, which @redocly/cli needs"

# npm ci when node_modules is absent or was installed from another lock file.
stamp=$here/node_modules/.installed-package-lock.json
if ! cmp -s "$here/package-lock.json" "$stamp"; then
    echo "proto checks: npm ci in tests/proto" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        give_up "npm ci in tests/proto failed"
    cp "$here/package-lock.json" "$stamp"
fi

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
exec node "$here/check.mjs" "$@"
