/*
 * list - the queue listing for users who cannot read the queue themselves
 *
 * list_request()
 *	answer a `list` request on public/control (json=0|1): when the peer
 *	is root, mail_owner or a user authorized_mailq_users names, start a
 *	listing (qlist.c, with qmgr's own active set for the "*" mark);
 *	otherwise a "permission denied" error. Returns 0, or -1 when the
 *	request is not understood (the caller closes the connection).
 * list_cancel()
 *	the peer is gone: drop its listing.
 *
 * A listing goes out in steps, one per loop pass, each in a read
 * transaction of its own: at most LIST_STEP_MESSAGES messages, queued on
 * the peer's channel as a `list` record of text, and an `end` record
 * after the last step. A step waits while more than LIST_OUTPUT_MAX bytes
 * sent before are still unread. So qmgr's loop never does work in
 * proportion to the queue for a client (a step is about a millisecond),
 * no snapshot is held between steps, and a client that stops reading
 * holds at most one step of text in qmgr's memory. The listing is a
 * moving view, as Postfix's showq walks a live queue: a message that
 * arrives or leaves while it is written may or may not be in it, and none
 * is listed twice (queue ids only grow along the walk).
 *
 * A queue that cannot be read is an error reply, not fatal.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "privs.h"
#include "qdir.h"
#include "qlist.h"
#include "qmgr.h"

#define LIST_CHUNK (512 * 1024)     /* bytes of listing text in one record */
#define LIST_STEP_MESSAGES 256      /* messages listed in one loop pass */
#define LIST_OUTPUT_MAX (64 * 1024) /* bytes sent and unread before a step waits */
#define LIST_OUTPUT_WAIT_MS 50      /* look again then whether the peer has read them */

static void list_step(void *ctx);

/* list_error - queue an error reply */
static int list_error(QMGR_PEER *peer, const char *reason)
{
    IPC_REC *reply = ipc_rec_create("error");

    ipc_rec_add(reply, "reason", reason);
    ipc_chan_send(peer->chan, reply);
    ipc_rec_free(reply);
    return 0;
}

/* list_is_active - qlist callback: is qmgr delivering the message */
static int list_is_active(const char *queue_id, void *ctx)
{
    (void)ctx;
    return htable_get(qmgr_active, queue_id) != NULL;
}

/* list_allowed - root, mail_owner, or a user authorized_mailq_users names */
static int list_allowed(const QMGR_PEER *peer)
{
    VSTR *why;
    int allowed;

    if (control_privileged(peer))
        return 1;
    if (peer->uid < 0)
        return 0;
    why = vstr_alloc(100);
    allowed = privs_user_listed((uid_t)peer->uid, var_str(authorized_mailq_users), why);
    if (*vstr_str(why))
        msg_warn("%s", vstr_str(why));
    vstr_free(why);
    return allowed;
}

/* list_send - listing text as chunk records */
static void list_send(QMGR_PEER *peer, const char *text, size_t len)
{
    IPC_REC *rec;
    char *chunk = mymalloc(LIST_CHUNK + 1);

    for (size_t off = 0; off < len; off += LIST_CHUNK) {
        size_t n = len - off < LIST_CHUNK ? len - off : LIST_CHUNK;

        memcpy(chunk, text + off, n);
        chunk[n] = '\0';
        rec = ipc_rec_create("list");
        ipc_rec_add(rec, "data", chunk);
        ipc_chan_send(peer->chan, rec);
        ipc_rec_free(rec);
    }
    myfree(chunk);
}

/* list_cancel - the peer is gone, or its listing ended */
void list_cancel(QMGR_PEER *peer)
{
    if (peer->listing == NULL)
        return;
    event_cancel_timer(list_step, peer);
    qlist_free(peer->listing);
    peer->listing = NULL;
}

/* list_step - timer: the next step of a peer's listing */
static void list_step(void *ctx)
{
    QMGR_PEER *peer = ctx;
    VSTR *why;
    QSTORE_TXN *txn;
    char *text = NULL;
    size_t len = 0;
    FILE *out;
    int rc;

    if (ipc_chan_unread(peer->chan) > LIST_OUTPUT_MAX) {
        event_request_timer(list_step, peer, LIST_OUTPUT_WAIT_MS);
        return;
    }
    why = vstr_alloc(100);
    if ((txn = qstore_begin(qmgr_store, 0, why)) == NULL) {
        list_error(peer, vstr_str(why));
        list_cancel(peer);
        vstr_free(why);
        return;
    }
    if ((out = open_memstream(&text, &len)) == NULL)
        msg_fatal("open_memstream: %m");
    rc = qlist_step(peer->listing, txn, out, LIST_STEP_MESSAGES, why);
    qstore_abort(txn);
    if (fclose(out) != 0)
        msg_fatal("write the listing to memory: %m");
    if (rc < 0) {
        list_error(peer, vstr_str(why));
        list_cancel(peer);
    } else {
        list_send(peer, text, len);
        if (rc == 1) {
            IPC_REC *end = ipc_rec_create("end");

            ipc_chan_send(peer->chan, end);
            ipc_rec_free(end);
            list_cancel(peer);
        } else {
            event_request_timer(list_step, peer, 0);
        }
    }
    free(text);
    vstr_free(why);
}

/* list_request - answer a list request */
int list_request(QMGR_PEER *peer, const IPC_REC *rec)
{
    QLIST_OPTS opts;
    VSTR *why = vstr_alloc(100);
    long long json;

    if (ipc_rec_check(rec, "json", "", why) < 0 ||
        ipc_rec_get_long(rec, "json", 0, 1, &json, why) < 0) {
        msg_warn("list request from uid %ld: %s", peer->uid, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    vstr_free(why);
    if (!list_allowed(peer)) {
        msg_warn("refused list from uid %ld: not in authorized_mailq_users", peer->uid);
        return list_error(peer, "permission denied: not in authorized_mailq_users");
    }
    if (peer->listing != NULL)
        return list_error(peer, "a listing is already being sent on this connection");
    memset(&opts, 0, sizeof(opts));
    opts.json = (int)json;
    opts.is_active = list_is_active;
    opts.maildrop = qdir_maildrop_count(var_str(queue_directory));
    peer->listing = qlist_create(&opts);
    list_step(peer);
    return 0;
}
