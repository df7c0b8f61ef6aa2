/*
 * ops - the operator's queue operations: hold, release, delete, requeue
 *
 * ops_request()
 *	answer a `hold`, `release`, `delete` or `requeue` request from
 *	public/control. The messages are the listed queue ids, or every
 *	message (`all=1`), narrowed by the selectors `sender`, `recipient`,
 *	`domain` (any recipient's domain), `older_than` (seconds since
 *	arrival) and `queue` (repeatable: the Postfix queue names of
 *	qname.c, the message must be in one of them; active is qmgr's own
 *	knowledge); with `dry_run=1` nothing changes and the reply lists what
 *	would. The reply is `type=ok`, `count=N` and the ids touched.
 *
 *	hold: the message leaves the schedule and is never tried until
 *	released. release: it is due again at once. delete: it is removed
 *	(logged "QUEUEID: removed"), without a notice to the sender.
 *	requeue: its recipients that are not final become pending again, its
 *	attempt count starts over, and it is due at once.
 *
 *	A message being delivered right now is changed in memory: its jobs
 *	that are still waiting for a worker are cancelled, and the operation
 *	takes effect when the delivery in flight ends (message.c applies it
 *	when it writes the message back).
 *
 * All changes of one request commit in one write transaction before the
 * reply is sent. A failed commit is reported to the command as an error.
 */
#include "config.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "msg.h"
#include "mymalloc.h"
#include "qid.h"
#include "qmgr.h"
#include "qname.h"

/* What one request asks and what it found. */
typedef struct OPS_REQUEST {
    const IPC_REC *rec;
    QSTORE_TXN *txn;
    const char *op;
    const char *sender; /* selectors, NULL when not given */
    const char *recipient;
    const char *domain;
    long long older_than; /* -1 when not given */
    int queues;           /* QNAME_* mask; 0 when not given */
    long long now;
    char **qids; /* candidates */
    size_t count;
} OPS_REQUEST;

/* ops_collect - message scan callback: every queue id is a candidate */
static int ops_collect(const QMSG *msg, void *ctx)
{
    OPS_REQUEST *req = ctx;

    req->qids = myrealloc(req->qids, sizeof(*req->qids) * (req->count + 1));
    req->qids[req->count++] = mystrdup(msg->qid);
    return 0;
}

/* ops_selected - does a message pass the selectors */
static int ops_selected(OPS_REQUEST *req, const QMSG *env, int active)
{
    QRCPT *rcpts;
    size_t nrcpt;
    int match;

    if (req->queues) {
        if (qstore_rcpts_get(req->txn, env->qid, &rcpts, &nrcpt) != QSTORE_OK)
            return 0;
        match = (req->queues & qname_of(env, rcpts, nrcpt, active)) != 0;
        qstore_rcpts_free(rcpts, nrcpt);
        if (!match)
            return 0;
    }
    if (req->sender && strcasecmp(req->sender, env->sender) != 0)
        return 0;
    if (req->older_than >= 0 && req->now - env->arrival_ms / 1000 < req->older_than)
        return 0;
    if (req->recipient == NULL && req->domain == NULL)
        return 1;
    if (qstore_rcpts_get(req->txn, env->qid, &rcpts, &nrcpt) != QSTORE_OK)
        return 0;
    match = 0;
    for (size_t i = 0; i < nrcpt && !match; i++) {
        int ok = 1;

        if (req->recipient && strcasecmp(req->recipient, rcpts[i].addr) != 0)
            ok = 0;
        if (req->domain && strcasecmp(req->domain, addr_domain(rcpts[i].addr)) != 0)
            ok = 0;
        match = ok;
    }
    qstore_rcpts_free(rcpts, nrcpt);
    return match;
}

/* ops_requeue_stored - make a stored message's unfinished recipients pending again */
static void ops_requeue_stored(QSTORE_TXN *txn, QMSG *env, long long now)
{
    QRCPT *rcpts;
    size_t nrcpt;

    if (qstore_rcpts_get(txn, env->qid, &rcpts, &nrcpt) == QSTORE_OK) {
        for (size_t i = 0; i < nrcpt; i++) {
            if (rcpts[i].status == QRCPT_SENT || rcpts[i].status == QRCPT_BOUNCED)
                continue;
            rcpts[i].status = QRCPT_PENDING;
            rcpts[i].dsn[0] = '\0';
            myfree(rcpts[i].reply);
            rcpts[i].reply = mystrdup("");
            qstore_rcpt_put(txn, env->qid, &rcpts[i]);
        }
        qstore_rcpts_free(rcpts, nrcpt);
    }
    env->attempts = 0;
    env->flags &= ~(unsigned)QMSG_HOLD;
    qstore_message_reschedule(txn, env, now);
}

/* ops_apply_active - change a message that is being delivered */
static int ops_apply_active(QMGR_MESSAGE *message, const char *op)
{
    if (strcmp(op, "hold") == 0) {
        if (message->env.flags & QMSG_HOLD)
            return 0;
        message->env.flags |= QMSG_HOLD;
    } else if (strcmp(op, "release") == 0) {
        if (!(message->env.flags & QMSG_HOLD))
            return 0;
        message->env.flags &= ~(unsigned)QMSG_HOLD;
    } else if (strcmp(op, "delete") == 0) {
        message->deleted = 1;
    } else {
        message->requeue = 1;
    }
    return 1;
}

