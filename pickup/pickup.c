/*
 * pickup - take mail from maildrop/ into the queue
 *
 * Usage: pickup [-v] [-c CONFIG_FILE]
 *
 * master runs pickup in the queue directory's owner's name. It serves
 * public/pickup, where the sendmail command hands over a message or sends
 * a wake-up after it drops a file; master makes that socket and passes it
 * at each start (named SOCK_PICKUP among the daemon's descriptors), so a
 * client that connects while pickup starts or restarts waits for it.
 * pickup also scans maildrop/ at start and every PICKUP_SCAN_INTERVAL ms,
 * so a lost wake-up only delays mail. public/pickup serves at most
 * PICKUP_CLIENTS_MAX connections at once and PICKUP_CLIENTS_PER_UID of
 * one user (listener.c); a connection refused at a cap makes pickup scan
 * as its wake-up would have (pickup_refused). The scan (scan.c) commits
 * the files to the queue in batches and cleanup.c normalises their
 * content.
 * After a commit that queued mail, pickup tells qmgr over private/qmgr.
 *
 * main()
 *	pickup's part of the daemon skeleton (daemon.c): open the queue,
 *	serve the sockets master passed, and run the event loop until SIGTERM.
 * pickup_connect_qmgr()
 *	(re)connect to qmgr; when qmgr is not there, pickup carries on. A
 *	new connection starts with a `wakeup` record: qmgr compares its
 *	in-memory schedule with the queue (a resync), which finds whatever
 *	was queued while the two were apart.
 * pickup_tell_qmgr()
 *	after a commit, count it (PICKUP_FIGURES: its time, its new messages
 *	by source) and send qmgr a `queued` record naming each new message
 *	and its schedule time ("message=QUEUE_ID WHEN"), without blocking.
 *	Every record to qmgr (this one, and the `wakeup` that starts a
 *	connection) carries pickup's figures whole: "received=SOURCE N" per
 *	source, "commit_time=HIST" (microseconds) and "commit_batch=HIST"
 *	(hist.c). qmgr keeps the latest for relayq stats and the metrics:
 *	pickup is never asked, and a record lost costs nothing but time.
 *	A record lost with the connection is made up for by the next
 *	connection's resync.
 *
 * Encryption at rest: with queue_encryption_key_file set, the queue opens
 * with the key ring (qstore.c), the mail pickup queues is sealed, and
 * pickup publishes the current key's maildrop public key in
 * SEAL_DROP_KEY_FILE (public/maildrop_key), for the sendmail command to
 * seal its files to; scan.c opens sealed files with the ring. Without the
 * parameter a stale public key file is removed.
 *
 * Signals: SIGTERM (and SIGINT) end the loop after the batch in flight
 * (its commit and unlinks); SIGHUP re-reads the configuration and the key
 * file and publishes the current public key, keeping the old ones when
 * the new ones have an error.
 *
 * Fatal: a bad command line, configuration or key file at start, a queue,
 * maildrop/ or public key file that cannot be opened or written. master restarts pickup; no
 * mail is lost, since files leave maildrop/ only after their commit.
 */
#include "config.h"

#include <errno.h>
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
#include "pickup.h"
#include "qdir.h"
#include "qstats.h"
#include "seal.h"
#include "sock.h"

/* pickup_qmgr_close - drop the connection to qmgr; the next scan reconnects */
static void pickup_qmgr_close(PICKUP *p)
{
    if (p->qmgr == NULL)
        return;
    event_disable_readwrite(ipc_chan_fd(p->qmgr));
    ipc_chan_free(p->qmgr);
    p->qmgr = NULL;
}

/* pickup_qmgr_write - push out a wake-up the socket did not take at once */
static void pickup_qmgr_write(int fd, int events, void *ctx)
{
    PICKUP *p = ctx;
    int ret = ipc_chan_flush(p->qmgr);

    (void)events;
    if (ret > 0) {
        event_disable_write(fd);
    } else if (ret < 0) {
        msg_warn("send to %s: %m", SOCK_QMGR);
        pickup_qmgr_close(p);
    }
}

