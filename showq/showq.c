/*
 * showq - qmgr's helper that lists the queue for a user who cannot read it
 *
 * Usage: showq [-v] [-c CONFIG_FILE] text|json
 *
 * An ordinary user's "relayq mailq" asks qmgr on public/control for the
 * listing (the user cannot read db/). qmgr checks the user against
 * authorized_mailq_users and then starts this helper with the user's
 * connection as its standard input, as inetd hands a service its client,
 * and forgets the connection: the listing, work in proportion to the
 * queue (seconds at a million messages), never runs in qmgr's loop. The
 * helper runs as mail_owner (qmgr's user) and
 *
 *	1. runs as SCHED_IDLE (or, where that is refused, SHOWQ_NICE lower):
 *	   a listing gets only the CPU time delivery leaves over, so on a
 *	   machine that delivery keeps busy it takes longer, and delivery
 *	   does not slow down;
 *	2. asks qmgr which messages are in delivery, for the "*" mark
 *	   (qactive.c), as root's mailq does;
 *	3. lists the queue in steps of SHOWQ_STEP_MESSAGES messages, each in
 *	   a read transaction of its own (qlist.c): no snapshot is held while
 *	   the text goes out, so a slow reader pins no queue pages;
 *	4. sends each step's text as `list` records of at most SHOWQ_CHUNK
 *	   bytes, then `end`; or `error` with the reason when the queue
 *	   cannot be read. A client that takes none of it for
 *	   SHOWQ_SEND_TIMEOUT_MS is given up (logged): a stopped reader
 *	   costs one idle helper for that long, and nothing of qmgr.
 *
 * qmgr runs at most a few helpers at once (qmgr/list.c); the records are
 * the ones qmgr itself sent before, so the command did not change.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon.h"
#include "ipc.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qactive.h"
#include "qdir.h"
#include "qlist.h"
#include "qstore.h"

#define SHOWQ_NICE 19                 /* without SCHED_IDLE: added to the priority */
#define SHOWQ_STEP_MESSAGES 1024      /* messages listed in one read transaction */
#define SHOWQ_CHUNK (512 * 1024)      /* bytes of listing text in one record */
#define SHOWQ_SEND_TIMEOUT_MS 60000   /* the client must take a record within this */
#define SHOWQ_ACTIVE_TIMEOUT_MS 10000 /* qmgr must say what it delivers within this */

/* showq_lower_priority - run only on CPU time that delivery leaves over */
static void showq_lower_priority(void)
{
    struct sched_param param = {.sched_priority = 0};

    if (sched_setscheduler(0, SCHED_IDLE, &param) == 0)
        return;
    msg_warn("cannot run as SCHED_IDLE: %m; lowering the priority by %d instead", SHOWQ_NICE);
    errno = 0;
    if (nice(SHOWQ_NICE) < 0 && errno != 0)
        msg_warn("nice: %m");
}

/* showq_send - one record to the client; 0, or -1 logged */
static int showq_send(IPC_CHAN *client, IPC_REC *rec)
{
    VSTR *why = vstr_alloc(100);
    int ret = ipc_chan_send_wait(client, rec, SHOWQ_SEND_TIMEOUT_MS, why);

    if (ret < 0)
        msg_warn("listing abandoned: %s", vstr_str(why));
    ipc_rec_free(rec);
    vstr_free(why);
    return ret;
}

/* showq_text - listing text as chunk records; 0, or -1 when the client is gone */
static int showq_text(IPC_CHAN *client, const char *text, size_t len)
{
    char *chunk = mymalloc(SHOWQ_CHUNK + 1);
    int ret = 0;

    for (size_t off = 0; off < len && ret == 0; off += SHOWQ_CHUNK) {
        size_t n = len - off < SHOWQ_CHUNK ? len - off : SHOWQ_CHUNK;
        IPC_REC *rec = ipc_rec_create("list");

        memcpy(chunk, text + off, n);
        chunk[n] = '\0';
        ipc_rec_add(rec, "data", chunk);
        ret = showq_send(client, rec);
    }
    myfree(chunk);
    return ret;
}

