/*
 * ops - the operator's queue operations: hold, release, delete, requeue
 *
 * ops_request()
 *	take a `hold`, `release`, `delete` or `requeue` request from
 *	public/control and start it as a bulk operation (bulk.c), which
 *	walks the messages in batches and replies. The messages are the
 *	listed queue ids, or every message (`all=1`), narrowed by the
 *	selectors `sender`, `recipient`, `domain` (any recipient's domain),
 *	`older_than` (seconds since arrival) and `queue` (repeatable: the
 *	Postfix queue names of qname.c, the message must be in one of them;
 *	active is qmgr's own knowledge). `dry_run=1` changes nothing and
 *	lists what would change; `ids=1` lists what changed. Returns -1 for a
 *	request that is not understood (an error reply is queued).
 * ops_message()
 *	the change of ONE message, the only place that decides it: whether
 *	the message is selected and would change, and the change itself
 *	written into the caller's write transaction. Returns 1 when the
 *	message changes (or, dry run, would). A message being delivered
 *	right now changes nothing in the queue: it is returned in *active,
 *	for ops_apply_active() after the transaction has committed.
 * ops_apply_active()
 *	the in-memory half of ops_message() for a message in delivery, run
 *	once the batch that counted it has committed: its flags change and
 *	message.c applies the operation when the delivery in flight ends.
 * ops_spec_free()
 *	release what a request's OPS_SPEC holds.
 *
 *	hold: the message leaves the schedule and is never tried until
 *	released. release: it is due again at once. delete: it is removed
 *	(logged "QUEUEID: removed" by bulk.c after the commit), without a
 *	notice to the sender. requeue: its recipients that are not final
 *	become pending again, its attempt count starts over, and it is due
 *	at once.
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

/* The operations, by their request names. */
static const struct {
    const char *name;
    OPS_KIND kind;
} ops_kinds[] = {
    {"hold", OPS_HOLD},
    {"release", OPS_RELEASE},
    {"delete", OPS_DELETE},
    {"requeue", OPS_REQUEUE},
};

