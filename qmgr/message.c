/*
 * message - messages in the active set
 *
 * message_activate()
 *	load a due message (envelope and recipients) from the queue into the
 *	active set and queue jobs for its recipients that are not final: one
 *	per destination (route.c), or several when they are more than the
 *	destination's recipient limit (dest.c), each a transaction of its own.
 *	The message waits until every job has ended; each recipient keeps its
 *	own result, so when a job is lost or deferred, the recipients other
 *	jobs delivered are not sent again.
 *	Every record of the message, its content included, must open first:
 *	no job leaves for a message whose queue records fail authentication.
 *	Returns NULL when the message is gone, held, has no recipient left to
 *	try, or cannot be read; *status then says which failure it was
 *	(QSTORE_TAMPERED: set it aside; QSTORE_ERROR: unreadable now, e.g.
 *	sealed under a key we lack; the reason is the transaction's),
 *	QSTORE_OK otherwise.
 * message_job_done()
 *	note that one of the message's jobs finished (delivered or lost);
 *	when none is left the message waits on the done list.
 * message_finalize_done()
 *	commit the new state of every message on the done list in ONE write
 *	transaction (group commit) — or, when that fails for a full map, one
 *	transaction per message, so that the deliveries that free room are
 *	recorded first: changed recipients; a message older than
 *	maximal_queue_lifetime (bounce_queue_lifetime for the null sender)
 *	with recipients still deferred has them bounced; the notices the
 *	results call for (failure; "relayed" for NOTIFY=SUCCESS recipients
 *	handed to a relay without DSN; once per message a delay notice after
 *	delay_warning_time) are queued in the same transaction; then the
 *	message is deleted (every recipient final), left due at once (a job
 *	was lost with its worker), rescheduled to its destination's probe
 *	(message_defer_suspended), or its attempt is counted and it is
 *	rescheduled with an exponential backoff and jitter. Only after the
 *	commit do the messages leave the active set. Returns the number
 *	finalized, or -1 when the commit failed (the list is kept and
 *	retried).
 * message_defer_suspended()
 *	a job of the message waits for its suspended destination's probe
 *	(dest.c): its recipients that are not final are deferred with the
 *	destination's reason ("... (destination suspended, next probe at
 *	HH:MM:SS)"), and the message is parked with the destination. When
 *	finalized, such a message is rescheduled to the probe time without
 *	an attempt counted, unless another job was deferred by a relay (then
 *	the backoff applies, and the resume still releases it).
 * message_done_pending()
 *	whether the done list is non-empty.
 * message_free()
 *	release a message that is not in the active set.
 *
 * A failure to commit is not fatal: the messages stay active and are
 * finalized on a later pass; nothing is acknowledged to anyone before it.
 * It is logged once, and its end once, not at every pass.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "fault.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"

static QMGR_MESSAGE *message_done_head;
static int message_commit_failed; /* the last group commit failed: its warning is logged */

/* message_free - release a message */
void message_free(QMGR_MESSAGE *message)
{
    qstore_attempts_free(message->attempts, message->nattempts);
    qmsg_free(&message->env);
    qstore_rcpts_free(message->rcpts, message->nrcpt);
    myfree(message->changed);
    myfree(message->relayed);
    myfree(message);
}

/* message_add_attempt - remember a recipient's new result for the history */
void message_add_attempt(QMGR_MESSAGE *message, unsigned index, const char *relay)
{
    const QRCPT *rcpt = &message->rcpts[index];
    QATTEMPT *at;

    message->attempts =
        myrealloc(message->attempts, sizeof(*message->attempts) * (message->nattempts + 1));
    at = message->attempts + message->nattempts++;
    at->when_ms = wall_ms();
    at->index = index;
    at->status = rcpt->status;
    snprintf(at->dsn, sizeof(at->dsn), "%s", rcpt->dsn);
    at->relay = mystrdup(relay);
    at->reply = mystrdup(rcpt->reply);
}

/* message_rcpt_final - is a recipient status final */
static int message_rcpt_final(int status)
{
    return status == QRCPT_SENT || status == QRCPT_BOUNCED;
}

/* message_defer_suspended - a job waits for its destination's probe */
void message_defer_suspended(QMGR_MESSAGE *message, const QMGR_JOB *job)
{
    VSTR *text = vstr_alloc(128);

    dest_suspend_text(job->dest, text);
    for (size_t i = 0; i < job->nrcpt; i++) {
        QRCPT *rcpt = &message->rcpts[job->rcpt_index[i]];

        if (message_rcpt_final(rcpt->status))
            continue;
        rcpt->status = QRCPT_DEFERRED;
        snprintf(rcpt->dsn, sizeof(rcpt->dsn), "%s", job->dest->suspend_dsn);
        myfree(rcpt->reply);
        rcpt->reply = mystrdup(vstr_str(text));
        message->changed[job->rcpt_index[i]] = 1;
    }
    vstr_free(text);
    message->suspend_dest = job->dest;
    dest_park(job->dest, message->env.qid);
}

