/*
 * shared_conn - qmgr's connection to the shared-limits server (Redis)
 *
 * shared_conn_create()
 *	a connection object for a "redis://[:password@]host[:port][/db]"
 *	address, with the Lua scripts it will run and the process's
 *	resolver; it connects from the event loop and reconnects by itself.
 *	NULL with the reason in `why` when the address does not parse.
 * shared_conn_parse()
 *	check an address without connecting ("relayq check" and reload).
 * shared_conn_up()
 *	whether the server answered since the last (re)connection: requests
 *	are accepted only then.
 * shared_conn_settled()
 *	whether the server's state is known: the connection came up once, or
 *	an attempt failed, or SHARED_CONN_START_WAIT_MS passed since the
 *	object was made. Until then a server not reached yet is not an
 *	unavailable one: the owner waits rather than fall back to local
 *	limits, so that mail already queued when qmgr starts does not go out
 *	past a shared quota, or log in with a suspended credential, in the
 *	milliseconds the first connection takes.
 * shared_conn_script()
 *	run one of the scripts with its keys and arguments: EVALSHA, and
 *	EVAL with the body when the server answers NOSCRIPT (a restarted or
 *	flushed server). fn(ctx, reply, why) is called once, from the loop,
 *	never from inside shared_conn_script(): with the reply, or with NULL
 *	and the reason (the connection failed or the request timed out).
 *	Returns -1 when the connection is not up (fn is not called).
 * shared_conn_free()
 *	close; pending requests are answered with NULL.
 *
 * Mechanism: hiredis's asynchronous context, driven by relayq's event
 * loop through hiredis's ev hooks (add/del read and write interest on
 * the context's descriptor, cleanup before it closes). Every request has
 * a deadline (SHARED_CONN_TIMEOUT_MS): when the oldest request passes it,
 * the server is taken as unavailable and the connection is dropped, so a
 * slow server never stalls the loop and its late replies are never
 * mistaken for newer ones. Reconnection backs off from
 * SHARED_CONN_BACKOFF_MIN_MS to SHARED_CONN_BACKOFF_MAX_MS. On connecting,
 * AUTH and SELECT come first when the address asks for them, then one
 * SCRIPT LOAD per script (which gives its SHA1 for EVALSHA); the
 * connection is up when all of them answered.
 *
 * A host name is looked up off the loop (resolve.c, the process's
 * resolver) before each connection, and hiredis is given the address,
 * so a slow name service never stalls the loop either; while the lookup
 * runs the connection is down, as while it connects. Each attempt takes
 * the next of the host's addresses ("localhost" may be ::1, then
 * 127.0.0.1). TLS is not
 * supported yet (hiredis 0.14, Debian 12's, has no TLS).
 *
 * Ownership: the caller owns the object; the object owns its hiredis
 * context and its requests. Failures of the server are never fatal: they
 * are reported through shared_conn_up() and the callbacks; the owner's
 * state callback is called with up=1 when the connection comes up, and
 * with up=0 and the reason at every failure (of a connection or of an
 * attempt to make one): the owner logs what it wants once.
 */
#include "config.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "qmgr.h"
#include "resolve.h"
#include "vstr.h"

#define SHARED_CONN_TIMEOUT_MS 1000     /* a request not answered by then: server unavailable */
#define SHARED_CONN_START_WAIT_MS 2000  /* the first connection's outcome waited for at most */
#define SHARED_CONN_BACKOFF_MIN_MS 250  /* first wait before reconnecting */
#define SHARED_CONN_BACKOFF_MAX_MS 4000 /* longest wait before reconnecting */
#define SHARED_CONN_ARGS_MAX 1100       /* keys and arguments of one script call */

/* One request in flight, in the order the server answers. */
typedef struct SHARED_REQ {
    SHARED_CONN *conn;
    SHARED_CONN_FN fn; /* NULL: already answered (timeout, drop) */
    void *ctx;
    int script; /* index of the script, -1: a set-up command */
    int eval;   /* sent again as EVAL after NOSCRIPT */
    int argc;
    char **argv;
    size_t *argvlen;
    long long deadline_ms;
    struct SHARED_REQ *prev, *next;
} SHARED_REQ;

