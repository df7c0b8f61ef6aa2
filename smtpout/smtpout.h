/*
 * smtpout.h - private declarations of the smtpout delivery process
 *
 * smtpout is split by object: conn.c (the byte stream to the relay, behind
 * a table of functions so that a TLS session can replace the plain socket),
 * tls.c (GnuTLS under that table: STARTTLS and implicit TLS), auth.c (SMTP
 * AUTH: credentials and mechanisms), and the SMTP client, one persistent
 * connection that carries job after job, cut the way Postfix's smtp client
 * is: session.c (the lifecycle: opening, reuse, idle, closing), chat.c (the
 * session's I/O: output buffer, writes, reading and parsing replies),
 * proto.c (the dialogue: setup, EHLO, STARTTLS, MAIL/RCPT/DATA/BDAT),
 * sasl_proto.c (the AUTH dialogue) and trouble.c (what a failure means for
 * the recipients). Then job.c (the job qmgr hands us and the result we send
 * back, with the per-recipient delivery log), addr_cache.c (the relay
 * addresses that failed lately, shared by the process's sessions), worker.c
 * (one session and its channel to qmgr) and smtpout.c (main: the queue, the
 * process's workers, signals).
 * Everything runs in one thread, driven by the event loop.
 */
#ifndef RELAYQ_SMTPOUT_H
#define RELAYQ_SMTPOUT_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "ipc.h"
#include "qid.h"
#include "qstore.h"
#include "resolve.h"
#include "sasl_passwd.h"
#include "smtp_reply.h"
#include "tls_policy.h"
#include "vstr.h"

/*
 * CONN models the byte stream to one relay: a connected socket now, a TLS
 * session on it later. The session layer only calls through `ops`, so a
 * STARTTLS handshake can swap the functions without touching the SMTP code.
 */
typedef struct CONN CONN;

/* The transport's operations; read and write follow read(2)/write(2),
 * with -1 and errno EAGAIN meaning "try again when the descriptor is ready". */
typedef struct CONN_OPS {
    const char *name;
    ssize_t (*read)(CONN *conn, void *buf, size_t len);
    ssize_t (*write)(CONN *conn, const void *buf, size_t len);
    void (*close)(CONN *conn);
    int (*pending)(CONN *conn); /* decoded input waiting; NULL: never any */
} CONN_OPS;

struct CONN {
    int fd;
    const CONN_OPS *ops;
    void *layer;   /* the transport's private state (a TLS session); NULL for plain TCP */
    char addr[64]; /* the peer's numeric address, for "host[addr]" */
};

CONN *conn_connect(const struct sockaddr *sa, socklen_t len, VSTR *why);
CONN *conn_open_fd(int fd, const struct sockaddr *sa);
int conn_connect_finish(CONN *conn, VSTR *why);
ssize_t conn_read(CONN *conn, void *buf, size_t len);
ssize_t conn_write(CONN *conn, const void *buf, size_t len);
int conn_pending(CONN *conn);
void conn_close(CONN *conn);

/* SESS_ADDR is one address of a relay, in the list a session tries in order. */
typedef struct SESS_ADDR {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64]; /* numeric, for "host[addr]" and the cache's key */
} SESS_ADDR;

/*
 * ADDR_CACHE models what the process learnt about relay addresses: the
 * ones whose connection failed lately ("addr port" -> the time in
 * now_ms() until which it is avoided). One per process, shared by its
 * sessions (addr_cache.c).
 */
typedef struct ADDR_CACHE {
    struct HTABLE *failed;
    long long ttl_ms;
} ADDR_CACHE;

ADDR_CACHE *addr_cache_create(long long ttl_ms);
void addr_cache_fail(ADDR_CACHE *c, const char *addr, unsigned port);
void addr_cache_ok(ADDR_CACHE *c, const char *addr, unsigned port);
void addr_cache_order(ADDR_CACHE *c, SESS_ADDR *list, size_t n, unsigned port);

/*
 * TLS_STATE models the GnuTLS client session of one connection (CONN's
 * layer): the session, whether the handshake is over, how far the peer was
 * trusted, and the key under which its session is saved for resumption.
 */