/* pickup_qmgr_read - notice that qmgr went away; it has nothing to say to us */
static void pickup_qmgr_read(int fd, int events, void *ctx)
{
    PICKUP *p = ctx;
    VSTR *why;
    IPC_REC *rec;
    int ret;

    (void)fd;
    (void)events;
    ret = ipc_chan_fill(p->qmgr);
    if (ret <= 0) {
        if (msg_verbose)
            msg_info("%s: connection closed", SOCK_QMGR);
        pickup_qmgr_close(p);
        return;
    }
    why = vstr_alloc(100);
    while ((ret = ipc_chan_next(p->qmgr, &rec, why)) > 0) {
        msg_warn("%s: unexpected record type \"%.40s\": ignored", SOCK_QMGR, ipc_rec_type(rec));
        ipc_rec_free(rec);
    }
    if (ret < 0) {
        msg_warn("%s: %s: closing the connection", SOCK_QMGR, vstr_str(why));
        pickup_qmgr_close(p);
    }
    vstr_free(why);
}

static void pickup_qmgr_send(PICKUP *p, const IPC_REC *rec);
static void pickup_figures_add(const PICKUP_FIGURES *figures, IPC_REC *rec);

/* pickup_connect_qmgr - open the wake-up channel to qmgr when it is there */
void pickup_connect_qmgr(PICKUP *p)
{
    IPC_REC *wakeup;
    char *path;
    VSTR *why;

    if (p->qmgr != NULL)
        return;
    path = qdir_path(p->queue_directory, SOCK_QMGR);
    why = vstr_alloc(100);
    p->qmgr = ipc_client_open(path, PROTO_QMGR, PICKUP_QMGR_TIMEOUT, why);
    if (p->qmgr == NULL) {
        /* Normal while master starts qmgr, or restarts it: not worth a warning. */
        if (msg_verbose)
            msg_info("qmgr not reachable: %s", vstr_str(why));
    } else {
        if (non_blocking(ipc_chan_fd(p->qmgr), 1) < 0)
            msg_fatal("set non-blocking mode: %m");
        event_enable_read(ipc_chan_fd(p->qmgr), pickup_qmgr_read, p);
        if (msg_verbose)
            msg_info("connected to %s", path);
        /* What was queued while we were apart, qmgr finds by a resync. */
        wakeup = ipc_rec_create("wakeup");
        pickup_figures_add(&p->figures, wakeup);
        pickup_qmgr_send(p, wakeup);
        ipc_rec_free(wakeup);
    }
    vstr_free(why);
    myfree(path);
}

/* Source names, in PICKUP_SOURCE_* order: the labels of the metrics. */
static const char *const pickup_sources[PICKUP_SOURCES] = {"maildrop", "sendmail", "smtp"};

/* pickup_figures_add - pickup's figures, whole, to a record for qmgr */
static void pickup_figures_add(const PICKUP_FIGURES *figures, IPC_REC *rec)
{
    VSTR *text = vstr_alloc(200);

    for (int i = 0; i < PICKUP_SOURCES; i++)
        ipc_rec_addf(rec, "received", "%s %lld", pickup_sources[i], figures->received[i]);
    hist_encode(&figures->commit_time, text);
    ipc_rec_add(rec, "commit_time", vstr_str(text));
    vstr_reset(text);
    hist_encode(&figures->commit_batch, text);
    ipc_rec_add(rec, "commit_batch", vstr_str(text));
    vstr_free(text);
}

/* pickup_qmgr_send - queue a record to qmgr and write what the socket takes */
static void pickup_qmgr_send(PICKUP *p, const IPC_REC *rec)
{
    int ret;

    ipc_chan_send(p->qmgr, rec);
    ret = ipc_chan_flush(p->qmgr);
    if (ret == 0) {
        event_enable_write(ipc_chan_fd(p->qmgr), pickup_qmgr_write, p);
    } else if (ret < 0) {
        if (msg_verbose)
            msg_info("send to %s: %m", SOCK_QMGR);
        pickup_qmgr_close(p);
    }
}

