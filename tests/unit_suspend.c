/*
 * unit_suspend - when qmgr probes a destination that is down
 *
 * Three tables over qmgr/suspend.c, no processes, no clock:
 *	- which job outcomes say the destination is down (the reasons as
 *	  smtpout words them);
 *	- the wait after a failed probe (suspend_next_interval): constant for
 *	  the first minute of the outage, then doubling up to five minutes;
 *	- an outage played as events (failures of probes and of jobs in
 *	  flight, a resume), with the probe times they must give.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "qmgr.h"
#include "tap.h"

/* One outcome and whether it suspends the destination. */
struct dead_case {
    const char *relay;
    const char *dsn;
    const char *reply;
    int want;
};

static const struct dead_case dead_cases[] = {
    {"none", "4.4.1", "connect to relay.example[192.0.2.7]:587: Connection refused", 1},
    {"none", "4.4.1", "connect to relay.example[192.0.2.7]:587: Connection timed out", 1},
    {"none", "4.4.3", "Host or domain name not found. Name service error for name=relay.example",
     1},
    {"none", "4.0.0",
     "host relay.example[192.0.2.7]:587 refused to talk to me: 450 Service unavailable", 1},
    {"none", "4.3.0",
     "host relay.example[192.0.2.7]:587 refused to talk to me: 452 4.3.0 out of disk", 1},
    /* A greeting that asks to slow down is throttling, not an outage. */
    {"none", "4.7.0",
     "host relay.example[192.0.2.7]:587 refused to talk to me: 421 4.7.0 Too many concurrent "
     "connections",
     0},
    {"none", "4.3.2",
     "host relay.example[192.0.2.7]:587 refused to talk to me: 421 4.3.2 Service not available", 0},
    /* The connection was made: the relay is up. */
    {"none", "4.7.5",
     "Cannot start TLS: handshake failure with host relay.example[192.0.2.7]:587: EOF", 0},
    {"none", "4.7.0",
     "SASL authentication failed; server relay.example[192.0.2.7] said: 454 4.7.0 Temporary "
     "authentication failure",
     0},
    {"none", "4.4.2",
     "lost connection with relay.example[192.0.2.7]:587 while receiving the initial server "
     "greeting",
     0},
    {"relay.example[192.0.2.7]:587", "4.2.0",
     "host relay.example[192.0.2.7]:587 said: 450 4.2.0 mailbox busy (in reply to RCPT TO "
     "command)",
     0},
    /* Words of the relay's own text do not count. */
    {"relay.example[192.0.2.7]:587", "4.0.0",
     "host relay.example[192.0.2.7]:587 said: 451 host x refused to talk to me: y (in reply to "
     "RCPT TO command)",
     0},
    /* "connect to" means no connection only when none was made. */
    {"relay.example[192.0.2.7]:587", "4.0.0",
     "connect to relay.example[192.0.2.7]:587: Connection refused", 0},
};

/* One failed-probe wait. */
struct interval_case {
    long long base_s, prev_s, outage_s, want_s;
};

static const struct interval_case interval_cases[] = {
    {10, 10, 10, 10},     /* the first minute: as configured */
    {10, 10, 59, 10},     /* still the first minute */
    {10, 10, 60, 20},     /* then doubling */
    {10, 20, 80, 40},     /* */
    {10, 160, 360, 300},  /* at most five minutes */
    {10, 300, 3600, 300}, /* and it stays there */
    {2, 2, 30, 2},        /* the integration test's outage: constant */
    {2, 2, 62, 4},        /* */
    {300, 300, 10, 300},  /* the longest interval allowed */
    {300, 300, 900, 300}, /* never above it */
    {30, 10, 120, 30},    /* the interval was lowered by a reload: the new one */
};

/* One step of an outage: at `at` s, a failure (probe or not) or a resume. */
struct event_case {
    long long at_s;
    char what; /* 'p': failed probe, 'j': failed job in flight, 'r': resume */
    int want_return;
    long long want_probe_s; /* the next probe, in s; -1 when not suspended */
};

/* destination_probe_interval 10 s; every probe at its time, all failing for 7 minutes. */
static const struct event_case events[] = {
    {0, 'j', 1, 10},    /* the first failure suspends */
    {0, 'j', 0, 10},    /* a job in flight fails too: nothing changes */
    {1, 'j', 0, 10},    /* */
    {10, 'p', 0, 20},   /* first minute: every 10 s */
    {20, 'p', 0, 30},   /* */
    {30, 'p', 0, 40},   /* */
    {40, 'p', 0, 50},   /* */
    {50, 'p', 0, 60},   /* */
    {60, 'p', 0, 80},   /* then 20 s */
    {80, 'p', 0, 120},  /* 40 s */
    {120, 'p', 0, 200}, /* 80 s */
    {200, 'p', 0, 360}, /* 160 s */
    {360, 'p', 0, 660}, /* 300 s, the most */
    {661, 'r', 661, -1} /* the relay answers: resumed after 661 s */
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    SUSPEND s;
    int have;

    tap_plan((int)(NELEM(dead_cases) + NELEM(interval_cases) + NELEM(events) + 4));
    for (size_t i = 0; i < NELEM(dead_cases); i++) {
        const struct dead_case *tc = &dead_cases[i];

        have = suspend_is_dead(tc->relay, tc->dsn, tc->reply);
        tap_ok(have == tc->want, "relay=%s %s \"%.50s\": %s", tc->relay, tc->dsn, tc->reply,
               tc->want ? "down" : "not down");
    }
    for (size_t i = 0; i < NELEM(interval_cases); i++) {
        const struct interval_case *tc = &interval_cases[i];
        long long got =
            suspend_next_interval(tc->base_s * 1000, tc->prev_s * 1000, tc->outage_s * 1000);

        tap_ok(got == tc->want_s * 1000,
               "interval %llds, last wait %llds, outage %llds: next wait %llds (got %lldms)",
               tc->base_s, tc->prev_s, tc->outage_s, tc->want_s, got);
    }

    memset(&s, 0, sizeof(s));
    tap_ok(!suspend_probe_due(&s, 0), "a destination that is not suspended wants no probe");
    tap_ok(suspend_resume(&s, 5) == -1, "resuming one that is not suspended says so");
    for (size_t i = 0; i < NELEM(events); i++) {
        const struct event_case *ev = &events[i];
        long long now = ev->at_s * 1000, ret;
        long long probe;

        if (ev->what == 'r')
            ret = suspend_resume(&s, now) / 1000;
        else
            ret = suspend_fail(&s, now, 10000, ev->what == 'p');
        probe = s.active ? s.probe_at_ms / 1000 : -1;
        tap_ok(ret == ev->want_return && probe == ev->want_probe_s,
               "at %llds %s: returns %d, next probe %llds (got %lld, %lld)", ev->at_s,
               ev->what == 'p'   ? "a probe fails"
               : ev->what == 'j' ? "a job fails"
                                 : "resume",
               ev->want_return, ev->want_probe_s, ret, probe);
    }
    suspend_fail(&s, 1000000, 10000, 0);
    tap_ok(!suspend_probe_due(&s, 1009999) && suspend_probe_due(&s, 1010000),
           "a new outage probes one interval after its first failure, not before");
    tap_ok(s.interval_ms == 10000 && s.since_ms == 1000000,
           "a new outage starts from the configured interval");
    return tap_done();
}
