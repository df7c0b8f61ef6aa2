/*
 * bulk - an operator's hold, release, delete or requeue, run in batches
 *
 * bulk_create()
 *	start an operation for a command on public/control: the listed
 *	queue ids (`qids`, which the operation takes over), or every message
 *	in the queue when `qids` is NULL (ALL). The operation owns `spec`.
 *	It runs one batch per pass of qmgr's event loop (a timer of no
 *	delay), so delivery results, new mail and other commands are served
 *	between batches.
 * bulk_cancel()
 *	the command went away: the operation ends at this batch boundary
 *	(logged with how many messages it had done) and is freed.
 *
 * A batch examines at most BULK_BATCH messages (fewer after a full map,
 * retry.c) and changes them in ONE write transaction (ops_message()
 * decides and writes each one). Nothing in memory changes before that
 * commit: a message in delivery is changed (ops_apply_active()), a
 * deletion logged ("QUEUEID: removed"), the walk's position moved and
 * the count raised only once the batch has committed. A batch whose commit
 * fails is tried again after BULK_RETRY_MS; after BULK_FAIL_MAX failures
 * in a row the operation ends with an error that says how many messages
 * it had done. A dry run reads each batch in a read transaction.
 *
 * ALL is a walk in queue id order, resumed after the last id examined,
 * not one snapshot: a message that arrived after the operation started
 * (its arrival time is later) is left alone, a message delivered or
 * deleted meanwhile is simply not found, and a message released,
 * requeued or held meanwhile is taken as it is when its batch comes.
 *
 * Replies on the command's channel: after each batch a `progress` record
 * (`done`, `examined`, and the queue ids the batch changed when the
 * command asked for them: at most one batch of ids per record); at the end
 * `ok` with `count`, or `error` with `reason` and `count`. While more
 * than BULK_OUTPUT_MAX bytes of replies wait for a command that does not
 * read them, its operation waits too: a slow reader costs qmgr no memory.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "event.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "qmgr.h"

/*
 * Messages examined per batch, each batch one write transaction in one
 * pass of the event loop: a few milliseconds of work, short enough that
 * delivery does not notice; large enough that a million messages take a
 * thousand commits, not a million.
 */
#define BULK_BATCH 1000
#define BULK_FAIL_MAX 5              /* failed commits in a row that end the operation */
#define BULK_RETRY_MS 1000           /* wait before a failed batch is tried again */
#define BULK_OUTPUT_MAX (256 * 1024) /* bytes of replies the command has not read yet */
#define BULK_OUTPUT_WAIT_MS 50       /* look again then whether it has read them */

/* An operation in progress, for one command. */
struct BULK {
    QMGR_PEER *peer; /* the command: replies go there */
    OPS_SPEC *spec;
    char **qids;              /* the listed ids, or NULL: ALL */
    size_t nqids;             /* how many are listed */
    size_t next;              /* listed ids: the first not yet done */
    char cursor[QID_LEN + 1]; /* ALL: the last queue id examined, "" before the first */
    long long start_ms;       /* ALL: mail that arrived after this is left alone */
    int want_ids;             /* send the ids changed */
    BATCH batch;
    size_t done;     /* messages changed (dry run: that would change) */
    size_t examined; /* messages looked at */
    size_t batches;  /* batches committed */
};

/* One batch: the messages it examines and what became of them. */
typedef struct BULK_BATCH_STATE {
    BULK *bulk;
    char (*qids)[QID_LEN + 1]; /* candidates */
    QMGR_MESSAGE **active;     /* per candidate: in delivery, change after the commit */
    unsigned char *changed;    /* per candidate: it changes */
    size_t count;              /* candidates */
    size_t examined;           /* messages looked at, candidates or not */
    char last[QID_LEN + 1];    /* ALL: the last queue id examined */
    int more;                  /* messages remain after this batch */
} BULK_BATCH_STATE;

static void bulk_step(void *ctx);

/* bulk_free - release an operation that has ended */
static void bulk_free(BULK *bulk)
{
    event_cancel_timer(bulk_step, bulk);
    bulk->peer->bulk = NULL;
    for (size_t i = 0; i < bulk->nqids; i++)
        myfree(bulk->qids[i]);
    myfree(bulk->qids);
    ops_spec_free(bulk->spec);
    myfree(bulk);
}

