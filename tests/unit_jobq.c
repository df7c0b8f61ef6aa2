/*
 * unit_jobq - a destination's queue of jobs: new mail and the rest in turn
 *
 * A table of events over qmgr/jobq.c, each with the answer it must give:
 * jobs pushed as new mail (N) or as the rest (R: retries, released
 * mail), then taken; each kind comes out in FIFO order, and when both
 * kinds wait they come out in turn, so that a release of thousands of
 * messages queued ahead of new mail does not hold it back. The peek
 * always names the job the next pop takes.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "jobq.h"
#include "tap.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define JOBS 16

/* A test job: its name, with the queue's link inside. */
struct job {
    JOBQ_LINK link;
    char name[8];
};

/* One event: push a job (N: new mail, R: the rest) or pop one (P). */
struct event {
    char op;
    const char *name; /* N, R: the job pushed; P: the one it must take, "" for none */
    size_t count;     /* jobs queued afterwards */
    const char *why;
};

static const struct event events[] = {
    {'P', "", 0, "an empty queue gives nothing"},
    {'R', "r1", 1, "a retry"},
    {'R', "r2", 2, "another"},
    {'P', "r1", 1, "one kind only: FIFO"},
    {'R', "r3", 2, "a third retry"},
    {'R', "r4", 3, "a fourth: as a release of many"},
    {'N', "n1", 4, "new mail behind them"},
    {'N', "n2", 5, "more new mail"},
    {'P', "r2", 4, "both kinds wait: the rest first"},
    {'P', "n1", 3, "then new mail, though it came later"},
    {'P', "r3", 2, "then the rest again"},
    {'P', "n2", 1, "new mail again"},
    {'P', "r4", 0, "no new mail is left: the rest"},
    {'P', "", 0, "empty again"},
    {'N', "n3", 1, "new mail alone"},
    {'N', "n4", 2, "and more"},
    {'P', "n3", 1, "FIFO"},
    {'R', "r5", 2, "a retry joins"},
    {'P', "r5", 1, "the rest's turn"},
    {'P', "n4", 0, "then new mail"},
    {'P', "", 0, "empty at the end"},
};

int main(void)
{
    static struct job jobs[JOBS];
    JOBQ queue;
    size_t used = 0;

    memset(&queue, 0, sizeof(queue));
    tap_plan((int)NELEM(events));
    for (size_t i = 0; i < NELEM(events); i++) {
        const struct event *ev = &events[i];
        const char *got = "";
        int ok = 1;

        if (ev->op == 'P') {
            JOBQ_LINK *peeked = jobq_peek(&queue), *link = jobq_pop(&queue);

            if (link)
                got = ((struct job *)((char *)link - offsetof(struct job, link)))->name;
            ok = peeked == link && strcmp(got, ev->name) == 0;
        } else {
            struct job *job = &jobs[used++];

            strcpy(job->name, ev->name);
            jobq_push(&queue, &job->link, ev->op == 'N');
        }
        ok = ok && queue.count == ev->count;
        if (!tap_ok(ok, "%c %s: %s", ev->op, *ev->name ? ev->name : "-", ev->why))
            tap_diag("got \"%s\", %zu queued", got, queue.count);
    }
    return tap_done();
}
