/*
 * qmgr - the queue manager: schedules delivery of queued mail
 *
 * Usage: qmgr [-v] [-c CONFIG_FILE]   (started by master)
 *
 * qmgr is the only process that writes delivery state. It listens on
 * private/qmgr, where pickup announces new mail and smtpout workers ask
 * for work, and on public/control, where relayq commands make requests.
 * Each pass of the event loop reads what peers sent (results, wake-ups,
 * requests) and then, in qmgr_after_pass():
 *	0. hands queued jobs to the idle workers whose uncommitted results
 *	   are fewer than QMGR_UNCOMMITTED_MAX, and writes them out, so the
 *	   workers deliver while the commit below waits for the disk;
 *	1. commits the results that wait in one write transaction (group
 *	   commit) and drops finished messages from the active set, unless
 *	   gather.c says they may wait a few milliseconds for others (a
 *	   timer then ends a later pass in the commit);
 *	   then makes due the mail of destinations that came back (dest.c);
 *	2. activates the due messages of the in-memory schedule (scan.c,
 *	   sched.c), after a resync with the queue when pickup asked;
 *	3. hands queued jobs to idle workers;
 *	4. only then writes to the other peers (command replies), so nothing
 *	   but a job leaves qmgr before the state it depends on is durable.
 *
 * qmgr_peer_close()
 *	end a connection; a worker's job in flight is treated as lost, a
 *	command's bulk operation (bulk.c) is cancelled.
 *
 * Each socket is a listener (listener.c) with its own caps: private/qmgr
 * (pickup and the workers, all mail_owner) at most QMGR_PRIVATE_CLIENTS_MAX
 * connections, public/control (any local user) QMGR_CONTROL_CLIENTS_MAX,
 * and QMGR_CONTROL_PER_UID of one user, so that one user cannot take the
 * commands of the others away. Out of descriptors, a listener pauses
 * instead of spinning.
 *
 * Every QMGR_READER_CHECK_MS qmgr frees the queue's reader slots of
 * processes that died inside a read transaction (a killed `relayq mailq`,
 * an smtpout killed while reading a body), logging how many: a dead reader
 * pins the pages freed after its snapshot, and the map would fill.
 * With encryption at rest on, the same timer looks for clear messages
 * queued before it was turned on; once none is left it marks the queue
 * sealed-only (qstore.c), and a clear message added later is set aside.
 *
 * Fatal: the queue or the sockets cannot be opened (master restarts qmgr).
 * SIGTERM: stop handing out jobs, wait for the jobs in flight (at most
 * 60 s), commit, exit. SIGHUP: re-read the configuration and the queue's
 * key file (queue_encryption_key_file).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "event.h"
#include "iostuff.h"
#include "listener.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "qid.h"
#include "qmgr.h"
#include "sock.h"

#define QMGR_STOP_WAIT_MS 60000       /* longest wait for jobs in flight at stop */
#define QMGR_READER_CHECK_MS 5000     /* between checks for readers of dead processes */
#define QMGR_PRIVATE_CLIENTS_MAX 1024 /* private/qmgr: pickup and the workers */
#define QMGR_CONTROL_CLIENTS_MAX 256  /* public/control: commands of all users */
#define QMGR_CONTROL_PER_UID 32       /* public/control: commands of one user */
#define QMGR_CONTROL_IDLE_MS 300000   /* a command that neither asks nor reads is dropped */
#define QMGR_CONTROL_OUTPUT_MAX (8 * 1024 * 1024) /* unwritten replies before it is dropped */
#define QMGR_CONTROL_RECORD_MAX (4 * 1024 * 1024) /* one request: 100,000 queue ids fit */
/* Resident memory, queue pages included, that qmgr lets itself keep (qstore.c): it stays under
 * 300 MB at a million messages, and a queue of 100,000 keeps its pages instead of faulting them
 * back in. */
#define QMGR_RESIDENT_BUDGET ((size_t)256 * 1024 * 1024)

