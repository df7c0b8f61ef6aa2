#!/bin/bash
# scripts/test.sh - install what is missing, build, and run the whole test
# suite twice: as built normally (make check in _build/), then built with
# AddressSanitizer and UndefinedBehaviorSanitizer and the crash points of
# --enable-fault-injection (make check in _build-sanitize/;
# RELAYQ_SANITIZE=0 skips it). The last line is "N passed, N failed,
# N skipped", counted over every TAP result of both runs; a script that
# fails counts its failed results, not its exit status again.
#
# The first build is the production configuration: there t_crashpoint
# checks that the binaries hold no crash point. The second kills processes
# at each point (t_crashpoint), under the sanitizers, which also watch the
# recovery code that runs after each crash.
#
# In the sanitizer run any address error or undefined behaviour makes the
# process fail, and so its test. Leak detection is off there: a command
# that ends in a fatal error leaves its allocations behind by design;
# leaks are valgrind's job.
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top_srcdir/_build}
SANITIZE_DIR=${SANITIZE_DIR:-$top_srcdir/_build-sanitize}
passed=0
failed=0
skipped=0

# count_results - passed, failed and skipped TAP results of a build
# directory's .trs files. A test script that failed a result also exits
# non-zero, which the driver records as one more ERROR: that ERROR counts
# only for a script with no failed result (a crash, a missing plan).
count_results() {
    find "$1" -name '*.trs' -exec awk '
        /^:test-result: (PASS|XFAIL)/ { p++ }
        /^:test-result: SKIP/ { k++ }
        /^:test-result: (FAIL|XPASS)/ { f++; file_failed[FILENAME] = 1 }
        /^:test-result: ERROR/ { errors[FILENAME]++ }
        END {
            for (name in errors)
                if (!(name in file_failed))
                    f += errors[name]
            printf "%d %d %d\n", p, f, k
        }' {} +
}

# run_suite - build in a directory with configure arguments and run make check
run_suite() {
    local dir=$1 status p f k
    shift
    BUILD_DIR=$dir "$top_srcdir/scripts/build.sh" "$@" || { failed=$((failed + 1)); return 1; }
    (
        cd "$dir" || exit 1
        find . -name '*.trs' -delete
        make -j2 check
    )
    status=$?
    for f in $(find "$dir/tests" -name '*.log' | sort); do
        if grep -q '^not ok' "$f" 2>/dev/null; then
            echo "=== $f"
            grep -B2 -A8 '^not ok' "$f" | head -n 60
        fi
    done
    read -r p f k < <(count_results "$dir")
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    echo "$dir: $p passed, $f failed, $k skipped"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + k))
}

"$top_srcdir/scripts/deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
run_suite "$BUILD_DIR"
if [ "${RELAYQ_SANITIZE:-1}" != 0 ]; then
    # verify_asan_link_order=0: faketime(1), which the golden tests use,
    # preloads itself before the sanitizer runtime.
    ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:abort_on_error=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite "$SANITIZE_DIR" --enable-sanitizers --enable-fault-injection CFLAGS="-g -O1"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