/* pickup_tell_qmgr - tell qmgr which messages a commit queued */
void pickup_tell_qmgr(PICKUP *p, const PICKUP_FILE *files, size_t nfiles, long long commit_us)
{
    IPC_REC *rec;
    int queued = 0;

    for (size_t i = 0; i < nfiles; i++)
        if (!files[i].already) {
            p->figures.received[files[i].source]++;
            queued++;
        }
    hist_observe(&p->figures.commit_time, commit_us);
    hist_observe(&p->figures.commit_batch, queued);
    pickup_connect_qmgr(p);
    if (p->qmgr == NULL)
        return;
    rec = ipc_rec_create("queued");
    for (size_t i = 0; i < nfiles; i++)
        if (!files[i].already)
            ipc_rec_addf(rec, "message", "%s %lld", files[i].qid, files[i].due);
    pickup_figures_add(&p->figures, rec);
    pickup_qmgr_send(p, rec);
    ipc_rec_free(rec);
}

/* pickup_client_close - end a public/pickup connection */
static void pickup_client_close(PICKUP_CLIENT *client);
static void pickup_client_buffered(void *ctx);
static void pickup_client_read(int fd, int events, void *ctx);

/* pickup_client_timeout - a client that says nothing for too long */
static void pickup_client_timeout(void *ctx)
{
    pickup_client_close(ctx);
}

/* pickup_client_free - a connection's memory, once no verdict is to come */
static void pickup_client_free(PICKUP_CLIENT *client)
{
    if (client->message != NULL)
        vstr_free(client->message);
    myfree(client);
}

/* pickup_client_close - end a public/pickup connection */
static void pickup_client_close(PICKUP_CLIENT *client)
{
    event_disable_readwrite(ipc_chan_fd(client->chan));
    event_cancel_timer(pickup_client_timeout, client);
    event_cancel_timer(pickup_client_buffered, client);
    ipc_chan_free(client->chan);
    client->chan = NULL;
    listener_closed(client->pickup->listener, client->uid);
    /* A message kept for the next commit is queued all the same; its verdict frees the rest. */
    if (client->waiting)
        client->gone = 1;
    else
        pickup_client_free(client);
}

/* pickup_client_write - send the rest of what is queued */
static void pickup_client_write(int fd, int events, void *ctx)
{
    PICKUP_CLIENT *client = ctx;
    int ret = ipc_chan_flush(client->chan);

    (void)events;
    if (ret > 0)
        event_disable_write(fd);
    else if (ret < 0)
        pickup_client_close(client);
}

/* pickup_client_reply - send a record without blocking; -1 when the client is gone */
static int pickup_client_reply(PICKUP_CLIENT *client, IPC_REC *rec)
{
    int ret;

    ipc_chan_send(client->chan, rec);
    ipc_rec_free(rec);
    if ((ret = ipc_chan_flush(client->chan)) < 0)
        return -1;
    if (ret == 0)
        event_enable_write(ipc_chan_fd(client->chan), pickup_client_write, client);
    return 0;
}

/* pickup_client_tell - a message's verdict to its sender; -1 when the client is gone */
static int pickup_client_tell(PICKUP_CLIENT *client, SMTPD_RESULT result, const char *text)
{
    IPC_REC *rec;

    if (result == SMTPD_QUEUED) {
        rec = ipc_rec_create("queued");
        ipc_rec_add(rec, "queue_id", text);
    } else {
        rec = ipc_rec_create("refused");
        ipc_rec_add(rec, "status",
                    result == SMTPD_NOSPACE    ? "nospace"
                    : result == SMTPD_REJECTED ? "rejected"
                                               : "tempfail");
        ipc_rec_add(rec, "reason", text);
    }
    return pickup_client_reply(client, rec);
}

