/*
 * suspend - when a destination that cannot be reached is probed again
 *
 * suspend_is_dead()
 *	whether a job's outcome says the destination is down: no connection
 *	could be made (relay "none" and a reason "connect to ...", dsn 4.4.1,
 *	or a host that does not resolve, 4.4.3), or the relay refused to talk
 *	at the greeting ("refused to talk to me") without asking to slow down
 *	(throttle.c: that reply slows the destination instead).
 * suspend_fail()
 *	a job to the destination failed that way at `now`. The first failure
 *	starts the suspension (returns 1): the next probe is one
 *	destination_probe_interval later. A failed probe sets the next one
 *	(suspend_next_interval); the failure of a job that was already in
 *	flight when the suspension began changes nothing.
 * suspend_next_interval()
 *	the wait after a failed probe: the configured interval during the
 *	first minute of the outage, then twice the previous wait, at most
 *	five minutes (or the configured interval, when that is longer).
 * suspend_resume()
 *	a job reached the relay: the suspension ends. Returns how long it
 *	lasted (ms), or -1 when the destination was not suspended.
 * suspend_probe_due()
 *	whether a suspended destination may be probed at `now`.
 *
 * Plain arithmetic over monotonic milliseconds: no clock, no I/O, so
 * that tests/unit_suspend can drive it with a table.
 */
#include "config.h"

#include <string.h>

#include "qmgr.h"
#include "throttle.h"

#define SUSPEND_STEADY_MS 60000 /* the interval stays as configured this long */
#define SUSPEND_MAX_MS 300000   /* the doubled interval never exceeds this */

/* suspend_is_dead - does a deferral say the destination is down */
int suspend_is_dead(const char *relay, const char *dsn, const char *reply)
{
    const char *refused = strstr(reply, " refused to talk to me: ");
    const char *said = strstr(reply, " said: ");

    if (strcmp(relay, "none") == 0 &&
        (strncmp(reply, "connect to ", 11) == 0 || strcmp(dsn, "4.4.3") == 0))
        return 1;
    /* smtpout's own words come first: the relay's text after them may say anything. */
    return refused != NULL && (said == NULL || refused < said) &&
           throttle_classify(dsn, reply) != THROTTLE_SLOW_DOWN;
}

/* suspend_next_interval - the wait after a failed probe */
long long suspend_next_interval(long long base_ms, long long prev_ms, long long outage_ms)
{
    long long cap = base_ms > SUSPEND_MAX_MS ? base_ms : SUSPEND_MAX_MS;
    long long next;

    if (outage_ms < SUSPEND_STEADY_MS || prev_ms < base_ms)
        return base_ms;
    next = prev_ms * 2;
    return next > cap ? cap : next;
}

/* suspend_fail - a failure that says the destination is down */
int suspend_fail(SUSPEND *s, long long now, long long base_ms, int probe)
{
    if (!s->active) {
        s->active = 1;
        s->since_ms = now;
        s->interval_ms = base_ms;
        s->probe_at_ms = now + base_ms;
        s->probes_failed = 0;
        return 1;
    }
    if (probe) {
        s->probes_failed++;
        s->interval_ms = suspend_next_interval(base_ms, s->interval_ms, now - s->since_ms);
        s->probe_at_ms = now + s->interval_ms;
    }
    return 0;
}

/* suspend_resume - the relay answered: end the suspension */
long long suspend_resume(SUSPEND *s, long long now)
{
    if (!s->active)
        return -1;
    s->active = 0;
    return now - s->since_ms;
}

/* suspend_probe_due - may a probe start now */
int suspend_probe_due(const SUSPEND *s, long long now)
{
    return s->active && now >= s->probe_at_ms;
}
