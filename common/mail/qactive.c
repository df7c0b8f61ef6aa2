/*
 * qactive - the messages qmgr is delivering, for mailq's "*" mark
 *
 * qactive_ask()
 *	ask qmgr on public/control (its absolute name) which queue ids are
 *	in delivery now, waiting at most timeout_ms for each step. A qmgr
 *	that is down, slow or answers something else means none are: the
 *	listing is still right, without its marks. Never NULL.
 * qactive_has()
 *	the QLIST_OPTS.is_active callback over a set qactive_ask() returned
 *	(ctx): whether a queue id is in it (a binary search).
 * qactive_free()
 *	release the set.
 *
 * "relayq mailq" run by root or mail_owner and qmgr's listing helper
 * (showq) both list the queue themselves and learn only this from qmgr.
 * The reply holds at most the active set (qmgr_message_active_limit ids);
 * an id that is not a queue id is ignored.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "mail_proto.h"
#include "mymalloc.h"
#include "qactive.h"
#include "qid.h"

/* The sorted queue ids. */
struct QACTIVE {
    char **ids;
    size_t count;
};

/* qactive_cmp - strcmp for qsort and bsearch over char * */
static int qactive_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* qactive_ask - the queue ids qmgr is delivering; none when it does not answer */
QACTIVE *qactive_ask(const char *control_path, int timeout_ms)
{
    QACTIVE *active = mycalloc(1, sizeof(*active));
    IPC_REC *req = ipc_rec_create("active");
    IPC_REC *reply = NULL;
    VSTR *why = vstr_alloc(100);
    IPC_CHAN *chan;

    if ((chan = ipc_client_open(control_path, PROTO_CONTROL, timeout_ms, why)) != NULL &&
        ipc_chan_send_wait(chan, req, timeout_ms, why) == 0 &&
        (reply = ipc_chan_recv_wait(chan, timeout_ms, why)) != NULL &&
        strcmp(ipc_rec_type(reply), "active") == 0 &&
        ipc_rec_check(reply, "", "queue_id*", why) == 0) {
        active->ids = mymalloc(sizeof(char *) * (reply->count + 1));
        for (size_t i = 1; i < reply->count; i++)
            if (qid_valid(reply->attrs[i].value))
                active->ids[active->count++] = mystrdup(reply->attrs[i].value);
        qsort(active->ids, active->count, sizeof(char *), qactive_cmp);
    }
    if (chan != NULL)
        ipc_chan_free(chan);
    ipc_rec_free(reply);
    ipc_rec_free(req);
    vstr_free(why);
    return active;
}

/* qactive_has - QLIST_OPTS.is_active: is a queue id in the set */
int qactive_has(const char *queue_id, void *ctx)
{
    const QACTIVE *active = ctx;

    return active->count > 0 &&
           bsearch(&queue_id, active->ids, active->count, sizeof(char *), qactive_cmp) != NULL;
}

/* qactive_free - release the set */
void qactive_free(QACTIVE *active)
{
    for (size_t i = 0; i < active->count; i++)
        myfree(active->ids[i]);
    myfree(active->ids);
    myfree(active);
}