/* ops_selected - does a message pass the selectors */
static int ops_selected(const OPS_SPEC *spec, QSTORE_TXN *txn, const QMSG *env, int active)
{
    QRCPT *rcpts;
    size_t nrcpt;
    int match;

    if (spec->queues) {
        if (qstore_rcpts_get(txn, env->qid, &rcpts, &nrcpt) != QSTORE_OK)
            return 0;
        match = (spec->queues & qname_of(env, rcpts, nrcpt, active)) != 0;
        qstore_rcpts_free(rcpts, nrcpt);
        if (!match)
            return 0;
    }
    if (spec->sender && strcasecmp(spec->sender, env->sender) != 0)
        return 0;
    if (spec->older_than >= 0 && spec->now - env->arrival_ms / 1000 < spec->older_than)
        return 0;
    if (spec->recipient == NULL && spec->domain == NULL)
        return 1;
    if (qstore_rcpts_get(txn, env->qid, &rcpts, &nrcpt) != QSTORE_OK)
        return 0;
    match = 0;
    for (size_t i = 0; i < nrcpt && !match; i++) {
        int ok = 1;

        if (spec->recipient && strcasecmp(spec->recipient, rcpts[i].addr) != 0)
            ok = 0;
        if (spec->domain && strcasecmp(spec->domain, addr_domain(rcpts[i].addr)) != 0)
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

/* ops_would_change - whether an operation changes a message with these flags */
static int ops_would_change(OPS_KIND kind, unsigned flags)
{
    if (kind == OPS_HOLD)
        return !(flags & QMSG_HOLD);
    if (kind == OPS_RELEASE)
        return (flags & QMSG_HOLD) != 0;
    return 1;
}

/* ops_apply_stored - write the change of a message that is only in the queue */
static void ops_apply_stored(const OPS_SPEC *spec, QSTORE_TXN *txn, QMSG *env)
{
    switch (spec->kind) {
    case OPS_HOLD:
        env->flags |= QMSG_HOLD;
        qstore_message_reschedule(txn, env, 0);
        break;
    case OPS_RELEASE:
        env->flags &= ~(unsigned)QMSG_HOLD;
        qstore_message_reschedule(txn, env, spec->now);
        break;
    case OPS_DELETE:
        qstore_message_delete(txn, env->qid);
        break;
    case OPS_REQUEUE:
        ops_requeue_stored(txn, env, spec->now);
        break;
    }
}

/* ops_apply_active - change a message in delivery, after the batch committed */
void ops_apply_active(const OPS_SPEC *spec, QMGR_MESSAGE *message)
{
    switch (spec->kind) {
    case OPS_HOLD:
        message->env.flags |= QMSG_HOLD;
        break;
    case OPS_RELEASE:
        message->env.flags &= ~(unsigned)QMSG_HOLD;
        break;
    case OPS_DELETE:
        message->deleted = 1;
        break;
    case OPS_REQUEUE:
        message->requeue = 1;
        break;
    }
}

/* ops_message - change one message; 1 when it changes (dry run: would) */
int ops_message(const OPS_SPEC *spec, QSTORE_TXN *txn, const char *qid, QMGR_MESSAGE **active)
{
    QMGR_MESSAGE *message = htable_get(qmgr_active, qid);
    QMSG env;
    int done = 0, rc;

    *active = NULL;
    if ((rc = qstore_message_get(txn, qid, &env)) == QSTORE_OK) {
        if (ops_selected(spec, txn, &env, message != NULL) &&
            ops_would_change(spec->kind, message ? message->env.flags : env.flags)) {
            done = 1;
            if (spec->dry_run)
                /* nothing */;
            else if (message)
                *active = message;
            else
                ops_apply_stored(spec, txn, &env);
        }
        qmsg_free(&env);
    } else if (rc == QSTORE_TAMPERED && spec->kind == OPS_DELETE && !message && !spec->sender &&
               !spec->recipient && !spec->domain && spec->older_than < 0 && !spec->queues) {
        /* An envelope that fails authentication (encryption at rest) can only go. */
        done = spec->dry_run || qstore_message_delete(txn, qid) == QSTORE_OK;
    }
    return done;
}

/* ops_spec_free - release a request's selectors */
void ops_spec_free(OPS_SPEC *spec)
{
    myfree(spec->sender);
    myfree(spec->recipient);
    myfree(spec->domain);
    myfree(spec);
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

/* ops_dup - a copy of an optional attribute */
static char *ops_dup(const IPC_REC *rec, const char *name)
{
    const char *value = ipc_rec_get(rec, name);

    return value ? mystrdup(value) : NULL;
}

/* ops_request - start a hold, release, delete or requeue */
int ops_request(QMGR_PEER *peer, const IPC_REC *rec)
{
    OPS_SPEC *spec;
    VSTR *why = vstr_alloc(100);
    long long older_than = -1, flag = 0;
    int queues = 0;
    char **qids = NULL;
    size_t nqids = 0;

    if (peer->bulk != NULL) {
        vstr_free(why);
        return ops_error(peer, "an operation is already running on this connection");
    }
    if (ipc_rec_check(rec, "",
                      "queue_id*,all,sender,recipient,domain,older_than,queue*,dry_run,ids",
                      why) < 0 ||
        (ipc_rec_get(rec, "older_than") &&
         ipc_rec_get_long(rec, "older_than", 0, 1LL << 40, &older_than, why) < 0) ||
        (ipc_rec_get(rec, "ids") && ipc_rec_get_long(rec, "ids", 0, 1, &flag, why) < 0) ||
        ops_queues(rec, &queues, why) < 0) {
        ops_error(peer, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    vstr_free(why);
    if ((ipc_rec_get(rec, "all") != NULL) == (ipc_rec_get(rec, "queue_id") != NULL))
        return ops_error(peer, "give either queue ids or ALL");
    for (size_t i = 1; i < rec->count; i++) {
        if (strcmp(rec->attrs[i].name, "queue_id") != 0)
            continue;
        if (!qid_valid(rec->attrs[i].value)) {
            while (nqids > 0)
                myfree(qids[--nqids]);
            myfree(qids);
            return ops_error(peer, "bad queue id");
        }
        qids = myrealloc(qids, sizeof(*qids) * (nqids + 1));
        qids[nqids++] = mystrdup(rec->attrs[i].value);
    }
    spec = mycalloc(1, sizeof(*spec));
    for (size_t k = 0; k < sizeof(ops_kinds) / sizeof(ops_kinds[0]); k++)
        if (strcmp(ops_kinds[k].name, ipc_rec_type(rec)) == 0) {
            spec->kind = ops_kinds[k].kind;
            spec->name = ops_kinds[k].name; /* outlives the request record */
        }
    if (spec->name == NULL)
        msg_panic("ops: unknown operation %s", ipc_rec_type(rec));
    spec->sender = ops_dup(rec, "sender");
    spec->recipient = ops_dup(rec, "recipient");
    spec->domain = ops_dup(rec, "domain");
    spec->older_than = older_than;
    spec->queues = queues;
    spec->now = (long long)time(NULL);
    spec->dry_run = ipc_rec_get(rec, "dry_run") != NULL;
    /* A dry run is a listing: its ids are always sent. */
    peer->bulk = bulk_create(peer, spec, qids, nqids, spec->dry_run || flag == 1);
    return 0;
}
