/*
 * submit - the SMTP listener: mail from SMTP clients into the queue, 250 only after the commit
 *
 * submit_create()
 *	serve the listening TCP sockets master opened for smtpd_listen (as
 *	root, so that port 25 works; passed as descriptors first_fd on,
 *	daemon.c) through one listener (listener.c) capped at
 *	smtpd_connection_limit connections, smtpd_client_connection_count_limit
 *	of one client address. Each connection is
 *	an ESMTP session (smtpd_proto.c) in pickup's event loop. A client
 *	outside mynetworks may connect but every recipient it gives is
 *	refused (554 5.7.1 Relay access denied): relayq only relays.
 * submit_pass_done()
 *	after every pass of the event loop: commit at once when every SMTP
 *	session waits for its verdict, else after SUBMIT_GATHER_MS, so that
 *	one fsync serves the messages of many sessions.
 * submit_commit()
 *	the group commit: the messages the sessions handed over since the
 *	last commit wait in memory (a copy each, the sessions' own buffers
 *	being theirs); this writes them all in one write transaction and
 *	commits it (through submit_pass_done(), and before a maildrop
 *	batch), then gives each waiting session its verdict: 250 with the
 *	queue id once committed, 451 or 452 when the commit failed, the
 *	message's own refusal (554, a full map) when it could not be
 *	written. The transaction begins only at the commit, so the queue's
 *	write lock, which qmgr's commits need too, is never held while
 *	sessions gather. No client sees 250 for a message that is
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
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "event.h"
#include "iostuff.h"
#include "listener.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "netaddr.h"
#include "params.h"
#include "pickup.h"
#include "smtpd_proto.h"
#include "sock.h"
#include "smtpd_passwd.h"

#define SUBMIT_READ_SIZE 16384         /* bytes read from a client at once */
#define SUBMIT_OUTPUT_MAX (256 * 1024) /* unread replies before the session stops reading */
#define SUBMIT_CLIENT_MAX 80           /* "unknown[ADDRESS]" */
#define SUBMIT_GATHER_MS 1             /* the longest a commit waits for more messages */

typedef struct SUBMIT_SESSION SUBMIT_SESSION;

/* A message handed over, waiting for the next commit; it owns its copies. */
typedef struct SUBMIT_WAIT {
    SUBMIT_SESSION *session; /* an SMTP session, or NULL: a local submission, told by done() */
    SUBMIT_DONE_FN done;
    void *ctx;
    MAILDROP_ENV env;
    char *content;
    size_t content_len;
    char *helo, *client_addr, *protocol, *tls; /* the SMTP client, for Received: */
    PICKUP_FILE file;     /* its queue id, schedule time and cleanup report, once written */
    SMTPD_RESULT refused; /* SMTPD_PENDING: written; otherwise its verdict (reason) */
    char *reason;
    char *auth; /* ", sasl_method=PLAIN, sasl_username=USER" for the log, or NULL */
} SUBMIT_WAIT;

struct SUBMIT {
    PICKUP *pickup;
    LISTENER **listeners;
    int *implicit_tls; /* per listener: smtpd_tls_listen's, TLS from the first byte */
    int nlisteners;
    NETMASK_LIST *mynetworks;
    SMTPD_TLS *tls;       /* the certificate and key, or NULL: no TLS */
    SMTPD_PASSWD *passwd; /* smtpd_sasl_password_file, or NULL: no AUTH */
    SUBMIT_WAIT *waits;   /* the messages handed over since the last commit */
    size_t nwaits;
    int sessions;         /* SMTP sessions open */
    int sessions_waiting; /* ... of which have a message waiting for the commit */
    int gathering;        /* the commit waits SUBMIT_GATHER_MS for more sessions' messages */
    size_t waits_cap;
    VSTR *body; /* cleanup's output, reused */
};

