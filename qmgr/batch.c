/*
 * batch - how a bulk operation sizes its batches and when it gives up
 *
 * batch_init()
 *	start with batches of `max` messages and allow `fail_max` failed
 *	commits in a row.
 * batch_ok()
 *	a batch committed: the failures in a row start over, and a batch
 *	size that a full map made smaller doubles back towards the maximum.
 * batch_failed()
 *	a batch's commit failed (`full`: the map, the transaction or the
 *	disk was full, QSTORE_FULL). Returns 1 when the batch is to be tried
 *	again, 0 when the operation gives up (fail_max failures in a row).
 *	A full map halves the next batch, down to one message: every change,
 *	a deletion too, needs free pages, and a smaller transaction needs
 *	fewer of them (as message.c commits one message per transaction then).
 *
 * Plain arithmetic, no clock, no I/O: tests/unit_batch drives it with a
 * table.
 */
#include "config.h"

#include "qmgr.h"

/* batch_init - full-size batches, no failure yet */
void batch_init(BATCH *b, size_t max, int fail_max)
{
    b->max = max < 1 ? 1 : max;
    b->size = b->max;
    b->fail_max = fail_max;
    b->failures = 0;
}

/* batch_ok - a batch committed */
void batch_ok(BATCH *b)
{
    b->failures = 0;
    b->size = b->size > b->max / 2 ? b->max : b->size * 2;
}

/* batch_failed - a batch's commit failed: 1 to try again, 0 to give up */
int batch_failed(BATCH *b, int full)
{
    if (++b->failures >= b->fail_max)
        return 0;
    if (full && b->size > 1)
        b->size /= 2;
    return 1;
}
