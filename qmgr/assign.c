/*
 * assign - hand queued jobs to idle workers
 *
 * assign_jobs()
 *	for every destination with queued jobs and room in its concurrency
 *	window, give the next job to an idle worker that has fewer than
 *	QMGR_UNCOMMITTED_MAX results waiting for their commit: first one whose open
 *	connection already goes to that destination (no new TCP, TLS or AUTH),
 *	then one without a connection, then any idle one. When the worker
 *	connected to the destination is idle but at its cap, the job waits
 *	for the commit that frees it (the same pass) instead. The job record
 *	carries the DSN parameters (RET, ENVID, NOTIFY, ORCPT) for a relay
 *	that offers DSN. The job record is
 *	queued on the worker's channel; qmgr.c flushes channels after the pass.
 *	A queued job whose message the operator deleted or held meanwhile is
 *	dropped instead. A destination over its rate (dest_take_token) or
 *	without a free slot of its shared concurrency limit (dest_take_slot)
 *	gets no job this pass; a timer, or the shared-limits server's answer,
 *	brings the loop back when it may.
 *	A suspended destination (dest.c) gets one job when its probe is due
 *	and none in flight; before that, its queued jobs are deferred to the
 *	probe time (message_defer_suspended) or, when their route has a relay
 *	that is up, sent back to be routed there. While the probe or the jobs
 *	sent before the suspension are out, its queue waits for their result.
 *	While the last commit of results failed, no job starts.
 * job_free()
 *	release a job.
 */
#include "config.h"

#include "event.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "qmgr.h"

#define ASSIGN_PROBE_NEAR_MS 1000 /* a probe this close: its mail waits in memory */

static long long assign_next_id = 1;

/* job_free - release a job */
void job_free(QMGR_JOB *job)
{
    myfree(job->rcpt_index);
    myfree(job);
}

/*
 * assign_pick_worker - the best idle worker for a destination, or NULL:
 * none is idle, or (*later set) one connected to the destination is idle
 * but waits for the commit of its results, which that pass makes (gather.c):
 * the job waits for it rather than open another connection.
 */
static QMGR_PEER *assign_pick_worker(const QMGR_DEST *dest, int *later)
{
    QMGR_PEER *unconnected = NULL, *other = NULL;

    *later = 0;
    for (QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next) {
        if (peer->kind != PEER_WORKER || peer->job != NULL)
            continue;
        if (peer->uncommitted >= QMGR_UNCOMMITTED_MAX) {
            if (peer->conn_dest == dest)
                *later = 1;
            continue;
        }
        if (peer->conn_dest == dest)
            return peer;
        if (peer->conn_dest == NULL) {
            if (unconnected == NULL)
                unconnected = peer;
        } else if (other == NULL) {
            other = peer;
        }
    }
    if (*later)
        return NULL;
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

/* assign_hold_back - a suspended destination: 1 when none of its jobs may start now */
static int assign_hold_back(QMGR_DEST *dest)
{
    long long wait_ms = dest->suspend.probe_at_ms - now_ms();
    QMGR_JOB *job;

    if (!dest_suspended(dest))
        return 0;
    if (dest->busy > 0)
        return 1; /* the probe, or jobs sent before the suspension: wait for them */
    if (wait_ms <= 0)
        return 0; /* the probe may go */
    if (wait_ms <= ASSIGN_PROBE_NEAR_MS) {
        event_request_timer(assign_wakeup, dest, wait_ms);
        return 1;
    }
    /* Until the probe the mail waits in the queue, not in memory. */
    while ((job = dest_dequeue(dest)) != NULL) {
        QMGR_MESSAGE *message = job->message;

        if (!message->deleted && !(message->env.flags & QMSG_HOLD)) {
            if (route_pick(job->route) != dest)
                message->reroute = 1;
            else
                message_defer_suspended(message, job);
        }
        job_free(job);
        message_job_done(message);
    }
    return 1;
}

/* assign_jobs - give queued jobs to idle workers */
void assign_jobs(void)
{
    int progress = 1;

    /* While results cannot be recorded, no delivery adds to them. */
    if (qmgr_stopping || message_commit_failing())
        return;
    /* Round-robin over destinations, one job each per round, so one busy
     * destination does not starve the others of workers. */
    while (progress) {
        progress = 0;
        for (QMGR_DEST *dest = dest_list(); dest; dest = dest->next) {
            QMGR_MESSAGE *message;
            QMGR_PEER *worker;
            QMGR_JOB *job;
            long long wait_ms;
            int later;

            if (dest->jobs.count == 0 || dest->busy >= dest->limit)
                continue;
            message = dest_peek(dest)->message;
            if (message->deleted || (message->env.flags & QMSG_HOLD)) {
                /* Deleted or held by the operator while waiting for a worker. */
                job_free(dest_dequeue(dest));
                message_job_done(message);
                progress = 1;
                continue;
            }
            if (assign_hold_back(dest))
                continue;
            if ((worker = assign_pick_worker(dest, &later)) == NULL) {
                if (later)
                    continue;
                return;
            }
            if (!dest_take_slot(dest, worker, &wait_ms)) {
                /* Every slot of a shared concurrency limit is taken. */
                event_request_timer(assign_wakeup, dest, wait_ms);
                continue;
            }
            if (!dest_take_token(dest, &wait_ms)) {
                /* Over the rate: wake up when the next token is due. */
                event_request_timer(assign_wakeup, dest, wait_ms);
                continue;
            }
            job = dest_dequeue(dest);
            job->probe = dest_suspended(dest);
            assign_send(worker, job);
            progress = 1;
        }
    }
}