/* bulk_plural - "s" unless one */
static const char *bulk_plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* bulk_finish - the last reply, then the end: reason NULL for success */
static void bulk_finish(BULK *bulk, const char *reason)
{
    IPC_REC *reply = ipc_rec_create(reason ? "error" : "ok");
    VSTR *text;

    if (reason) {
        text = vstr_alloc(100);
        vstr_sprintf(text, "%s after %zu message%s", reason, bulk->done, bulk_plural(bulk->done));
        msg_warn("%s: stopped: %s", bulk->spec->name, vstr_str(text));
        ipc_rec_add(reply, "reason", vstr_str(text));
        vstr_free(text);
    } else if (!bulk->spec->dry_run && bulk->done > 0) {
        msg_info("%s: %zu message%s", bulk->spec->name, bulk->done, bulk_plural(bulk->done));
    }
    ipc_rec_add_long(reply, "count", (long long)bulk->done);
    ipc_chan_send(bulk->peer->chan, reply);
    ipc_rec_free(reply);
    bulk_free(bulk);
}

/* bulk_cancel - the command went away */
void bulk_cancel(BULK *bulk)
{
    msg_warn("%s: cancelled after %zu message%s: the command went away", bulk->spec->name,
             bulk->done, bulk_plural(bulk->done));
    bulk_free(bulk);
}

/* bulk_candidate - add a candidate to the batch */
static void bulk_candidate(BULK_BATCH_STATE *batch, const char *qid)
{
    snprintf(batch->qids[batch->count++], QID_LEN + 1, "%s", qid);
}

/* bulk_visit - message scan callback for ALL: examine one envelope */
static int bulk_visit(const QMSG *msg, void *ctx)
{
    BULK_BATCH_STATE *batch = ctx;

    if (batch->examined == batch->bulk->batch.size) {
        batch->more = 1;
        return 1;
    }
    batch->examined++;
    snprintf(batch->last, sizeof(batch->last), "%s", msg->qid);
    if (msg->arrival_ms <= batch->bulk->start_ms)
        bulk_candidate(batch, msg->qid);
    return 0;
}

/* bulk_collect - the candidates of the next batch */
static int bulk_collect(BULK *bulk, QSTORE_TXN *txn, BULK_BATCH_STATE *batch)
{
    size_t n;

    if (bulk->qids == NULL)
        return qstore_message_scan(txn, bulk->cursor, bulk_visit, batch);
    n = bulk->nqids - bulk->next < bulk->batch.size ? bulk->nqids - bulk->next : bulk->batch.size;
    for (size_t i = 0; i < n; i++)
        bulk_candidate(batch, bulk->qids[bulk->next + i]);
    batch->examined = n;
    batch->more = bulk->next + n < bulk->nqids;
    return QSTORE_OK;
}

/* bulk_commit - the batch is durable: apply it in memory and report it */
static void bulk_commit(BULK *bulk, BULK_BATCH_STATE *batch)
{
    IPC_REC *progress = ipc_rec_create("progress");
    size_t changed = 0;

    batch_ok(&bulk->batch);
    for (size_t i = 0; i < batch->count; i++) {
        if (!batch->changed[i])
            continue;
        changed++;
        if (batch->active[i])
            ops_apply_active(bulk->spec, batch->active[i]);
        else if (bulk->spec->kind == OPS_DELETE && !bulk->spec->dry_run)
            msg_info("%s: removed", batch->qids[i]);
    }
    bulk->done += changed;
    bulk->examined += batch->examined;
    bulk->batches++;
    if (bulk->qids)
        bulk->next += batch->examined;
    else
        memcpy(bulk->cursor, batch->last, sizeof(bulk->cursor));
    if (!bulk->spec->dry_run) {
        msg_info("%s: batch %zu: %zu of %zu message%s changed, %zu so far", bulk->spec->name,
                 bulk->batches, changed, batch->examined, bulk_plural(batch->examined), bulk->done);
    }
    ipc_rec_add_long(progress, "done", (long long)bulk->done);
    ipc_rec_add_long(progress, "examined", (long long)bulk->examined);
    for (size_t i = 0; bulk->want_ids && i < batch->count; i++)
        if (batch->changed[i])
            ipc_rec_add(progress, "queue_id", batch->qids[i]);
    ipc_chan_send(bulk->peer->chan, progress);
    ipc_rec_free(progress);
}

