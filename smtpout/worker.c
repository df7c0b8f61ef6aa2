/*
 * worker - one session of an smtpout process, as qmgr sees it
 *
 * worker_create()
 *	a worker of the process: its own SMTP session (session.c), which
 *	borrows the process's resolver and address cache, and its
 *	own connection to qmgr (private/qmgr, protocol relayq-qmgr-1), on
 *	which it announces "type=worker pid=N" and then serves
 *	"type=deliver" jobs one at a time: it reads the message content in
 *	one short read transaction of the process's queue, hands the job to
 *	its session, and answers "type=result" when the session is done.
 *	"type=release" asks it to close its connection if it is idle (qmgr
 *	gives the slot of a shared concurrency limit back to other
 *	instances); a busy or closed one ignores it.
 *	qmgr gives jobs to workers, so a process of K workers is K of qmgr's
 *	workers, and a destination's concurrency counts their connections.
 * worker_stop()
 *	SIGTERM: finish the job in flight, send its result, QUIT, close,
 *	then call the process's `stopped` with the worker.
 * worker_reload()
 *	the configuration changed: the session retires a connection whose
 *	identity changed (session_reload()).
 * worker_flush_results()
 *	at exit: wait until what the worker owes qmgr is written, or until
 *	the deadline.
 *
 * Connection events (open, held, close with its reason, tls, auth_ok,
 * auth_fail, timeout; doc/internals.md) are fire-and-forget: while qmgr
 * is away they wait in a bounded ring (the oldest dropped first) and are
 * sent, in order, after the next introduction.
 *
 * The SMTP connection belongs to the worker, not to the qmgr connection:
 * when qmgr goes away (it restarts after a crash) the worker keeps the
 * relay connection and reconnects to qmgr every second. A result for a
 * job whose qmgr is gone is dropped: that qmgr's successor has already
 * made the job's recipients due again. A worker with a job in flight
 * introduces itself only once the job is done, so the new qmgr never
 * assigns it a job it could not take. A job that comes while another is
 * in flight breaks the protocol: the worker drops the connection, and qmgr
 * takes the job back as it does for any worker that goes away.
 *
 * The queue is only read here; a read transaction never outlives the
 * copy of one body into memory. Everything about qmgr or the relay is
 * recovered from; nothing here is fatal.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "iostuff.h"
#include "ipc.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "qstore.h"
#include "smtpout.h"

#define WORKER_QMGR_TIMEOUT 1000     /* ms for one attempt to connect to qmgr */
#define WORKER_QMGR_RETRY 1000       /* ms between attempts */
#define WORKER_QMGR_PATIENCE 10      /* failed attempts before the wait is a warning */
#define WORKER_BODY_PREALLOC 1048576 /* bytes reserved up front for a body */
#define WORKER_EVENTS_MAX 1000       /* connection events kept while qmgr is away */

/*
 * WORKER models one of the process's sessions and its channel to qmgr:
 * the job in flight and the connection events qmgr has not heard yet.
 */
struct WORKER {
    QSTORE *store;         /* the process's queue, read only */
    const char *qmgr_path; /* private/qmgr */
    WORKER_STOPPED_FN stopped;
    void *ctx; /* stopped's first argument */
    SESSION *session;
    IPC_CHAN *qmgr;
    int qmgr_failures; /* connect attempts to qmgr that failed in a row */
    JOB *job;          /* the job in the session */
    int stopping;
    /* Connection events waiting for qmgr: a ring, the oldest dropped when full. */
    IPC_REC *events[WORKER_EVENTS_MAX];
    size_t events_head; /* index of the oldest */
    size_t events_count;
    size_t events_dropped;
    int open_buffered; /* the open connection's "open" is in the ring */
};

static void worker_qmgr_connect(void *ctx);
static void worker_qmgr_event(int fd, int events, void *ctx);

