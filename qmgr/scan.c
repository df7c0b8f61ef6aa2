/*
 * scan - activate the due messages of the in-memory schedule
 *
 * scan_load()
 *	read the queue's schedule index into the in-memory schedule
 *	(sched.c): at start every entry; on a resync (`initial` 0: pickup
 *	reconnected and may have queued mail qmgr did not hear of) only the
 *	entries qmgr does not know yet. One read transaction; O(n) once.
 *	Afterwards qmgr learns of every change from the commits themselves:
 *	its own through the queue's schedule hook, pickup's from its
 *	`queued` records.
 * scan_schedule()
 *	take the due messages from the in-memory schedule, earliest first,
 *	and activate them (message.c) in one short read transaction, until
 *	the active set reaches qmgr_message_active_limit messages or
 *	qmgr_message_recipient_limit recipients (the message that crosses
 *	the recipient limit is still loaded whole, so one message with more
 *	recipients than the limit goes alone); then set a timer
 *	for the next one due. Finding k due messages costs O(k log n); the
 *	messages in delivery are not in the heap and are never walked.
 *
 *	A message whose queue records fail authentication (QSTORE_TAMPERED)
 *	is set aside after the walk, in a write transaction of its own:
 *	logged "QUEUEID: queue record in DB fails authentication: set
 *	aside", taken off the schedule for good, never delivered or bounced;
 *	its records stay for the operator (relayq show, relayq delete). A
 *	message that cannot be read for another reason (sealed under a key
 *	that is not configured) keeps its schedule entry and is tried again
 *	after SCAN_UNREADABLE_RETRY seconds, not at every pass.
 *
 * A read transaction that cannot begin is logged and retried by timer;
 * a set-aside that does not commit is retried a second later.
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

/* State of one activation pass. */
typedef struct SCAN_STATE {
    QSTORE_TXN *txn;
    long long now;
    SCAN_ASIDE *aside;
    size_t naside;
} SCAN_STATE;

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
        if (rc == QSTORE_OK) {
            msg_warn("%s: %s: set aside", state->aside[i].qid, state->aside[i].reason);
            sched_release(qmgr_sched, state->aside[i].qid);
        } else {
            sched_retry_later(qmgr_sched, state->aside[i].qid, state->now + 1);
        }
        myfree(state->aside[i].reason);
    }
    if (rc != QSTORE_OK)
        msg_warn("cannot set aside %zu message%s whose queue records fail authentication: %s",
                 state->naside, state->naside == 1 ? "" : "s", vstr_str(why));
    myfree(state->aside);
    vstr_free(why);
}

/* scan_timer - a message is due: the pass this timer ends activates it */
static void scan_timer(void *ctx)
{
    (void)ctx;
}

/* A load of the queue's schedule index into memory. */
typedef struct SCAN_LOAD {
    int initial;
    size_t added;
} SCAN_LOAD;

/* scan_load_visit - one entry of the queue's schedule */
static int scan_load_visit(const char *qid, long long when, void *ctx)
{
    SCAN_LOAD *load = ctx;

    if (load->initial || !sched_known(qmgr_sched, qid)) {
        sched_set(qmgr_sched, qid, when);
        load->added++;
    }
    return 0;
}

/* scan_load - read the queue's schedule into memory */
void scan_load(int initial)
{
    SCAN_LOAD load = {initial, 0};
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn;

    if ((txn = qstore_begin(qmgr_store, 0, why)) == NULL)
        msg_fatal("cannot read the queue's schedule: %s", vstr_str(why));
    if (qstore_schedule_scan(txn, LLONG_MAX, scan_load_visit, &load) != QSTORE_OK)
        msg_fatal("cannot read the queue's schedule: %s", qstore_txn_reason(txn));
    qstore_abort(txn);
    vstr_free(why);
    if (initial)
        msg_info("%zu message%s on the schedule", load.added, load.added == 1 ? "" : "s");
    else if (load.added > 0)
        msg_info("resync: %zu scheduled message%s were not known yet", load.added,
                 load.added == 1 ? "" : "s");
}

/* scan_schedule - activate due messages */
void scan_schedule(void)
{
    SCAN_STATE state = {0};
    VSTR *why;
    size_t limit = (size_t)var_int(qmgr_message_active_limit);
    size_t rcpt_limit = (size_t)var_int(qmgr_message_recipient_limit);
    char qid[QID_LEN + 1];
    long long next;
    /* queue_run_delay is only the safety net: the timer below wakes qmgr
     * when the next message is due. */
    long long delay_ms = var_int(queue_run_delay) * 1000;

    state.now = (long long)time(NULL);
    next = sched_next_due(qmgr_sched);
    if (next > 0 && next <= state.now && htable_count(qmgr_active) < limit &&
        qmgr_active_rcpts < rcpt_limit) {
        why = vstr_alloc(100);
        if ((state.txn = qstore_begin(qmgr_store, 0, why)) == NULL) {
            msg_warn("cannot read the queue: %s", vstr_str(why));
            event_request_timer(scan_timer, NULL, 1000);
            vstr_free(why);
            return;
        }
        vstr_free(why);
        while (htable_count(qmgr_active) < limit && qmgr_active_rcpts < rcpt_limit &&
               sched_take(qmgr_sched, state.now, qid)) {
            int status;

            if (message_activate(state.txn, qid, &status) != NULL)
                continue;
            if (status == QSTORE_TAMPERED) {
                scan_aside_add(&state, qid, -1);
            } else if (status != QSTORE_OK) {
                sched_retry_later(qmgr_sched, qid, state.now + SCAN_UNREADABLE_RETRY);
            } else {
                /* Gone or held meanwhile: nothing to deliver. */
                sched_set(qmgr_sched, qid, 0);
                sched_release(qmgr_sched, qid);
            }
        }
        qstore_abort(state.txn);
        if (state.naside > 0)
            scan_set_aside(&state);
        next = sched_next_due(qmgr_sched);
    }
    if (next > 0 && next > state.now && (next - state.now) * 1000 < delay_ms)
        delay_ms = (next - state.now) * 1000;
    event_request_timer(scan_timer, NULL, delay_ms);
}
