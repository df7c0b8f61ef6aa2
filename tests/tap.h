/*
 * tap.h - a minimal Test Anything Protocol emitter for the unit tests
 *
 * tap_plan(n) prints the plan; tap_ok(cond, fmt, ...) prints one result
 * line; tap_done() returns the exit status (non-zero when a test failed or
 * the plan was not met). Header-only: each unit test is one program.
 */
#ifndef RELAYQ_TAP_H
#define RELAYQ_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_count;
static int tap_failed;
static int tap_planned = -1;

/* tap_plan - announce how many results follow */
static inline void tap_plan(int count)
{
    tap_planned = count;
    printf("1..%d\n", count);
    fflush(stdout);
}

/* tap_ok - report one result */
static inline int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;

    tap_count++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

/* tap_diag - print a diagnostic comment */
static inline void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* tap_done - finish: print the plan when none was given, return the exit status */
static inline int tap_done(void)
{
    if (tap_planned < 0)
        printf("1..%d\n", tap_count);
    else if (tap_planned != tap_count)
        printf("# planned %d tests but ran %d\n", tap_planned, tap_count);
    fflush(stdout);
    return tap_failed || (tap_planned >= 0 && tap_planned != tap_count);
}

#endif
