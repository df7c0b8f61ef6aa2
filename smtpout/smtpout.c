/*
 * smtpout - relayq's delivery worker
 *
 * Usage: smtpout [-v] [-c CONFIG_FILE]   (started by master)
 *
 * main()
 *	smtpout's part of the daemon skeleton (daemon.c): open the queue, connect to qmgr
 *	(private/qmgr, protocol relayq-qmgr-1), announce "type=worker pid=N"
 *	and then serve "type=deliver" jobs one at a time: read the message
 *	content in one short read transaction, hand the job to the SMTP
 *	session (session.c), and answer "type=result" when it is done.
 *
 * smtpout_conn_event()
 *	report a change of the relay connection to qmgr (a type=conn record:
 *	open, held, close with its reason, tls, auth_ok, auth_fail, timeout;
 *	doc/internals.md). They are fire-and-forget: while qmgr is away they
 *	wait in a bounded buffer (the oldest dropped first) and are sent, in
 *	order, after the next introduction.
 *
 * The SMTP connection belongs to the worker, not to the qmgr connection:
 * when qmgr goes away (it restarts after a crash) the worker keeps the
 * relay connection and reconnects to qmgr every second. A result for a
 * job whose qmgr is gone is dropped: that qmgr's successor has already
 * made the job's recipients due again.
 *
 * Signals: SIGTERM (and SIGINT) finish the job in flight, send its result,
 * QUIT and exit 0; SIGHUP re-reads the configuration (daemon.c; on error
 * the old one stays and nothing else is read again), which takes effect
 * for the next job; the credentials file is read again, and a connection
 * whose credential or TLS policy changed is retired before it carries
 * another job.
 *
 * The queue is only read here: qmgr is the one writer of delivery state.
 * A read transaction never outlives the copy of one body into memory.
 * A worker keeps up to SMTPOUT_MAPPED_MAX of queue pages mapped (qstore.c),
 * eight times the other processes' limit: it reads every body once, and
 * each time the store lets go of its mapped pages they are mapped again,
 * page by page. With the 64 MB of the others, a backlog of 100,000
 * messages drained 13% slower (bench/drain, 3,002 against 3,445 msg/s,
 * medians of 3 in one run); the pages are the page cache's, shared by
 * every process, not the worker's own memory.
 *
 * Fatal: a configuration that does not load at start-up, a queue that
 * does not open, a log file that cannot be opened. Everything about
 * qmgr or the relay is recovered from.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "event.h"
#include "iostuff.h"
#include "ipc.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "qstore.h"
#include "smtpout.h"

#define SMTPOUT_QMGR_TIMEOUT 1000     /* ms for one attempt to connect to qmgr */
#define SMTPOUT_QMGR_RETRY 1000       /* ms between attempts */
#define SMTPOUT_QMGR_PATIENCE 10      /* failed attempts before the wait is a warning */
#define SMTPOUT_EXIT_FLUSH 5000       /* ms to hand the last result to qmgr at exit */
#define SMTPOUT_BODY_PREALLOC 1048576 /* bytes reserved up front for a body */
#define SMTPOUT_EVENTS_MAX 1000       /* connection events kept while qmgr is away */
#define SMTPOUT_MAPPED_MAX ((size_t)512 * 1024 * 1024) /* queue pages kept mapped */

static char *smtpout_qmgr_path;
static QSTORE *smtpout_store;
static IPC_CHAN *smtpout_qmgr;
static int smtpout_qmgr_failures; /* connect attempts to qmgr that failed in a row */
static JOB *smtpout_job;          /* the job in the session */
static int smtpout_stopping;

/* Connection events waiting for qmgr: a ring, the oldest dropped when full. */
static IPC_REC *smtpout_events[SMTPOUT_EVENTS_MAX];
static size_t smtpout_events_head; /* index of the oldest */
static size_t smtpout_events_count;
static size_t smtpout_events_dropped;
static int smtpout_open_buffered; /* the open connection's "open" is in the ring */

static void smtpout_qmgr_connect(void *ctx);
static void smtpout_qmgr_event(int fd, int events, void *ctx);

/* smtpout_qmgr_drop - forget the qmgr connection and try again later */
static void smtpout_qmgr_drop(const char *why, int closed)
{
    if (smtpout_qmgr == NULL)
        return;
    /* qmgr closes first at every stop; a crash of it master reports itself. */
    if (closed)
        msg_info("connection to qmgr: %s; reconnecting", why);
    else
        msg_warn("connection to qmgr: %s; reconnecting", why);
    event_disable_readwrite(ipc_chan_fd(smtpout_qmgr));
    ipc_chan_free(smtpout_qmgr);
    smtpout_qmgr = NULL;
    if (!smtpout_stopping)
        event_request_timer(smtpout_qmgr_connect, NULL, SMTPOUT_QMGR_RETRY);
}