/* showq_error - tell the client why there is no listing */
static void showq_error(IPC_CHAN *client, const char *reason)
{
    IPC_REC *rec = ipc_rec_create("error");

    msg_warn("cannot list the queue: %s", reason);
    ipc_rec_add(rec, "reason", reason);
    (void)showq_send(client, rec);
}

/* showq_list - the whole listing, step by step */
static void showq_list(IPC_CHAN *client, QSTORE *store, const QLIST_OPTS *opts)
{
    QLIST *listing = qlist_create(opts);
    VSTR *why = vstr_alloc(100);
    int rc = 0;

    while (rc == 0) {
        QSTORE_TXN *txn;
        char *text = NULL;
        size_t len = 0;
        FILE *out;

        if ((txn = qstore_begin(store, 0, why)) == NULL) {
            showq_error(client, vstr_str(why));
            break;
        }
        if ((out = open_memstream(&text, &len)) == NULL)
            msg_fatal("open_memstream: %m");
        rc = qlist_step(listing, txn, out, SHOWQ_STEP_MESSAGES, why);
        qstore_abort(txn);
        if (fclose(out) != 0)
            msg_fatal("write the listing to memory: %m");
        if (rc < 0)
            showq_error(client, vstr_str(why));
        else if (showq_text(client, text, len) < 0)
            rc = -1;
        else if (rc == 1)
            (void)showq_send(client, ipc_rec_create("end"));
        free(text);
    }
    vstr_free(why);
    qlist_free(listing);
}

/* showq_prepare - the operand is the listing's layout */
static void showq_prepare(DAEMON *daemon)
{
    const char *format = daemon_operand(daemon, 0);

    if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
        daemon_usage(daemon);
}

/* showq_init - serve the one client on standard input */
static void showq_init(DAEMON *daemon)
{
    const char *format = daemon_operand(daemon, 0);
    IPC_CHAN *client = ipc_chan_create(0);
    VSTR *why = vstr_alloc(100);
    char *db_path, *control_path;
    QACTIVE *active;
    QLIST_OPTS opts;
    QSTORE *store;

    showq_lower_priority();
    memset(&opts, 0, sizeof(opts));
    opts.json = strcmp(format, "json") == 0;
    opts.maildrop = qdir_maildrop_count(var_str(queue_directory));
    db_path = qdir_path(var_str(queue_directory), QDIR_DB);
    if ((store = qstore_open(db_path, (size_t)var_int(queue_map_size), QSTORE_READONLY, why)) ==
        NULL) {
        showq_error(client, vstr_str(why));
    } else {
        control_path = qdir_path(var_str(queue_directory), SOCK_CONTROL);
        active = qactive_ask(control_path, SHOWQ_ACTIVE_TIMEOUT_MS);
        opts.is_active = qactive_has;
        opts.ctx = active;
        showq_list(client, store, &opts);
        qactive_free(active);
        myfree(control_path);
        qstore_close(store);
    }
    ipc_chan_free(client);
    myfree(db_path);
    vstr_free(why);
}

/* showq_done - the listing is sent: the helper ends */
static int showq_done(DAEMON *daemon)
{
    (void)daemon;
    return 1;
}

/* showq_stop - SIGTERM arrives only after the listing; nothing to stop */
static void showq_stop(DAEMON *daemon, int sig)
{
    (void)daemon;
    (void)sig;
}

/* main - the listing helper */
int main(int argc, char **argv)
{
    static const int params[] = {
        PARAM_ID(queue_directory),
        PARAM_ID(queue_map_size),
        -1,
    };
    static const DAEMON_SPEC spec = {
        .name = "showq",
        .params = params,
        .prepare = showq_prepare,
        .init = showq_init,
        .stop = showq_stop,
        .done = showq_done,
        .pass_ms = 0,
        .operands = "text|json",
        .operand_count = 1,
    };

    return daemon_main(argc, argv, &spec, NULL);
}
