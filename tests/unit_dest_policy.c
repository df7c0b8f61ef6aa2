/*
 * unit_dest_policy - destination_policy_maps values, as qmgr and
 * "relayq check" parse them (common/mail/dest_policy.c)
 *
 * A table of entry values: each either parses into the limits it sets
 * (what it leaves unset keeps the defaults: 0, or a rate < 0), or fails
 * with the reason naming the bad word and listing the accepted ones.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dest_policy.h"
#include "tap.h"
#include "vstr.h"

/* One entry's value and what it must parse into; bad: the word refused. */
struct policy_case {
    const char *value;
    int concurrency, recipient_limit, daily;
    double rate;
    int local;
    const char *shared_key;
    const char *bad;
};

static const struct policy_case cases[] = {
    {"concurrency=3 rate=10", 3, 0, 0, 10, 0, NULL, NULL},
    {"rate=0.5", 0, 0, 0, 0.5, 0, NULL, NULL},
    {"rate=0", 0, 0, 0, 0, 0, NULL, NULL},
    {"recipient_limit=100", 0, 100, 0, -1, 0, NULL, NULL},
    {"daily=500", 0, 0, 500, -1, 0, NULL, NULL},
    {"  concurrency=1\tlocal ", 1, 0, 0, -1, 1, NULL, NULL},
    {"rate=14 shared_key=ses-eu:account@[x]/+=", 0, 0, 0, 14, 0, "ses-eu:account@[x]/+=", NULL},
    {"shared_key=a shared_key=b", 0, 0, 0, -1, 0, "b", NULL},
    {"", 0, 0, 0, -1, 0, NULL, NULL},
    {"concurrency=0", 0, 0, 0, -1, 0, NULL, "concurrency=0"},
    {"concurrency=1001", 0, 0, 0, -1, 0, NULL, "concurrency=1001"},
    {"concurrency=many", 0, 0, 0, -1, 0, NULL, "concurrency=many"},
    {"rate=-1", 0, 0, 0, -1, 0, NULL, "rate=-1"},
    {"rate=fast", 0, 0, 0, -1, 0, NULL, "rate=fast"},
    {"rate=", 0, 0, 0, -1, 0, NULL, "rate="},
    {"daily=0", 0, 0, 0, -1, 0, NULL, "daily=0"},
    {"daily=1000000001", 0, 0, 0, -1, 0, NULL, "daily=1000000001"},
    {"shared_key=", 0, 0, 0, -1, 0, NULL, "shared_key="},
    {"shared_key=a*b", 0, 0, 0, -1, 0, NULL, "shared_key=a*b"},
    {"recipient_limit=0", 0, 0, 0, -1, 0, NULL, "recipient_limit=0"},
    {"locally", 0, 0, 0, -1, 0, NULL, "locally"},
    {"rate=1 burst=5", 0, 0, 0, -1, 0, NULL, "burst=5"},
};

/* same_key - two optional strings are equal */
static int same_key(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

int main(void)
{
    size_t n = sizeof(cases) / sizeof(cases[0]);
    VSTR *why = vstr_alloc(100);
    char want[200];

    tap_plan((int)n);
    for (size_t i = 0; i < n; i++) {
        const struct policy_case *c = cases + i;
        DEST_POLICY p;
        int ret = dest_policy_parse(c->value, &p, why);

        if (c->bad != NULL) {
            snprintf(want, sizeof(want),
                     "bad setting \"%s\" (concurrency=1..1000, rate=N, daily=N, local, "
                     "shared_key=NAME, recipient_limit=1..10000)",
                     c->bad);
            tap_ok(ret < 0 && strcmp(vstr_str(why), want) == 0, "\"%s\" refused: %s", c->value,
                   ret < 0 ? vstr_str(why) : "accepted");
        } else {
            tap_ok(ret == 0 && p.concurrency == c->concurrency &&
                       p.recipient_limit == c->recipient_limit && p.daily == c->daily &&
                       p.rate == c->rate && p.local == c->local &&
                       same_key(p.shared_key, c->shared_key),
                   "\"%s\" parses", c->value);
        }
        dest_policy_free(&p);
    }
    vstr_free(why);
    return tap_done();
}