/* smtpout_qmgr_flush - write queued records; watch for room when the socket is full */
static void smtpout_qmgr_flush(void)
{
    int ret;

    if (smtpout_qmgr == NULL)
        return;
    ret = ipc_chan_flush(smtpout_qmgr);
    if (ret < 0) {
        smtpout_qmgr_drop(strerror(errno), 0);
    } else if (ret == 0) {
        event_enable_write(ipc_chan_fd(smtpout_qmgr), smtpout_qmgr_event, NULL);
    } else {
        event_disable_write(ipc_chan_fd(smtpout_qmgr));
    }
}

/* smtpout_conn_event - tell qmgr what happened to the relay connection */
void smtpout_conn_event(const char *event, const char *dest, const char *reason, unsigned messages,
                        int resumed)
{
    IPC_REC *rec = ipc_rec_create("conn");

    ipc_rec_add(rec, "event", event);
    ipc_rec_add(rec, "dest", dest != NULL ? dest : "none");
    if (strcmp(event, "close") == 0) {
        ipc_rec_add(rec, "reason", reason != NULL ? reason : "error");
        ipc_rec_add_long(rec, "messages", messages);
    } else if (strcmp(event, "tls") == 0) {
        ipc_rec_add_long(rec, "resumed", resumed ? 1 : 0);
    }
    if (smtpout_qmgr != NULL) {
        ipc_chan_send(smtpout_qmgr, rec);
        ipc_rec_free(rec);
        smtpout_qmgr_flush();
        return;
    }
    if (strcmp(event, "open") == 0)
        smtpout_open_buffered = 1;
    else if (strcmp(event, "close") == 0)
        smtpout_open_buffered = 0;
    if (smtpout_events_count == SMTPOUT_EVENTS_MAX) {
        ipc_rec_free(smtpout_events[smtpout_events_head]);
        smtpout_events_head = (smtpout_events_head + 1) % SMTPOUT_EVENTS_MAX;
        smtpout_events_count--;
        smtpout_events_dropped++;
    }
    smtpout_events[(smtpout_events_head + smtpout_events_count++) % SMTPOUT_EVENTS_MAX] = rec;
}

/* smtpout_events_replay - after the introduction: what qmgr missed, then the open connection */
static void smtpout_events_replay(void)
{
    const char *dest;

    if (smtpout_events_dropped > 0)
        msg_warn("%zu connection events dropped while qmgr was away", smtpout_events_dropped);
    smtpout_events_dropped = 0;
    while (smtpout_events_count > 0) {
        ipc_chan_send(smtpout_qmgr, smtpout_events[smtpout_events_head]);
        ipc_rec_free(smtpout_events[smtpout_events_head]);
        smtpout_events[smtpout_events_head] = NULL;
        smtpout_events_head = (smtpout_events_head + 1) % SMTPOUT_EVENTS_MAX;
        smtpout_events_count--;
    }
    /* "held": a connection this qmgr has not heard opening (held counts as open, not opened). */
    if ((dest = session_held_dest()) != NULL && !smtpout_open_buffered)
        smtpout_conn_event("held", dest, NULL, 0, 0);
    smtpout_open_buffered = 0;
}

/* smtpout_exit - the session is closed: hand over the last result and leave */
static void smtpout_exit(void)
{
    long long deadline = now_ms() + SMTPOUT_EXIT_FLUSH;

    while (smtpout_qmgr != NULL && ipc_chan_pending(smtpout_qmgr) > 0 && now_ms() < deadline) {
        struct pollfd pfd = {.fd = ipc_chan_fd(smtpout_qmgr), .events = POLLOUT, .revents = 0};

        if (ipc_chan_flush(smtpout_qmgr) != 0)
            break;
        (void)poll(&pfd, 1, 100);
    }
    msg_info("stopping");
    exit(0);
}

/* smtpout_done - the session finished a job: report it */
static void smtpout_done(JOB *job)
{
    IPC_REC *rec;

    if (job != smtpout_job)
        msg_panic("smtpout_done: job %lld is not the one in flight", job->id);
    smtpout_job = NULL;
    if (smtpout_qmgr != NULL) {
        rec = job_result(job, session_is_open());
        ipc_chan_send(smtpout_qmgr, rec);
        ipc_rec_free(rec);
        smtpout_qmgr_flush();
    } else {
        msg_info("%s: qmgr is gone; result of job %lld not reported", job->queue_id, job->id);
    }
    job_free(job);
    if (smtpout_stopping)
        session_shutdown(smtpout_exit);
}

