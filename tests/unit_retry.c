/*
 * unit_retry - what becomes of a message when its deliveries end
 *
 * Two tables over qmgr/retry.c, no processes, no clock:
 *	- the backoff after N attempts (doubling, the cap, the jitter's
 *	  bound, the one-second floor);
 *	- decisions: one case per branch of retry_decide() and the corners
 *	  between them (deleted, delivered, expired, requeued, held, the free
 *	  first loss, a poison message, throttled, rerouted, suspended with
 *	  and without a relay's deferral, an ordinary deferral, the delay
 *	  notice once).
 * The policy is the defaults but the backoff: 300 s doubling to 4000 s,
 * lifetime 5 days (1 day for the null sender), delay notice after 4 h.
 * The jitter is a table input: 0 (none) or its largest value.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "retry.h"
#include "tap.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1800000000LL /* an instant in 2027 */
#define HOUR 3600LL
#define DAY (24 * HOUR)

static int jitter_max; /* 1: the jitter returns its largest value */

/* test_jitter - none, or the most the backoff may lose */
static uint32_t test_jitter(uint32_t upper)
{
    return jitter_max ? upper - 1 : 0;
}

static const RETRY_POLICY policy = {300, 4000, 5 * DAY, DAY, 4 * HOUR, test_jitter};

/* One backoff. */
struct backoff_case {
    unsigned attempts;
    int jitter;
    long long want;
};

static const struct backoff_case backoff_cases[] = {
    {1, 0, 300},                /* the first retry: minimal_backoff_time */
    {2, 0, 600},                /* doubled */
    {3, 0, 1200},               /* */
    {4, 0, 2400},               /* */
    {5, 0, 4000},               /* capped at maximal_backoff_time */
    {40, 0, 4000}, {1, 1, 270}, /* the jitter takes at most 10% */
    {5, 1, 3600},               /* of the capped delay too */
};

/* One decision. */
struct decide_case {
    const char *name;
    RETRY_OUTCOME in;
    RETRY_ACTION action;
    long long due; /* offset from NOW; ignored unless RETRY_AGAIN */
    unsigned attempts;
    int warn, requeued, poison;
};

/* An outcome's fields, in order: arrival, null_sender, attempts, warned,
 * pending, deleted, requeue, held, lost, throttled, reroute, probe_at, backoff. */
#define FRESH (NOW - 60)
#define OLD (NOW - 6 * DAY)
#define LATE (NOW - 5 * HOUR)

