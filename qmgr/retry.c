/*
 * retry - how a bulk operation sizes its batches and when it gives up
 *
 * retry_init()
 *	start with batches of `max` messages and allow `fail_max` failed
 *	commits in a row.
 * retry_ok()
 *	a batch committed: the failures in a row start over, and a batch
 *	size that a full map made smaller doubles back towards the maximum.
 * retry_failed()
 *	a batch's commit failed (`full`: the map, the transaction or the
 *	disk was full, QSTORE_FULL). Returns 1 when the batch is to be tried
 *	again, 0 when the operation gives up (fail_max failures in a row).
 *	A full map halves the next batch, down to one message: every change,
 *	a deletion too, needs free pages, and a smaller transaction needs
 *	fewer of them (as message.c commits one message per transaction then).
 *
 * Plain arithmetic, no clock, no I/O: tests/unit_retry drives it with a
 * table.
 */
#include "config.h"

#include "qmgr.h"

/* retry_init - full-size batches, no failure yet */
void retry_init(RETRY *retry, size_t max, int fail_max)
{
    retry->max = max < 1 ? 1 : max;
    retry->batch = retry->max;
    retry->fail_max = fail_max;
    retry->failures = 0;
}

/* retry_ok - a batch committed */
void retry_ok(RETRY *retry)
{
    retry->failures = 0;
    retry->batch = retry->batch > retry->max / 2 ? retry->max : retry->batch * 2;
}

/* retry_failed - a batch's commit failed: 1 to try again, 0 to give up */
int retry_failed(RETRY *retry, int full)
{
    if (++retry->failures >= retry->fail_max)
        return 0;
    if (full && retry->batch > 1)
        retry->batch /= 2;
    return 1;
}