QSTORE *qmgr_store;
HTABLE *qmgr_active;
SCHED *qmgr_sched;
size_t qmgr_active_rcpts;
QMGR_PEER *qmgr_peers;
QMGR_COUNTERS qmgr_counters;
LIST_HELPERS *qmgr_list_helpers;
int qmgr_resync_wanted;
int qmgr_stopping;
SHARED *qmgr_shared;
static RESOLVER *qmgr_resolver; /* the shared-limits server's name, off the loop */

static long long qmgr_stop_deadline;

/* The sockets qmgr listens on: the daemon skeleton's context. */
typedef struct QMGR_LISTENERS {
    LISTENER *private; /* private/qmgr */
    LISTENER *control; /* public/control */
} QMGR_LISTENERS;

static void qmgr_peer_write(int fd, int events, void *ctx);

/* qmgr_control_idle - timer: a command that neither asked nor read for a while */
static void qmgr_control_idle(void *ctx)
{
    QMGR_PEER *peer = ctx;

    /* A bulk operation in progress is qmgr's work, not the command's idleness. */
    if (peer->bulk != NULL) {
        event_request_timer(qmgr_control_idle, peer, QMGR_CONTROL_IDLE_MS);
        return;
    }
    msg_warn("%s: command of uid %ld idle for %d s: disconnecting", SOCK_CONTROL, peer->uid,
             QMGR_CONTROL_IDLE_MS / 1000);
    qmgr_peer_close(peer);
}

/* qmgr_control_active - a command asked or read: its idle time starts again */
static void qmgr_control_active(QMGR_PEER *peer)
{
    if (peer->kind == PEER_CONTROL)
        event_request_timer(qmgr_control_idle, peer, QMGR_CONTROL_IDLE_MS);
}

/* qmgr_peer_close - end a connection */
void qmgr_peer_close(QMGR_PEER *peer)
{
    if (peer->kind == PEER_WORKER) {
        result_worker_lost(peer);
        message_forget_reporter(peer);
    }
    if (peer->bulk)
        bulk_cancel(peer->bulk);
    list_cancel(qmgr_list_helpers, peer);
    event_cancel_timer(qmgr_control_idle, peer);
    event_disable_readwrite(ipc_chan_fd(peer->chan));
    if (peer->prev)
        peer->prev->next = peer->next;
    else
        qmgr_peers = peer->next;
    if (peer->next)
        peer->next->prev = peer->prev;
    ipc_chan_free(peer->chan);
    listener_closed(peer->listener, peer->uid);
    myfree(peer);
}

/* qmgr_pickup_record - pickup queued mail ("queued") or may have lost track ("wakeup") */
static int qmgr_pickup_record(QMGR_PEER *peer, const IPC_REC *rec)
{
    const char *type = ipc_rec_type(rec);

    (void)peer;
    if (strcmp(type, "wakeup") != 0 && strcmp(type, "queued") != 0) {
        msg_warn("unexpected record \"%.40s\" from pickup", type);
        return -1;
    }
    /* Both carry pickup's figures whole (counted there: pickup is never asked). */
    if (stats_pickup_figures(&qmgr_counters, rec) < 0)
        return -1;
    if (strcmp(type, "wakeup") == 0) {
        /* Mail may be queued that no "queued" record announced. */
        qmgr_resync_wanted = 1;
        return 0;
    }
    for (size_t i = 1; i < rec->count; i++) {
        const char *value = rec->attrs[i].value;
        char qid[QID_LEN + 1];
        long long when;
        int len = 0;

        if (strcmp(rec->attrs[i].name, "received") == 0 ||
            strcmp(rec->attrs[i].name, "commit_time") == 0 ||
            strcmp(rec->attrs[i].name, "commit_batch") == 0)
            continue; /* the figures, taken above */
        /* "QUEUE_ID WHEN": a new message and its schedule time. */
        if (strcmp(rec->attrs[i].name, "message") != 0 ||
            sscanf(value, "%12[0-9A-Za-z] %lld%n", qid, &when, &len) != 2 || value[len] != '\0' ||
            !qid_valid(qid) || when <= 0) {
            msg_warn("bad queued record from pickup: \"%.60s\"", value);
            return -1;
        }
        /* What qmgr knows already (a resync found it) is newer. */
        if (!sched_known(qmgr_sched, qid))
            sched_set_new(qmgr_sched, qid, when);
    }
    return 0;
}

