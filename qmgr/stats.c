/*
 * stats - what qmgr knows about the connection pool, for relayq stats
 *
 * stats_event()
 *	apply a worker's `conn` record (doc/internals.md): a connection
 *	opened, held across a qmgr restart, closed (with its reason), a TLS
 *	handshake, an AUTH success or failure, a timeout. It also tells qmgr
 *	where the worker's connection goes, which job assignment uses to
 *	prefer a worker already connected to a destination. A malformed
 *	record is a protocol error (-1).
 * stats_result()
 *	count a finished job's recipients per outcome, and the message when
 *	at least one recipient was sent.
 * stats_report()
 *	the reply to a `stats` request: the messages in delivery, and per
 *	destination the open, busy and idle connections (from the
 *	workers' state now) and the counters since qmgr started, and whether
 *	it is suspended (dest.c): suspended=1, suspended_for (seconds),
 *	next_probe_in (seconds), parked (messages waiting for the probe).
 *
 * The queue's other counts (deferred, on hold, ...) are not here: the
 * asker reads them from the queue itself (qcount.c), so that asking,
 * however often, never makes qmgr walk the queue.
 *
 * Counters live in memory and start again at zero when qmgr restarts;
 * open/busy/idle are always current because workers re-announce their
 * connections (`held`) when they reconnect.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "qmgr.h"

/* The close reasons smtpout reports, in DEST_STATS.closed_by order. */
static const char *const stats_reasons[STATS_REASONS] = {
    "reuse_count", "reuse_time", "idle",   "server_421", "server_close",
    "error",       "stop",       "switch", "reload",     "deferrals",
};

/* stats_reason_index - the slot of a close reason, or -1 */
static int stats_reason_index(const char *reason)
{
    for (int i = 0; i < STATS_REASONS; i++)
        if (strcmp(stats_reasons[i], reason) == 0)
            return i;
    return -1;
}

/* stats_event - apply a worker's connection event */
int stats_event(QMGR_PEER *worker, const IPC_REC *rec)
{
    VSTR *why = vstr_alloc(100);
    const char *event, *reason;
    QMGR_DEST *dest;
    DEST_STATS *st;
    int slot;

    if (ipc_rec_check(rec, "event,dest", "reason,messages,resumed", why) < 0) {
        msg_warn("worker pid %ld: %s", worker->pid, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    vstr_free(why);
    event = ipc_rec_get(rec, "event");
    if ((dest = dest_by_name(ipc_rec_get(rec, "dest"))) == NULL) {
        msg_warn("worker pid %ld: bad destination in conn record", worker->pid);
        return -1;
    }
    st = &dest->stats;
    if (strcmp(event, "open") == 0) {
        st->opened++;
        worker->conn_dest = dest;
    } else if (strcmp(event, "held") == 0) {
        worker->conn_dest = dest;
    } else if (strcmp(event, "close") == 0) {
        reason = ipc_rec_get(rec, "reason");
        if (reason == NULL || (slot = stats_reason_index(reason)) < 0) {
            msg_warn("worker pid %ld: close event without a known reason", worker->pid);
            return -1;
        }
        st->closed++;
        st->closed_by[slot]++;
        /* Transaction after transaction refused for now: the relay is loaded. */
        if (strcmp(reason, "deferrals") == 0)
            dest_note_deferrals(dest);
        if (worker->conn_dest == dest)
            worker->conn_dest = NULL;
    } else if (strcmp(event, "tls") == 0) {
        st->tls++;
        if (ipc_rec_get(rec, "resumed") && strcmp(ipc_rec_get(rec, "resumed"), "1") == 0)
            st->tls_resumed++;
    } else if (strcmp(event, "auth_ok") == 0) {
        st->auth_ok++;
    } else if (strcmp(event, "auth_fail") == 0) {
        st->auth_fail++;
    } else if (strcmp(event, "timeout") == 0) {
        st->timeouts++;
    } else {
        msg_warn("worker pid %ld: unknown conn event \"%.20s\"", worker->pid, event);
        return -1;
    }
    return 0;
}

/* stats_result - count a finished job's outcome */
void stats_result(QMGR_DEST *dest, const QMGR_MESSAGE *message, const QMGR_JOB *job)
{
    int sent = 0;

    for (size_t i = 0; i < job->nrcpt; i++) {
        switch (message->rcpts[job->rcpt_index[i]].status) {
        case QRCPT_SENT:
            dest->stats.rcpt_sent++;
            sent = 1;
            break;
        case QRCPT_DEFERRED:
            dest->stats.rcpt_deferred++;
            break;
        case QRCPT_BOUNCED:
            dest->stats.rcpt_bounced++;
            break;
        }
    }
    if (sent)
        dest->stats.messages++;
}

/* stats_report - the reply to a stats request */
IPC_REC *stats_report(void)
{
    IPC_REC *reply = ipc_rec_create("stats");
    VSTR *line = vstr_alloc(256);
    long long now = now_ms(), now_s = (long long)time(NULL);

    /* Only what qmgr holds in memory: a scrape every 100 ms (the metrics
     * daemon) must cost qmgr nothing in proportion to the queue. */
    ipc_rec_add_long(reply, "active", (long long)htable_count(qmgr_active));
    for (QMGR_DEST *dest = dest_list(); dest; dest = dest->next) {
        const DEST_STATS *st = &dest->stats;
        int open = 0, busy = 0;

        for (QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next) {
            if (peer->kind != PEER_WORKER)
                continue;
            if (peer->conn_dest == dest)
                open++;
            if (peer->job && peer->job->dest == dest)
                busy++;
        }
        vstr_sprintf(line,
                     "%s open=%d busy=%d idle=%d queued=%zu opened=%lld closed=%lld "
                     "messages=%lld rcpt_sent=%lld rcpt_deferred=%lld rcpt_bounced=%lld "
                     "tls=%lld tls_resumed=%lld auth_ok=%lld auth_fail=%lld timeouts=%lld",
                     dest->name, open, busy, open > busy ? open - busy : 0, dest->jobs.count,
                     st->opened, st->closed, st->messages, st->rcpt_sent, st->rcpt_deferred,
                     st->rcpt_bounced, st->tls, st->tls_resumed, st->auth_ok, st->auth_fail,
                     st->timeouts);
        /* A suspended destination: since when, the next probe, the mail parked for it. */
        vstr_sprintf_append(line, " suspended=%d suspended_for=%lld next_probe_in=%lld parked=%zu",
                            dest_suspended(dest),
                            dest_suspended(dest) ? (now - dest->suspend.since_ms) / 1000 : 0,
                            dest_suspended(dest) ? dest_probe_time(dest) - now_s : 0,
                            dest->parked ? htable_count(dest->parked) : 0);
        for (int i = 0; i < STATS_REASONS; i++)
            vstr_sprintf_append(line, " closed_%s=%lld", stats_reasons[i], st->closed_by[i]);
        ipc_rec_add(reply, "dest", vstr_str(line));
    }
    vstr_free(line);
    return reply;
}
