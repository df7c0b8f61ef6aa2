/*
 * gather - when qmgr commits the results that wait: now, or a little later with more
 *
 * gather_wait_ms()
 *	given what waits and what is under way (GATHER_VIEW), the
 *	milliseconds to wait before the commit of the results on the done
 *	list: 0 commits now. The results wait, so that one commit records
 *	many of them, unless
 *	- qmgr stops, or the last commit failed (the retry is not delayed);
 *	- GATHER_BATCH results already wait;
 *	- a worker has QMGR_UNCOMMITTED_MAX results waiting: it can start no
 *	  job before the commit;
 *	- no job is in flight: no result is coming to share the commit;
 *	- the oldest result has waited GATHER_MAX_MS.
 *	Otherwise the answer is what is left of GATHER_MAX_MS.
 *
 * Why: qmgr and pickup share LMDB's one write lock, and each commit holds
 * it for an fdatasync and the meta page's synchronous write. A commit per
 * loop pass (about 3 results at 2,000 msg/s, 4 workers) kept the lock
 * busy most of the time, so pickup's commits of new mail waited behind
 * qmgr's. A result that waits is not lost work: the worker goes on with
 * its next job (up to QMGR_UNCOMMITTED_MAX results), and a crash repeats
 * at most those deliveries.
 *
 * Plain arithmetic, no clock, no I/O: tests/unit_gather drives it with a
 * table.
 */
#include "config.h"

#include "qmgr.h"

/* gather_wait_ms - 0: commit the waiting results now; otherwise wait that many ms */
long long gather_wait_ms(const GATHER_VIEW *v)
{
    if (v->stopping || v->commit_failing || v->done >= GATHER_BATCH || v->worker_at_cap ||
        v->jobs_in_flight == 0 || v->oldest_age_ms >= GATHER_MAX_MS)
        return 0;
    return GATHER_MAX_MS - (v->oldest_age_ms < 0 ? 0 : v->oldest_age_ms);
}
