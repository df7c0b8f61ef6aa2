#!/bin/sh
# scripts/build.sh - configure and build relayq out of tree in _build/
# (or $BUILD_DIR). Extra arguments go to configure; a build directory
# configured with other arguments (recorded in .configure-args) is
# configured again, so that a changed option is never silently ignored.
set -e
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top_srcdir/_build}
cd "$top_srcdir"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
mkdir -p "$BUILD_DIR"
cd "$BUILD_DIR"
args=$(printf '%s\n' "$@")
if [ ! -f Makefile ] || [ "$(cat .configure-args 2>/dev/null)" != "$args" ]; then
    "$top_srcdir/configure" "$@"
    printf '%s\n' "$args" >.configure-args
fi
make -j"$(nproc)"