typedef struct TLS_STATE {
    struct gnutls_session_int *session; /* gnutls_session_t */
    int done;                           /* handshake complete; conn->ops are TLS */
    int verify;                         /* level verify: the name and chain were checked */
    int write_pending;                  /* a record waits to be resent after EAGAIN */
    int socket_empty;                   /* the last recv(2) under GnuTLS said EAGAIN */
    struct TLS_CREDS *creds;            /* the trust anchors, one reference */
    const char *trust;                  /* "Verified", "Trusted", "Untrusted" */
    char *cache_key;                    /* destination and TLS policy */
} TLS_STATE;

/* tls_handshake() outcomes */
#define TLS_HS_DONE 1
#define TLS_HS_AGAIN 0
#define TLS_HS_FAILED (-1)
#define TLS_HS_UNTRUSTED (-2)  /* the chain did not verify */
#define TLS_HS_UNVERIFIED (-3) /* the chain did, the relay's name did not match */

const TLS_POLICY *tls_policy(const char *relay, unsigned port, VSTR *why);
int tls_start(CONN *conn, const char *host, const TLS_POLICY *policy, const char *cache_key,
              VSTR *why);
int tls_handshake(CONN *conn, VSTR *why);
int tls_want_write(const CONN *conn);
const char *tls_trust(const CONN *conn);
int tls_resumed(const CONN *conn);
void tls_describe(const CONN *conn, VSTR *out);
void tls_save_session(CONN *conn);
void tls_forget_session(const char *cache_key);
void tls_discard(CONN *conn);
int tls_reload(VSTR *why);

/* SASL mechanisms, as EHLO AUTH offers them */
#define AUTH_MECH_PLAIN 1
#define AUTH_MECH_LOGIN 2
#define AUTH_MECH_XOAUTH2 4

/*
 * AUTH_EXCHANGE models one AUTH dialogue: the mechanism and the responses
 * still to send after 334 challenges, prepared in guarded memory.
 */
typedef struct AUTH_EXCHANGE {
    unsigned mech;               /* AUTH_MECH_* */
    unsigned char *responses[2]; /* guarded, base64, NUL-terminated */
    size_t lens[2];
    size_t count; /* responses prepared */
    size_t step;  /* responses sent (or XOAUTH2's empty one) */
    int token;    /* XOAUTH2: the token file as used, to notice a new token */
    time_t token_mtime;
    long token_mtime_ns;
    off_t token_size;
} AUTH_EXCHANGE;

void auth_reload(void);
int auth_lookup(const char *relay, unsigned port, SASL_CRED **cred, VSTR *why);
unsigned auth_mechs(const char *args, size_t len);
int auth_start(AUTH_EXCHANGE *ax, SASL_CRED *cred, unsigned offered, VSTR *out, VSTR *why);
void auth_continue(AUTH_EXCHANGE *ax, VSTR *out);
void auth_end(AUTH_EXCHANGE *ax);
const char *auth_mech_name(unsigned mech);
void auth_fail_remember(const unsigned char *id, const AUTH_EXCHANGE *ax, const char *reason);
const char *auth_fail_cached(const unsigned char *id, const SASL_CRED *cred);

/* Recipient outcome, as the result record spells it. */
#define JOB_PENDING 0  /* not decided yet */
#define JOB_SENT 1     /* the relay took responsibility */
#define JOB_DEFERRED 2 /* try again later */
#define JOB_BOUNCED 3  /* permanent failure */

/* DSN NOTIFY keywords (RFC 3461 section 4.1), as a bit mask */
#define JOB_NOTIFY_NEVER 1
#define JOB_NOTIFY_SUCCESS 2
#define JOB_NOTIFY_FAILURE 4
#define JOB_NOTIFY_DELAY 8

/* DSN RET (RFC 3461 section 4.3) */
#define JOB_RET_NONE 0
#define JOB_RET_FULL 1
#define JOB_RET_HDRS 2

/* JOB_RCPT models one recipient of a job: its address and DSN requests,
 * whether the relay accepted its RCPT TO in the current transaction, and
 * its outcome. */
typedef struct JOB_RCPT {
    unsigned index; /* the recipient's index in the queued message */
    char *addr;
    unsigned notify; /* JOB_NOTIFY_* bits; 0: none requested */
    char *orcpt;     /* DSN ORCPT "TYPE;ADDRESS", not encoded; NULL: none */
    int accepted;    /* RCPT TO got 2xx in this transaction */
    int status;      /* JOB_* */
    char dsn[16];    /* X.Y.Z */
    VSTR *text;      /* reply or failure reason */
} JOB_RCPT;