static const struct decide_case decide_cases[] = {
    {"every recipient final: removed",
     {FRESH, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
     RETRY_REMOVE,
     0,
     0,
     0,
     0,
     0},
    {"deleted by the operator: removed, even with recipients left",
     {FRESH, 0, 2, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1},
     RETRY_REMOVE,
     0,
     2,
     0,
     0,
     0},
    {"a relay deferred it: attempt counted, backoff",
     {FRESH, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_AGAIN,
     300,
     1,
     0,
     0,
     0},
    {"third deferral: 4x the backoff",
     {FRESH, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_AGAIN,
     1200,
     3,
     0,
     0,
     0},
    {"older than maximal_queue_lifetime: expired",
     {OLD, 0, 9, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_EXPIRE,
     0,
     9,
     0,
     0,
     0},
    {"the null sender expires after bounce_queue_lifetime",
     {NOW - 2 * DAY, 1, 3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_EXPIRE,
     0,
     3,
     0,
     0,
     0},
    {"a normal sender of the same age does not",
     {NOW - 2 * DAY, 0, 3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_AGAIN,
     2400,
     4,
     0,
     0,
     0},
    {"requeued: attempts start over, due now, even when old",
     {OLD, 0, 7, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1},
     RETRY_AGAIN,
     0,
     0,
     0,
     1,
     0},
    {"held during delivery: off the schedule, not expired",
     {OLD, 0, 7, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1},
     RETRY_HOLD,
     0,
     7,
     0,
     0,
     0},
    {"first lost delivery: due now, no attempt",
     {FRESH, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0},
     RETRY_AGAIN,
     0,
     1,
     0,
     0,
     0},
    {"first lost delivery of an old message: not expired yet",
     {OLD, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0},
     RETRY_AGAIN,
     0,
     1,
     0,
     0,
     0},
    {"second lost delivery: poison, a deferral with backoff",
     {FRESH, 0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0},
     RETRY_AGAIN,
     600,
     2,
     0,
     0,
     1},
    {"poison and throttled: still the backoff",
     {FRESH, 0, 0, 0, 1, 0, 0, 0, 3, 1, 0, 0, 0},
     RETRY_AGAIN,
     300,
     1,
     0,
     0,
     1},
    {"poison and old: expired",
     {OLD, 0, 4, 1, 1, 0, 0, 0, 2, 0, 0, 0, 0},
     RETRY_EXPIRE,
     0,
     4,
     0,
     0,
     1},
    {"throttled: one second, no attempt",
     {FRESH, 0, 2, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0},
     RETRY_AGAIN,
     1,
     2,
     0,
     0,
     0},
    {"throttled with a deferral too: still one second",
     {FRESH, 0, 2, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1},
     RETRY_AGAIN,
     1,
     2,
     0,
     0,
     0},
    {"rerouted to the next relay: one second, no attempt",
     {FRESH, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0},
     RETRY_AGAIN,
     1,
     0,
     0,
     0,
     0},
    {"suspended destination: at the probe, no attempt",
     {FRESH, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0, NOW + 8, 0},
     RETRY_AGAIN,
     8,
     3,
     0,
     0,
     0},
    {"suspended, but another relay deferred it: backoff",
     {FRESH, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0, NOW + 8, 1},
     RETRY_AGAIN,
     2400,
     4,
     0,
     0,
     0},
    {"older than delay_warning_time: the notice goes out",
     {LATE, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_AGAIN,
     4000,
     6,
     1,
     0,
     0},
    {"the notice went out before: not again",
     {LATE, 0, 6, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_AGAIN,
     4000,
     7,
     0,
     0,
     0},
    {"the notice is due when it expires too",
     {OLD, 0, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},
     RETRY_EXPIRE,
     0,
     9,
     1,
     0,
     0},
    {"the notice is decided even when throttled",
     {LATE, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0},
     RETRY_AGAIN,
     1,
     1,
     1,
     0,
     0},
};

int main(void)
{
    RETRY_DECISION d;

    tap_plan((int)(NELEM(backoff_cases) + NELEM(decide_cases) + 1));
    for (size_t i = 0; i < NELEM(backoff_cases); i++) {
        const struct backoff_case *tc = &backoff_cases[i];
        long long got;

        jitter_max = tc->jitter;
        got = retry_backoff(&policy, tc->attempts);
        tap_ok(got == tc->want, "backoff after %u attempt%s%s: %llds (got %lld)", tc->attempts,
               tc->attempts == 1 ? "" : "s", tc->jitter ? ", largest jitter" : "", tc->want, got);
    }
    jitter_max = 0;
    for (size_t i = 0; i < NELEM(decide_cases); i++) {
        const struct decide_case *tc = &decide_cases[i];
        int same;

        memset(&d, 0xff, sizeof(d));
        retry_decide(&policy, &tc->in, NOW, &d);
        same = d.action == tc->action && d.attempts == tc->attempts && d.warn == tc->warn &&
               d.requeued == tc->requeued && d.poison == tc->poison &&
               (tc->action != RETRY_AGAIN || d.due == NOW + tc->due) &&
               (tc->action != RETRY_HOLD || d.due == 0);
        if (!tap_ok(same, "%s", tc->name))
            tap_diag("got action %d due now%+lld attempts %u warn %d requeued %d poison %d",
                     (int)d.action, d.due - NOW, d.attempts, d.warn, d.requeued, d.poison);
    }
    {
        const RETRY_POLICY tiny = {0, 0, 5 * DAY, DAY, 0, test_jitter};

        tap_ok(retry_backoff(&tiny, 3) == 1, "a zero backoff is still one second");
    }
    return tap_done();
}
