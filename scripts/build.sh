#!/bin/sh
# scripts/build.sh - configure and build relayq out of tree in _build/
# (or $BUILD_DIR). Extra arguments go to configure.
set -e
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top_srcdir/_build}
cd "$top_srcdir"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
mkdir -p "$BUILD_DIR"
cd "$BUILD_DIR"
[ -f Makefile ] || "$top_srcdir/configure" "$@"
make -j"$(nproc)"
