/*
 * submit - the SMTP listener: mail from SMTP clients into the queue, 250 only after the commit
 *
 * submit_create()
 *	serve the listening TCP sockets master opened for smtpd_listen (as
 *	root, so that port 25 works; passed as descriptors first_fd on,
 *	daemon.c) through one listener (listener.c) capped at
 *	smtpd_client_connection_count_limit connections. Each connection is
 *	an ESMTP session (smtpd_proto.c) in pickup's event loop. A client
 *	outside mynetworks may connect but every recipient it gives is
 *	refused (554 5.7.1 Relay access denied): relayq only relays.
 * submit_commit()
 *	the group commit: every message the sessions handed over since the
 *	last commit is in one write transaction; this commits it (pickup
 *	calls it after every pass of the event loop, and before a maildrop
 *	batch, which needs the queue's one writer), then gives each waiting
 *	session its verdict: 250 with the queue id once committed, 451 or
 *	452 when the commit failed. No client sees 250 for a message that is
 *	not durable, and a message whose session ended before its verdict
 *	is queued all the same (the client may send it again: at least
 *	once, never lost).
 * submit_reload()
 *	take the new mynetworks and limits for the sessions to come.
 * submit_free()
 *	commit what waits, end every session, close the sockets.
 *
 * A session's bounds: smtpd_proto's (a line of SMTPD_LINE_MAX bytes,
 * message_size_limit, smtpd_recipient_limit recipients per transaction,
 * smtpd_hard_error_limit errors), smtpd_timeout without a complete read
 * or write, and SUBMIT_OUTPUT_MAX bytes of replies the client has not
 * read: past that the session stops reading until it has. A session
 * waiting for its verdict reads nothing either.
 *
 * Logging as Postfix's smtpd: "connect from unknown[ADDR]", "QID:
 * client=unknown[ADDR]" once the message is committed, the cleanup lines,
 * "disconnect from unknown[ADDR] ehlo=1 mail=1 ... commands=N".
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "listener.h"
#include "msg.h"
#include "mymalloc.h"
#include "netaddr.h"
#include "params.h"
#include "pickup.h"
#include "smtpd_proto.h"
#include "sock.h"

#define SUBMIT_READ_SIZE 16384         /* bytes read from a client at once */
#define SUBMIT_OUTPUT_MAX (256 * 1024) /* unread replies before the session stops reading */
#define SUBMIT_CLIENT_MAX 80           /* "unknown[ADDRESS]" */

typedef struct SUBMIT_SESSION SUBMIT_SESSION;

/* A message in the open transaction, waiting for the commit. */
typedef struct SUBMIT_WAIT {
    SUBMIT_SESSION *session;
    PICKUP_FILE file; /* its queue id, schedule time and cleanup report */
} SUBMIT_WAIT;

struct SUBMIT {
    PICKUP *pickup;
    LISTENER **listeners;
    int nlisteners;
    NETMASK_LIST *mynetworks;
    QSTORE_TXN *txn; /* the messages handed over since the last commit, or NULL */
    SUBMIT_WAIT *waits;
    size_t nwaits;
    size_t waits_cap;
    VSTR *body; /* cleanup's output, reused */
};

struct SUBMIT_SESSION {
    SUBMIT *submit;
    LISTENER *listener;
    long uid; /* as the listener counted the connection */
    int fd;
    SMTPD_PROTO *sp;
    VSTR *out; /* replies not yet written */
    char client_addr[INET6_ADDRSTRLEN];
    char client[SUBMIT_CLIENT_MAX];
    int reading; /* read events enabled */
    int writing; /* write events enabled */
    int ending;  /* the protocol is over: close once the replies are out */
    int waiting; /* a message of this session is in the open transaction */
    int gone;    /* the connection is closed; freed after the commit */
};

static void submit_session_end(SUBMIT_SESSION *ss);

/* submit_timeout - the client did nothing for smtpd_timeout */
static void submit_timeout(void *ctx)
{
    SUBMIT_SESSION *ss = ctx;

    smtpd_proto_timeout(ss->sp);
    submit_session_end(ss);
}