/* qmgr_schedule_changed - the queue's commit hook: the schedule follows the commit */
static void qmgr_schedule_changed(void *ctx, const char *qid, long long when)
{
    sched_set(ctx, qid, when);
}

/* qmgr_dispatch - act on one record from a peer; -1 ends the connection */
static int qmgr_dispatch(QMGR_PEER *peer, const IPC_REC *rec)
{
    const char *type = ipc_rec_type(rec);
    VSTR *why;
    long long pid;

    switch (peer->kind) {
    case PEER_NEW:
        if (strcmp(type, "wakeup") == 0 || strcmp(type, "queued") == 0) {
            peer->kind = PEER_PICKUP;
            return qmgr_pickup_record(peer, rec);
        }
        if (strcmp(type, "worker") == 0) {
            why = vstr_alloc(100);
            if (ipc_rec_check(rec, "pid", "", why) < 0 ||
                ipc_rec_get_long(rec, "pid", 1, 1LL << 31, &pid, why) < 0) {
                msg_warn("bad worker introduction: %s", vstr_str(why));
                vstr_free(why);
                return -1;
            }
            vstr_free(why);
            peer->kind = PEER_WORKER;
            peer->pid = (long)pid;
            return 0;
        }
        break;
    case PEER_PICKUP:
        return qmgr_pickup_record(peer, rec);
    case PEER_WORKER:
        if (strcmp(type, "result") == 0)
            return result_receive(peer, rec);
        if (strcmp(type, "conn") == 0)
            return stats_event(peer, rec);
        break;
    case PEER_CONTROL:
        return control_request(peer, rec);
    }
    msg_warn("unexpected record \"%.40s\" from a %s peer", type,
             peer->kind == PEER_WORKER ? "worker" : "qmgr");
    return -1;
}

/* qmgr_peer_read - read and dispatch what a peer sent */
static void qmgr_peer_read(int fd, int events, void *ctx)
{
    QMGR_PEER *peer = ctx;
    VSTR *why;
    IPC_REC *rec;
    int ret;

    (void)fd;
    (void)events;
    if ((ret = ipc_chan_fill(peer->chan)) <= 0) {
        if (peer->kind == PEER_WORKER)
            msg_info("worker pid %ld disconnected", peer->pid);
        qmgr_peer_close(peer);
        return;
    }
    qmgr_control_active(peer);
    why = vstr_alloc(100);
    while ((ret = ipc_chan_next(peer->chan, &rec, why)) > 0) {
        int status = qmgr_dispatch(peer, rec);

        ipc_rec_free(rec);
        if (status < 0) {
            ret = -1;
            vstr_strcpy(why, "protocol error");
            break;
        }
    }
    if (ret < 0) {
        msg_warn("closing connection: %s", vstr_str(why));
        /* Say why before hanging up, as far as the socket takes it. */
        ipc_chan_flush(peer->chan);
        qmgr_peer_close(peer);
    }
    vstr_free(why);
}

/* qmgr_peer_write - write pending output */
static void qmgr_peer_write(int fd, int events, void *ctx)
{
    QMGR_PEER *peer = ctx;
    int ret = ipc_chan_flush(peer->chan);

    (void)events;
    if (ret < 0) {
        qmgr_peer_close(peer);
        return;
    }
    qmgr_control_active(peer);
    if (ret > 0)
        event_disable_write(fd);
}

