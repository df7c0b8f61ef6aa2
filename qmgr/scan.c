/*
 * scan - find due messages on the schedule index
 *
 * scan_schedule()
 *	walk the schedule index from its earliest entry in one short read
 *	transaction and activate every due message that is not active yet,
 *	until the active set reaches qmgr_message_active_limit. The walk
 *	stops at the first entry in the future and sets a timer for it, so
 *	qmgr never reads more than the due part of the queue plus the active
 *	set. When the limit cut the walk short, the next pass that frees room
 *	scans again.
 *
 * A read transaction that cannot begin is logged and retried by timer.
 */
#include "config.h"

#include <limits.h>
#include <time.h>

#include "event.h"
#include "msg.h"
#include "params.h"
#include "qmgr.h"

/* State of one walk. */
typedef struct SCAN_STATE {
    QSTORE_TXN *txn;
    long long now;
    long long next_due; /* first entry in the future, or 0 */
    size_t limit;
    int limited; /* stopped by the active limit */
} SCAN_STATE;

int scan_more_due; /* the last walk stopped at the active limit */

/* scan_timer - time to look again */
static void scan_timer(void *ctx)
{
    (void)ctx;
    qmgr_scan_wanted = 1;
}

/* scan_visit - activate one due entry */
static int scan_visit(const char *qid, long long when, void *ctx)
{
    SCAN_STATE *state = ctx;

    if (when > state->now) {
        state->next_due = when;
        return 1;
    }
    if (htable_get(qmgr_active, qid) != NULL)
        return 0;
    if (htable_count(qmgr_active) >= state->limit) {
        state->limited = 1;
        return 1;
    }
    message_activate(state->txn, qid);
    return 0;
}

/* scan_schedule - activate due messages */
void scan_schedule(void)
{
    SCAN_STATE state = {0};
    VSTR *why = vstr_alloc(100);
    /* queue_run_delay is only the safety net: the timer below wakes qmgr
     * when the next message is due. */
    long long delay_ms = var_int("queue_run_delay") * 1000;

    qmgr_scan_wanted = 0;
    state.now = (long long)time(NULL);
    state.limit = (size_t)var_int("qmgr_message_active_limit");
    if ((state.txn = qstore_begin(qmgr_store, 0, why)) == NULL) {
        msg_warn("cannot scan the queue: %s", vstr_str(why));
        event_request_timer(scan_timer, NULL, 1000);
        vstr_free(why);
        return;
    }
    if (qstore_schedule_scan(state.txn, LLONG_MAX, scan_visit, &state) != QSTORE_OK)
        msg_warn("cannot scan the queue: %s", qstore_txn_reason(state.txn));
    qstore_abort(state.txn);
    vstr_free(why);
    scan_more_due = state.limited;
    if (state.next_due > 0 && (state.next_due - state.now) * 1000 < delay_ms)
        delay_ms = (state.next_due - state.now) * 1000;
    event_request_timer(scan_timer, NULL, delay_ms);
}