typedef struct JOB JOB;

/* JOB models one type=deliver request: one message, some of its
 * recipients, one relay; plus the content read from the queue and the
 * time stamps that make up Postfix's delays=a/b/c/d. */
struct JOB {
    long long id; /* chosen by qmgr, echoed in the result */
    char queue_id[QID_LEN + 1];
    char *relay; /* host name or address, no brackets */
    unsigned port;
    char *sender; /* "" for the null sender */
    long long size;
    int ret;          /* DSN RET: JOB_RET_* */
    char *envid;      /* DSN ENVID, not encoded; NULL: none */
    int upstream_dsn; /* the relay that took the transaction offered DSN */
    /* Time stamps are wall-clock ms since the epoch, like qmgr's. */
    long long arrival_ms;  /* pickup took the message */
    long long active_ms;   /* qmgr activated it */
    long long received_ms; /* we received the job */
    long long setup_start; /* we began opening a connection for it; 0: none needed */
    long long setup_ms;    /* connection setup for this job (delays c) */
    long long xfer_start;  /* the transaction began */
    JOB_RCPT *rcpts;
    size_t nrcpt;
    VSTR *body;        /* the content, CRLF lines, ending with CRLF */
    int eightbit;      /* the content has bytes >= 0x80 */
    int utf8;          /* an address needs SMTPUTF8 */
    int retried;       /* already retried once on a fresh connection */
    unsigned conn_use; /* messages on the connection including this one; 0: none */
    VSTR *relay_text;  /* "host[addr]:port", or "none" */
};

JOB *job_create(const IPC_REC *rec, VSTR *why);
void job_free(JOB *job);
void job_set_body(JOB *job, VSTR *body);
void job_set(JOB *job, size_t i, int status, const char *dsn, const char *text);
void job_fail_pending(JOB *job, int status, const char *dsn, const char *text);
size_t job_pending(const JOB *job);
void job_log(const JOB *job);
IPC_REC *job_result(const JOB *job, int conn_open);
const char *job_status_name(int status);
void job_xtext(VSTR *out, const char *text);
void job_mail_dsn(const JOB *job, VSTR *out);
void job_rcpt_dsn(const JOB *job, size_t i, VSTR *out);

/* EHLO keywords the relay announced. */
#define SESS_FEAT_PIPELINING 1
#define SESS_FEAT_SIZE 2
#define SESS_FEAT_8BITMIME 4
#define SESS_FEAT_ENHANCEDSTATUSCODES 8
#define SESS_FEAT_SMTPUTF8 16
#define SESS_FEAT_DSN 32
#define SESS_FEAT_STARTTLS 64
#define SESS_FEAT_AUTH 128
#define SESS_FEAT_CHUNKING 256

/* What the session is doing; in the reply states, the reply it waits for. */
typedef enum SESS_STATE {
    SESS_CLOSED,     /* no connection */
    SESS_RESOLVING,  /* looking up the relay's addresses (resolve.c) */
    SESS_CONNECTING, /* TCP handshake in progress */
    SESS_GREETING,   /* waiting for the 220 banner */
    SESS_EHLO,       /* EHLO sent */
    SESS_HELO,       /* HELO sent after EHLO got 5xx */
    SESS_STARTTLS,   /* STARTTLS sent */
    SESS_TLS,        /* TLS handshake in progress */
    SESS_AUTH,       /* AUTH sent, or a response to a 334 challenge */
    SESS_IDLE,       /* connected, no command outstanding */
    SESS_NOOP,       /* keepalive NOOP sent while idle */
    SESS_MAIL,       /* MAIL FROM sent (with PIPELINING: the whole batch) */
    SESS_RCPT,       /* waiting for RCPT TO replies */
    SESS_DATA,       /* waiting for the DATA reply */
    SESS_BODY,       /* writing the content */
    SESS_DOT,        /* final dot sent, waiting for the reply */
    SESS_BDAT,       /* BDAT LAST sent with the content, waiting for the reply */
    SESS_RSET,       /* RSET sent after a transaction that did not end in a dot */
    SESS_QUIT,       /* QUIT sent; the connection closes on the reply */
    SESS_STATE_COUNT
} SESS_STATE;