/* SHARED_CONN models one connection to the server and what waits on it. */
struct SHARED_CONN {
    char *host;
    int port;
    char *password; /* NULL: no AUTH */
    int db;
    const char *const *scripts; /* Lua bodies, NULL-terminated */
    char (*sha)[41];            /* their SHA1 as the server computed it */
    int nscripts;
    redisAsyncContext *ac; /* NULL: not connected */
    RESOLVER *resolver;    /* the process's, for the host's name */
    RESOLVE_REQ *lookup;   /* the name being looked up; NULL: none */
    unsigned attempts;     /* connections tried: which of the host's addresses is next */
    int fd;
    int up;             /* every set-up command answered */
    int setup;          /* set-up commands not answered yet */
    int settled;        /* came up once, or an attempt failed */
    long long start_ms; /* when the object was made */
    long long backoff_ms;
    SHARED_REQ *head, *tail; /* requests in flight, oldest first */
    SHARED_CONN_STATE_FN state_fn;
    void *state_ctx;
};

static void shared_conn_connect(void *ctx);
static void shared_conn_reply(redisAsyncContext *ac, void *r, void *privdata);

/* shared_conn_parse - split an address; 0, or -1 with why */
int shared_conn_parse(const char *url, char **host, int *port, char **password, int *db, VSTR *why)
{
    const char *p = url, *at, *slash, *colon, *end;
    char *stop;
    long n;

    *host = *password = NULL;
    *port = 6379;
    *db = 0;
    if (strncmp(p, "redis://", 8) != 0) {
        vstr_sprintf(why, "\"%s\": expected redis://[:password@]host[:port][/db]%s", url,
                     strncmp(p, "rediss://", 9) == 0 ? " (TLS is not supported yet)" : "");
        return -1;
    }
    p += 8;
    end = p + strlen(p);
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = end;
    at = memchr(p, '@', (size_t)(slash - p));
    if (at != NULL) {
        const char *pw = memchr(p, ':', (size_t)(at - p));

        /* Redis before ACLs has one password; a user name is not used. */
        if (pw == NULL || pw + 1 == at) {
            vstr_sprintf(why, "\"%s\": a password is written \":password@\"", url);
            return -1;
        }
        *password = mystrndup(pw + 1, (size_t)(at - pw - 1));
        p = at + 1;
    }
    colon = memchr(p, ':', (size_t)(slash - p));
    if ((colon ? colon : slash) == p) {
        vstr_sprintf(why, "\"%s\": no host", url);
        goto bad;
    }
    if (colon != NULL) {
        n = strtol(colon + 1, &stop, 10);
        if (stop != slash || stop == colon + 1 || n < 1 || n > 65535) {
            vstr_sprintf(why, "\"%s\": bad port", url);
            goto bad;
        }
        *port = (int)n;
    }
    if (*slash == '/' && slash[1] != '\0') {
        n = strtol(slash + 1, &stop, 10);
        if (*stop != '\0' || n < 0 || n > 1000000) {
            vstr_sprintf(why, "\"%s\": bad database number", url);
            goto bad;
        }
        *db = (int)n;
    }
    *host = mystrndup(p, (size_t)((colon ? colon : slash) - p));
    return 0;
bad:
    myfree(*password);
    *password = NULL;
    return -1;
}

/* shared_conn_io - the descriptor is ready: hand it to hiredis */
static void shared_conn_io(int fd, int events, void *ctx)
{
    SHARED_CONN *conn = ctx;

    (void)fd;
    if (conn->ac == NULL)
        return;
    if (events & EVENT_READ)
        redisAsyncHandleRead(conn->ac);
    else
        redisAsyncHandleWrite(conn->ac);
}

/* The ev hooks: hiredis asks for read or write interest on its descriptor. */
static void shared_conn_add_read(void *privdata)
{
    SHARED_CONN *conn = privdata;

    event_enable_read(conn->fd, shared_conn_io, conn);
}

static void shared_conn_del_read(void *privdata)
{
    SHARED_CONN *conn = privdata;

    event_disable_read(conn->fd);
}