struct SUBMIT_SESSION {
    SUBMIT *submit;
    LISTENER *listener;
    long uid; /* as the listener counted the connection */
    int fd;
    SMTPD_PROTO *sp;
    SMTPD_TLS_SESS *tls; /* NULL until STARTTLS (or the start, for implicit TLS) */
    char *tls_text;      /* "TLSv1.3 with cipher ...", once the handshake is done */
    VSTR *out;           /* replies not yet written */
    char client_addr[INET6_ADDRSTRLEN];
    char client[SUBMIT_CLIENT_MAX];
    int reading;     /* read events enabled */
    int writing;     /* write events enabled */
    int ending;      /* the protocol is over: close once the replies are out */
    int waiting;     /* a message of this session waits for the commit */
    int gone;        /* the connection is closed; freed after the commit */
    int starttls;    /* answered STARTTLS: the handshake starts once the 220 is out */
    int handshaking; /* the TLS handshake runs: no SMTP until it is done */
    int implicit;    /* TLS from the start: greet after the handshake */
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
        ssize_t n = ss->tls != NULL && !ss->handshaking
                        ? smtpd_tls_write(ss->tls, vstr_str(ss->out), vstr_len(ss->out))
                        : write(ss->fd, vstr_str(ss->out), vstr_len(ss->out));

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

static void submit_pending(void *ctx);

/* submit_events - read and write events as the session's state wants them */
static void submit_events(SUBMIT_SESSION *ss)
{
    int want_read =
        !ss->ending && !ss->waiting && !ss->starttls && vstr_len(ss->out) < SUBMIT_OUTPUT_MAX;
    int want_write = vstr_len(ss->out) > 0;

    if (ss->handshaking) {
        want_write = smtpd_tls_want_write(ss->tls);
        want_read = !want_write;
    } else if (want_read && ss->tls != NULL && smtpd_tls_pending(ss->tls)) {
        /* Decrypted input waits inside GnuTLS, where poll(2) cannot see it. */
        event_request_timer(submit_pending, ss, 0);
    }
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

static void submit_handshake(SUBMIT_SESSION *ss);

/* submit_after - after the protocol ran: end, start TLS, or wait for the next event */
static void submit_after(SUBMIT_SESSION *ss, int state)
{
    if (state == SMTPD_DONE)
        ss->ending = 1;
    if (state == SMTPD_STARTTLS)
        ss->starttls = 1;
    /* The 220 to STARTTLS goes out in the clear, whole, before the handshake. */
    if (ss->starttls && !ss->ending && vstr_len(ss->out) == 0) {
        VSTR *why = vstr_alloc(64);

        ss->starttls = 0;
        if ((ss->tls = smtpd_tls_accept(ss->submit->tls, ss->fd, why)) == NULL) {
            msg_warn("%s: cannot start TLS: %s", ss->client, vstr_str(why));
            vstr_free(why);
            smtpd_proto_eof(ss->sp);
            submit_session_end(ss);
            return;
        }
        vstr_free(why);
        ss->handshaking = 1;
        submit_handshake(ss);
        return;
    }
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
    if (ss->handshaking) {
        submit_handshake(ss);
        return;
    }
    if (submit_flush(ss) < 0) {
        smtpd_proto_eof(ss->sp);
        submit_session_end(ss);
        return;
    }
    submit_touch(ss);
    submit_after(ss, ss->ending ? SMTPD_DONE : SMTPD_MORE);
}

/* submit_handshake - one step of the TLS handshake; when done, SMTP goes on inside TLS */
static void submit_handshake(SUBMIT_SESSION *ss)
{
    VSTR *why = vstr_alloc(64);
    int rc = smtpd_tls_handshake(ss->tls, why);

    if (rc == SMTPD_TLS_FAILED) {
        msg_info("TLS handshake failed with %s: %s", ss->client, vstr_str(why));
        vstr_free(why);
        smtpd_proto_eof(ss->sp);
        submit_session_end(ss);
        return;
    }
    submit_touch(ss);
    if (rc == SMTPD_TLS_AGAIN) {
        vstr_free(why);
        submit_events(ss);
        return;
    }
    ss->handshaking = 0;
    smtpd_tls_describe(ss->tls, why);
    ss->tls_text = mystrdup(vstr_str(why));
    vstr_free(why);
    msg_info("Anonymous TLS connection established from %s: %s", ss->client, ss->tls_text);
    submit_after(ss, ss->implicit ? smtpd_proto_start(ss->sp)
                                  : smtpd_proto_tls_started(ss->sp, ss->tls_text));
}

/* submit_input - read what the client sent, or its end */
static void submit_input(SUBMIT_SESSION *ss)
{
    char buf[SUBMIT_READ_SIZE];
    ssize_t n;

    if (ss->handshaking) {
        submit_handshake(ss);
        return;
    }
    n = ss->tls != NULL ? smtpd_tls_read(ss->tls, buf, sizeof(buf))
                        : read(ss->fd, buf, sizeof(buf));
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

/* submit_read - the client sent something, or closed */
static void submit_read(int fd, int events, void *ctx)
{
    (void)fd;
    (void)events;
    submit_input(ctx);
}

/* submit_pending - decrypted input GnuTLS holds: read as if the socket said so */
static void submit_pending(void *ctx)
{
    SUBMIT_SESSION *ss = ctx;

    if (!ss->gone && ss->reading)
        submit_input(ss);
}

/* submit_proto_write - smtpd_proto's replies: out now, or kept for the write event */
static int submit_proto_write(void *ctx, const char *data, size_t len)
{
    SUBMIT_SESSION *ss = ctx;

    vstr_append(ss->out, data, len);
    return submit_flush(ss);
}

/* submit_enqueue - keep a message for the next commit; it takes the envelope */
static SUBMIT_WAIT *submit_enqueue(SUBMIT *s, MAILDROP_ENV *env, const char *content, size_t len,
                                   const CLEANUP_INFO *client)
{
    SUBMIT_WAIT *w;

    if (s->nwaits == s->waits_cap) {
        s->waits_cap = s->waits_cap ? s->waits_cap * 2 : 16;
        s->waits = myrealloc(s->waits, sizeof(*s->waits) * s->waits_cap);
    }
    w = s->waits + s->nwaits++;
    memset(w, 0, sizeof(*w));
    w->env = *env;
    w->content = mymalloc(len + 1);
    memcpy(w->content, content, len);
    w->content_len = len;
    if (client != NULL) {
        w->helo = mystrdup(client->helo);
        w->client_addr = mystrdup(client->client_addr);
        w->protocol = mystrdup(client->protocol);
        w->tls = client->tls != NULL ? mystrdup(client->tls) : NULL;
    }
    w->refused = SMTPD_PENDING;
    return w;
}

/* submit_store - a kept message into the commit's transaction; its refusal is kept in it */
static void submit_store(SUBMIT *s, QSTORE_TXN *txn, SUBMIT_WAIT *w, VSTR *text)
{
    CLEANUP_INFO client = {
        .helo = w->helo, .client_addr = w->client_addr, .protocol = w->protocol, .tls = w->tls};
    int rc;

    if ((rc = qstore_room(txn, w->content_len, text)) != QSTORE_OK)
        w->refused = rc == QSTORE_FULL ? SMTPD_NOSPACE : SMTPD_TEMPFAIL;
    else if (scan_queue(txn, &w->env, w->content, w->content_len,
                        w->client_addr != NULL ? &client : NULL, &w->file, s->body, text) < 0)
        w->refused = SMTPD_REJECTED;
    if (w->refused != SMTPD_PENDING)
        w->reason = mystrdup(vstr_str(text));
    else
        w->file.sender = mystrdup(w->env.sender);
}

/* submit_proto_message - a complete message: kept for the next commit; the verdict after it */
static SMTPD_RESULT submit_proto_message(void *ctx, const SMTPD_MSG *msg, VSTR *text)
{
    SUBMIT_SESSION *ss = ctx;
    MAILDROP_ENV env;
    CLEANUP_INFO client;
    SUBMIT_WAIT *w;

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
    client.tls = ss->tls_text;
    client.protocol = ss->tls_text != NULL ? (msg->auth_user != NULL ? "ESMTPSA" : "ESMTPS")
                                           : (msg->auth_user != NULL ? "ESMTPA" : "ESMTP");
    (void)text; /* nothing is refused before the commit */
    w = submit_enqueue(ss->submit, &env, msg->content, msg->content_len, &client);
    w->session = ss;
    w->file.source = PICKUP_SOURCE_SMTP;
    if (msg->auth_user != NULL) {
        VSTR *auth = vstr_alloc(64);

        vstr_sprintf(auth, ", sasl_method=%s, sasl_username=%s", msg->auth_method, msg->auth_user);
        w->auth = mystrdup(vstr_str(auth));
        vstr_free(auth);
    }
    ss->waiting = 1;
    ss->submit->sessions_waiting++;
    return SMTPD_PENDING;
}

/* submit_local - a message a local sendmail handed over whole, in a maildrop file's form: into
 * the next commit; `done` has the verdict after it */
SMTPD_RESULT submit_local(SUBMIT *s, const char *data, size_t len, uid_t uid, SUBMIT_DONE_FN done,
                          void *ctx, VSTR *text)
{
    MAILDROP_ENV env;
    SUBMIT_WAIT *w;
    size_t off;
    int retry;

    memset(&env, 0, sizeof(env));
    if (maildrop_parse(data, len, var_str(myorigin), &env, &off, text) < 0) {
        VSTR *reason = vstr_alloc(100);

        vstr_sprintf(reason, "bad envelope: %s", vstr_str(text));
        vstr_strcpy(text, vstr_str(reason));
        vstr_free(reason);
        return SMTPD_REJECTED;
    }
    /* root and mail_owner submit for others: the envelope names the user, as in a file. */
    if ((uid == 0 || uid == geteuid()) && env.uid >= 0)
        uid = (uid_t)env.uid;
    if (sender_of_uid(&env, uid, var_str(myorigin), &retry, text) < 0) {
        maildrop_env_free(&env);
        return retry ? SMTPD_TEMPFAIL : SMTPD_REJECTED;
    }
    if (var_int(message_size_limit) > 0 && len - off > (size_t)var_int(message_size_limit)) {
        vstr_sprintf(text, "message size %zu exceeds message_size_limit %ld", len - off,
                     var_int(message_size_limit));
        maildrop_env_free(&env);
        return SMTPD_REJECTED;
    }
    w = submit_enqueue(s, &env, data + off, len - off, NULL);
    w->file.uid = uid;
    w->file.source = PICKUP_SOURCE_SENDMAIL;
    w->done = done;
    w->ctx = ctx;
    return SMTPD_PENDING;
}

/* submit_proto_auth - AUTH: the user and password against smtpd_sasl_password_file */
static SMTPD_AUTH_RESULT submit_proto_auth(void *ctx, const char *user, const char *password,
                                           size_t len)
{
    SUBMIT_SESSION *ss = ctx;
    SMTPD_AUTH_RESULT result = smtpd_passwd_verify(ss->submit->passwd, user, password, len);

    if (result == SMTPD_AUTH_FAILED)
        msg_warn("%s: SASL authentication failed for user \"%s\"", ss->client, user);
    return result;
}

/* The operations of a session: with AUTH when a password file is loaded. */
static const SMTPD_OPS submit_proto_ops = {submit_proto_write, submit_proto_message, NULL};
static const SMTPD_OPS submit_proto_ops_auth = {submit_proto_write, submit_proto_message,
                                                submit_proto_auth};

/* submit_session_free - release a session's memory; its connection is closed */
static void submit_session_free(SUBMIT_SESSION *ss)
{
    smtpd_proto_free(ss->sp);
    vstr_free(ss->out);
    myfree(ss->tls_text);
    myfree(ss);
}

/* submit_session_end - close the connection; the memory goes once no commit waits for it */
static void submit_session_end(SUBMIT_SESSION *ss)
{
    if (ss->gone)
        return;
    ss->gone = 1;
    event_cancel_timer(submit_timeout, ss);
    event_cancel_timer(submit_pending, ss);
    event_disable_readwrite(ss->fd);
    smtpd_tls_end(ss->tls);
    ss->tls = NULL;
    close(ss->fd);
    listener_closed(ss->listener, ss->uid);
    ss->submit->sessions--;
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

    /* Replies go out as they are made: no wait for the client's acknowledgement. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
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
    for (int i = 0; i < s->nlisteners; i++)
        if (s->listeners[i] == listener)
            ss->implicit = s->implicit_tls[i];
    limits.tls_offer = s->tls != NULL && !ss->implicit;
    limits.tls_active = ss->implicit;
    s->sessions++;
    ss->sp = smtpd_proto_create(&limits,
                                s->passwd != NULL ? &submit_proto_ops_auth : &submit_proto_ops, ss);
    submit_touch(ss);
    if (ss->implicit) {
        /* The greeting comes inside TLS: "connect from" is logged then. */
        ss->starttls = 1;
        submit_after(ss, SMTPD_MORE);
    } else {
        submit_after(ss, smtpd_proto_start(ss->sp));
    }
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

/* submit_load_secrets - the certificate, key and password file as the configuration says now;
 * -1 with a reason when one cannot be loaded (nothing changed then) */
static int submit_load_secrets(SUBMIT *s, VSTR *why)
{
    SMTPD_TLS *tls = NULL;
    SMTPD_PASSWD *passwd = NULL;

    if (*var_str(smtpd_tls_cert_file) != '\0' &&
        (tls = smtpd_tls_create(var_str(smtpd_tls_cert_file), var_str(smtpd_tls_key_file), why)) ==
            NULL)
        return -1;
    if (*var_str(smtpd_sasl_password_file) != '\0' &&
        (passwd = smtpd_passwd_load(var_str(smtpd_sasl_password_file), why)) == NULL) {
        smtpd_tls_release(tls);
        return -1;
    }
    /* Sessions under way keep the credentials they started with. */
    smtpd_tls_release(s->tls);
    smtpd_passwd_free(s->passwd);
    s->tls = tls;
    s->passwd = passwd;
    return 0;
}

/* submit_create - serve the SMTP listening sockets master passed to the daemon */
SUBMIT *submit_create(PICKUP *p, const DAEMON *daemon)
{
    SUBMIT *s = mycalloc(1, sizeof(*s));
    LISTENER_LIMITS limits = {(int)var_int(smtpd_connection_limit),
                              (int)var_int(smtpd_client_connection_count_limit)};
    int count = daemon_listen_fds(daemon);
    VSTR *why = vstr_alloc(100);

    s->pickup = p;
    s->body = vstr_alloc(4096);
    submit_load_networks(s);
    if (submit_load_secrets(s, why) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
    s->listeners = mycalloc((size_t)count + 1, sizeof(*s->listeners));
    s->implicit_tls = mycalloc((size_t)count + 1, sizeof(*s->implicit_tls));
    for (int i = 0; i < count; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char addr[INET6_ADDRSTRLEN];
        int fd = 3 + i, listening = 0, implicit;
        socklen_t optlen = sizeof(listening);
        const char *name = daemon_listen_fd_name(daemon, i);

        if (strcmp(name, SOCK_PICKUP) == 0)
            continue; /* pickup's own socket (pickup.c) */
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) < 0 || !listening ||
            getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            msg_fatal("descriptor %d from master is not a listening socket", fd);
        implicit = strcmp(name, "smtpd_tls_listen") == 0;
        if (implicit && s->tls == NULL)
            msg_fatal("smtpd_tls_listen needs smtpd_tls_cert_file and smtpd_tls_key_file");
        sock_addr_text((struct sockaddr *)&ss, addr, sizeof(addr));
        if (msg_verbose)
            msg_info("SMTP listener on %s port %u%s", addr,
                     ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port),
                     implicit ? " (implicit TLS)" : "");
        s->implicit_tls[s->nlisteners] = implicit;
        s->listeners[s->nlisteners++] =
            listener_create(fd, *name ? name : "smtpd_listen", &limits, submit_accept, s);
    }
    return s;
}

/* submit_reload - mynetworks, the certificate and the password file for the sessions to come */
void submit_reload(SUBMIT *s)
{
    VSTR *why;

    if (s == NULL)
        return;
    submit_load_networks(s);
    why = vstr_alloc(100);
    if (submit_load_secrets(s, why) < 0)
        msg_warn("reload: %s; the SMTP listener keeps its old TLS and AUTH settings",
                 vstr_str(why));
    vstr_free(why);
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
    myfree(s->implicit_tls);
    netmask_list_free(s->mynetworks);
    smtpd_tls_release(s->tls);
    smtpd_passwd_free(s->passwd);
    vstr_free(s->body);
    myfree(s->waits);
    myfree(s);
}

/* submit_gathered - the gathering time is over: commit */
static void submit_gathered(void *ctx)
{
    SUBMIT *s = ctx;

    s->gathering = 0;
    submit_commit(s);
}

/*
 * submit_pass_done - after a pass of the event loop: commit now when every
 * SMTP session has a message waiting (none can hand over another before
 * its verdict), else wait SUBMIT_GATHER_MS for the others to add theirs.
 * One fsync costs about as much as a session's whole message: waiting a
 * little lets one commit hold many sessions' messages.
 */
void submit_pass_done(SUBMIT *s)
{
    if (s->nwaits == 0)
        return;
    if (s->sessions_waiting >= s->sessions) {
        submit_commit(s);
    } else if (!s->gathering) {
        s->gathering = 1;
        event_request_timer(submit_gathered, s, SUBMIT_GATHER_MS);
    }
}

/* submit_wait_free - what a kept message owns */
static void submit_wait_free(SUBMIT_WAIT *w)
{
    maildrop_env_free(&w->env);
    myfree(w->content);
    myfree(w->helo);
    myfree(w->client_addr);
    myfree(w->protocol);
    myfree(w->tls);
    myfree(w->reason);
    myfree(w->auth);
}

/*
 * submit_commit - write the messages handed over in one transaction,
 * commit it, then give each its verdict. The transaction begins only now:
 * while sessions gather, pickup does not hold the queue's write lock,
 * which qmgr needs for its own commits.
 */
void submit_commit(SUBMIT *s)
{
    VSTR *why, *text;
    QSTORE_TXN *txn;
    PICKUP_FILE *files; /* the committed messages, for qmgr */
    SUBMIT_WAIT *waits = s != NULL ? s->waits : NULL;
    size_t nwaits = s != NULL ? s->nwaits : 0;
    int rc = QSTORE_ERROR;
    size_t committed = 0;
    long long commit_us = 0;

    if (s == NULL || nwaits == 0)
        return;
    if (s->gathering) {
        event_cancel_timer(submit_gathered, s);
        s->gathering = 0;
    }
    why = vstr_alloc(100);
    text = vstr_alloc(100);
    files = mycalloc(nwaits + 1, sizeof(*files));
    if ((txn = qstore_begin(s->pickup->store, 1, why)) != NULL) {
        for (size_t i = 0; i < nwaits; i++)
            submit_store(s, txn, waits + i, text);
        commit_us = now_us();
        rc = qstore_commit_at(txn, "pickup-submit-commit", why);
        commit_us = now_us() - commit_us;
    }
    /*
     * A verdict lets a session read on, and what it read may be a message
     * (pipelined BDAT): that one waits for the next commit, in a new list.
     */
    s->waits = NULL;
    s->nwaits = s->waits_cap = 0;
    if (rc != QSTORE_OK)
        msg_warn("cannot queue %zu message%s of SMTP clients and sendmail: %s", nwaits,
                 nwaits == 1 ? "" : "s", vstr_str(why));
    for (size_t i = 0; i < nwaits; i++) {
        SUBMIT_WAIT *w = waits + i;
        SUBMIT_SESSION *ss = w->session;
        SMTPD_RESULT result = w->refused;
        char who[32];

        snprintf(who, sizeof(who), "uid=%ld", (long)w->file.uid);
        if (result == SMTPD_PENDING) {
            result = rc == QSTORE_OK     ? SMTPD_QUEUED
                     : rc == QSTORE_FULL ? SMTPD_NOSPACE
                                         : SMTPD_TEMPFAIL;
            vstr_strcpy(text, vstr_str(why));
        } else {
            vstr_strcpy(text, w->reason);
        }
        if (result == SMTPD_QUEUED) {
            if (ss != NULL)
                msg_info("%s: client=%s%s", w->file.qid, ss->client, w->auth ? w->auth : "");
            else
                msg_info("%s: uid=%ld from=<%s>", w->file.qid, (long)w->file.uid, w->file.sender);
            cleanup_log(w->file.qid, ss != NULL ? ss->client : who,
                        (size_t)var_int(header_size_limit), &w->file.cleanup);
            vstr_strcpy(text, w->file.qid);
            files[committed++] = w->file;
        } else {
            myfree(w->file.sender);
            if (w->refused != SMTPD_PENDING)
                msg_warn("%s: message not queued: %s", ss != NULL ? ss->client : who,
                         vstr_str(text));
        }
        if (ss == NULL) {
            w->done(w->ctx, result, vstr_str(text));
        } else {
            ss->waiting = 0;
            s->sessions_waiting--;
            if (result == SMTPD_QUEUED)
                vstr_sprintf(text, "as %s", w->file.qid);
            if (ss->gone)
                submit_session_free(ss);
            else
                submit_after(ss, smtpd_proto_resume(ss->sp, result, vstr_str(text)));
        }
        submit_wait_free(w);
    }
    if (committed > 0)
        pickup_tell_qmgr(s->pickup, files, committed, commit_us);
    for (size_t i = 0; i < committed; i++)
        myfree(files[i].sender);
    myfree(files);
    myfree(waits);
    vstr_free(text);
    vstr_free(why);
}