/* message_activate - load a due message and queue its jobs */
QMGR_MESSAGE *message_activate(QSTORE_TXN *txn, const char *qid, int *status)
{
    QMGR_MESSAGE *message = mycalloc(1, sizeof(*message));
    QMGR_JOB *job, **jobs;
    size_t njobs = 0;
    int rc;

    *status = QSTORE_OK;
    if ((rc = qstore_message_get(txn, qid, &message->env)) != QSTORE_OK) {
        if (rc == QSTORE_ERROR)
            msg_warn("%s: cannot read envelope: %s", qid, qstore_txn_reason(txn));
        if (rc != QSTORE_NOTFOUND)
            *status = rc;
        myfree(message);
        return NULL;
    }
    if (message->env.flags & QMSG_HOLD) {
        qmsg_free(&message->env);
        myfree(message);
        return NULL;
    }
    if ((rc = qstore_rcpts_get(txn, qid, &message->rcpts, &message->nrcpt)) != QSTORE_OK ||
        ((rc = qstore_body_verify(txn, qid)) != QSTORE_OK && rc != QSTORE_NOTFOUND)) {
        if (rc == QSTORE_ERROR)
            msg_warn("%s: cannot read the message: %s", qid, qstore_txn_reason(txn));
        *status = rc;
        qstore_rcpts_free(message->rcpts, message->nrcpt);
        qmsg_free(&message->env);
        myfree(message);
        return NULL;
    }
    message->changed = mycalloc(message->nrcpt ? message->nrcpt : 1, 1);
    message->relayed = mycalloc(message->nrcpt ? message->nrcpt : 1, 1);
    message->active_ms = wall_ms();

    /* Recipients whose routes pick the same relay travel together, at most
     * the destination's recipient limit per job: a relay may refuse more
     * recipients in one transaction (RFC 5321 only promises 100). */
    jobs = mycalloc(message->nrcpt ? message->nrcpt : 1, sizeof(*jobs));
    for (size_t i = 0; i < message->nrcpt; i++) {
        QMGR_ROUTE *route;
        QMGR_DEST *dest;
        size_t j, room;

        if (message_rcpt_final(message->rcpts[i].status))
            continue;
        route = route_for(message->env.sender, message->rcpts[i].addr);
        dest = route_pick(route);
        room =
            (size_t)dest->rcpt_limit < message->nrcpt ? (size_t)dest->rcpt_limit : message->nrcpt;
        /* Only the destination's newest job can have room left. */
        for (j = njobs; j > 0 && jobs[j - 1]->dest != dest; j--)
            ;
        if (j == 0 || jobs[j - 1]->nrcpt >= room) {
            job = mycalloc(1, sizeof(*job));
            job->message = message;
            job->dest = dest;
            job->route = route;
            job->rcpt_index = mymalloc(sizeof(*job->rcpt_index) * room);
            jobs[njobs++] = job;
            j = njobs;
        }
        jobs[j - 1]->rcpt_index[jobs[j - 1]->nrcpt++] = (unsigned)i;
    }
    htable_put(qmgr_active, qid, message);
    if (njobs == 0) {
        /* Every recipient is final: finalize (delete) without delivering. */
        myfree(jobs);
        message->done_next = message_done_head;
        message_done_head = message;
        return message;
    }
    message->jobs_outstanding = (int)njobs;
    for (size_t j = 0; j < njobs; j++)
        dest_enqueue(jobs[j]->dest, jobs[j]);
    myfree(jobs);
    msg_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)", qid, message->env.sender,
             message->env.size, message->nrcpt);
    return message;
}

/* message_job_done - one job of the message finished */
void message_job_done(QMGR_MESSAGE *message)
{
    if (message->jobs_outstanding <= 0)
        msg_panic("%s: job done with none outstanding", message->env.qid);
    if (--message->jobs_outstanding == 0) {
        message->done_next = message_done_head;
        message_done_head = message;
    }
}

/* message_done_pending - are there messages to finalize */
int message_done_pending(void)
{
    return message_done_head != NULL;
}

