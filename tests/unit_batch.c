/*
 * unit_batch - how a bulk operation sizes its batches and when it gives up
 *
 * One table over qmgr/batch.c: a run of batch commits played as events
 * (a commit that succeeded, failed, or failed for a full map), each with
 * the answer it must give (try again or give up) and the next batch size.
 * Batches of at most 8 messages, at most 3 failures in a row.
 */
#include "config.h"

#include <stdio.h>

#include "qmgr.h"
#include "tap.h"

/* One commit's outcome and what must follow. */
struct batch_case {
    char what;         /* 'o': committed, 'f': failed, 'F': failed for a full map */
    int want_again;    /* after a failure: 1 to try again, 0 to give up */
    size_t want_batch; /* the next batch's size */
    const char *why;
};

static const struct batch_case cases[] = {
    {'o', 1, 8, "a commit keeps the full batch"},
    {'f', 1, 8, "an I/O error: the same batch again"},
    {'f', 1, 8, "a second one in a row: again"},
    {'o', 1, 8, "a commit: the failures start over"},
    {'F', 1, 4, "a full map halves the batch"},
    {'F', 1, 2, "and halves it again"},
    {'o', 1, 4, "a commit doubles it back"},
    {'F', 1, 2, "full again"},
    {'F', 1, 1, "down to one message"},
    {'F', 0, 1, "the third failure in a row gives up"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    BATCH b;
    int again;

    tap_plan((int)NELEM(cases) + 3);
    batch_init(&b, 8, 3);
    tap_ok(b.size == 8 && b.failures == 0, "starts with full batches, no failure");
    for (size_t i = 0; i < NELEM(cases); i++) {
        again = 1;
        if (cases[i].what == 'o')
            batch_ok(&b);
        else
            again = batch_failed(&b, cases[i].what == 'F');
        tap_ok(again == cases[i].want_again && b.size == cases[i].want_batch,
               "%s (try again %d, batch %zu)", cases[i].why, again, b.size);
    }
    batch_init(&b, 8, 3);
    batch_ok(&b);
    batch_ok(&b);
    tap_ok(b.size == 8, "commits never grow the batch past its maximum");
    batch_init(&b, 0, 1);
    tap_ok(b.size == 1 && batch_failed(&b, 0) == 0,
           "a batch is at least one message; one failure allowed ends at the first");
    return tap_done();
}