static void shared_conn_add_write(void *privdata)
{
    SHARED_CONN *conn = privdata;

    event_enable_write(conn->fd, shared_conn_io, conn);
}

static void shared_conn_del_write(void *privdata)
{
    SHARED_CONN *conn = privdata;

    event_disable_write(conn->fd);
}

static void shared_conn_cleanup(void *privdata)
{
    SHARED_CONN *conn = privdata;

    if (conn->fd >= 0)
        event_disable_readwrite(conn->fd);
    conn->fd = -1;
}

/* shared_conn_unlink - take a request off the list of those in flight */
static void shared_conn_unlink(SHARED_CONN *conn, SHARED_REQ *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        conn->head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    else
        conn->tail = req->prev;
    req->prev = req->next = NULL;
}

/* shared_conn_req_free - release a request */
static void shared_conn_req_free(SHARED_REQ *req)
{
    for (int i = 0; i < req->argc; i++)
        myfree(req->argv[i]);
    myfree(req->argv);
    myfree(req->argvlen);
    myfree(req);
}

/* shared_conn_answer - call the request's owner once */
static void shared_conn_answer(SHARED_REQ *req, const redisReply *reply, const char *why)
{
    SHARED_CONN_FN fn = req->fn;

    req->fn = NULL;
    if (fn != NULL)
        fn(req->ctx, reply, why);
}

/* shared_conn_set_up - tell the owner when the connection goes up or down */
static void shared_conn_set_up(SHARED_CONN *conn, int up, const char *why)
{
    conn->settled = 1;
    if (conn->up == up)
        return;
    conn->up = up;
    if (conn->state_fn)
        conn->state_fn(conn->state_ctx, up, why);
}

/* shared_conn_timer - the oldest request's deadline, or the next reconnection */
static void shared_conn_timer(void *ctx);

/* shared_conn_drop - the server is unavailable: close, answer, reconnect later */
static void shared_conn_drop(SHARED_CONN *conn, const char *why)
{
    redisAsyncContext *ac = conn->ac;
    SHARED_REQ *req;

    conn->ac = NULL;
    conn->setup = 0;
    conn->settled = 1;
    /* Owners learn of the failure before their requests' answers; the
     * failure of a connection that never came up is news too. */
    conn->up = 0;
    if (conn->state_fn)
        conn->state_fn(conn->state_ctx, 0, why);
    while ((req = conn->head) != NULL) {
        shared_conn_unlink(conn, req);
        shared_conn_answer(req, NULL, why);
        /* hiredis holds it as privdata until it frees the context: the
         * context's last call of shared_conn_reply() frees it. */
        req->conn = NULL;
    }
    if (ac != NULL)
        redisAsyncFree(ac);
    event_cancel_timer(shared_conn_timer, conn);
    event_request_timer(shared_conn_connect, conn, conn->backoff_ms);
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > SHARED_CONN_BACKOFF_MAX_MS)
        conn->backoff_ms = SHARED_CONN_BACKOFF_MAX_MS;
}

/* shared_conn_timer - a request is late: the server is too slow to share limits with */
static void shared_conn_timer(void *ctx)
{
    SHARED_CONN *conn = ctx;
    long long now = now_ms();

    if (conn->head == NULL)
        return;
    if (conn->head->deadline_ms > now) {
        event_request_timer(shared_conn_timer, conn, conn->head->deadline_ms - now);
        return;
    }
    shared_conn_drop(conn, "request timed out");
}

/* shared_conn_send - queue a request with hiredis; -1 when hiredis refuses */
static int shared_conn_send(SHARED_CONN *conn, SHARED_REQ *req)
{
    if (redisAsyncCommandArgv(conn->ac, shared_conn_reply, req, req->argc, (const char **)req->argv,
                              req->argvlen) != REDIS_OK)
        return -1;
    req->conn = conn;
    req->deadline_ms = now_ms() + SHARED_CONN_TIMEOUT_MS;
    req->prev = conn->tail;
    if (conn->tail)
        conn->tail->next = req;
    else
        conn->head = req;
    conn->tail = req;
    if (conn->head == req)
        event_request_timer(shared_conn_timer, conn, SHARED_CONN_TIMEOUT_MS);
    return 0;
}