/* worker_qmgr_drop - forget the qmgr connection and try again later */
static void worker_qmgr_drop(WORKER *w, const char *why, int closed)
{
    if (w->qmgr == NULL)
        return;
    /* qmgr closes first at every stop; a crash of it master reports itself. */
    if (closed)
        msg_info("connection to qmgr: %s; reconnecting", why);
    else
        msg_warn("connection to qmgr: %s; reconnecting", why);
    event_disable_readwrite(ipc_chan_fd(w->qmgr));
    ipc_chan_free(w->qmgr);
    w->qmgr = NULL;
    if (!w->stopping)
        event_request_timer(worker_qmgr_connect, w, WORKER_QMGR_RETRY);
}

/* worker_qmgr_flush - write queued records; watch for room when the socket is full */
static void worker_qmgr_flush(WORKER *w)
{
    int ret;

    if (w->qmgr == NULL)
        return;
    ret = ipc_chan_flush(w->qmgr);
    if (ret < 0) {
        worker_qmgr_drop(w, strerror(errno), 0);
    } else if (ret == 0) {
        event_enable_write(ipc_chan_fd(w->qmgr), worker_qmgr_event, w);
    } else {
        event_disable_write(ipc_chan_fd(w->qmgr));
    }
}

/* worker_conn_event - tell qmgr what happened to the relay connection (a session hook) */
static void worker_conn_event(void *ctx, const char *event, const char *dest, const char *reason,
                              unsigned messages, int resumed)
{
    WORKER *w = ctx;
    IPC_REC *rec = ipc_rec_create("conn");

    ipc_rec_add(rec, "event", event);
    ipc_rec_add(rec, "dest", dest != NULL ? dest : "none");
    if (strcmp(event, "close") == 0) {
        ipc_rec_add(rec, "reason", reason != NULL ? reason : "error");
        ipc_rec_add_long(rec, "messages", messages);
    } else if (strcmp(event, "tls") == 0) {
        ipc_rec_add_long(rec, "resumed", resumed ? 1 : 0);
    } else if (strcmp(event, "auth_fail") == 0 && reason != NULL) {
        ipc_rec_add(rec, "reason", reason);
    }
    if (w->qmgr != NULL) {
        ipc_chan_send(w->qmgr, rec);
        ipc_rec_free(rec);
        worker_qmgr_flush(w);
        return;
    }
    if (strcmp(event, "open") == 0)
        w->open_buffered = 1;
    else if (strcmp(event, "close") == 0)
        w->open_buffered = 0;
    if (w->events_count == WORKER_EVENTS_MAX) {
        ipc_rec_free(w->events[w->events_head]);
        w->events_head = (w->events_head + 1) % WORKER_EVENTS_MAX;
        w->events_count--;
        w->events_dropped++;
    }
    w->events[(w->events_head + w->events_count++) % WORKER_EVENTS_MAX] = rec;
}

/* worker_events_replay - after the introduction: what qmgr missed, then the open connection */
static void worker_events_replay(WORKER *w)
{
    const char *dest;

    if (w->events_dropped > 0)
        msg_warn("%zu connection events dropped while qmgr was away", w->events_dropped);
    w->events_dropped = 0;
    while (w->events_count > 0) {
        ipc_chan_send(w->qmgr, w->events[w->events_head]);
        ipc_rec_free(w->events[w->events_head]);
        w->events[w->events_head] = NULL;
        w->events_head = (w->events_head + 1) % WORKER_EVENTS_MAX;
        w->events_count--;
    }
    /* "held": a connection this qmgr has not heard opening (held counts as open, not opened). */
    if ((dest = session_held_dest(w->session)) != NULL && !w->open_buffered)
        worker_conn_event(w, "held", dest, NULL, 0, 0);
    w->open_buffered = 0;
}