/* ops_apply_stored - change a message that is only in the queue; 1 when changed */
static int ops_apply_stored(OPS_REQUEST *req, QMSG *env)
{
    if (strcmp(req->op, "hold") == 0) {
        if (env->flags & QMSG_HOLD)
            return 0;
        env->flags |= QMSG_HOLD;
        qstore_message_reschedule(req->txn, env, 0);
    } else if (strcmp(req->op, "release") == 0) {
        if (!(env->flags & QMSG_HOLD))
            return 0;
        env->flags &= ~(unsigned)QMSG_HOLD;
        qstore_message_reschedule(req->txn, env, req->now);
    } else if (strcmp(req->op, "delete") == 0) {
        qstore_message_delete(req->txn, env->qid);
    } else {
        ops_requeue_stored(req->txn, env, req->now);
    }
    return 1;
}

/* ops_would_change - whether an operation changes a message (for --dry-run) */
static int ops_would_change(const char *op, unsigned flags)
{
    if (strcmp(op, "hold") == 0)
        return !(flags & QMSG_HOLD);
    if (strcmp(op, "release") == 0)
        return (flags & QMSG_HOLD) != 0;
    return 1;
}

/* ops_queues - the mask of the queue names a request gives */
static int ops_queues(const IPC_REC *rec, int *mask, VSTR *why)
{
    int bit;

    for (size_t i = 1; i < rec->count; i++) {
        if (strcmp(rec->attrs[i].name, "queue") != 0)
            continue;
        if ((bit = qname_lookup(rec->attrs[i].value)) == 0) {
            vstr_sprintf(why, "unknown queue name (valid: %s)", QNAME_VALID);
            return -1;
        }
        *mask |= bit;
    }
    return 0;
}

/* ops_error - queue an error reply */
static int ops_error(QMGR_PEER *peer, const char *reason)
{
    IPC_REC *reply = ipc_rec_create("error");

    ipc_rec_add(reply, "reason", reason);
    ipc_chan_send(peer->chan, reply);
    ipc_rec_free(reply);
    return -1;
}

/* ops_request - hold, release, delete or requeue messages */
int ops_request(QMGR_PEER *peer, const IPC_REC *rec)
{
    OPS_REQUEST req = {.rec = rec, .op = ipc_rec_type(rec), .older_than = -1};
    VSTR *why = vstr_alloc(100);
    int dry_run = ipc_rec_get(rec, "dry_run") != NULL;
    IPC_REC *reply;
    size_t changed = 0;

    if (ipc_rec_check(rec, "", "queue_id*,all,sender,recipient,domain,older_than,queue*,dry_run",
                      why) < 0 ||
        (ipc_rec_get(rec, "older_than") &&
         ipc_rec_get_long(rec, "older_than", 0, 1LL << 40, &req.older_than, why) < 0) ||
        ops_queues(rec, &req.queues, why) < 0) {
        ops_error(peer, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    if ((ipc_rec_get(rec, "all") != NULL) == (ipc_rec_get(rec, "queue_id") != NULL)) {
        vstr_free(why);
        return ops_error(peer, "give either queue ids or ALL");
    }
    req.sender = ipc_rec_get(rec, "sender");
    req.recipient = ipc_rec_get(rec, "recipient");
    req.domain = ipc_rec_get(rec, "domain");
    req.now = (long long)time(NULL);
    if ((req.txn = qstore_begin(qmgr_store, !dry_run, why)) == NULL) {
        ops_error(peer, vstr_str(why));
        vstr_free(why);
        return 0;
    }
    if (ipc_rec_get(rec, "all")) {
        qstore_message_scan(req.txn, ops_collect, &req);
    } else {
        for (size_t i = 1; i < rec->count; i++) {
            if (strcmp(rec->attrs[i].name, "queue_id") != 0)
                continue;
            if (!qid_valid(rec->attrs[i].value)) {
                qstore_abort(req.txn);
                vstr_free(why);
                return ops_error(peer, "bad queue id");
            }
            req.qids = myrealloc(req.qids, sizeof(*req.qids) * (req.count + 1));
            req.qids[req.count++] = mystrdup(rec->attrs[i].value);
        }
    }

    reply = ipc_rec_create("ok");
    for (size_t i = 0; i < req.count; i++) {
        QMGR_MESSAGE *active = htable_get(qmgr_active, req.qids[i]);
        QMSG env;
        int done = 0, rc;

        if ((rc = qstore_message_get(req.txn, req.qids[i], &env)) == QSTORE_OK) {
            if (ops_selected(&req, &env, active != NULL)) {
                if (dry_run)
                    done = ops_would_change(req.op, active ? active->env.flags : env.flags);
                else if (active)
                    done = ops_apply_active(active, req.op);
                else
                    done = ops_apply_stored(&req, &env);
            }
            qmsg_free(&env);
        } else if (rc == QSTORE_TAMPERED && strcmp(req.op, "delete") == 0 && !active &&
                   !req.sender && !req.recipient && !req.domain && req.older_than < 0 &&
                   !req.queues) {
            /* An envelope that fails authentication (encryption at rest) can only go. */
            done = dry_run || qstore_message_delete(req.txn, req.qids[i]) == QSTORE_OK;
        }
        if (done) {
            ipc_rec_add(reply, "queue_id", req.qids[i]);
            changed++;
            if (!dry_run && strcmp(req.op, "delete") == 0 && !active)
                msg_info("%s: removed", req.qids[i]);
        }
        myfree(req.qids[i]);
    }
    myfree(req.qids);
    if (dry_run) {
        qstore_abort(req.txn);
    } else if (qstore_commit(req.txn, why) != QSTORE_OK) {
        ipc_rec_free(reply);
        ops_error(peer, vstr_str(why));
        vstr_free(why);
        return 0;
    }
    vstr_free(why);
    if (!dry_run && changed > 0)
        msg_info("%s: %zu message%s", req.op, changed, changed == 1 ? "" : "s");
    ipc_rec_add_long(reply, "count", (long long)changed);
    ipc_chan_send(peer->chan, reply);
    ipc_rec_free(reply);
    return 0;
}
