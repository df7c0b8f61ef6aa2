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
 *	recorded first. retry.c decides each message's new state (removed,
 *	expired with its recipients bounced, held, requeued, due again at
 *	once, soon, at its destination's probe, or after the backoff with an
 *	attempt counted); the changed recipients, the attempt history and the
 *	notices the results call for (failure; "relayed" for NOTIFY=SUCCESS
 *	recipients handed to a relay without DSN; once per message a delay
 *	notice after delay_warning_time) go into the same transaction. The
 *	message itself does not change before the commit: the new state is
 *	written from a copy. Only after the commit do the messages leave the
 *	active set, the schedule follow (sched.c) and the log say what was
 *	done. Returns the number finalized, or -1 when the commit failed (the
 *	list is kept, unchanged, and retried).
 * message_defer_suspended()
 *	a job of the message waits for its suspended destination's probe
 *	(dest.c): its recipients that are not final are deferred with the
 *	destination's reason ("... (destination suspended, next probe at
 *	HH:MM:SS)"), and the message is parked with the destination. When
 *	finalized, such a message is rescheduled to the probe time without
 *	an attempt counted, unless another job was deferred by a relay (then
 *	the backoff applies, and the resume still releases it).
 * message_done_pending(), message_done_count(), message_done_since_ms()
 *	whether the done list is non-empty, how many messages it holds, and
 *	since when (now_ms()) its oldest has waited: what gather.c weighs.
 * message_commit_failing()
 *	whether the last commit of results failed (assign.c then starts no
 *	job: results must not pile up while they cannot be recorded).
 * message_forget_reporter()
 *	a worker whose results wait for their commit is gone: the messages
 *	no longer count them against it.
 *
 * The results a worker reported stay with their message (its
 * `reports`). Once the message's last job is done they wait for the
 * next pass's commit, counted against the worker (its `uncommitted`,
 * which assign.c bounds); the commit drops both counts. A message of
 * many jobs does not hold its workers back before then: its results
 * are not due for a commit until all its jobs are done.
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
#include "retry.h"
#include "sched.h"

static QMGR_MESSAGE *message_done_head;
static size_t message_done_length;      /* messages on the done list */
static long long message_done_start_ms; /* now_ms() when the list's oldest came */
static int message_commit_failed;       /* the last group commit failed: its warning is logged */

/* message_free - release a message */
void message_free(QMGR_MESSAGE *message)
{
    qstore_attempts_free(message->attempts, message->nattempts);
    qmsg_free(&message->env);
    qstore_rcpts_free(message->rcpts, message->nrcpt);
    myfree(message->changed);
    myfree(message->relayed);
    if (message->commit_log)
        vstr_free(message->commit_log);
    myfree(message->reporters);
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
    message->fresh = sched_is_new(qmgr_sched, qid);

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
    qmgr_active_rcpts += message->nrcpt;
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
        if (message_done_head == NULL)
            message_done_start_ms = now_ms();
        message_done_length++;
        message->done_next = message_done_head;
        message_done_head = message;
        /* Only now do its results wait for a commit: the next pass's. */
        for (size_t i = 0; i < message->nreporters; i++)
            if (message->reporters[i])
                message->reporters[i]->uncommitted++;
    }
}

/* message_commit_failing - did the last commit of results fail */
int message_commit_failing(void)
{
    return message_commit_failed;
}

/* message_forget_one - htable_walk callback: a worker is gone from a message's reporters */
static void message_forget_one(const char *qid, void *value, void *ctx)
{
    QMGR_MESSAGE *message = value;

    (void)qid;
    for (size_t i = 0; i < message->nreporters; i++)
        if (message->reporters[i] == ctx)
            message->reporters[i] = NULL;
}

/* message_forget_reporter - a worker that reported results is gone */
void message_forget_reporter(QMGR_PEER *worker)
{
    if (worker->reports > 0)
        htable_walk(qmgr_active, message_forget_one, worker);
}

/* message_done_pending - are there messages to finalize */
int message_done_pending(void)
{
    return message_done_head != NULL;
}

/* message_done_count - how many messages wait on the done list */
size_t message_done_count(void)
{
    return message_done_length;
}

/* message_done_since_ms - now_ms() when the oldest message on the done list came */
long long message_done_since_ms(void)
{
    return message_done_start_ms;
}

/* message_jitter - the backoff's random spread */
static uint32_t message_jitter(uint32_t upper)
{
    return randombytes_uniform(upper);
}

/* message_policy - the retry policy of the configuration in force */
static void message_policy(RETRY_POLICY *policy)
{
    policy->min_backoff = var_int(minimal_backoff_time);
    policy->max_backoff = var_int(maximal_backoff_time);
    policy->lifetime = var_int(maximal_queue_lifetime);
    policy->bounce_lifetime = var_int(bounce_queue_lifetime);
    policy->delay_warning = var_int(delay_warning_time);
    policy->jitter = message_jitter;
}

