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
 *	A message whose queue records fail authentication (QSTORE_TAMPERED)
 *	is set aside after the walk, in a write transaction of its own:
 *	logged "QUEUEID: queue record in DB fails authentication: set
 *	aside", taken off the schedule for good, never delivered or bounced;
 *	its records stay for the operator (relayq show, relayq delete). A
 *	message that cannot be read for another reason (sealed under a key
 *	that is not configured) is left on the schedule and tried again after
 *	SCAN_UNREADABLE_RETRY seconds, not at every walk.
 *
 * A read transaction that cannot begin is logged and retried by timer;
 * a set-aside that does not commit is retried by the next walk.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"

#define SCAN_UNREADABLE_RETRY 60 /* s before a message that could not be read is tried again */

/* A message found tampered with during a walk, to set aside after it. */
typedef struct SCAN_ASIDE {
    char qid[QID_LEN + 1];
    long long when; /* its schedule entry */
    char *reason;   /* "queue record in DB fails authentication" */
} SCAN_ASIDE;

/* State of one walk. */
typedef struct SCAN_STATE {
    QSTORE_TXN *txn;
    long long now;
    long long next_due; /* first entry in the future, or 0 */
    size_t limit;
    int limited; /* stopped by the active limit */
    SCAN_ASIDE *aside;
    size_t naside;
} SCAN_STATE;

int scan_more_due; /* the last walk stopped at the active limit */

static HTABLE *scan_unreadable; /* queue id -> (long long *) when to try it again */

/* scan_unreadable_wait - whether an unreadable message is still waiting for its retry */
static int scan_unreadable_wait(const char *qid, long long now)
{
    long long *retry_at;

    if (scan_unreadable == NULL || (retry_at = htable_get(scan_unreadable, qid)) == NULL)
        return 0;
    if (now < *retry_at)
        return 1;
    myfree(htable_remove(scan_unreadable, qid));
    return 0;
}

/* scan_unreadable_add - try a message that could not be read again later */
static void scan_unreadable_add(const char *qid, long long now)
{
    long long *retry_at = mymalloc(sizeof(*retry_at));

    if (scan_unreadable == NULL)
        scan_unreadable = htable_create(16);
    *retry_at = now + SCAN_UNREADABLE_RETRY;
    myfree(htable_remove(scan_unreadable, qid));
    htable_put(scan_unreadable, qid, retry_at);
}

/* scan_aside_add - remember a message to set aside after the walk */
static void scan_aside_add(SCAN_STATE *state, const char *qid, long long when)
{
    const char *reason = qstore_txn_reason(state->txn);
    SCAN_ASIDE *entry;
    size_t len = strlen(qid);

    state->aside = myrealloc(state->aside, sizeof(*state->aside) * (state->naside + 1));
    entry = state->aside + state->naside++;
    snprintf(entry->qid, sizeof(entry->qid), "%s", qid);
    entry->when = when;
    /* The queue's reason starts with the queue id; the aside entry is under it already. */
    if (strncmp(reason, qid, len) == 0 && strncmp(reason + len, ": ", 2) == 0)
        reason += len + 2;
    entry->reason = mystrdup(reason);
}

/* scan_set_aside - take the messages found tampered with off the schedule for good */
static void scan_set_aside(SCAN_STATE *state)
{
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn;
    int rc = QSTORE_ERROR;
    size_t i;

    if ((txn = qstore_begin(qmgr_store, 1, why)) != NULL) {
        for (i = 0; i < state->naside; i++)
            qstore_aside_put(txn, state->aside[i].qid, state->aside[i].when,
                             state->aside[i].reason);
        rc = qstore_commit(txn, why);
    }
    for (i = 0; i < state->naside; i++) {
        if (rc == QSTORE_OK)
            msg_warn("%s: %s: set aside", state->aside[i].qid, state->aside[i].reason);
        myfree(state->aside[i].reason);
    }
    if (rc != QSTORE_OK)
        msg_warn("cannot set aside %zu message%s whose queue records fail authentication: %s",
                 state->naside, state->naside == 1 ? "" : "s", vstr_str(why));
    myfree(state->aside);
    vstr_free(why);
}

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
    int status;

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
    if (scan_unreadable_wait(qid, state->now))
        return 0;
    message_activate(state->txn, qid, &status);
    if (status == QSTORE_TAMPERED)
        scan_aside_add(state, qid, when);
    else if (status != QSTORE_OK)
        scan_unreadable_add(qid, state->now);
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
    if (state.naside > 0)
        scan_set_aside(&state);
    vstr_free(why);
    scan_more_due = state.limited;
    if (state.next_due > 0 && (state.next_due - state.now) * 1000 < delay_ms)
        delay_ms = (state.next_due - state.now) * 1000;
    event_request_timer(scan_timer, NULL, delay_ms);
}