/* message_backoff - seconds until the next attempt after `attempts` tries */
static long long message_backoff(unsigned attempts)
{
    long long min_backoff = var_int("minimal_backoff_time");
    long long max_backoff = var_int("maximal_backoff_time");
    long long delay = min_backoff;

    for (unsigned i = 1; i < attempts && delay < max_backoff; i++)
        delay *= 2;
    if (delay > max_backoff)
        delay = max_backoff;
    /* Up to 10% less, so a queue deferred at one moment spreads out. */
    if (delay >= 10)
        delay -= (long long)randombytes_uniform((uint32_t)(delay / 10 + 1));
    return delay < 1 ? 1 : delay;
}

/* message_lifetime - how long a message may stay in the queue */
static long long message_lifetime(const QMGR_MESSAGE *message)
{
    return var_int(*message->env.sender ? "maximal_queue_lifetime" : "bounce_queue_lifetime");
}

/* message_notify - queue the notices this pass's results call for */
static void message_notify(QSTORE_TXN *txn, QMGR_MESSAGE *message, int expired)
{
    unsigned char *failed = mycalloc(message->nrcpt ? message->nrcpt : 1, 1);
    unsigned char *delayed = mycalloc(message->nrcpt ? message->nrcpt : 1, 1);
    long long age = (long long)time(NULL) - message->env.arrival_ms / 1000;
    long long warn_after = var_int("delay_warning_time");
    int any_failed = 0, any_delayed = 0;

    for (size_t i = 0; i < message->nrcpt; i++) {
        const QRCPT *rcpt = &message->rcpts[i];

        if (rcpt->status == QRCPT_BOUNCED && message->changed[i] && bounce_wants(rcpt, DSN_FAILED))
            any_failed = failed[i] = 1;
        if (rcpt->status == QRCPT_DEFERRED && bounce_wants(rcpt, DSN_DELAYED))
            delayed[i] = 1;
    }
    if (any_failed)
        bounce_notify(txn, message, DSN_FAILED, failed, expired);
    for (size_t i = 0; i < message->nrcpt; i++)
        if (message->relayed[i]) {
            bounce_notify(txn, message, DSN_RELAYED, message->relayed, 0);
            break;
        }
    if (warn_after > 0 && age >= warn_after && !(message->env.flags & QMSG_WARNED)) {
        for (size_t i = 0; i < message->nrcpt; i++)
            any_delayed |= delayed[i];
        /* Once per message, whether or not a recipient asked for it. */
        message->env.flags |= QMSG_WARNED;
        if (any_delayed)
            bounce_notify(txn, message, DSN_DELAYED, delayed, 0);
    }
    myfree(failed);
    myfree(delayed);
}

/* message_expire - bounce the recipients of a message older than its lifetime */
static int message_expire(QMGR_MESSAGE *message)
{
    long long age = (long long)time(NULL) - message->env.arrival_ms / 1000;

    if (age < message_lifetime(message))
        return 0;
    for (size_t i = 0; i < message->nrcpt; i++) {
        QRCPT *rcpt = &message->rcpts[i];

        if (rcpt->status == QRCPT_SENT || rcpt->status == QRCPT_BOUNCED)
            continue;
        /* The last deferral's reason and code stay: they say why. */
        rcpt->status = QRCPT_BOUNCED;
        if (*rcpt->dsn == '\0')
            snprintf(rcpt->dsn, sizeof(rcpt->dsn), "4.4.7");
        if (*rcpt->reply == '\0') {
            myfree(rcpt->reply);
            rcpt->reply = mystrdup("message expired: no delivery attempt succeeded");
        }
        message->changed[i] = 1;
    }
    msg_info("%s: message expired after %lld seconds in the queue", message->env.qid, age);
    return 1;
}

