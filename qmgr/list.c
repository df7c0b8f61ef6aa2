/*
 * list - the queue listing for users who cannot read the queue themselves
 *
 * list_request()
 *	answer a `list` request on public/control (json=0|1): when the peer
 *	is root, mail_owner or a user authorized_mailq_users names, write
 *	the listing of a read snapshot (qlist.c, with qmgr's own active set
 *	for the "*" mark) and queue it on the peer's channel as `list`
 *	records of at most LIST_CHUNK bytes of text, then an `end` record;
 *	otherwise a "permission denied" error. Returns 0, or -1 when the
 *	request is not understood (the caller closes the connection).
 *
 * The listing is built in memory and the snapshot ends before anything is
 * sent, so a slow reader never pins old pages. Building it holds qmgr for
 * as long as reading the queue takes (about 0.3 s for 100,000 messages):
 * only users who cannot read the queue come here; root and mail_owner read
 * it themselves.
 *
 * A queue that cannot be read is an error reply, not fatal.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "privs.h"
#include "qdir.h"
#include "qlist.h"
#include "qmgr.h"

#define LIST_CHUNK (512 * 1024) /* bytes of listing text in one record */

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
    allowed = privs_user_listed((uid_t)peer->uid, var_str("authorized_mailq_users"), why);
    if (*vstr_str(why))
        msg_warn("%s", vstr_str(why));
    vstr_free(why);
    return allowed;
}

/* list_send - the listing as chunk records, then the end record */
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
    rec = ipc_rec_create("end");
    ipc_chan_send(peer->chan, rec);
    ipc_rec_free(rec);
}

/* list_request - answer a list request */
int list_request(QMGR_PEER *peer, const IPC_REC *rec)
{
    QLIST_OPTS opts;
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn;
    long long json;
    char *text = NULL;
    size_t len = 0;
    FILE *out;
    int ret;

    if (ipc_rec_check(rec, "json", "", why) < 0 ||
        ipc_rec_get_long(rec, "json", 0, 1, &json, why) < 0) {
        msg_warn("list request from uid %ld: %s", peer->uid, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    if (!list_allowed(peer)) {
        msg_warn("refused list from uid %ld: not in authorized_mailq_users", peer->uid);
        vstr_free(why);
        return list_error(peer, "permission denied: not in authorized_mailq_users");
    }
    memset(&opts, 0, sizeof(opts));
    opts.json = (int)json;
    opts.is_active = list_is_active;
    opts.maildrop = qdir_maildrop_count(var_str("queue_directory"));
    if ((txn = qstore_begin(qmgr_store, 0, why)) == NULL) {
        ret = list_error(peer, vstr_str(why));
        vstr_free(why);
        return ret;
    }
    if ((out = open_memstream(&text, &len)) == NULL)
        msg_fatal("open_memstream: %m");
    ret = qlist_write(txn, &opts, out, why);
    qstore_abort(txn);
    if (fclose(out) != 0)
        msg_fatal("write the listing to memory: %m");
    if (ret < 0)
        list_error(peer, vstr_str(why));
    else
        list_send(peer, text, len);
    free(text);
    vstr_free(why);
    return 0;
}
