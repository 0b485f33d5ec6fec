#!/bin/sh
# runtime-packages.sh BINARY... - the Debian packages holding the shared
# libraries the binaries load (one name a line, sorted), so that the image's
# runtime stage installs exactly those. Fails on a library no package owns.
set -eu
[ $# -gt 0 ] || { echo "usage: runtime-packages.sh BINARY..." >&2; exit 2; }
out=$(ldd "$@") || { echo "runtime-packages.sh: ldd failed" >&2; exit 1; }
libs=$(printf '%s\n' "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
if printf '%s\n' "$out" | grep -q 'not found'; then
    echo "runtime-packages.sh: a library is missing:" >&2
    printf '%s\n' "$out" | grep 'not found' >&2
    exit 1
fi
packages=
for lib in $libs; do
    # dpkg knows a library by the path its package installed, which on a
    # merged-/usr system may be the /lib or the /usr/lib spelling.
    real=$(readlink -f "$lib")
    owner=
    for path in "$lib" "$real" "/usr$real" "${real#/usr}"; do
        # "libssl3:amd64: /usr/lib/x86_64-linux-gnu/libcrypto.so.3"
        owner=$(dpkg-query -S "$path" 2>/dev/null | sed -n '1s/[:,].*//p')
        [ -z "$owner" ] || break
    done
    [ -n "$owner" ] || { echo "runtime-packages.sh: no package owns $lib" >&2; exit 1; }
    packages="$packages $owner"
done
printf '%s\n' $packages | sort -u