/* qmgr_accept - a new connection on one of the sockets */
static void qmgr_accept(LISTENER *listener, int fd, long uid, void *ctx)
{
    int control = ctx != NULL;
    QMGR_PEER *peer;
    IPC_REC *hello;

    peer = mycalloc(1, sizeof(*peer));
    peer->chan = ipc_chan_create(fd);
    peer->listener = listener;
    /* Who is asking decides what a command may do (control.c). */
    peer->uid = uid;
    peer->kind = control ? PEER_CONTROL : PEER_NEW;
    if (control) {
        ipc_chan_set_record_max(peer->chan, QMGR_CONTROL_RECORD_MAX);
        qmgr_control_active(peer);
    }
    peer->next = qmgr_peers;
    if (qmgr_peers)
        qmgr_peers->prev = peer;
    qmgr_peers = peer;
    hello = ipc_rec_create("hello");
    ipc_rec_add(hello, "protocol", control ? PROTO_CONTROL : PROTO_QMGR);
    ipc_chan_send(peer->chan, hello);
    ipc_rec_free(hello);
    event_enable_read(fd, qmgr_peer_read, peer);
}

/* qmgr_jobs_in_flight - whether any worker holds a job */
static int qmgr_jobs_in_flight(void)
{
    for (QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next)
        if (peer->kind == PEER_WORKER && peer->job)
            return 1;
    return 0;
}

/* qmgr_flush_peers - write what is queued for the peers (workers only, or all) */
static void qmgr_flush_peers(int workers_only)
{
    QMGR_PEER *peer, *next;

    for (peer = qmgr_peers; peer; peer = next) {
        int ret;

        next = peer->next;
        if ((workers_only && peer->kind != PEER_WORKER) || ipc_chan_pending(peer->chan) == 0)
            continue;
        if (peer->kind == PEER_CONTROL && ipc_chan_pending(peer->chan) > QMGR_CONTROL_OUTPUT_MAX) {
            msg_warn("%s: command of uid %ld does not read its replies (%zu bytes waiting): "
                     "disconnecting",
                     SOCK_CONTROL, peer->uid, ipc_chan_pending(peer->chan));
            qmgr_peer_close(peer);
            continue;
        }
        if ((ret = ipc_chan_flush(peer->chan)) < 0)
            qmgr_peer_close(peer);
        else if (ret == 0)
            event_enable_write(ipc_chan_fd(peer->chan), qmgr_peer_write, peer);
    }
}

/* qmgr_gathered - the waiting results have waited long enough: the pass ends in their commit */
static void qmgr_gathered(void *ctx)
{
    (void)ctx;
}

/* qmgr_commit_wait_ms - 0: commit the waiting results now; else how long they may wait */
static long long qmgr_commit_wait_ms(void)
{
    GATHER_VIEW view = {.stopping = qmgr_stopping,
                        .commit_failing = message_commit_failing(),
                        .done = message_done_count(),
                        .oldest_age_ms = now_ms() - message_done_since_ms()};

    for (QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next) {
        if (peer->kind != PEER_WORKER)
            continue;
        if (peer->job != NULL)
            view.jobs_in_flight++;
        if (peer->uncommitted >= QMGR_UNCOMMITTED_MAX)
            view.worker_at_cap = 1;
    }
    return gather_wait_ms(&view);
}

/* qmgr_after_pass - dispatch, commit, activate, dispatch, then answer */
static void qmgr_after_pass(void *ctx)
{
    long long wait;

    (void)ctx;
    /* Workers whose results wait for the commit go on with their next job
     * meanwhile, up to QMGR_UNCOMMITTED_MAX results each. */
    assign_jobs();
    qmgr_flush_peers(1);
    /* Results wait a little for others to share their commit (gather.c).
     * A failed commit keeps the done list; the next pass (at most a
     * second away) tries again. */
    if (message_done_pending()) {
        if ((wait = qmgr_commit_wait_ms()) > 0) {
            event_request_timer(qmgr_gathered, NULL, wait);
        } else {
            event_cancel_timer(qmgr_gathered, NULL);
            message_finalize_done();
        }
    }
    /* After the results: mail a resumed destination released is due now. */
    dest_release();
    if (qmgr_resync_wanted) {
        qmgr_resync_wanted = 0;
        scan_load(0);
    }
    if (!qmgr_stopping)
        scan_schedule();
    assign_jobs();
    /* Replies to commands may depend on the commit: only now. */
    qmgr_flush_peers(0);
}