/* submit_touch - the session moved: its idle timer starts again */
static void submit_touch(SUBMIT_SESSION *ss)
{
    event_request_timer(submit_timeout, ss, var_int(smtpd_timeout) * 1000LL);
}

/* submit_flush - write what the client will take; -1 when it is gone */
static int submit_flush(SUBMIT_SESSION *ss)
{
    while (vstr_len(ss->out) > 0) {
        ssize_t n = write(ss->fd, vstr_str(ss->out), vstr_len(ss->out));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        vstr_consume(ss->out, (size_t)n);
    }
    return 0;
}

static void submit_read(int fd, int events, void *ctx);
static void submit_write(int fd, int events, void *ctx);

/* submit_events - read and write events as the session's state wants them */
static void submit_events(SUBMIT_SESSION *ss)
{
    int want_read = !ss->ending && !ss->waiting && vstr_len(ss->out) < SUBMIT_OUTPUT_MAX;
    int want_write = vstr_len(ss->out) > 0;

    if (want_read && !ss->reading)
        event_enable_read(ss->fd, submit_read, ss);
    else if (!want_read && ss->reading)
        event_disable_read(ss->fd);
    if (want_write && !ss->writing)
        event_enable_write(ss->fd, submit_write, ss);
    else if (!want_write && ss->writing)
        event_disable_write(ss->fd);
    ss->reading = want_read;
    ss->writing = want_write;
}

/* submit_after - after the protocol ran: end, or wait for the next event */
static void submit_after(SUBMIT_SESSION *ss, int state)
{
    if (state == SMTPD_DONE)
        ss->ending = 1;
    if (ss->ending && (vstr_len(ss->out) == 0 || submit_flush(ss) < 0 || vstr_len(ss->out) == 0)) {
        submit_session_end(ss);
        return;
    }
    submit_events(ss);
}

/* submit_write - the client takes more of the replies */
static void submit_write(int fd, int events, void *ctx)
{
    SUBMIT_SESSION *ss = ctx;

    (void)fd;
    (void)events;
    if (submit_flush(ss) < 0) {
        smtpd_proto_eof(ss->sp);
        submit_session_end(ss);
        return;
    }
    submit_touch(ss);
    submit_after(ss, ss->ending ? SMTPD_DONE : SMTPD_MORE);
}

/* submit_read - the client sent something, or closed */
static void submit_read(int fd, int events, void *ctx)
{
    SUBMIT_SESSION *ss = ctx;
    char buf[SUBMIT_READ_SIZE];
    ssize_t n;

    (void)events;
    n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        smtpd_proto_eof(ss->sp);
        submit_session_end(ss);
        return;
    }
    submit_touch(ss);
    submit_after(ss, smtpd_proto_input(ss->sp, buf, (size_t)n));
}

/* submit_proto_write - smtpd_proto's replies: out now, or kept for the write event */
static int submit_proto_write(void *ctx, const char *data, size_t len)
{
    SUBMIT_SESSION *ss = ctx;

    vstr_append(ss->out, data, len);
    return submit_flush(ss);
}

/* submit_proto_message - a complete message: into the open transaction; the verdict after its
 * commit */
