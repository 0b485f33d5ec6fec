#!/bin/sh
# collect.sh SRC BUILD OUT - what the image ships, gathered from a CMake build:
#   OUT/libexec/NAME          every services/NAME binary, and the tools/ ones
#                             that were built (stripped)
#   OUT/share/scripts/migrate.sh, OUT/share/lib/migrations, and
#   OUT/share/services/NAME/migrations   the schema migrations
#   OUT/runtime-packages.txt  the Debian packages of their shared libraries
# A services/NAME folder whose binary was not built is an error.
set -eu
[ $# -eq 3 ] || { echo "usage: collect.sh SRC BUILD OUT" >&2; exit 2; }
src=$1 build=$2 out=$3
mkdir -p "$out/libexec" "$out/share/scripts" "$out/share/lib" "$out/share/services"
for dir in "$src"/services/*/; do
    name=$(basename "$dir")
    if [ ! -x "$build/bin/$name" ]; then
        echo "collect.sh: services/$name has no binary in $build/bin" >&2
        exit 1
    fi
    cp "$build/bin/$name" "$out/libexec/$name"
    if [ -d "$dir/migrations" ]; then
        mkdir -p "$out/share/services/$name"
        cp -R "$dir/migrations" "$out/share/services/$name/"
    fi
done
# Command-line tools (tools/NAME.c), when built: `events` follows the events.
for file in "$src"/tools/*.c; do
    [ -e "$file" ] || continue
    name=$(basename "$file" .c)
    if [ -x "$build/bin/$name" ]; then
        cp "$build/bin/$name" "$out/libexec/$name"
    fi
done
if [ -d "$src/lib/migrations" ]; then
    cp -R "$src/lib/migrations" "$out/share/lib/"
fi
cp "$src/scripts/migrate.sh" "$out/share/scripts/migrate.sh"
if command -v strip >/dev/null; then
    strip --strip-unneeded "$out"/libexec/*
fi
sh "$(dirname "$0")/runtime-packages.sh" "$out"/libexec/* >"$out/runtime-packages.txt"