/* pickup_client_verdict - the commit that held a client's message is over: tell it */
static void pickup_client_verdict(void *ctx, SMTPD_RESULT result, const char *text)
{
    PICKUP_CLIENT *client = ctx;

    client->waiting = 0;
    if (client->gone) {
        pickup_client_free(client);
        return;
    }
    if (pickup_client_tell(client, result, text) < 0) {
        pickup_client_close(client);
        return;
    }
    /* Records that came behind the message: after the commit, not inside it. */
    event_enable_read(ipc_chan_fd(client->chan), pickup_client_read, client);
    if (ipc_chan_buffered(client->chan) > 0)
        event_request_timer(pickup_client_buffered, client, 0);
}

/* pickup_client_message - a "submit" record's bytes are all here: into the group commit; 0:
 * its verdict comes after the commit, 1: refused now (told), -1: the client is gone */
static int pickup_client_message(PICKUP_CLIENT *client, VSTR *why)
{
    SMTPD_RESULT result;
    const char *data = vstr_str(client->message);
    size_t len = vstr_len(client->message);

    result = submit_local(client->pickup->submit, data, len, (uid_t)client->uid,
                          pickup_client_verdict, client, why);
    vstr_free(client->message);
    client->message = NULL;
    if (result == SMTPD_PENDING) {
        client->waiting = 1;
        event_disable_read(ipc_chan_fd(client->chan));
        return 0;
    }
    if (pickup_client_tell(client, result, vstr_str(why)) < 0) {
        vstr_sprintf(why, "cannot send a reply");
        return -1;
    }
    return 1;
}

/* pickup_client_records - take wake-ups and messages until a verdict must be waited for; -1:
 * a malformed stream, with why */
static int pickup_client_records(PICKUP_CLIENT *client, VSTR *why)
{
    PICKUP *p = client->pickup;
    IPC_REC *rec;
    long long size;
    int ret;

    while (!client->waiting && client->chan != NULL) {
        if (client->message != NULL) {
            client->missing -= ipc_chan_take_raw(client->chan, client->message, client->missing);
            if (client->missing > 0)
                return 0;
            if ((ret = pickup_client_message(client, why)) <= 0)
                return ret;
            continue;
        }
        if ((ret = ipc_chan_next(client->chan, &rec, why)) <= 0)
            return ret;
        if (strcmp(ipc_rec_type(rec), "wakeup") == 0 && ipc_rec_check(rec, "", "", why) == 0) {
            p->wakeup = 1;
            /* While the queue is full the retry timer decides; a wake-up would only re-read files.
             */
            if (!p->full)
                scan_request(p, 0);
        } else if (strcmp(ipc_rec_type(rec), "submit") == 0 &&
                   ipc_rec_check(rec, "size", "", why) == 0 &&
                   ipc_rec_get_long(rec, "size", 1, PICKUP_SUBMIT_MAX, &size, why) == 0) {
            client->message = vstr_alloc((size_t)size);
            client->missing = (size_t)size;
        } else {
            if (vstr_len(why) == 0)
                vstr_sprintf(why, "unexpected record type \"%.40s\"", ipc_rec_type(rec));
            ipc_rec_free(rec);
            return -1;
        }
        ipc_rec_free(rec);
    }
    return 0;
}

/* pickup_client_take - what the client sent so far, up to a verdict to wait for */
static void pickup_client_take(PICKUP_CLIENT *client)
{
    VSTR *why = vstr_alloc(100);

    if (pickup_client_records(client, why) < 0) {
        msg_warn("%s: %s: closing the connection", SOCK_PICKUP, vstr_str(why));
        pickup_client_close(client);
    }
    vstr_free(why);
}

/* pickup_client_buffered - records that waited behind a message's verdict */
static void pickup_client_buffered(void *ctx)
{
    pickup_client_take(ctx);
}

