/*
 * assign - hand queued jobs to idle workers
 *
 * assign_jobs()
 *	for every destination with queued jobs and room in its concurrency
 *	window, give the next job to an idle worker: first one whose open
 *	connection already goes to that destination (no new TCP, TLS or AUTH),
 *	then one without a connection, then any idle one. The job record
 *	carries the DSN parameters (RET, ENVID, NOTIFY, ORCPT) for a relay
 *	that offers DSN. The job record is
 *	queued on the worker's channel; qmgr.c flushes channels after the pass.
 *	A queued job whose message the operator deleted or held meanwhile is
 *	dropped instead. A destination over its rate (dest_take_token) gets
 *	no job this pass; a timer brings the loop back when it may.
 * job_free()
 *	release a job.
 */
#include "config.h"

#include "event.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "qmgr.h"

static long long assign_next_id = 1;

/* job_free - release a job */
void job_free(QMGR_JOB *job)
{
    myfree(job->rcpt_index);
    myfree(job);
}

/* assign_pick_worker - the best idle worker for a destination, or NULL */
static QMGR_PEER *assign_pick_worker(const QMGR_DEST *dest)
{
    QMGR_PEER *unconnected = NULL, *other = NULL;

    for (QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next) {
        if (peer->kind != PEER_WORKER || peer->job != NULL)
            continue;
        if (peer->conn_dest == dest)
            return peer;
        if (peer->conn_dest == NULL) {
            if (unconnected == NULL)
                unconnected = peer;
        } else if (other == NULL) {
            other = peer;
        }
    }
    return unconnected ? unconnected : other;
}

/* assign_send - queue a job record on the worker's channel */
static void assign_send(QMGR_PEER *worker, QMGR_JOB *job)
{
    QMGR_MESSAGE *message = job->message;
    IPC_REC *rec = ipc_rec_create("deliver");

    job->id = assign_next_id++;
    ipc_rec_add_long(rec, "id", job->id);
    ipc_rec_add(rec, "queue_id", message->env.qid);
    ipc_rec_add(rec, "relay", job->dest->host);
    ipc_rec_add_long(rec, "port", job->dest->port);
    ipc_rec_add(rec, "sender", message->env.sender);
    ipc_rec_add_long(rec, "size", message->env.size);
    ipc_rec_add_long(rec, "arrival_ms", message->env.arrival_ms);
    ipc_rec_add_long(rec, "active_ms", message->active_ms);
    if (*message->env.ret)
        ipc_rec_add(rec, "ret", message->env.ret);
    if (*message->env.envid)
        ipc_rec_add(rec, "envid", message->env.envid);
    for (size_t i = 0; i < job->nrcpt; i++) {
        const QRCPT *rcpt = &message->rcpts[job->rcpt_index[i]];

        ipc_rec_addf(rec, "rcpt", "%u %s", job->rcpt_index[i], rcpt->addr);
        if (*rcpt->notify)
            ipc_rec_addf(rec, "notify", "%u %s", job->rcpt_index[i], rcpt->notify);
        if (*rcpt->orcpt)
            ipc_rec_addf(rec, "orcpt", "%u %s", job->rcpt_index[i], rcpt->orcpt);
    }
    ipc_chan_send(worker->chan, rec);
    ipc_rec_free(rec);
    job->worker = worker;
    worker->job = job;
    job->dest->busy++;
}

/* assign_wakeup - a rate-limited destination has a token again */
static void assign_wakeup(void *ctx)
{
    /* Nothing to do here: the pass this timer ends runs assign_jobs(). */
    (void)ctx;
}

/* assign_jobs - give queued jobs to idle workers */
void assign_jobs(void)
{
    int progress = 1;

    if (qmgr_stopping)
        return;
    /* Round-robin over destinations, one job each per round, so one busy
     * destination does not starve the others of workers. */
    while (progress) {
        progress = 0;
        for (QMGR_DEST *dest = dest_list(); dest; dest = dest->next) {
            QMGR_PEER *worker;
            long long wait_ms;

            if (dest->queued == 0 || dest->busy >= dest->limit)
                continue;
            if (dest->head->message->deleted || (dest->head->message->env.flags & QMSG_HOLD)) {
                /* Deleted or held by the operator while waiting for a worker. */
                QMGR_JOB *job = dest_dequeue(dest);
                QMGR_MESSAGE *message = job->message;

                job_free(job);
                message_job_done(message);
                progress = 1;
                continue;
            }
            if ((worker = assign_pick_worker(dest)) == NULL)
                return;
            if (!dest_take_token(dest, &wait_ms)) {
                /* Over the rate: wake up when the next token is due. */
                event_request_timer(assign_wakeup, dest, wait_ms);
                continue;
            }
            assign_send(worker, dest_dequeue(dest));
            progress = 1;
        }
    }
}