/* message_notify - queue the notices this pass's results call for */
static void message_notify(QSTORE_TXN *txn, QMGR_MESSAGE *view, int expired, int warn)
{
    unsigned char *failed = mycalloc(view->nrcpt ? view->nrcpt : 1, 1);
    unsigned char *delayed = mycalloc(view->nrcpt ? view->nrcpt : 1, 1);
    int any_failed = 0, any_delayed = 0;

    for (size_t i = 0; i < view->nrcpt; i++) {
        const QRCPT *rcpt = &view->rcpts[i];

        if (rcpt->status == QRCPT_BOUNCED && view->changed[i] && bounce_wants(rcpt, DSN_FAILED))
            any_failed = failed[i] = 1;
        if (rcpt->status == QRCPT_DEFERRED && bounce_wants(rcpt, DSN_DELAYED))
            any_delayed = delayed[i] = 1;
    }
    if (any_failed)
        bounce_notify(txn, view, DSN_FAILED, failed, expired);
    for (size_t i = 0; i < view->nrcpt; i++)
        if (view->relayed[i]) {
            bounce_notify(txn, view, DSN_RELAYED, view->relayed, 0);
            break;
        }
    /* Once per message, whether or not a recipient asked for it. */
    if (warn && any_delayed)
        bounce_notify(txn, view, DSN_DELAYED, delayed, 0);
    myfree(failed);
    myfree(delayed);
}

/* message_expire_rcpts - in the view, bounce the recipients an expiry ends */
static void message_expire_rcpts(QMGR_MESSAGE *view)
{
    for (size_t i = 0; i < view->nrcpt; i++) {
        QRCPT *rcpt = &view->rcpts[i];

        if (message_rcpt_final(rcpt->status))
            continue;
        /* The last deferral's reason and code stay: they say why. */
        rcpt->status = QRCPT_BOUNCED;
        if (*rcpt->dsn == '\0')
            snprintf(rcpt->dsn, sizeof(rcpt->dsn), "4.4.7");
        if (*rcpt->reply == '\0')
            rcpt->reply = "message expired: no delivery attempt succeeded";
        view->changed[i] = 1;
    }
}

/* message_requeue_rcpts - in the view, the recipients that are not final start over */
static void message_requeue_rcpts(QMGR_MESSAGE *view)
{
    for (size_t i = 0; i < view->nrcpt; i++) {
        QRCPT *rcpt = &view->rcpts[i];

        if (message_rcpt_final(rcpt->status))
            continue;
        rcpt->status = QRCPT_PENDING;
        rcpt->dsn[0] = '\0';
        rcpt->reply = "";
        view->changed[i] = 1;
    }
}

/* message_outcome - what the message is and what this activation learned */
static void message_outcome(const QMGR_MESSAGE *message, RETRY_OUTCOME *out)
{
    memset(out, 0, sizeof(*out));
    out->arrival = message->env.arrival_ms / 1000;
    out->null_sender = *message->env.sender == '\0';
    out->attempts = message->env.attempts;
    out->warned = (message->env.flags & QMSG_WARNED) != 0;
    for (size_t i = 0; i < message->nrcpt; i++)
        if (!message_rcpt_final(message->rcpts[i].status))
            out->pending = 1;
    out->deleted = message->deleted;
    out->requeue = message->requeue;
    out->held = (message->env.flags & QMSG_HOLD) != 0;
    out->lost = message->lost;
    out->throttled = message->throttled;
    out->reroute = message->reroute;
    out->probe_at = message->suspend_dest ? dest_probe_time(message->suspend_dest) : 0;
    out->backoff = message->backoff;
}

/*
 * message_finalize - write one message's new state into the transaction
 *
 * The message itself does not change: the new state is built in a view
 * (a copy of the envelope and of the recipients), written, and dropped.
 * When the commit fails the next try starts from the same message and
 * writes the same change set; when it succeeds the message leaves the
 * active set and the schedule follows the commit (sched.c).
 */