/* pickup_client_read - take wake-ups and messages from a sendmail command */
static void pickup_client_read(int fd, int events, void *ctx)
{
    PICKUP_CLIENT *client = ctx;

    (void)fd;
    (void)events;
    if (ipc_chan_fill(client->chan) <= 0) {
        pickup_client_close(client);
        return;
    }
    event_request_timer(pickup_client_timeout, client, PICKUP_CLIENT_TIMEOUT);
    pickup_client_take(client);
}

/* pickup_accept - greet a new public/pickup client */
static void pickup_accept(LISTENER *listener, int fd, long uid, void *ctx)
{
    PICKUP_CLIENT *client = mycalloc(1, sizeof(*client));
    IPC_REC *hello;
    int ret;

    (void)listener;
    client->pickup = ctx;
    client->chan = ipc_chan_create(fd);
    client->uid = uid;
    hello = ipc_rec_create("hello");
    ipc_rec_add(hello, "protocol", PROTO_PICKUP);
    ipc_chan_send(client->chan, hello);
    ipc_rec_free(hello);
    if ((ret = ipc_chan_flush(client->chan)) < 0) {
        pickup_client_close(client);
        return;
    }
    if (ret == 0)
        event_enable_write(fd, pickup_client_write, client);
    event_enable_read(fd, pickup_client_read, client);
    event_request_timer(pickup_client_timeout, client, PICKUP_CLIENT_TIMEOUT);
}

/* pickup_refused - a connection refused at a cap was most likely a wake-up */
static void pickup_refused(LISTENER *listener, long uid, void *ctx)
{
    PICKUP *p = ctx;

    (void)listener;
    (void)uid;
    /* The scan runs anyway; a refused wake-up only delays mail. */
    scan_request(p, p->full ? PICKUP_FULL_RETRY : 0);
}

/* pickup_publish_key - give the sendmail command the public key to seal maildrop files to */
static int pickup_publish_key(PICKUP *p, VSTR *why)
{
    const SEAL_RING *ring = qstore_keyring(p->store);
    char *path = qdir_path(p->queue_directory, SEAL_DROP_KEY_FILE);
    int ret = 0;

    if (ring != NULL) {
        ret = seal_drop_publish(ring, path, why);
    } else if (unlink(path) < 0 && errno != ENOENT) {
        /* In the clear, a key left behind would only mislead. */
        vstr_sprintf(why, "remove %s: %s", path, strerror(errno));
        ret = -1;
    }
    myfree(path);
    return ret;
}

/* pickup_stop - SIGTERM: stop after the batch in flight */
static void pickup_stop(DAEMON *daemon, int sig)
{
    PICKUP *p = daemon_context(daemon);

    if (msg_verbose)
        msg_info("signal %d: stopping", sig);
    p->stopping = 1;
}

/* pickup_reload - the configuration changed: the key file may have too */
static void pickup_reload(DAEMON *daemon)
{
    PICKUP *p = daemon_context(daemon);
    VSTR *why = vstr_alloc(100);

    if (strcmp(var_str(queue_directory), p->queue_directory) != 0)
        msg_warn("queue_directory changed to %s: takes effect after a restart; still using %s",
                 var_str(queue_directory), p->queue_directory);
    if (qstore_reload_keys(p->store, why) < 0)
        msg_warn("queue_encryption_key_file: %s; keeping the old keys", vstr_str(why));
    else if (pickup_publish_key(p, why) < 0)
        msg_warn("%s", vstr_str(why));
    submit_reload(p->submit);
    vstr_free(why);
}

/* pickup_after_pass - the messages SMTP clients and sendmail handed over in this pass: one
 * commit */
static void pickup_after_pass(void *ctx)
{
    PICKUP *p = ctx;

    submit_pass_done(p->submit);
}