/* smtpout_fail_now - decide a job that never reaches the session */
static void smtpout_fail_now(JOB *job, const char *dsn, const char *text)
{
    job_fail_pending(job, JOB_DEFERRED, dsn, text);
    job_log(job);
    smtpout_job = job;
    smtpout_done(job);
}

/* smtpout_deliver - a type=deliver record: load the content and start the job */
static int smtpout_deliver(const IPC_REC *rec, VSTR *why)
{
    QSTORE_TXN *txn;
    VSTR *body;
    JOB *job;
    int ret;

    if (smtpout_job != NULL || smtpout_stopping) {
        msg_warn("qmgr sent job %s while %s; ignored",
                 ipc_rec_get(rec, "id") ? ipc_rec_get(rec, "id") : "(no id)",
                 smtpout_job ? "another job is in flight" : "stopping");
        return 0;
    }
    if ((job = job_create(rec, why)) == NULL)
        return -1;
    if ((txn = qstore_begin(smtpout_store, 0, why)) == NULL) {
        msg_warn("%s: %s", job->queue_id, vstr_str(why));
        smtpout_fail_now(job, "4.3.0", "queue read error");
        return 0;
    }
    body = vstr_alloc(job->size < SMTPOUT_BODY_PREALLOC ? (size_t)job->size + 3
                                                        : SMTPOUT_BODY_PREALLOC);
    ret = qstore_body_get(txn, job->queue_id, body);
    if (ret < 0)
        vstr_strcpy(why, qstore_txn_reason(txn));
    /* Nothing else is needed from the queue: never hold a reader across a wait. */
    qstore_abort(txn);
    if (ret != QSTORE_OK) {
        if (ret < 0)
            msg_warn("%s: read body: %s", job->queue_id, vstr_str(why));
        vstr_free(body);
        /* Altered content is never sent: qmgr sets the message aside at its next activation. */
        smtpout_fail_now(job, "4.3.0",
                         ret == QSTORE_NOTFOUND   ? "message content not found in the queue"
                         : ret == QSTORE_TAMPERED ? "message content fails authentication: not sent"
                                                  : "queue read error");
        return 0;
    }
    job_set_body(job, body);
    smtpout_job = job;
    session_deliver(job);
    return 0;
}

/* smtpout_dispatch - act on one record from qmgr; -1 ends the connection */
static int smtpout_dispatch(const IPC_REC *rec, VSTR *why)
{
    const char *type = ipc_rec_type(rec);

    if (strcmp(type, "deliver") == 0)
        return smtpout_deliver(rec, why);
    vstr_sprintf(why, "unexpected record type \"%.40s\"", type);
    return -1;
}

/* smtpout_qmgr_records - handle every complete record that arrived */
static void smtpout_qmgr_records(void)
{
    VSTR *why = vstr_alloc(64);
    IPC_REC *rec;
    int ret;

    while (smtpout_qmgr != NULL && (ret = ipc_chan_next(smtpout_qmgr, &rec, why)) != 0) {
        if (ret < 0) {
            smtpout_qmgr_drop(vstr_str(why), 0);
            break;
        }
        ret = smtpout_dispatch(rec, why);
        ipc_rec_free(rec);
        if (ret < 0) {
            smtpout_qmgr_drop(vstr_str(why), 0);
            break;
        }
    }
    vstr_free(why);
}

/* smtpout_qmgr_event - readiness of the qmgr connection */
static void smtpout_qmgr_event(int fd, int events, void *ctx)
{
    int ret;

    (void)fd;
    (void)ctx;
    if ((events & EVENT_WRITE) && smtpout_qmgr != NULL)
        smtpout_qmgr_flush();
    if ((events & EVENT_READ) && smtpout_qmgr != NULL) {
        ret = ipc_chan_fill(smtpout_qmgr);
        if (ret > 0) {
            smtpout_qmgr_records();
        } else {
            smtpout_qmgr_records(); /* what came before the end still counts */
            smtpout_qmgr_drop(ret == 0 ? "closed by qmgr" : strerror(errno), ret == 0);
        }
    }
}