/*
 * SESSION_HOOKS is what a session tells its owner, always from an
 * event-loop callback: a finished job (every recipient decided, delivery
 * lines logged), a change of its connection for qmgr (open, tls, auth_ok,
 * auth_fail, timeout, close with its reason and message count), and the
 * end of a shutdown (the connection is gone). `connect`, when not NULL,
 * replaces conn_connect(): a test gives the session its connection.
 */
typedef struct SESSION SESSION;
typedef struct SESSION_HOOKS {
    void (*done)(void *owner, JOB *job);
    void (*conn_event)(void *owner, const char *event, const char *dest, const char *reason,
                       unsigned messages, int resumed);
    void (*stopped)(void *owner);
    CONN *(*connect)(void *owner, const struct sockaddr *sa, socklen_t len, VSTR *why);
} SESSION_HOOKS;

/*
 * SESSION models one SMTP connection to a relay and the
 * transaction it is running: the relay's identity and capabilities, the
 * buffered byte streams, the reply parser, the age and use count that
 * decide when to retire the connection, and the job in flight with the
 * progress of its pipelined command batch.
 */
struct SESSION {
    SESS_STATE state;
    CONN *conn;   /* NULL when closed */
    unsigned gen; /* bumped on every close, to notice it from inside callbacks */
    char *host;   /* relay as qmgr named it */
    unsigned port;
    VSTR *label;      /* "host[addr]" */
    VSTR *relay_text; /* "host[addr]:port" */
    VSTR *in;         /* received bytes not yet parsed into lines */
    VSTR *out;        /* bytes not yet written */
    size_t out_off;   /* written prefix of out */
    int out_error;    /* errno of a failed write, reported from a timer */
    SMTP_REPLY_PARSER *parser;
    SMTP_REPLY *reply;
    unsigned features;    /* SESS_FEAT_* */
    long long size_limit; /* from SIZE; 0: none announced */
    long long opened_ms;
    long long idle_since;
    unsigned msgs;         /* transactions started on this connection */
    unsigned deferred_row; /* transactions in a row in which the relay deferred everything */
    JOB *job;              /* the job in flight or waiting for the connection */
    int job_active;        /* the connection is working for the job */
    /* The transaction in flight: reset when it begins. */
    struct {
        int reused;          /* the job's transaction runs on a connection used before */
        int mail_ok;         /* MAIL FROM was accepted */
        size_t rcpt_replies; /* RCPT TO replies received */
        size_t rcpt_sent;    /* RCPT TO commands written */
        int data_sent;       /* DATA was written after the last of them (PIPELINING) */
        int rcpt_limited;    /* the relay takes no more recipients in this transaction */
        size_t accepted;     /* recipients accepted */
        int empty_data;      /* DATA got 354 with no recipient accepted: send only the dot */
        int bdat;            /* the content goes as BDAT LAST, pipelined after the RCPT TOs */
    } txn;
    /* The connection's identity: a job whose identity differs needs another connection. */
    unsigned char ident[SASL_ID_LEN];       /* hash of relay, port, TLS policy, credential */
    char *dest;                             /* "relay:port" as the job named it, for qmgr */
    TLS_POLICY policy;                      /* the relay's TLS policy, a copy of tls.c's */
    int tls_level;                          /* TLS_POLICY_* of this connection */
    int wrapper;                            /* implicit TLS (smtp_tls_wrappermode) */
    int tls_on;                             /* the TLS handshake completed */
    int tls_declined;                       /* level may: STARTTLS refused, carry on in plaintext */
    char *tls_cache_key;                    /* where its TLS session is saved */
    int plain_once;                         /* level may: the next connection skips TLS */
    unsigned char plain_ident[SASL_ID_LEN]; /* ... for this identity */
    unsigned auth_mechs;                    /* AUTH_MECH_* from EHLO AUTH */
    int authed;                             /* AUTH succeeded */
    AUTH_EXCHANGE auth;                     /* the AUTH dialogue in progress */
    int announced;                          /* "open" went to qmgr: a "close" is owed */
    const char *close_reason;               /* why the connection is being retired */
    int stale;                              /* a reload changed its identity: retire before a job */
    int out_secret;                         /* out holds a secret: wipe it once written */
    int stopping;                           /* shutting down: tell the owner once closed */
    /* Connection setup: the relay's addresses, tried in order until one answers. */
    RESOLVER *resolver;     /* the process's, borrowed */
    ADDR_CACHE *addr_cache; /* the process's, borrowed */
    RESOLVE_REQ *lookup;    /* the name lookup in flight; NULL: none */
    SESS_ADDR *addrs;       /* at most smtp_mx_address_limit, the lately failed ones last */
    size_t naddr;
    size_t addr_next;   /* the next one to try */
    char fail_addr[64]; /* the last address that failed ... */
    VSTR *fail_why;     /* ... and why, for the deferral when all failed */
    const SESSION_HOOKS *hooks;
    void *owner; /* the hooks' first argument */
};

