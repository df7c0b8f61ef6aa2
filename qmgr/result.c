/*
 * result - what workers report back
 *
 * result_receive()
 *	apply a worker's `result` record to its job's message: each recipient
 *	becomes sent, bounced or deferred with the relay's reply, and the job
 *	is done. The decoder is strict: the record must answer the job the
 *	worker holds and name only that job's recipients, each once; anything
 *	else is a protocol error (-1) and the caller drops the worker, which
 *	treats its job as lost.
 *	A deferral that is the relay asking to slow down (throttle.c: 421,
 *	4.7.x, or a 45x that speaks of rate, too many, busy ...) marks the
 *	message for a retry soon without backoff and slows the destination
 *	down (dest.c): the destination's rate, not the message's backoff,
 *	bounds how often such mail is tried again.
 *	A relay that limits the recipients of a transaction (4.5.3, "too many
 *	recipients") is not overloaded: when the job delivered to some
 *	recipients, the ones refused or not tried are retried soon without
 *	backoff, in new transactions, and the rate stays as it is.
 *	A job that finds its relay down (suspend.c: no connection, or a
 *	greeting that refuses us without asking to slow down) suspends the
 *	destination (dest.c): with another relay on the route the message
 *	goes there at once; else it waits for the destination's probe,
 *	without an attempt counted. Any other outcome shows the relay
 *	answered, which ends a suspension.
 * result_worker_lost()
 *	the worker went away with a job in flight: the job's recipients are
 *	left as they are in the queue (the relay may have accepted it: a
 *	duplicate is possible, a loss is not), and the loss is counted for
 *	the message (sched.c). The first loss makes it due again at once; a
 *	second one is a poison message, deferred with backoff and expiry
 *	like any deferral (retry.c). A result that leaves a recipient out
 *	counts the same way.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "msg.h"
#include "mymalloc.h"
#include "qmgr.h"
#include "throttle.h"

/* result_job_finished - release the worker and the destination slot */
static void result_job_finished(QMGR_PEER *worker, int reported)
{
    QMGR_JOB *job = worker->job;
    QMGR_MESSAGE *message = job->message;

    if (reported) {
        /* The result waits for the message's commit; the worker may go on (assign.c). */
        message->reporters =
            myrealloc(message->reporters, sizeof(*message->reporters) * (message->nreporters + 1));
        message->reporters[message->nreporters++] = worker;
        worker->reports++;
    }
    worker->job = NULL;
    job->dest->busy--;
    job_free(job);
    message_job_done(message);
}

/* result_status - a status word to QRCPT_*, or -1 */
static int result_status(const char *word, size_t len)
{
    if (len == 4 && strncmp(word, "sent", 4) == 0)
        return QRCPT_SENT;
    if (len == 8 && strncmp(word, "deferred", 8) == 0)
        return QRCPT_DEFERRED;
    if (len == 7 && strncmp(word, "bounced", 7) == 0)
        return QRCPT_BOUNCED;
    return -1;
}

/* result_asks - what a recipient's deferral asks of the destination (throttle.c) */
static int result_asks(const QRCPT *rcpt, int what)
{
    return rcpt->status == QRCPT_DEFERRED && throttle_classify(rcpt->dsn, rcpt->reply) == what;
}

/* result_dead - the deferral that says the job's relay is down (suspend.c), or NULL */
static const QRCPT *result_dead(const QMGR_JOB *job, const unsigned char *seen, const char *relay)
{
    for (size_t slot = 0; slot < job->nrcpt; slot++) {
        const QRCPT *rcpt = &job->message->rcpts[job->rcpt_index[slot]];

        if (seen[slot] && rcpt->status == QRCPT_DEFERRED)
            return suspend_is_dead(relay, rcpt->dsn, rcpt->reply) ? rcpt : NULL;
    }
    return NULL;
}

/* result_apply_rcpt - parse "INDEX STATUS DSN TEXT" into the message */
static int result_apply_rcpt(QMGR_JOB *job, unsigned char *seen, const char *value,
                             const char *relay, VSTR *why)
{
    QMGR_MESSAGE *message = job->message;
    const char *cp = value;
    char *end;
    unsigned long index;
    size_t len, slot;
    int status;
    QRCPT *rcpt;

    index = strtoul(cp, &end, 10);
    if (end == cp || *end != ' ') {
        vstr_sprintf(why, "malformed rcpt \"%.60s\"", value);
        return -1;
    }
    for (slot = 0; slot < job->nrcpt; slot++)
        if (job->rcpt_index[slot] == index)
            break;
    if (slot == job->nrcpt || seen[slot]) {
        vstr_sprintf(why, "rcpt index %lu is not in the job or repeated", index);
        return -1;
    }
    seen[slot] = 1;
    cp = end + 1;
    len = strcspn(cp, " ");
    if ((status = result_status(cp, len)) < 0) {
        vstr_sprintf(why, "bad status in rcpt \"%.60s\"", value);
        return -1;
    }
    cp += len;
    if (*cp++ != ' ') {
        vstr_sprintf(why, "rcpt without dsn: \"%.60s\"", value);
        return -1;
    }
    len = strcspn(cp, " ");
    if (len < 5 || len > 11) {
        vstr_sprintf(why, "bad dsn in rcpt \"%.60s\"", value);
        return -1;
    }
    rcpt = &message->rcpts[index];
    rcpt->status = status;
    snprintf(rcpt->dsn, sizeof(rcpt->dsn), "%.*s", (int)len, cp);
    cp += len;
    if (*cp == ' ')
        cp++;
    myfree(rcpt->reply);
    rcpt->reply = mystrdup(cp);
    rcpt->last_attempt = (long long)time(NULL);
    message->changed[index] = 1;
    message_add_attempt(message, (unsigned)index, relay);
    return 0;
}