/* worker_done - the session finished a job: report it (a session hook) */
static void worker_done(void *ctx, JOB *job)
{
    WORKER *w = ctx;
    IPC_REC *rec;

    if (job != w->job)
        msg_panic("worker_done: job %lld is not the one in flight", job->id);
    w->job = NULL;
    if (w->qmgr != NULL) {
        rec = job_result(job, session_is_open(w->session));
        ipc_chan_send(w->qmgr, rec);
        ipc_rec_free(rec);
        worker_qmgr_flush(w);
    } else {
        msg_info("%s: qmgr is gone; result of job %lld not reported", job->queue_id, job->id);
    }
    job_free(job);
    if (w->stopping)
        session_shutdown(w->session);
    else if (w->qmgr == NULL) /* the introduction waited for the job: make it now */
        event_request_timer(worker_qmgr_connect, w, 0);
}

/* worker_session_stopped - the session closed for the stop (a session hook) */
static void worker_session_stopped(void *ctx)
{
    WORKER *w = ctx;

    w->stopped(w->ctx, w);
}

/* worker_fail_now - decide a job that never reaches the session */
static void worker_fail_now(WORKER *w, JOB *job, const char *dsn, const char *text)
{
    job_fail_pending(job, JOB_DEFERRED, dsn, text);
    job_log(job);
    w->job = job;
    worker_done(w, job);
}

/* worker_deliver - a type=deliver record: load the content and start the job */
static int worker_deliver(WORKER *w, const IPC_REC *rec, VSTR *why)
{
    QSTORE_TXN *txn;
    VSTR *body;
    JOB *job;
    int ret;

    if (w->job != NULL || w->stopping) {
        vstr_sprintf(why, "job %.40s came while %s",
                     ipc_rec_get(rec, "id") ? ipc_rec_get(rec, "id") : "(no id)",
                     w->job ? "another job is in flight" : "stopping");
        return -1;
    }
    if ((job = job_create(rec, why)) == NULL)
        return -1;
    if ((txn = qstore_begin(w->store, 0, why)) == NULL) {
        msg_warn("%s: %s", job->queue_id, vstr_str(why));
        worker_fail_now(w, job, "4.3.0", "queue read error");
        return 0;
    }
    body =
        vstr_alloc(job->size < WORKER_BODY_PREALLOC ? (size_t)job->size + 3 : WORKER_BODY_PREALLOC);
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
        worker_fail_now(w, job, "4.3.0",
                        ret == QSTORE_NOTFOUND   ? "message content not found in the queue"
                        : ret == QSTORE_TAMPERED ? "message content fails authentication: not sent"
                                                 : "queue read error");
        return 0;
    }
    job_set_body(job, body);
    w->job = job;
    session_deliver(w->session, job);
    return 0;
}

/* worker_dispatch - act on one record from qmgr; -1 ends the connection */
static int worker_dispatch(WORKER *w, const IPC_REC *rec, VSTR *why)
{
    const char *type = ipc_rec_type(rec);

    if (strcmp(type, "deliver") == 0)
        return worker_deliver(w, rec, why);
    if (strcmp(type, "release") == 0) {
        session_release(w->session);
        return 0;
    }
    vstr_sprintf(why, "unexpected record type \"%.40s\"", type);
    return -1;
}

/* worker_qmgr_records - handle every complete record that arrived */
static void worker_qmgr_records(WORKER *w)
{
    VSTR *why = vstr_alloc(64);
    IPC_REC *rec;
    int ret;

    while (w->qmgr != NULL && (ret = ipc_chan_next(w->qmgr, &rec, why)) != 0) {
        if (ret < 0) {
            worker_qmgr_drop(w, vstr_str(why), 0);
            break;
        }
        ret = worker_dispatch(w, rec, why);
        ipc_rec_free(rec);
        if (ret < 0) {
            worker_qmgr_drop(w, vstr_str(why), 0);
            break;
        }
    }
    vstr_free(why);
}

/* worker_qmgr_event - readiness of the qmgr connection */
static void worker_qmgr_event(int fd, int events, void *ctx)
{
    WORKER *w = ctx;
    int ret;

    (void)fd;
    if ((events & EVENT_WRITE) && w->qmgr != NULL)
        worker_qmgr_flush(w);
    if ((events & EVENT_READ) && w->qmgr != NULL) {
        ret = ipc_chan_fill(w->qmgr);
        if (ret > 0) {
            worker_qmgr_records(w);
        } else {
            worker_qmgr_records(w); /* what came before the end still counts */
            worker_qmgr_drop(w, ret == 0 ? "closed by qmgr" : strerror(errno), ret == 0);
        }
    }
}