static SMTPD_RESULT submit_proto_message(void *ctx, const SMTPD_MSG *msg, VSTR *text)
{
    SUBMIT_SESSION *ss = ctx;
    SUBMIT *s = ss->submit;
    MAILDROP_ENV env;
    CLEANUP_INFO client;
    SUBMIT_WAIT *w;
    int rc;

    if (s->txn == NULL && (s->txn = qstore_begin(s->pickup->store, 1, text)) == NULL) {
        msg_warn("%s: cannot queue a message: %s", ss->client, vstr_str(text));
        return SMTPD_TEMPFAIL;
    }
    if ((rc = qstore_room(s->txn, msg->content_len, text)) != QSTORE_OK)
        return rc == QSTORE_FULL ? SMTPD_NOSPACE : SMTPD_TEMPFAIL;
    if (s->nwaits == s->waits_cap) {
        s->waits_cap = s->waits_cap ? s->waits_cap * 2 : 16;
        s->waits = myrealloc(s->waits, sizeof(*s->waits) * s->waits_cap);
    }
    w = s->waits + s->nwaits;
    memset(w, 0, sizeof(*w));
    maildrop_env_init(&env);
    env.sender = mystrdup(msg->sender);
    env.ret = mystrdup(msg->ret);
    env.envid = mystrdup(msg->envid);
    for (size_t i = 0; i < msg->nrcpt; i++)
        maildrop_env_add_rcpt_dsn(&env, msg->rcpts[i].addr, msg->rcpts[i].notify,
                                  msg->rcpts[i].orcpt);
    memset(&client, 0, sizeof(client));
    client.helo = msg->helo;
    client.client_addr = ss->client_addr;
    rc = scan_queue(s->txn, &env, msg->content, msg->content_len, &client, &w->file, s->body, text);
    w->file.sender = mystrdup(msg->sender);
    maildrop_env_free(&env);
    if (rc < 0) {
        myfree(w->file.sender);
        return SMTPD_REJECTED;
    }
    if (qstore_txn_error(s->txn) != QSTORE_OK) {
        /* The transaction is lost for every message in it: the commit says so to each. */
        vstr_strcpy(text, qstore_txn_reason(s->txn));
        myfree(w->file.sender);
        return qstore_txn_error(s->txn) == QSTORE_FULL ? SMTPD_NOSPACE : SMTPD_TEMPFAIL;
    }
    w->session = ss;
    s->nwaits++;
    ss->waiting = 1;
    return SMTPD_PENDING;
}

static const SMTPD_OPS submit_proto_ops = {submit_proto_write, submit_proto_message};

/* submit_session_free - release a session's memory; its connection is closed */
static void submit_session_free(SUBMIT_SESSION *ss)
{
    smtpd_proto_free(ss->sp);
    vstr_free(ss->out);
    myfree(ss);
}

/* submit_session_end - close the connection; the memory goes once no commit waits for it */
static void submit_session_end(SUBMIT_SESSION *ss)
{
    if (ss->gone)
        return;
    ss->gone = 1;
    event_cancel_timer(submit_timeout, ss);
    event_disable_readwrite(ss->fd);
    close(ss->fd);
    listener_closed(ss->listener, ss->uid);
    if (!ss->waiting)
        submit_session_free(ss);
}

/* submit_accept - a new client */
static void submit_accept(LISTENER *listener, int fd, long uid, void *ctx)
{
    SUBMIT *s = ctx;
    SUBMIT_SESSION *ss = mycalloc(1, sizeof(*ss));
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    SMTPD_LIMITS limits;

    ss->uid = uid;
    ss->submit = s;
    ss->listener = listener;
    ss->fd = fd;
    ss->out = vstr_alloc(512);
    if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0)
        sock_addr_text((struct sockaddr *)&peer, ss->client_addr, sizeof(ss->client_addr));
    else
        strcpy(ss->client_addr, "unknown");
    snprintf(ss->client, sizeof(ss->client), "unknown[%s]", ss->client_addr);
    memset(&limits, 0, sizeof(limits));
    limits.hostname = var_str(myhostname);
    limits.client = ss->client;
    limits.qualify = NULL; /* a client gives whole addresses */
    limits.size_limit = var_int(message_size_limit);
    limits.rcpt_limit = (size_t)var_int(smtpd_recipient_limit);
    limits.error_limit = (int)var_int(smtpd_hard_error_limit);
    limits.relay_denied = !netmask_list_match(s->mynetworks, (struct sockaddr *)&peer);
    ss->sp = smtpd_proto_create(&limits, &submit_proto_ops, ss);
    submit_touch(ss);
    submit_after(ss, smtpd_proto_start(ss->sp));
}