/* shared_conn_request - a request with copies of its arguments */
static SHARED_REQ *shared_conn_request(int script, SHARED_CONN_FN fn, void *ctx, int argc,
                                       const char **argv)
{
    SHARED_REQ *req = mycalloc(1, sizeof(*req));

    if (argc > SHARED_CONN_ARGS_MAX + 3)
        msg_panic("shared_conn: %d arguments", argc);
    req->script = script;
    req->fn = fn;
    req->ctx = ctx;
    req->argc = argc;
    req->argv = mycalloc((size_t)argc, sizeof(*req->argv));
    req->argvlen = mycalloc((size_t)argc, sizeof(*req->argvlen));
    for (int i = 0; i < argc; i++) {
        req->argv[i] = mystrdup(argv[i]);
        req->argvlen[i] = strlen(argv[i]);
    }
    return req;
}

/* shared_conn_setup_reply - a set-up command answered */
static void shared_conn_setup_reply(void *ctx, const redisReply *reply, const char *why)
{
    SHARED_REQ *req = ctx;
    SHARED_CONN *conn = req->conn;

    (void)why;
    if (reply == NULL || conn == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        VSTR *text = vstr_alloc(100);

        vstr_sprintf(text, "%s: %.200s", req->argv[0], reply->str);
        shared_conn_drop(conn, vstr_str(text));
        vstr_free(text);
        return;
    }
    /* SCRIPT LOAD answers the SHA1 that EVALSHA names the script by. */
    if (strcmp(req->argv[0], "SCRIPT") == 0 && reply->type == REDIS_REPLY_STRING &&
        reply->len == 40) {
        for (int i = 0; i < conn->nscripts; i++)
            if (strcmp(conn->scripts[i], req->argv[2]) == 0)
                memcpy(conn->sha[i], reply->str, 41);
    }
    if (--conn->setup == 0) {
        conn->backoff_ms = SHARED_CONN_BACKOFF_MIN_MS;
        shared_conn_set_up(conn, 1, NULL);
    }
}

/* shared_conn_reply - hiredis callback: a reply, or NULL when the context goes away */
static void shared_conn_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    SHARED_REQ *req = privdata;
    SHARED_CONN *conn = req->conn;
    redisReply *reply = r;

    (void)ac;
    if (conn == NULL) {
        /* Answered already by shared_conn_drop(): only the memory is left. */
        shared_conn_req_free(req);
        return;
    }
    shared_conn_unlink(conn, req);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && req->script >= 0 && !req->eval &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && conn->ac != NULL) {
        /* The server lost its scripts (restart, SCRIPT FLUSH): send the body. */
        myfree(req->argv[0]);
        myfree(req->argv[1]);
        req->argv[0] = mystrdup("EVAL");
        req->argv[1] = mystrdup(conn->scripts[req->script]);
        req->argvlen[0] = 4;
        req->argvlen[1] = strlen(req->argv[1]);
        req->eval = 1;
        if (shared_conn_send(conn, req) == 0)
            return;
    }
    if (req->script < 0)
        shared_conn_setup_reply(req, reply, NULL);
    else
        shared_conn_answer(req, reply, reply ? NULL : "connection lost");
    shared_conn_req_free(req);
    if (conn->head != NULL && conn->ac != NULL)
        event_request_timer(shared_conn_timer, conn,
                            conn->head->deadline_ms > now_ms() ? conn->head->deadline_ms - now_ms()
                                                               : 0);
    else if (conn->head == NULL)
        event_cancel_timer(shared_conn_timer, conn);
}

/* shared_conn_connected - hiredis callback: the TCP connection is made or failed */
static void shared_conn_connected(const redisAsyncContext *ac, int status)
{
    SHARED_CONN *conn = ac->data;

    if (status == REDIS_OK || conn->ac != ac)
        return;
    /* hiredis frees the context after this callback, and answers its
     * requests with NULL then. */
    conn->ac = NULL;
    shared_conn_drop(conn, ac->errstr[0] ? ac->errstr : "cannot connect");
}

