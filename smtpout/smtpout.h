/*
 * smtpout.h - private declarations of the smtpout delivery worker
 *
 * smtpout is split by object: conn.c (the byte stream to the relay, behind
 * a table of functions so that a TLS session can replace the plain socket),
 * session.c (the SMTP client state machine: one persistent connection that
 * carries job after job), job.c (the job qmgr hands us and the result we
 * send back, with the per-recipient delivery log) and smtpout.c (main, the
 * qmgr channel, signals). Everything runs in one thread, driven by the
 * event loop.
 */
#ifndef RELAYQ_SMTPOUT_H
#define RELAYQ_SMTPOUT_H

#include <stddef.h>
#include <sys/types.h>

#include "ipc.h"
#include "qid.h"
#include "smtp_reply.h"
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
} CONN_OPS;

struct CONN {
    int fd;
    const CONN_OPS *ops;
    void *layer;   /* the transport's private state (a TLS session); NULL for plain TCP */
    char addr[64]; /* the peer's numeric address, for "host[addr]" */
};

CONN *conn_connect(const char *host, unsigned port, char *addr, size_t addr_size, VSTR *why);
int conn_connect_finish(CONN *conn, VSTR *why);
ssize_t conn_read(CONN *conn, void *buf, size_t len);
ssize_t conn_write(CONN *conn, const void *buf, size_t len);
void conn_close(CONN *conn);

/* Recipient outcome, as the result record spells it. */
#define JOB_PENDING 0  /* not decided yet */
#define JOB_SENT 1     /* the relay took responsibility */
#define JOB_DEFERRED 2 /* try again later */
#define JOB_BOUNCED 3  /* permanent failure */

/* JOB_RCPT models one recipient of a job: its address, whether the relay
 * accepted its RCPT TO in the current transaction, and its outcome. */
typedef struct JOB_RCPT {
    unsigned index; /* the recipient's index in the queued message */
    char *addr;
    int accepted; /* RCPT TO got 2xx in this transaction */
    int status;   /* JOB_* */
    char dsn[16]; /* X.Y.Z */
    VSTR *text;   /* reply or failure reason */
} JOB_RCPT;

typedef struct JOB JOB;

/* Called when the session is done with a job (its result is complete). */
typedef void (*SESSION_DONE_FN)(JOB *job);

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

/* EHLO keywords the relay announced. */
#define SESS_FEAT_PIPELINING 1
#define SESS_FEAT_SIZE 2
#define SESS_FEAT_8BITMIME 4
#define SESS_FEAT_ENHANCEDSTATUSCODES 8
#define SESS_FEAT_SMTPUTF8 16
#define SESS_FEAT_DSN 32

/* What the session is doing; in the reply states, the reply it waits for. */
typedef enum SESS_STATE {
    SESS_CLOSED,     /* no connection */
    SESS_CONNECTING, /* TCP handshake in progress */
    SESS_GREETING,   /* waiting for the 220 banner */
    SESS_EHLO,       /* EHLO sent */
    SESS_HELO,       /* HELO sent after EHLO got 5xx */
    SESS_IDLE,       /* connected, no command outstanding */
    SESS_NOOP,       /* keepalive NOOP sent while idle */
    SESS_MAIL,       /* MAIL FROM sent (with PIPELINING: the whole batch) */
    SESS_RCPT,       /* waiting for RCPT TO replies */
    SESS_DATA,       /* waiting for the DATA reply */
    SESS_BODY,       /* writing the content */
    SESS_DOT,        /* final dot sent, waiting for the reply */
    SESS_RSET,       /* RSET sent after a transaction that did not end in a dot */
    SESS_QUIT,       /* QUIT sent; the connection closes on the reply */
    SESS_STATE_COUNT
} SESS_STATE;

/*
 * SESSION models the worker's one SMTP connection to a relay and the
 * transaction it is running: the relay's identity and capabilities, the
 * buffered byte streams, the reply parser, the age and use count that
 * decide when to retire the connection, and the job in flight with the
 * progress of its pipelined command batch.
 */
typedef struct SESSION {
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
    unsigned msgs;       /* transactions started on this connection */
    JOB *job;            /* the job in flight or waiting for the connection */
    int job_active;      /* the connection is working for the job */
    int reused;          /* the job's transaction runs on a connection used before */
    int mail_ok;         /* MAIL FROM was accepted */
    size_t rcpt_replies; /* RCPT TO replies received */
    size_t accepted;     /* recipients accepted */
    int empty_data;      /* DATA got 354 with no recipient accepted: send only the dot */
    SESSION_DONE_FN done;
    void (*stop_fn)(void); /* shutting down: call when the connection is gone */
} SESSION;

void session_init(SESSION_DONE_FN done);
void session_deliver(JOB *job);
int session_busy(void);
int session_is_open(void);
void session_shutdown(void (*fn)(void));

#endif