/* qmgr_seal_check - with encryption on and no clear message left, mark the queue sealed-only */
static void qmgr_seal_check(void)
{
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn;
    long long since = 0;
    int left = 1;

    if (qstore_keyring(qmgr_store) != NULL && (txn = qstore_begin(qmgr_store, 0, why)) != NULL) {
        since = qstore_sealed_only(txn);
        if (since == 0)
            left = qstore_clear_left(txn);
        qstore_abort(txn);
    }
    if (since == 0 && left == 0) {
        int rc = QSTORE_ERROR;

        if ((txn = qstore_begin(qmgr_store, 1, why)) != NULL) {
            /* A failed mark sticks to the transaction: the commit reports it. */
            (void)qstore_mark_sealed_only(txn, (long long)time(NULL));
            rc = qstore_commit_at(txn, "qmgr-seal-commit", why);
        }
        if (rc != QSTORE_OK) {
            msg_warn("cannot mark the queue sealed-only: %s; trying again", vstr_str(why));
        } else {
            msg_info("no clear message is left in the queue: it is sealed-only from now on, "
                     "and a clear message added to it will be set aside");
        }
    }
    vstr_free(why);
}

/* qmgr_reader_timer - free reader slots that dead processes left (they pin old pages) */
static void qmgr_reader_timer(void *ctx)
{
    int dead = qstore_reader_check(qmgr_store);

    if (dead > 0)
        msg_info("cleared %d stale queue reader%s left by dead processes", dead,
                 dead == 1 ? "" : "s");
    qmgr_seal_check();
    event_request_timer(qmgr_reader_timer, ctx, QMGR_READER_CHECK_MS);
}

/* qmgr_stop - SIGTERM: stop handing out work; exit when the jobs in flight end */
static void qmgr_stop(DAEMON *daemon, int sig)
{
    (void)daemon;
    msg_info("terminating on signal %d", sig);
    qmgr_stopping = 1;
    qmgr_stop_deadline = now_ms() + QMGR_STOP_WAIT_MS;
}

/* qmgr_reload - the configuration changed: routes, limits and keys follow */
static void qmgr_reload(DAEMON *daemon)
{
    VSTR *why = vstr_alloc(100);

    (void)daemon;
    /* A changed server (or share) starts a new membership; grants in
     * flight are answered as unavailable and asked again. */
    qmgr_shared = shared_reload(qmgr_shared, qmgr_resolver);
    dest_reload();
    route_reload();
    /* A new key seals from now on; the old ones still open what they sealed. */
    if (qstore_reload_keys(qmgr_store, why) < 0)
        msg_warn("queue_encryption_key_file: %s; keeping the old keys", vstr_str(why));
    vstr_free(why);
}