/* shared_conn_disconnected - hiredis callback: the server closed or the context is freed */
static void shared_conn_disconnected(const redisAsyncContext *ac, int status)
{
    SHARED_CONN *conn = ac->data;

    (void)status;
    if (conn->ac != ac)
        return; /* our own shared_conn_drop() */
    conn->ac = NULL;
    shared_conn_drop(conn, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* shared_conn_setup_command - queue one set-up command */
static void shared_conn_setup_command(SHARED_CONN *conn, int argc, const char **argv)
{
    SHARED_REQ *req = shared_conn_request(-1, NULL, NULL, argc, argv);

    if (shared_conn_send(conn, req) < 0) {
        shared_conn_req_free(req);
        return;
    }
    conn->setup++;
}

/* shared_conn_retry - an attempt to connect failed: tell the owner, try again later */
static void shared_conn_retry(SHARED_CONN *conn, const char *why)
{
    conn->settled = 1;
    if (conn->state_fn)
        conn->state_fn(conn->state_ctx, 0, why);
    event_request_timer(shared_conn_connect, conn, conn->backoff_ms);
    conn->backoff_ms *= 2;
    if (conn->backoff_ms > SHARED_CONN_BACKOFF_MAX_MS)
        conn->backoff_ms = SHARED_CONN_BACKOFF_MAX_MS;
}

/* shared_conn_open - connect to an address (a literal: hiredis looks nothing up) */
static void shared_conn_open(SHARED_CONN *conn, const char *address)
{
    redisAsyncContext *ac;
    char db[16];

    ac = redisAsyncConnect(address, conn->port);
    if (ac == NULL || ac->err) {
        /* Refused at once (a local server that is down): as a lost connection. */
        shared_conn_retry(conn, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return;
    }
    conn->ac = ac;
    conn->fd = ac->c.fd;
    ac->data = conn;
    ac->ev.data = conn;
    ac->ev.addRead = shared_conn_add_read;
    ac->ev.delRead = shared_conn_del_read;
    ac->ev.addWrite = shared_conn_add_write;
    ac->ev.delWrite = shared_conn_del_write;
    ac->ev.cleanup = shared_conn_cleanup;
    redisAsyncSetConnectCallback(ac, shared_conn_connected);
    redisAsyncSetDisconnectCallback(ac, shared_conn_disconnected);
    conn->setup = 0;
    if (conn->password) {
        const char *argv[] = {"AUTH", conn->password};

        shared_conn_setup_command(conn, 2, argv);
    }
    if (conn->db != 0) {
        const char *argv[] = {"SELECT", db};

        snprintf(db, sizeof(db), "%d", conn->db);
        shared_conn_setup_command(conn, 2, argv);
    }
    for (int i = 0; i < conn->nscripts; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", conn->scripts[i]};

        shared_conn_setup_command(conn, 3, argv);
    }
    if (conn->setup == 0) {
        const char *argv[] = {"PING"};

        shared_conn_setup_command(conn, 1, argv);
    }
}

/* shared_conn_open_next - connect to the next address of a list: each attempt takes another */
static void shared_conn_open_next(SHARED_CONN *conn, const struct addrinfo *res)
{
    char address[NI_MAXHOST];
    unsigned count = 0;
    int err;

    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        count++;
    for (unsigned skip = conn->attempts++ % count; skip > 0; skip--)
        res = res->ai_next;
    if ((err = getnameinfo(res->ai_addr, res->ai_addrlen, address, sizeof(address), NULL, 0,
                           NI_NUMERICHOST)) != 0) {
        shared_conn_retry(conn, gai_strerror(err));
        return;
    }
    shared_conn_open(conn, address);
}

/* shared_conn_resolved - the host's addresses, or why there are none */
static void shared_conn_resolved(void *ctx, const struct addrinfo *res, const char *error)
{
    SHARED_CONN *conn = ctx;
    VSTR *why;

    conn->lookup = NULL;
    if (res != NULL) {
        shared_conn_open_next(conn, res);
        return;
    }
    why = vstr_alloc(100);
    vstr_sprintf(why, "look up %s: %s", conn->host, error);
    shared_conn_retry(conn, vstr_str(why));
    vstr_free(why);
}

/* shared_conn_connect - timer: (re)connect, after a lookup of the host's name */
static void shared_conn_connect(void *ctx)
{
    SHARED_CONN *conn = ctx;
    struct addrinfo *res;
    VSTR *why;

    if (conn->ac != NULL || conn->lookup != NULL)
        return;
    if (resolve_numeric(conn->host, (unsigned)conn->port, AF_UNSPEC, &res) == 0) {
        shared_conn_open_next(conn, res);
        freeaddrinfo(res);
        return;
    }
    why = vstr_alloc(100);
    conn->lookup = resolve_start(conn->resolver, conn->host, (unsigned)conn->port, AF_UNSPEC,
                                 shared_conn_resolved, conn, why);
    if (conn->lookup == NULL)
        shared_conn_retry(conn, vstr_str(why));
    vstr_free(why);
}

/* shared_conn_create - a connection object; it connects from the loop */
SHARED_CONN *shared_conn_create(const char *url, const char *const *scripts, RESOLVER *resolver,
                                SHARED_CONN_STATE_FN state_fn, void *state_ctx, VSTR *why)
{
    SHARED_CONN *conn = mycalloc(1, sizeof(*conn));

    if (shared_conn_parse(url, &conn->host, &conn->port, &conn->password, &conn->db, why) < 0) {
        myfree(conn);
        return NULL;
    }
    conn->scripts = scripts;
    conn->resolver = resolver;
    while (scripts[conn->nscripts] != NULL)
        conn->nscripts++;
    conn->sha = mycalloc((size_t)conn->nscripts + 1, sizeof(*conn->sha));
    conn->fd = -1;
    conn->backoff_ms = SHARED_CONN_BACKOFF_MIN_MS;
    conn->start_ms = now_ms();
    conn->state_fn = state_fn;
    conn->state_ctx = state_ctx;
    event_request_timer(shared_conn_connect, conn, 0);
    return conn;
}

/* shared_conn_up - whether requests may be sent */
int shared_conn_up(const SHARED_CONN *conn)
{
    return conn->up && conn->ac != NULL;
}

/* shared_conn_settled - whether the server's state is known (up, or failed once) */
int shared_conn_settled(const SHARED_CONN *conn)
{
    return conn->settled || now_ms() - conn->start_ms >= SHARED_CONN_START_WAIT_MS;
}

/* shared_conn_script - run a script: EVALSHA, EVAL after NOSCRIPT */
int shared_conn_script(SHARED_CONN *conn, int script, SHARED_CONN_FN fn, void *ctx, int nkeys,
                       int argc, const char **argv)
{
    const char **args;
    char count[16];
    SHARED_REQ *req;

    if (!shared_conn_up(conn) || script < 0 || script >= conn->nscripts || argc < 0 ||
        argc > SHARED_CONN_ARGS_MAX)
        return -1;
    args = mycalloc((size_t)argc + 3, sizeof(*args));
    snprintf(count, sizeof(count), "%d", nkeys);
    args[0] = "EVALSHA";
    args[1] = conn->sha[script];
    args[2] = count;
    for (int i = 0; i < argc; i++)
        args[3 + i] = argv[i];
    req = shared_conn_request(script, fn, ctx, argc + 3, args);
    myfree(args);
    if (shared_conn_send(conn, req) < 0) {
        shared_conn_req_free(req);
        return -1;
    }
    return 0;
}

/* shared_conn_free - close the connection; pending requests get NULL */
void shared_conn_free(SHARED_CONN *conn)
{
    if (conn == NULL)
        return;
    conn->state_fn = NULL;
    if (conn->lookup != NULL)
        resolve_cancel(conn->lookup);
    shared_conn_drop(conn, "closed");
    event_cancel_timer(shared_conn_connect, conn);
    event_cancel_timer(shared_conn_timer, conn);
    myfree(conn->host);
    myfree(conn->password);
    myfree(conn->sha);
    myfree(conn);
}
