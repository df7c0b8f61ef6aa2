#!/bin/bash
# scripts/test.sh - install what is missing, build, and run the whole test
# suite (make check); prints "N passed, N failed" as its last line, counted
# over every TAP result of every test program and script.
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top_srcdir/_build}
export BUILD_DIR

"$top_srcdir/scripts/deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
"$top_srcdir/scripts/build.sh" || { echo "0 passed, 1 failed"; exit 1; }

cd "$BUILD_DIR"
find . -name '*.trs' -delete
make -j2 check
status=$?
for f in $(find . -name '*.log' -path './tests/*' | sort); do
    if grep -q '^not ok' "$f" 2>/dev/null; then
        echo "=== $f"
        grep -B2 -A8 '^not ok' "$f" | head -n 60
    fi
done
passed=$(cat $(find . -name '*.trs') /dev/null | grep -Ec '^:test-result: (PASS|XFAIL|SKIP)')
failed=$(cat $(find . -name '*.trs') /dev/null | grep -Ec '^:test-result: (FAIL|XPASS|ERROR)')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
