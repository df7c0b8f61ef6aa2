#!/bin/bash
# t_fuzz_corpus.sh - every fuzz target over its seeds, and a short fuzzing run
#
# For each tests/fuzz/fuzz_*.c: build it with tests/fuzz/driver.c (a
# main() that feeds each file named to LLVMFuzzerTestOneInput), the
# common/ sources its "fuzz-sources:" lines name and the libraries its
# "fuzz-libs:" lines name, with gcc (or $FUZZ_CC)
# and AddressSanitizer + UndefinedBehaviorSanitizer when they link, and run
# it over tests/fuzz/corpus/TARGET/: the seeds and any crash-* regression
# inputs. Then, when clang links libFuzzer, fuzz each target for
# FUZZ_SECONDS (default 10; 0 skips) on a scratch copy of its corpus and
# fail on any crash, sanitizer report, leak or timeout (bench/fuzz does
# the long runs). TAP output; everything is built and written under one
# temporary directory that is removed on exit.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_fuzz_corpus.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

n=0
failed=0
# ok - one TAP result: ok STATUS DESCRIPTION
ok() {
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
# diag - a file's last lines as TAP comments
diag() {
    tail -n 15 "$1" | sed 's/^/# /'
}
# diag_crash - the input that crashed the driver, the report and its first frames
diag_crash() {
    {
        grep '^driver: ' "$1" | tail -1
        grep -m1 -E 'ERROR: |runtime error: |invariant failed' "$1"
        grep -m5 -E '^ +#[0-9]+ ' "$1"
    } | sed 's/^/# /'
}

# autoconf's config.h when the tree is configured; the sources need nothing from it
if [ -f "$top_builddir/config.h" ]; then cfgdir=$top_builddir; else cfgdir=$tmp; : >"$tmp/config.h"; fi
INCLUDES=(-D_GNU_SOURCE -I"$cfgdir" -I"$top_srcdir/common/util" -I"$top_srcdir/common/mail"
    -I"$top_srcdir/pickup")
WARN=(-Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes -Werror)

echo 'int main(void) { return 0; }' >"$tmp/probe.c"
CC=${FUZZ_CC:-gcc}
command -v "$CC" >/dev/null 2>&1 || CC=cc
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
if ! "$CC" "${SAN[@]}" "$tmp/probe.c" -o "$tmp/probe" 2>/dev/null || ! "$tmp/probe"; then
    SAN=()
fi
echo "# driver builds: $CC ${SAN[*]:-(no sanitizers)}"

# sources - the common/ files a target names on its fuzz-sources lines
sources() {
    local f
    for f in $(sed -n 's/^ \* fuzz-sources: //p' "$1"); do echo "$top_srcdir/$f"; done
}
# libs - the linker flags a target names on its fuzz-libs lines
libs() {
    local f
    for f in $(sed -n 's/^ \* fuzz-libs: //p' "$1"); do echo "$f"; done
}

targets=()
for src in "$top_srcdir"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done

for t in "${targets[@]}"; do
    src=$top_srcdir/tests/fuzz/$t.c
    mapfile -t srcs < <(sources "$src")
    mapfile -t ldlibs < <(libs "$src")
    if "$CC" -g -O1 "${SAN[@]}" "${INCLUDES[@]}" "${WARN[@]}" "$top_srcdir/tests/fuzz/driver.c" \
        "$src" "${srcs[@]}" "${ldlibs[@]}" -o "$tmp/$t" >"$tmp/$t.build" 2>&1; then
        ok 0 "$t builds with the file driver"
    else
        ok 1 "$t builds with the file driver"
        diag "$tmp/$t.build"
        continue
    fi
    corpus=$top_srcdir/tests/fuzz/corpus/$t
    count=$(find "$corpus" -maxdepth 1 -type f | wc -l)
    if [ "$count" -gt 0 ] &&
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$tmp/$t" "$corpus" >"$tmp/$t.run" 2>&1; then
        ok 0 "$t runs clean over its $count corpus files"
    else
        ok 1 "$t runs clean over its $count corpus files"
        diag_crash "$tmp/$t.run"
    fi
done

# fuzz_clang - the first clang that links a libFuzzer target
fuzz_clang() {
    local cc
    for cc in ${CLANG:-clang clang-14}; do
        if echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' |
            "$cc" -x c -fsanitize=fuzzer -o "$tmp/probe_fuzzer" - 2>/dev/null; then
            echo "$cc"
            return 0
        fi
    done
    return 1
}

if [ "$FUZZ_SECONDS" -eq 0 ]; then
    for t in "${targets[@]}"; do
        n=$((n + 1))
        echo "ok $n - $t under libFuzzer # SKIP FUZZ_SECONDS=0"
    done
elif ! CLANG_CC=$(fuzz_clang); then
    for t in "${targets[@]}"; do
        n=$((n + 1))
        echo "ok $n - $t under libFuzzer # SKIP no clang with libFuzzer"
    done
else
    for t in "${targets[@]}"; do
        src=$top_srcdir/tests/fuzz/$t.c
        mapfile -t srcs < <(sources "$src")
        mapfile -t ldlibs < <(libs "$src")
        mkdir -p "$tmp/lf/$t/corpus" "$tmp/lf/$t/artifacts"
        cp "$top_srcdir/tests/fuzz/corpus/$t"/* "$tmp/lf/$t/corpus/" 2>/dev/null
        if ! "$CLANG_CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            "${INCLUDES[@]}" "$src" "${srcs[@]}" "${ldlibs[@]}" -o "$tmp/lf/$t/$t" \
            >"$tmp/lf/$t.build" 2>&1; then
            ok 1 "$t builds with libFuzzer"
            diag "$tmp/lf/$t.build"
            continue
        fi
        (cd "$tmp/lf/$t" && ./"$t" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=25 \
            -artifact_prefix="$tmp/lf/$t/artifacts/" corpus >"$tmp/lf/$t.log" 2>&1)
        status=$?
        crashes=$(find "$tmp/lf/$t/artifacts" -type f | wc -l)
        if [ "$status" -eq 0 ] && [ "$crashes" -eq 0 ]; then
            ok 0 "$t: $FUZZ_SECONDS s of libFuzzer without a crash ($(grep -o 'cov: [0-9]*' \
                "$tmp/lf/$t.log" | tail -1))"
        else
            ok 1 "$t: $FUZZ_SECONDS s of libFuzzer without a crash (exit $status, $crashes input(s))"
            grep -m3 -E 'ERROR: |runtime error: |invariant failed|deadly signal' "$tmp/lf/$t.log" |
                sed 's/^/# /'
            for f in "$tmp/lf/$t/artifacts"/*; do
                [ -f "$f" ] && echo "# input: $(od -An -c "$f" | head -3 | tr -s ' ')"
            done
        fi
    done
fi

echo "1..$n"
[ "$failed" -eq 0 ]