/* result_receive - apply a worker's result */
int result_receive(QMGR_PEER *worker, const IPC_REC *rec)
{
    QMGR_JOB *job = worker->job;
    VSTR *why = vstr_alloc(100);
    unsigned char *seen;
    long long id, xfer_ms = -1;
    const char *conn;
    const QRCPT *dead;
    int delivered = 0, ret = -1;

    if (job == NULL) {
        msg_warn("worker pid %ld: result without a job", worker->pid);
        vstr_free(why);
        return -1;
    }
    if (ipc_rec_check(rec, "id,queue_id,relay,conn", "rcpt*,upstream_dsn,xfer_ms", why) < 0 ||
        ipc_rec_get_long(rec, "id", 1, (1LL << 62), &id, why) < 0 ||
        (ipc_rec_get(rec, "xfer_ms") != NULL &&
         ipc_rec_get_long(rec, "xfer_ms", 0, (1LL << 40), &xfer_ms, why) < 0)) {
        msg_warn("worker pid %ld: %s", worker->pid, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    if (id != job->id || strcmp(ipc_rec_get(rec, "queue_id"), job->message->env.qid) != 0) {
        msg_warn("worker pid %ld: result for job %lld, expected %lld", worker->pid, id, job->id);
        vstr_free(why);
        return -1;
    }
    seen = mycalloc(job->nrcpt ? job->nrcpt : 1, 1);
    for (size_t i = 1; i < rec->count; i++) {
        if (strcmp(rec->attrs[i].name, "rcpt") != 0)
            continue;
        if (result_apply_rcpt(job, seen, rec->attrs[i].value, ipc_rec_get(rec, "relay"), why) < 0) {
            msg_warn("worker pid %ld: %s: %s", worker->pid, job->message->env.qid, vstr_str(why));
            goto out;
        }
    }
    for (size_t slot = 0; slot < job->nrcpt; slot++)
        if (!seen[slot]) {
            /* A recipient the worker did not report stays as it was and the
             * message is retried at once. */
            msg_warn("worker pid %ld: %s: no result for recipient %u", worker->pid,
                     job->message->env.qid, job->rcpt_index[slot]);
            job->message->lost = sched_note_lost(qmgr_sched, job->message->env.qid);
            break;
        }
    if (ipc_rec_get(rec, "upstream_dsn") == NULL) {
        /* The relay cannot report success: a recipient that asked for it
         * gets a "relayed" notice from us (RFC 3461 section 5.2.2). */
        for (size_t slot = 0; slot < job->nrcpt; slot++) {
            unsigned index = job->rcpt_index[slot];
            const QRCPT *rcpt = &job->message->rcpts[index];

            if (seen[slot] && rcpt->status == QRCPT_SENT && bounce_wants(rcpt, DSN_RELAYED))
                job->message->relayed[index] = 1;
        }
    }
    for (size_t slot = 0; slot < job->nrcpt; slot++) {
        const QRCPT *rcpt = &job->message->rcpts[job->rcpt_index[slot]];

        if (seen[slot] && rcpt->status == QRCPT_SENT) {
            dest_note_delivery(job->dest);
            delivered = 1;
            break;
        }
    }
    /* Progress with recipients left over: the next transaction takes them
     * soon. Without progress a limit is an ordinary deferral (backoff). */
    for (size_t slot = 0; delivered && slot < job->nrcpt; slot++)
        if (seen[slot] &&
            result_asks(&job->message->rcpts[job->rcpt_index[slot]], THROTTLE_RCPT_LIMIT)) {
            job->message->throttled = 1;
            break;
        }
    for (size_t slot = 0; slot < job->nrcpt; slot++)
        if (seen[slot] &&
            result_asks(&job->message->rcpts[job->rcpt_index[slot]], THROTTLE_SLOW_DOWN)) {
            job->message->throttled = 1;
            dest_note_throttle(job->dest);
            break;
        }
    if ((dead = result_dead(job, seen, ipc_rec_get(rec, "relay"))) != NULL) {
        /* The relay is down: suspend it. A route with another relay tries
         * that one at once; otherwise the mail waits for the probe. */
        dest_suspend(job->dest, job, dead->dsn, dead->reply);
        if (route_pick(job->route) != job->dest) {
            job->message->reroute = 1;
            msg_info("%s: relay %s unreachable: trying %s", job->message->env.qid, job->dest->name,
                     route_pick(job->route)->name);
        } else {
            message_defer_suspended(job->message, job);
        }
    } else {
        /* The relay answered: the destination is up again. */
        dest_resume(job->dest);
        for (size_t slot = 0; slot < job->nrcpt; slot++)
            if (seen[slot] && job->message->rcpts[job->rcpt_index[slot]].status == QRCPT_DEFERRED)
                job->message->backoff = 1;
    }
    conn = ipc_rec_get(rec, "conn");
    worker->conn_dest = strcmp(conn, "open") == 0 ? job->dest : NULL;
    stats_result(job->dest, job->message, job, xfer_ms);
    result_job_finished(worker, 1);
    ret = 0;
out:
    myfree(seen);
    vstr_free(why);
    return ret;
}

/* result_worker_lost - a worker died with a job */
void result_worker_lost(QMGR_PEER *worker)
{
    if (worker->job == NULL)
        return;
    msg_warn("%s: delivery process pid %ld went away during delivery: retrying",
             worker->job->message->env.qid, worker->pid);
    worker->job->message->lost = sched_note_lost(qmgr_sched, worker->job->message->env.qid);
    result_job_finished(worker, 0);
}