/* smtpout_qmgr_connect - one attempt to reach qmgr and announce ourselves */
static void smtpout_qmgr_connect(void *ctx)
{
    VSTR *why = vstr_alloc(64);
    IPC_REC *rec;

    (void)ctx;
    if (smtpout_qmgr != NULL || smtpout_stopping) {
        vstr_free(why);
        return;
    }
    smtpout_qmgr = ipc_client_open(smtpout_qmgr_path, PROTO_QMGR, SMTPOUT_QMGR_TIMEOUT, why);
    if (smtpout_qmgr == NULL) {
        /* Workers often start before qmgr listens: only a long wait is a problem. */
        if (++smtpout_qmgr_failures == 1)
            msg_info("connect to qmgr: %s; retrying every second", vstr_str(why));
        else if (smtpout_qmgr_failures == SMTPOUT_QMGR_PATIENCE)
            msg_warn("connect to qmgr: %s, for %d s; retrying every second", vstr_str(why),
                     SMTPOUT_QMGR_PATIENCE * SMTPOUT_QMGR_RETRY / 1000);
        vstr_free(why);
        event_request_timer(smtpout_qmgr_connect, NULL, SMTPOUT_QMGR_RETRY);
        return;
    }
    vstr_free(why);
    if (smtpout_qmgr_failures > 0)
        msg_info("connected to qmgr");
    smtpout_qmgr_failures = 0;
    (void)non_blocking(ipc_chan_fd(smtpout_qmgr), 1);
    rec = ipc_rec_create("worker");
    ipc_rec_add_long(rec, "pid", (long long)getpid());
    ipc_chan_send(smtpout_qmgr, rec);
    ipc_rec_free(rec);
    smtpout_events_replay();
    event_enable_read(ipc_chan_fd(smtpout_qmgr), smtpout_qmgr_event, NULL);
    smtpout_qmgr_flush();
    smtpout_qmgr_records();
}

/* smtpout_stop - SIGTERM: stop after the job in flight */
static void smtpout_stop(DAEMON *daemon, int sig)
{
    (void)daemon;
    if (smtpout_stopping)
        return;
    msg_info("signal %d: stopping%s", sig, smtpout_job ? " after the job in flight" : "");
    smtpout_stopping = 1;
    event_cancel_timer(smtpout_qmgr_connect, NULL);
    if (smtpout_job == NULL)
        session_shutdown(smtpout_exit);
}

/* smtpout_reload - the configuration changed: TLS, credentials and the session follow */
static void smtpout_reload(DAEMON *daemon)
{
    (void)daemon;
    tls_reload();
    auth_reload();
    session_reload();
}

/* smtpout_init - open the queue, connect to qmgr */
static void smtpout_init(DAEMON *daemon)
{
    VSTR *why = vstr_alloc(128);
    char *db_path;

    (void)daemon;
    db_path = qdir_path(var_str(queue_directory), QDIR_DB);
    smtpout_store = qstore_open(db_path, (size_t)var_int(queue_map_size), 0, why);
    if (smtpout_store == NULL)
        msg_fatal("open queue %s: %s", db_path, vstr_str(why));
    qstore_set_mapped_limit(smtpout_store, SMTPOUT_MAPPED_MAX);
    myfree(db_path);
    vstr_free(why);
    smtpout_qmgr_path = qdir_path(var_str(queue_directory), SOCK_QMGR);

    auth_reload();
    session_init(smtpout_done);
    smtpout_qmgr_connect(NULL);
}

/* main - the delivery worker; it ends by exiting once its session closed (smtpout_exit) */
int main(int argc, char **argv)
{
    /* The parameters smtpout reads (its own sources; t_param_lists checks). */
    static const int params[] = {
        PARAM_ID(queue_directory),
        PARAM_ID(queue_map_size),
        PARAM_ID(relayhost),
        PARAM_ID(smtp_connect_timeout),
        PARAM_ID(smtp_connection_idle_timeout),
        PARAM_ID(smtp_connection_reuse_count_limit),
        PARAM_ID(smtp_connection_reuse_time_limit),
        PARAM_ID(smtp_data_done_timeout),
        PARAM_ID(smtp_data_init_timeout),
        PARAM_ID(smtp_data_xfer_timeout),
        PARAM_ID(smtp_helo_name),
        PARAM_ID(smtp_helo_timeout),
        PARAM_ID(smtp_keepalive_interval),
        PARAM_ID(smtp_mail_timeout),
        PARAM_ID(smtp_quit_timeout),
        PARAM_ID(smtp_rcpt_timeout),
        PARAM_ID(smtp_sasl_auth_enable),
        PARAM_ID(smtp_sasl_password_maps),
        PARAM_ID(smtp_starttls_timeout),
        PARAM_ID(smtp_tls_CAfile),
        PARAM_ID(smtp_tls_security_level),
        PARAM_ID(smtp_tls_wrappermode),
        -1,
    };
    static const DAEMON_SPEC spec = {
        .name = "smtpout",
        .params = params,
        .init = smtpout_init,
        .reload = smtpout_reload,
        .stop = smtpout_stop,
        .pass_ms = -1,
    };

    return daemon_main(argc, argv, &spec, NULL);
}