/* qmgr_listen - open one of qmgr's sockets */
static int qmgr_listen(const char *relative, int mode)
{
    char *path = qdir_path(var_str(queue_directory), relative);
    VSTR *why = vstr_alloc(100);
    int fd = unix_listen(path, 256, mode, why);

    if (fd < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
    myfree(path);
    return fd;
}

/* qmgr_init - open the queue and the sockets, load the schedule */
static void qmgr_init(DAEMON *daemon)
{
    static const LISTENER_LIMITS private_limits = {QMGR_PRIVATE_CLIENTS_MAX, 0};
    static const LISTENER_LIMITS control_limits = {QMGR_CONTROL_CLIENTS_MAX, QMGR_CONTROL_PER_UID};
    QMGR_LISTENERS *listeners = daemon_context(daemon);
    VSTR *why = vstr_alloc(100);
    char *db_path;

    db_path = qdir_path(var_str(queue_directory), QDIR_DB);
    if ((qmgr_store = qstore_open(db_path, (size_t)var_int(queue_map_size), 0, why)) == NULL)
        msg_fatal("%s", vstr_str(why));
    myfree(db_path);
    vstr_free(why);
    qstore_set_resident_limit(qmgr_store, QMGR_RESIDENT_BUDGET);
    qmgr_active = htable_create(1024);
    qmgr_sched = sched_create();
    stats_init(&qmgr_counters);
    qstore_set_schedule_hook(qmgr_store, qmgr_schedule_changed, qmgr_sched);
    qmgr_resolver = resolve_create();
    qmgr_shared = shared_create(qmgr_resolver);
    dest_init();
    route_init();

    listeners->private = listener_create(qmgr_listen(SOCK_QMGR, 0600), SOCK_QMGR, &private_limits,
                                         qmgr_accept, NULL);
    listeners->control = listener_create(qmgr_listen(SOCK_CONTROL, 0666), SOCK_CONTROL,
                                         &control_limits, qmgr_accept, (void *)1);
    /* After the sockets exist: a command that comes during a long load
     * waits in the listen queue instead of finding the mail system down. */
    qmgr_list_helpers = list_helpers_create(daemon_config_path(daemon));
    scan_load(1);
    event_after_pass(qmgr_after_pass, NULL);
    event_request_timer(qmgr_reader_timer, NULL, QMGR_READER_CHECK_MS);
}

/* qmgr_done - after SIGTERM: once the results are committed and the jobs ended (or timed out) */
static int qmgr_done(DAEMON *daemon)
{
    (void)daemon;
    return qmgr_stopping && !message_done_pending() &&
           (!qmgr_jobs_in_flight() || now_ms() > qmgr_stop_deadline);
}

/* qmgr_finish - close the sockets and the queue */
static void qmgr_finish(DAEMON *daemon)
{
    QMGR_LISTENERS *listeners = daemon_context(daemon);

    listener_free(listeners->control);
    listener_free(listeners->private);
    list_helpers_free(qmgr_list_helpers);
    shared_free(qmgr_shared);
    qstore_close(qmgr_store);
    sched_free(qmgr_sched);
}

/* main - the queue manager */
int main(int argc, char **argv)
{
    /* The parameters qmgr reads (its own sources; t_param_lists checks). */
    static const int params[] = {
        PARAM_ID(authorized_mailq_users),
        PARAM_ID(bounce_queue_lifetime),
        PARAM_ID(bounce_size_limit),
        PARAM_ID(daemon_directory),
        PARAM_ID(default_destination_concurrency_limit),
        PARAM_ID(default_destination_rate_delay),
        PARAM_ID(default_destination_recipient_limit),
        PARAM_ID(delay_warning_time),
        PARAM_ID(destination_policy_maps),
        PARAM_ID(destination_probe_interval),
        PARAM_ID(destination_rate_limit),
        PARAM_ID(maximal_backoff_time),
        PARAM_ID(maximal_queue_lifetime),
        PARAM_ID(minimal_backoff_time),
        PARAM_ID(myhostname),
        PARAM_ID(qmgr_message_active_limit),
        PARAM_ID(qmgr_message_recipient_limit),
        PARAM_ID(queue_directory),
        PARAM_ID(queue_map_size),
        PARAM_ID(queue_run_delay),
        PARAM_ID(relayhost),
        PARAM_ID(sender_dependent_relayhost_maps),
        PARAM_ID(shared_limits_fallback_share),
        PARAM_ID(shared_limits_server),
        PARAM_ID(smtp_sasl_auth_enable),
        PARAM_ID(smtp_sasl_auth_failure_suspend),
        PARAM_ID(smtp_sasl_password_maps),
        PARAM_ID(transport_maps),
        -1,
    };
    static const DAEMON_SPEC spec = {
        .name = "qmgr",
        .params = params,
        .init = qmgr_init,
        .reload = qmgr_reload,
        .stop = qmgr_stop,
        .done = qmgr_done,
        .finish = qmgr_finish,
        .pass_ms = 1000,
    };
    static QMGR_LISTENERS listeners;

    return daemon_main(argc, argv, &spec, &listeners);
}