/* worker_qmgr_connect - one attempt to reach qmgr and announce ourselves */
static void worker_qmgr_connect(void *ctx)
{
    WORKER *w = ctx;
    VSTR *why;
    IPC_REC *rec;

    /* A job in flight: its result has no qmgr to go to; introduce ourselves after it. */
    if (w->qmgr != NULL || w->stopping || w->job != NULL)
        return;
    why = vstr_alloc(64);
    w->qmgr = ipc_client_open(w->qmgr_path, PROTO_QMGR, WORKER_QMGR_TIMEOUT, why);
    if (w->qmgr == NULL) {
        /* Workers often start before qmgr listens: only a long wait is a problem. */
        if (++w->qmgr_failures == 1)
            msg_info("connect to qmgr: %s; retrying every second", vstr_str(why));
        else if (w->qmgr_failures == WORKER_QMGR_PATIENCE)
            msg_warn("connect to qmgr: %s, for %d s; retrying every second", vstr_str(why),
                     WORKER_QMGR_PATIENCE * WORKER_QMGR_RETRY / 1000);
        vstr_free(why);
        event_request_timer(worker_qmgr_connect, w, WORKER_QMGR_RETRY);
        return;
    }
    vstr_free(why);
    if (w->qmgr_failures > 0)
        msg_info("connected to qmgr");
    w->qmgr_failures = 0;
    (void)non_blocking(ipc_chan_fd(w->qmgr), 1);
    rec = ipc_rec_create("worker");
    ipc_rec_add_long(rec, "pid", (long long)getpid());
    ipc_chan_send(w->qmgr, rec);
    ipc_rec_free(rec);
    worker_events_replay(w);
    event_enable_read(ipc_chan_fd(w->qmgr), worker_qmgr_event, w);
    worker_qmgr_flush(w);
    worker_qmgr_records(w);
}

/* worker_create - a worker with its session, connecting to qmgr */
WORKER *worker_create(QSTORE *store, const char *qmgr_path, RESOLVER *resolver,
                      ADDR_CACHE *addr_cache, WORKER_STOPPED_FN stopped, void *ctx)
{
    static const SESSION_HOOKS hooks = {
        .done = worker_done,
        .conn_event = worker_conn_event,
        .stopped = worker_session_stopped,
    };
    WORKER *w = mymalloc(sizeof(*w));

    memset(w, 0, sizeof(*w));
    w->store = store;
    w->qmgr_path = qmgr_path;
    w->stopped = stopped;
    w->ctx = ctx;
    w->session = session_create(&hooks, w, resolver, addr_cache);
    worker_qmgr_connect(w);
    return w;
}

/* worker_stop - stop after the job in flight */
void worker_stop(WORKER *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    event_cancel_timer(worker_qmgr_connect, w);
    if (w->job == NULL)
        session_shutdown(w->session);
}

/* worker_busy - whether a job is in flight */
int worker_busy(const WORKER *w)
{
    return w->job != NULL;
}

/* worker_reload - the configuration changed: the session follows */
void worker_reload(WORKER *w)
{
    session_reload(w->session);
}

/* worker_flush_results - at exit: hand qmgr what it is owed, until the deadline */
void worker_flush_results(WORKER *w, long long deadline)
{
    while (w->qmgr != NULL && ipc_chan_pending(w->qmgr) > 0 && now_ms() < deadline) {
        struct pollfd pfd = {.fd = ipc_chan_fd(w->qmgr), .events = POLLOUT, .revents = 0};

        if (ipc_chan_flush(w->qmgr) != 0)
            break;
        (void)poll(&pfd, 1, 100);
    }
}