/* pickup_init - open the queue and public/pickup, look at maildrop/ */
static void pickup_init(DAEMON *daemon)
{
    static const LISTENER_LIMITS limits = {PICKUP_CLIENTS_MAX, PICKUP_CLIENTS_PER_UID};
    PICKUP *p = daemon_context(daemon);
    VSTR *why = vstr_alloc(100);
    char *path;
    int fd, i;

    p->queue_directory = mystrdup(var_str(queue_directory));
    if (chdir(p->queue_directory) < 0)
        msg_fatal("chdir %s: %m", p->queue_directory);
    p->maildrop_dir = qdir_path(p->queue_directory, QDIR_MAILDROP);
    p->corrupt_dir = qdir_path(p->queue_directory, QDIR_CORRUPT);
    p->batch_max = PICKUP_BATCH_FILES;

    path = qdir_path(p->queue_directory, QDIR_DB);
    hist_init(&p->figures.commit_time, qstats_commit_us_bounds, qstats_commit_us_nbounds);
    hist_init(&p->figures.commit_batch, qstats_batch_bounds, qstats_batch_nbounds);
    if ((p->store = qstore_open(path, (size_t)var_int(queue_map_size), 0, why)) == NULL)
        msg_fatal("%s", vstr_str(why));
    myfree(path);
    if (pickup_publish_key(p, why) < 0)
        msg_fatal("%s", vstr_str(why));

    /* master made public/pickup before anyone could be told relayq runs. */
    for (fd = -1, i = 0; fd < 0 && i < daemon_listen_fds(daemon); i++)
        if (strcmp(daemon_listen_fd_name(daemon, i), SOCK_PICKUP) == 0)
            fd = 3 + i;
    if (fd < 0)
        msg_fatal("master passed no %s socket: pickup runs under master", SOCK_PICKUP);
    p->listener = listener_create(fd, SOCK_PICKUP, &limits, pickup_accept, p);
    listener_on_refuse(p->listener, pickup_refused);

    /* The group commit of SMTP clients and of messages sendmail hands over whole. */
    p->submit = submit_create(p, daemon);
    event_after_pass(pickup_after_pass, p);
    scan_picked_cleanup(p);
    pickup_connect_qmgr(p);
    scan_request(p, 0);
    vstr_free(why);
    if (msg_verbose)
        msg_info("started: queue %s", p->queue_directory);
}

/* pickup_done - may the process end: after SIGTERM, once the loop is back */
static int pickup_done(DAEMON *daemon)
{
    PICKUP *p = daemon_context(daemon);

    return p->stopping;
}

/* pickup_finish - the batch in flight is committed and unlinked; tidy the picked entries */
static void pickup_finish(DAEMON *daemon)
{
    PICKUP *p = daemon_context(daemon);

    scan_flush_gone(p);
    submit_free(p->submit);
    pickup_qmgr_close(p);
    qstore_close(p->store);
    if (msg_verbose)
        msg_info("stopped");
}

/* main - the pickup daemon */
int main(int argc, char **argv)
{
    /* The parameters pickup reads (its own sources; t_param_lists checks). */
    static const int params[] = {
        PARAM_ID(header_size_limit),
        PARAM_ID(message_size_limit),
        PARAM_ID(myhostname),
        PARAM_ID(myorigin),
        PARAM_ID(queue_directory),
        PARAM_ID(queue_map_size),
        PARAM_ID(mynetworks),
        PARAM_ID(smtpd_listen),
        PARAM_ID(smtpd_connection_limit),
        PARAM_ID(smtpd_client_connection_count_limit),
        PARAM_ID(smtpd_recipient_limit),
        PARAM_ID(smtpd_timeout),
        PARAM_ID(smtpd_hard_error_limit),
        PARAM_ID(smtpd_tls_listen),
        PARAM_ID(smtpd_tls_cert_file),
        PARAM_ID(smtpd_tls_key_file),
        PARAM_ID(smtpd_sasl_password_file),
        -1,
    };
    static const DAEMON_SPEC spec = {
        .name = "pickup",
        .params = params,
        .init = pickup_init,
        .reload = pickup_reload,
        .stop = pickup_stop,
        .done = pickup_done,
        .finish = pickup_finish,
        .pass_ms = -1,
    };
    static PICKUP pickup;

    return daemon_main(argc, argv, &spec, &pickup);
}