SESSION *session_create(const SESSION_HOOKS *hooks, void *owner, RESOLVER *resolver,
                        ADDR_CACHE *addr_cache);
void session_deliver(SESSION *s, JOB *job);
int session_busy(const SESSION *s);
int session_is_open(const SESSION *s);
void session_shutdown(SESSION *s);
void session_reload(SESSION *s);
void session_release(SESSION *s);
const char *session_held_dest(const SESSION *s);

/* What to do with the connection once a job is finished (session_job_done()). */
typedef enum SESS_AFTER {
    AFTER_IDLE,  /* keep it for the next job */
    AFTER_RSET,  /* reset the aborted transaction, then keep it */
    AFTER_QUIT,  /* say goodbye and close */
    AFTER_CLOSE, /* close at once (421, timeout, lost) */
    AFTER_NONE   /* there is no connection */
} SESS_AFTER;

/* session.c, for the other parts of the SMTP client: states, lifecycle */
const char *session_stage_doing(SESS_STATE state);
const char *session_stage_command(SESS_STATE state);
void session_arm(SESSION *s, SESS_STATE state);
void session_close(SESSION *s, const char *reason);
void session_enter_idle(SESSION *s, int fresh);
void session_quit(SESSION *s, const char *reason);
void session_job_done(SESSION *s, SESS_AFTER after);
void session_retry(SESSION *s, const char *why, const char *reason);
void session_lookup_failed(SESSION *s, const char *why);
void session_connect_retry(SESSION *s, const char *why);

/* chat.c: the session's I/O */
#define CHAT_READ_CHUNK 16384 /* bytes read at a time; the buffers' first size */
void chat_out_reset(SESSION *s);
void chat_flush(SESSION *s);
void __attribute__((format(printf, 2, 3))) chat_send(SESSION *s, const char *fmt, ...);
void chat_read_again(void *ctx);
void chat_event(int fd, int events, void *ctx);

/* proto.c: connection setup and the transaction */
void proto_connected(SESSION *s);
void proto_tls_step(SESSION *s);
void proto_begin(SESSION *s);
void proto_reply(SESSION *s, const SMTP_REPLY *reply);

/* sasl_proto.c: the AUTH dialogue */
int sasl_proto_start(SESSION *s);
void sasl_proto_reply(SESSION *s, const SMTP_REPLY *reply);

/* trouble.c: failures become recipient outcomes */
void trouble_reply_text(const SMTP_REPLY *reply, VSTR *out);
void trouble_reply_dsn(const SMTP_REPLY *reply, int status, char *dsn, size_t size);
int trouble_reply_status(const SMTP_REPLY *reply);
void trouble_reply_explain(SESSION *s, const SMTP_REPLY *reply, VSTR *text);
void trouble_reply_fail(SESSION *s, const SMTP_REPLY *reply, int status, int only_accepted);
void trouble_lost(SESSION *s, const char *detail);
void trouble_write_failed(void *ctx);
void trouble_connect_failed(SESSION *s, const char *addr, const char *why);
void trouble_timeout(void *ctx);
void trouble_setup_fail(SESSION *s, const char *dsn, const char *text);
void trouble_protocol_error(SESSION *s, const char *why);
void trouble_reply_421(SESSION *s, const SMTP_REPLY *reply);

/*
 * WORKER is one session of the process as qmgr sees it (worker.c): the
 * session, its connection to qmgr and the job in flight.
 */
typedef struct WORKER WORKER;

/* Called once the worker's session closed for a stop. */
typedef void (*WORKER_STOPPED_FN)(void *ctx, WORKER *worker);

WORKER *worker_create(QSTORE *store, const char *qmgr_path, RESOLVER *resolver,
                      ADDR_CACHE *addr_cache, WORKER_STOPPED_FN stopped, void *ctx);
void worker_stop(WORKER *w);
int worker_busy(const WORKER *w);
void worker_reload(WORKER *w);
void worker_flush_results(WORKER *w, long long deadline);

#endif
