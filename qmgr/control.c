/*
 * control - requests from relayq commands on public/control
 *
 * control_request()
 *	answer one request record: `flush` (make deferred mail due now: the
 *	listed queue ids, or every message with a recipient in a listed
 *	domain, or the whole queue; held and active messages are left alone;
 *	a suspended destination is probed at once, dest.c)
 *	`active` (the queue ids being delivered now), `list` (the mailq
 *	listing, for users who cannot read the queue: list.c), `stats` (queue counts
 *	and the connection pool, see stats.c) and the operator's `hold`,
 *	`release`, `delete` and `requeue` (ops.c, run in batches by bulk.c,
 *	which replies as it goes). The reply is queued
 *	on the peer's channel; a flush replies after its transaction has
 *	committed. Returns -1 for a request that is not understood (the
 *	caller closes the connection after the error reply is sent).
 * control_make_due()
 *	make one deferred message due at `now` in a write transaction, as a
 *	flush does: not when it is active, held, gone or due already.
 *	Returns 1 when it changed. Resumed destinations release their mail
 *	with it (dest.c).
 * control_privileged()
 *	whether the peer is root or mail_owner (SO_PEERCRED), who may change
 *	the queue and always read it.
 */
#include "config.h"

#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "msg.h"
#include "mymalloc.h"
#include "qid.h"
#include "qmgr.h"

/* A flush in progress: its selectors and what it found. */
typedef struct CONTROL_FLUSH {
    QSTORE_TXN *txn;
    const IPC_REC *rec;
    long long now;
    char **qids; /* messages to make due */
    size_t count;
} CONTROL_FLUSH;

/* control_error - queue an error reply */
static int control_error(QMGR_PEER *peer, const char *reason)
{
    IPC_REC *reply = ipc_rec_create("error");

    ipc_rec_add(reply, "reason", reason);
    ipc_chan_send(peer->chan, reply);
    ipc_rec_free(reply);
    return -1;
}

/* control_domain_match - does a not-final recipient have a listed domain */
static int control_domain_match(CONTROL_FLUSH *flush, const char *qid)
{
    QRCPT *rcpts;
    size_t count;
    int match = 0;

    if (qstore_rcpts_get(flush->txn, qid, &rcpts, &count) != QSTORE_OK)
        return 0;
    for (size_t i = 0; i < count && !match; i++) {
        if (rcpts[i].status == QRCPT_SENT || rcpts[i].status == QRCPT_BOUNCED)
            continue;
        for (size_t j = 1; j < flush->rec->count && !match; j++)
            if (strcmp(flush->rec->attrs[j].name, "domain") == 0 &&
                strcasecmp(addr_domain(rcpts[i].addr), flush->rec->attrs[j].value) == 0)
                match = 1;
    }
    qstore_rcpts_free(rcpts, count);
    return match;
}

/* control_flush_visit - collect a scheduled message that is not due yet */
static int control_flush_visit(const char *qid, long long when, void *ctx)
{
    CONTROL_FLUSH *flush = ctx;

    if (when <= flush->now || htable_get(qmgr_active, qid) != NULL)
        return 0;
    if (ipc_rec_get(flush->rec, "domain") && !control_domain_match(flush, qid))
        return 0;
    flush->qids = myrealloc(flush->qids, sizeof(*flush->qids) * (flush->count + 1));
    flush->qids[flush->count++] = mystrdup(qid);
    return 0;
}

/* control_make_due - make one deferred message due now; 1 when it changed */
int control_make_due(QSTORE_TXN *txn, const char *qid, long long now)
{
    QMSG env;
    int changed = 0;

    if (htable_get(qmgr_active, qid) != NULL || qstore_message_get(txn, qid, &env) != QSTORE_OK)
        return 0;
    if (!(env.flags & QMSG_HOLD) && env.next_attempt > now) {
        qstore_message_reschedule(txn, &env, now);
        changed = 1;
    }
    qmsg_free(&env);
    return changed;
}