/* bulk_run - one batch: collect, change, commit; QSTORE_OK or the failure */
static int bulk_run(BULK *bulk, BULK_BATCH_STATE *batch, VSTR *why)
{
    QSTORE_TXN *txn;
    int rc;

    if ((txn = qstore_begin(qmgr_store, !bulk->spec->dry_run, why)) == NULL)
        return QSTORE_ERROR;
    if ((rc = bulk_collect(bulk, txn, batch)) != QSTORE_OK) {
        vstr_strcpy(why, qstore_txn_reason(txn));
        qstore_abort(txn);
        return rc;
    }
    for (size_t i = 0; i < batch->count; i++)
        batch->changed[i] =
            (unsigned char)ops_message(bulk->spec, txn, batch->qids[i], &batch->active[i]);
    if (bulk->spec->dry_run) {
        qstore_abort(txn);
        return QSTORE_OK;
    }
    return qstore_commit_at(txn, "qmgr-bulk-commit", why);
}

/* bulk_step - timer: run the next batch */
static void bulk_step(void *ctx)
{
    BULK *bulk = ctx;
    BULK_BATCH_STATE batch = {.bulk = bulk};
    VSTR *why;
    int rc;

    if (qmgr_stopping) {
        bulk_finish(bulk, "the mail system is stopping");
        return;
    }
    if (ipc_chan_unread(bulk->peer->chan) > BULK_OUTPUT_MAX) {
        event_request_timer(bulk_step, bulk, BULK_OUTPUT_WAIT_MS);
        return;
    }
    batch.qids = mymalloc(sizeof(*batch.qids) * bulk->batch.size);
    batch.active = mycalloc(bulk->batch.size, sizeof(*batch.active));
    batch.changed = mycalloc(bulk->batch.size, 1);
    why = vstr_alloc(100);
    if ((rc = bulk_run(bulk, &batch, why)) == QSTORE_OK) {
        bulk_commit(bulk, &batch);
        if (batch.more)
            event_request_timer(bulk_step, bulk, 0);
        else
            bulk_finish(bulk, NULL);
    } else if (batch_failed(&bulk->batch, rc == QSTORE_FULL)) {
        msg_warn("%s: batch %zu not recorded: %s; trying again in %d ms with %zu messages",
                 bulk->spec->name, bulk->batches + 1, vstr_str(why), BULK_RETRY_MS,
                 bulk->batch.size);
        event_request_timer(bulk_step, bulk, BULK_RETRY_MS);
    } else {
        VSTR *reason = vstr_alloc(100);

        vstr_sprintf(reason, "cannot record a batch (%d tries): %s", BULK_FAIL_MAX, vstr_str(why));
        bulk_finish(bulk, vstr_str(reason));
        vstr_free(reason);
    }
    vstr_free(why);
    myfree(batch.qids);
    myfree(batch.active);
    myfree(batch.changed);
}

/* bulk_create - start an operation for a command */
BULK *bulk_create(QMGR_PEER *peer, OPS_SPEC *spec, char **qids, size_t nqids, int want_ids)
{
    BULK *bulk = mycalloc(1, sizeof(*bulk));

    bulk->peer = peer;
    bulk->spec = spec;
    bulk->qids = qids;
    bulk->nqids = nqids;
    bulk->want_ids = want_ids;
    bulk->start_ms = wall_ms();
    batch_init(&bulk->batch, BULK_BATCH, BULK_FAIL_MAX);
    if (!spec->dry_run)
        msg_info("%s: started on %s", spec->name,
                 qids ? "the listed messages" : "every message in the queue");
    event_request_timer(bulk_step, bulk, 0);
    return bulk;
}
