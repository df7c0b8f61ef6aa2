/*
 * unit_gather - when qmgr commits the results that wait
 *
 * One table over qmgr/gather.c: what waits and what is under way, and the
 * answer it must give (0: commit now; otherwise the milliseconds left).
 */
#include "config.h"

#include <stdio.h>

#include "qmgr.h"
#include "tap.h"

struct gather_case {
    GATHER_VIEW view;
    long long want_ms;
    const char *why;
};

/*
 * Columns of the view: stopping, last commit failed, results waiting, a
 * worker at its cap, jobs in flight, age of the oldest result. The first
 * row is a busy moment (4 jobs out, 3 results that waited 1 ms); each
 * other row changes one thing of it.
 */
static const struct gather_case cases[] = {
    {{0, 0, 3, 0, 4, 1}, GATHER_MAX_MS - 1, "results of a busy moment wait for others"},
    {{0, 0, 3, 0, 4, 0}, GATHER_MAX_MS, "a result that just came waits the whole time"},
    {{0, 0, 3, 0, 4, GATHER_MAX_MS - 1}, 1, "one millisecond left"},
    {{0, 0, 3, 0, 4, GATHER_MAX_MS}, 0, "the oldest has waited long enough"},
    {{0, 0, 3, 0, 4, 60000}, 0, "a loop that came back late commits at once"},
    {{0, 0, 3, 0, 4, -3}, GATHER_MAX_MS, "a clock step back never waits longer"},
    {{0, 0, GATHER_BATCH - 1, 0, 4, 1}, GATHER_MAX_MS - 1, "one result short of a batch waits"},
    {{0, 0, GATHER_BATCH, 0, 4, 1}, 0, "a batch is worth its own commit"},
    {{0, 0, 3, 1, 4, 1}, 0, "a worker that may start no job is not kept waiting"},
    {{0, 0, 3, 0, 0, 1}, 0, "no job out: no result will share the commit"},
    {{1, 0, 3, 0, 4, 1}, 0, "stopping: commit what there is"},
    {{0, 1, 3, 0, 4, 1}, 0, "after a failed commit the retry is not delayed"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int main(void)
{
    tap_plan((int)NELEM(cases));
    for (size_t i = 0; i < NELEM(cases); i++) {
        long long got = gather_wait_ms(&cases[i].view);

        tap_ok(got == cases[i].want_ms, "%s (%lld ms, want %lld)", cases[i].why, got,
               cases[i].want_ms);
    }
    return tap_done();
}