/* control_flush - make deferred mail due now */
static int control_flush(QMGR_PEER *peer, const IPC_REC *rec)
{
    CONTROL_FLUSH flush = {.rec = rec, .now = (long long)time(NULL)};
    VSTR *why = vstr_alloc(100);
    size_t made_due = 0;
    IPC_REC *reply;

    if (ipc_rec_check(rec, "", "queue_id*,domain*", why) < 0) {
        control_error(peer, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    if ((flush.txn = qstore_begin(qmgr_store, 1, why)) == NULL) {
        control_error(peer, vstr_str(why));
        vstr_free(why);
        return 0;
    }
    if (ipc_rec_get(rec, "queue_id")) {
        for (size_t i = 1; i < rec->count; i++)
            if (strcmp(rec->attrs[i].name, "queue_id") == 0) {
                if (!qid_valid(rec->attrs[i].value)) {
                    qstore_abort(flush.txn);
                    control_error(peer, "bad queue id");
                    vstr_free(why);
                    return -1;
                }
                flush.qids = myrealloc(flush.qids, sizeof(*flush.qids) * (flush.count + 1));
                flush.qids[flush.count++] = mystrdup(rec->attrs[i].value);
            }
    } else {
        qstore_schedule_scan(flush.txn, LLONG_MAX, control_flush_visit, &flush);
    }
    for (size_t i = 0; i < flush.count; i++) {
        made_due += (size_t)control_make_due(flush.txn, flush.qids[i], flush.now);
        myfree(flush.qids[i]);
    }
    myfree(flush.qids);
    if (qstore_commit(flush.txn, why) != QSTORE_OK) {
        control_error(peer, vstr_str(why));
        vstr_free(why);
        return 0;
    }
    vstr_free(why);
    if (made_due > 0)
        msg_info("flush: %zu message%s made due", made_due, made_due == 1 ? "" : "s");
    dest_probe_now();
    reply = ipc_rec_create("ok");
    ipc_rec_add_long(reply, "count", (long long)made_due);
    ipc_chan_send(peer->chan, reply);
    ipc_rec_free(reply);
    return 0;
}

/* control_active_add - add one active queue id to the reply */
static void control_active_add(const char *key, void *value, void *ctx)
{
    (void)value;
    ipc_rec_add(ctx, "queue_id", key);
}

/* control_privileged - may this peer change the queue (root or mail_owner) */
int control_privileged(const QMGR_PEER *peer)
{
    return peer->uid == 0 || peer->uid == (long)geteuid();
}

/* control_request - answer one command request */
int control_request(QMGR_PEER *peer, const IPC_REC *rec)
{
    const char *type = ipc_rec_type(rec);

    /* A command waiting for a listing helper has handed it its connection. */
    if (peer->list_format != LIST_NONE)
        return -1;
    if ((strcmp(type, "flush") == 0 || strcmp(type, "hold") == 0 || strcmp(type, "release") == 0 ||
         strcmp(type, "delete") == 0 || strcmp(type, "requeue") == 0) &&
        !control_privileged(peer)) {
        msg_warn("refused %s from uid %ld: only root and mail_owner may change the queue", type,
                 peer->uid);
        return control_error(peer,
                             "permission denied: only root and mail_owner may change the queue");
    }

    if (strcmp(type, "flush") == 0)
        return control_flush(peer, rec);
    if (strcmp(type, "active") == 0) {
        IPC_REC *reply = ipc_rec_create("active");

        htable_walk(qmgr_active, control_active_add, reply);
        ipc_chan_send(peer->chan, reply);
        ipc_rec_free(reply);
        return 0;
    }
    if (strcmp(type, "hold") == 0 || strcmp(type, "release") == 0 || strcmp(type, "delete") == 0 ||
        strcmp(type, "requeue") == 0)
        return ops_request(peer, rec);
    if (strcmp(type, "list") == 0)
        return list_request(qmgr_list_helpers, peer, rec);
    if (strcmp(type, "stats") == 0) {
        IPC_REC *reply = stats_report();

        ipc_chan_send(peer->chan, reply);
        ipc_rec_free(reply);
        return 0;
    }
    return control_error(peer, "unknown request");
}