/* message_finalize - write one message's new state into the transaction */
static void message_finalize(QSTORE_TXN *txn, QMGR_MESSAGE *message, int *removed)
{
    int pending = 0, expired = 0;

    *removed = 0;
    if (message->deleted) {
        qstore_message_delete(txn, message->env.qid);
        *removed = 1;
        return;
    }
    for (size_t i = 0; i < message->nrcpt; i++)
        if (!message_rcpt_final(message->rcpts[i].status))
            pending = 1;
    if (pending && !message->lost && !message->requeue && !(message->env.flags & QMSG_HOLD) &&
        message_expire(message)) {
        pending = 0;
        expired = 1;
    }
    message_notify(txn, message, expired);
    if (!pending) {
        qstore_message_delete(txn, message->env.qid);
        *removed = 1;
        return;
    }
    for (size_t i = 0; i < message->nrcpt; i++)
        if (message->changed[i])
            qstore_rcpt_put(txn, message->env.qid, &message->rcpts[i]);
    for (size_t i = 0; i < message->nattempts; i++)
        qstore_attempt_put(txn, message->env.qid, &message->attempts[i]);
    if (message->requeue) {
        /* The operator asked for a fresh start while it was in delivery. */
        for (size_t i = 0; i < message->nrcpt; i++) {
            QRCPT *rcpt = &message->rcpts[i];

            if (message_rcpt_final(rcpt->status))
                continue;
            rcpt->status = QRCPT_PENDING;
            rcpt->dsn[0] = '\0';
            myfree(rcpt->reply);
            rcpt->reply = mystrdup("");
            qstore_rcpt_put(txn, message->env.qid, rcpt);
        }
        message->env.attempts = 0;
        message->env.flags &= ~(unsigned)QMSG_HOLD;
        qstore_message_reschedule(txn, &message->env, (long long)time(NULL));
        return;
    }
    if (message->env.flags & QMSG_HOLD) {
        /* Held during delivery: off the schedule until released. */
        qstore_message_reschedule(txn, &message->env, 0);
        return;
    }
    if (message->lost) {
        /* Its worker died: the schedule entry is still due, so the next
         * scan retries the remaining recipients at once. */
        qstore_message_put(txn, &message->env, 0);
        return;
    }
    if (message->throttled || message->reroute) {
        /* The relay was busy, the message is fine: soon again, not later. */
        qstore_message_reschedule(txn, &message->env, (long long)time(NULL) + 1);
        return;
    }
    if (message->suspend_dest && !message->backoff) {
        /* Its destination is down: back at the probe, no attempt counted. */
        qstore_message_reschedule(txn, &message->env, dest_probe_time(message->suspend_dest));
        return;
    }
    message->env.attempts++;
    qstore_message_reschedule(txn, &message->env,
                              (long long)time(NULL) + message_backoff(message->env.attempts));
}

/* message_release - a message whose new state is committed leaves the active set */
static void message_release(QMGR_MESSAGE *message)
{
    int done = 1;

    for (size_t i = 0; i < message->nrcpt; i++)
        if (!message_rcpt_final(message->rcpts[i].status))
            done = 0;
    if (done || message->deleted)
        msg_info("%s: removed", message->env.qid);
    else
        /* Due again at once (lost) or later: a scan sets the timer. */
        qmgr_scan_wanted = 1;
    htable_remove(qmgr_active, message->env.qid);
    message_free(message);
}

/* message_commit - finalize a list of messages in one transaction */
static int message_commit(QMGR_MESSAGE *list, int single, VSTR *why)
{
    QSTORE_TXN *txn;
    int removed;

    if ((txn = qstore_begin(qmgr_store, 1, why)) == NULL)
        return QSTORE_ERROR;
    for (QMGR_MESSAGE *message = list; message; message = single ? NULL : message->done_next)
        message_finalize(txn, message, &removed);
    FAULT_POINT("qmgr-mid-txn");
    return qstore_commit(txn, why);
}

/* message_finalize_done - commit the done list in one transaction */
int message_finalize_done(void)
{
    VSTR *why;
    QMGR_MESSAGE *message, *next, *kept = NULL;
    int count = 0, rc;

    if (message_done_head == NULL)
        return 0;
    FAULT_POINT("qmgr-after-result");
    why = vstr_alloc(100);
    if ((rc = message_commit(message_done_head, 0, why)) == QSTORE_OK) {
        if (message_commit_failed)
            msg_info("delivery results are recorded again");
        message_commit_failed = 0;
        for (message = message_done_head; message; message = next) {
            next = message->done_next;
            message_release(message);
            count++;
        }
        message_done_head = NULL;
        vstr_free(why);
        return count;
    }
    /* Once per episode: a full queue fails at every pass until room is made. */
    if (!message_commit_failed)
        msg_warn("cannot record delivery results: %s%s", vstr_str(why),
                 rc == QSTORE_FULL ? "; recording them one message per transaction" : "");
    else if (msg_verbose)
        msg_info("cannot record delivery results: %s", vstr_str(why));
    message_commit_failed = 1;
    if (rc != QSTORE_FULL) {
        vstr_free(why);
        return -1;
    }
    /* A full map: every change needs free pages, and one large transaction
     * may need more than are left. One message per transaction frees room
     * step by step (each delivered message that leaves the queue). */
    for (message = message_done_head; message; message = next) {
        next = message->done_next;
        if (message_commit(message, 1, why) == QSTORE_OK) {
            message_release(message);
            count++;
        } else {
            message->done_next = kept;
            kept = message;
        }
    }
    message_done_head = kept;
    vstr_free(why);
    return kept ? -1 : count;
}