static void message_finalize(QSTORE_TXN *txn, QMGR_MESSAGE *message, long long now)
{
    RETRY_POLICY policy;
    RETRY_OUTCOME out;
    RETRY_DECISION *d = &message->decision;
    QMGR_MESSAGE view;
    QMSG env = message->env;

    /* A retry after a failed commit starts again: nothing of the try before counts. */
    if (message->commit_log == NULL)
        message->commit_log = vstr_alloc(100);
    vstr_reset(message->commit_log);
    memset(message->notices, 0, sizeof(message->notices));
    view = *message;
    message_policy(&policy);
    message_outcome(message, &out);
    retry_decide(&policy, &out, now, d);
    if (d->action == RETRY_REMOVE && message->deleted) {
        qstore_message_delete(txn, message->env.qid);
        return;
    }
    view.rcpts = mymalloc(sizeof(*view.rcpts) * (message->nrcpt ? message->nrcpt : 1));
    memcpy(view.rcpts, message->rcpts, sizeof(*view.rcpts) * message->nrcpt);
    view.changed = mymalloc(message->nrcpt ? message->nrcpt : 1);
    memcpy(view.changed, message->changed, message->nrcpt);
    if (d->action == RETRY_EXPIRE)
        message_expire_rcpts(&view);
    message_notify(txn, &view, d->action == RETRY_EXPIRE, d->warn);
    memcpy(message->notices, view.notices, sizeof(message->notices));
    if (d->action == RETRY_REMOVE || d->action == RETRY_EXPIRE) {
        qstore_message_delete(txn, message->env.qid);
    } else {
        if (d->requeued)
            message_requeue_rcpts(&view);
        for (size_t i = 0; i < view.nrcpt; i++)
            if (view.changed[i])
                qstore_rcpt_put(txn, env.qid, &view.rcpts[i]);
        for (size_t i = 0; i < message->nattempts; i++)
            qstore_attempt_put(txn, env.qid, &message->attempts[i]);
        env.attempts = d->attempts;
        if (d->warn)
            env.flags |= QMSG_WARNED;
        if (d->requeued)
            env.flags &= ~(unsigned)QMSG_HOLD;
        /* The copy takes the new schedule time; the message keeps the old
         * one, so a retry after a failed commit moves the same entry. */
        qstore_message_reschedule(txn, &env, d->due);
    }
    myfree(view.rcpts);
    myfree(view.changed);
}

/* message_release - a message whose new state is committed leaves the active set */
static void message_release(QMGR_MESSAGE *message)
{
    const RETRY_DECISION *d = &message->decision;
    long long age = (long long)time(NULL) - message->env.arrival_ms / 1000;
    const char *line, *end;

    if (d->poison)
        msg_warn("%s: %u delivery processes died delivering this message: deferred with backoff "
                 "(attempt %u)",
                 message->env.qid, message->lost, d->attempts);
    if (d->action == RETRY_EXPIRE)
        msg_info("%s: message expired after %lld seconds in the queue", message->env.qid, age);
    for (line = message->commit_log ? vstr_str(message->commit_log) : ""; *line; line = end + 1) {
        end = strchr(line, '\n');
        msg_info("%s: %.*s", message->env.qid, (int)(end - line), line);
    }
    if (d->action == RETRY_REMOVE || d->action == RETRY_EXPIRE)
        msg_info("%s: removed", message->env.qid);
    for (int kind = 0; kind < STATS_NOTICES; kind++)
        qmgr_counters.notices[kind] += message->notices[kind];
    for (size_t i = 0; i < message->nreporters; i++) {
        QMGR_PEER *worker = message->reporters[i];

        if (worker && (--worker->uncommitted < 0 || --worker->reports < 0))
            msg_panic("%s: worker pid %ld: more results committed than received", message->env.qid,
                      worker->pid);
    }
    htable_remove(qmgr_active, message->env.qid);
    qmgr_active_rcpts -= message->nrcpt;
    /* The commit hook has set its new schedule entry: it waits there now. */
    sched_release(qmgr_sched, message->env.qid);
    message_free(message);
}

/* message_commit - finalize a list of messages in one transaction */
static int message_commit(QMGR_MESSAGE *list, int single, VSTR *why)
{
    QSTORE_TXN *txn;
    long long now = (long long)time(NULL);

    if ((txn = qstore_begin(qmgr_store, 1, why)) == NULL)
        return QSTORE_ERROR;
    for (QMGR_MESSAGE *message = list; message; message = single ? NULL : message->done_next)
        message_finalize(txn, message, now);
    FAULT_POINT("qmgr-mid-txn");
    return qstore_commit(txn, why);
}

/* message_finalize_done - commit the done list in one transaction */
int message_finalize_done(void)
{
    VSTR *why;
    QMGR_MESSAGE *message, *next, *kept = NULL;
    long long started_us; /* then the commit's time */
    int count = 0, rc;

    if (message_done_head == NULL)
        return 0;
    FAULT_POINT("qmgr-after-result");
    why = vstr_alloc(100);
    started_us = now_us();
    rc = message_commit(message_done_head, 0, why);
    started_us = now_us() - started_us; /* the commit's time, without the logging after it */
    if (rc == QSTORE_OK) {
        if (message_commit_failed)
            msg_info("delivery results are recorded again");
        message_commit_failed = 0;
        for (message = message_done_head; message; message = next) {
            next = message->done_next;
            message_release(message);
            count++;
        }
        stats_commit(&qmgr_counters, started_us, count);
        message_done_head = NULL;
        message_done_length = 0;
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
    message_done_length -= (size_t)count;
    vstr_free(why);
    return kept ? -1 : count;
}