/* submit_load_networks - mynetworks as the configuration says now */
static void submit_load_networks(SUBMIT *s)
{
    VSTR *why = vstr_alloc(100);
    NETMASK_LIST *nl = netmask_list_parse(var_str(mynetworks), why);

    /* The configuration was checked: this only fails for a bug. */
    if (nl == NULL)
        msg_panic("mynetworks: %s", vstr_str(why));
    netmask_list_free(s->mynetworks);
    s->mynetworks = nl;
    vstr_free(why);
}

/* submit_create - serve count listening sockets from first_fd on */
SUBMIT *submit_create(PICKUP *p, int first_fd, int count)
{
    SUBMIT *s = mycalloc(1, sizeof(*s));
    LISTENER_LIMITS limits = {(int)var_int(smtpd_client_connection_count_limit), 0};

    s->pickup = p;
    s->body = vstr_alloc(4096);
    submit_load_networks(s);
    s->listeners = mycalloc((size_t)count, sizeof(*s->listeners));
    for (int i = 0; i < count; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char addr[INET6_ADDRSTRLEN];
        int fd = first_fd + i, listening = 0;
        socklen_t optlen = sizeof(listening);

        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) < 0 || !listening ||
            getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            msg_fatal("descriptor %d from master is not a listening socket", fd);
        sock_addr_text((struct sockaddr *)&ss, addr, sizeof(addr));
        if (msg_verbose)
            msg_info("SMTP listener on %s port %u", addr,
                     ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port));
        s->listeners[s->nlisteners++] =
            listener_create(fd, "smtpd_listen", &limits, submit_accept, s);
    }
    return s;
}

/* submit_reload - mynetworks and the limits of the sessions to come */
void submit_reload(SUBMIT *s)
{
    if (s != NULL)
        submit_load_networks(s);
}

/* submit_free - commit what waits, end every session, close the sockets */
void submit_free(SUBMIT *s)
{
    if (s == NULL)
        return;
    submit_commit(s);
    for (int i = 0; i < s->nlisteners; i++)
        listener_free(s->listeners[i]);
    myfree(s->listeners);
    netmask_list_free(s->mynetworks);
    vstr_free(s->body);
    myfree(s->waits);
    myfree(s);
}

/* submit_commit - commit the messages handed over, then give each its verdict */
void submit_commit(SUBMIT *s)
{
    VSTR *why;
    SMTPD_RESULT result;
    PICKUP_FILE *files; /* the committed messages, for qmgr */
    int rc;
    size_t committed = 0;

    if (s == NULL || s->txn == NULL)
        return;
    why = vstr_alloc(100);
    files = mycalloc(s->nwaits, sizeof(*files));
    rc = qstore_commit(s->txn, why);
    s->txn = NULL;
    result = rc == QSTORE_OK ? SMTPD_QUEUED : rc == QSTORE_FULL ? SMTPD_NOSPACE : SMTPD_TEMPFAIL;
    if (rc != QSTORE_OK)
        msg_warn("cannot queue %zu message%s of SMTP clients: %s", s->nwaits,
                 s->nwaits == 1 ? "" : "s", vstr_str(why));
    for (size_t i = 0; i < s->nwaits; i++) {
        SUBMIT_WAIT *w = s->waits + i;
        SUBMIT_SESSION *ss = w->session;
        VSTR *text = vstr_alloc(32);

        if (rc == QSTORE_OK) {
            msg_info("%s: client=%s", w->file.qid, ss->client);
            cleanup_log(w->file.qid, ss->client, (size_t)var_int(header_size_limit),
                        &w->file.cleanup);
            vstr_sprintf(text, "as %s", w->file.qid);
            files[committed++] = w->file;
        } else {
            vstr_strcpy(text, vstr_str(why));
            myfree(w->file.sender);
        }
        ss->waiting = 0;
        if (ss->gone)
            submit_session_free(ss);
        else
            submit_after(ss, smtpd_proto_resume(ss->sp, result, vstr_str(text)));
        vstr_free(text);
    }
    if (committed > 0)
        pickup_tell_qmgr(s->pickup, files, committed);
    for (size_t i = 0; i < committed; i++)
        myfree(files[i].sender);
    myfree(files);
    s->nwaits = 0;
    vstr_free(why);
}
