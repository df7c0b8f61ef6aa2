/*
 * pickup.h - the pickup daemon's private structures and functions
 */
#ifndef RELAYQ_PICKUP_H
#define RELAYQ_PICKUP_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "hist.h"
#include "ipc.h"
#include "listener.h"
#include "maildrop.h"
#include "qid.h"
#include "qstore.h"
#include "smtpd_proto.h"
#include "vstr.h"

#define PICKUP_BATCH_FILES 256                /* files in one write transaction */
#define PICKUP_BATCH_BYTES (32 * 1024 * 1024) /* content bytes in one write transaction */
#define PICKUP_SCAN_INTERVAL 5000             /* ms between scans without a wake-up */
#define PICKUP_FULL_RETRY 5000                /* ms before retrying a full queue */
#define PICKUP_NO_LIMIT (1024L * 1024 * 1024) /* content limit when message_size_limit = 0 */
#define PICKUP_SKIP_TIME 300                  /* s before retrying an unreadable file */
#define PICKUP_TMP_MAX_AGE 3600               /* s before a "tmp.*" file is left for dead */
#define PICKUP_CLIENTS_MAX 64                 /* concurrent public/pickup connections */
#define PICKUP_CLIENTS_PER_UID 16             /* ... of one user */
#define PICKUP_CLIENT_TIMEOUT 10000           /* ms a public/pickup client may stay idle */
#define PICKUP_QMGR_TIMEOUT 500               /* ms to wait for qmgr's hello */

#define CLEANUP_LINE_MAX 998            /* octets of a line without CRLF (RFC 5321 4.5.3.1.6) */
#define CLEANUP_HEADER_LIMIT_DEF 102400 /* header_size_limit's default */

/*
 * A maildrop file that could neither be queued nor moved to corrupt/ (no
 * permission, I/O error): the scan leaves it alone until retry_at, so that
 * it is neither a busy loop nor a warning every few seconds.
 */
typedef struct PICKUP_SKIP {
    char *name;
    time_t retry_at;
} PICKUP_SKIP;

/* What cleanup changed beyond line ends and added headers, for the log. */
typedef struct CLEANUP_STATS {
    size_t long_lines; /* lines over CLEANUP_LINE_MAX octets, broken up */
    int header_cut;    /* the header section was over the limit: its rest became body */
    size_t body_nuls;  /* NUL bytes in the body, passed on unchanged */
} CLEANUP_STATS;

/*
 * One file of the write transaction being built: either a new message
 * (qid freshly made) or a file that an earlier, committed transaction
 * already queued (already = 1: only its unlink is pending).
 */
typedef struct PICKUP_FILE {
    char *name;
    char qid[QID_LEN + 1];
    int already;
    long long due;         /* its schedule time, once queued */
    uid_t uid;             /* the file's owner, logged as Postfix pickup does */
    int source;            /* how it came: PICKUP_SOURCE_* */
    char *sender;          /* for the log line */
    CLEANUP_STATS cleanup; /* logged once the message is committed */
} PICKUP_FILE;

/* A relayq sendmail command connected to public/pickup: wake-ups, or a message handed over. */
typedef struct PICKUP_CLIENT {
    struct PICKUP *pickup; /* the daemon it talks to */
    IPC_CHAN *chan;
    long uid;       /* the user (SO_PEERCRED), for the listener's count and the log */
    VSTR *message;  /* a "submit" record's bytes, or NULL */
    size_t missing; /* bytes of it still to come */
    int waiting;    /* the message is in the open transaction: reads wait for the verdict */
    int gone;       /* the connection ended while waiting: freed by the verdict */
} PICKUP_CLIENT;

/* How a message came to pickup: the order of pickup_sources[] (pickup.c). */
#define PICKUP_SOURCE_MAILDROP 0 /* a maildrop file of the sendmail command */
#define PICKUP_SOURCE_SENDMAIL 1 /* handed over whole on public/pickup */
#define PICKUP_SOURCE_SMTP 2     /* an SMTP client (smtpd_listen) */
#define PICKUP_SOURCES 3

/*
 * What pickup has counted since it started, told to qmgr whole with every
 * record (qmgr shows the latest in relayq stats and the metrics), so that
 * a record lost while qmgr is away loses nothing.
 */
typedef struct PICKUP_FIGURES {
    long long received[PICKUP_SOURCES]; /* new messages queued, by source */
    HIST commit_time;                   /* us of each commit that queued mail */
    HIST commit_batch;                  /* the new messages of each */
} PICKUP_FIGURES;

/*
 * The daemon: the queue it writes, its sockets, and the state of the scan
 * of maildrop/ (the file names still to take, the names whose picked
 * entries wait to be deleted, and the back-off when the queue is full).
 */
typedef struct PICKUP {
    char *queue_directory;
    char *maildrop_dir; /* absolute */
    char *corrupt_dir;  /* absolute */
    QSTORE *store;
    LISTENER *listener; /* public/pickup, and the count of its clients */
    IPC_CHAN *qmgr;     /* private/qmgr, or NULL while qmgr is away */
    PICKUP_FIGURES figures;
    int stopping; /* SIGTERM: exit after the batch in flight */

    /* The scan. */
    char **todo; /* file names found by the last directory read, oldest first */
    size_t ntodo;
    size_t todo_pos; /* next name to take */
    int progress;    /* the current list queued, unlinked or moved a file */
    int wakeup;      /* a wake-up arrived during the current list */
    char **gone;     /* unlinked files whose picked entries are still to delete */
    size_t ngone;
    PICKUP_SKIP *skip;
    size_t nskip;

    struct SUBMIT *submit; /* the SMTP listener, or NULL */

    /* The queue-full back-off. */
    size_t batch_max; /* files per transaction, halved on QSTORE_FULL */
    int full;         /* the "queue is full" warning was logged */
} PICKUP;

/* What cleanup needs to know to complete a message's headers. */
typedef struct CLEANUP_INFO {
    const char *qid;
    const char *myhostname;
    const char *sender;   /* "" for the null sender */
    const char *fullname; /* "" when none */
    time_t now;
    /* Mail that came over SMTP: the client, for the Received: header (NULL: a maildrop file). */
    const char *helo;        /* the EHLO/HELO argument, or "" */
    const char *client_addr; /* numeric */
    const char *protocol;    /* "ESMTP", "ESMTPS" (TLS), "ESMTPA", "ESMTPSA" (AUTH), RFC 3848 */
    const char *tls;         /* "TLSv1.3 with cipher ...", or NULL */
} CLEANUP_INFO;

/* submit.c: the SMTP listener */
typedef struct SUBMIT SUBMIT;
struct DAEMON;
SUBMIT *submit_create(PICKUP *p, const struct DAEMON *daemon);
/* A local submission's verdict: SMTPD_QUEUED with the queue id, or another result and why. */
typedef void (*SUBMIT_DONE_FN)(void *ctx, SMTPD_RESULT result, const char *text);
SMTPD_RESULT submit_local(SUBMIT *s, const char *data, size_t len, uid_t uid, SUBMIT_DONE_FN done,
                          void *ctx, VSTR *text);
void submit_pass_done(SUBMIT *s);
void submit_commit(SUBMIT *s);
void submit_reload(SUBMIT *s);
void submit_free(SUBMIT *s);

/* smtpd_tls.c: TLS for the listener's clients */
#define SMTPD_TLS_DONE 0
#define SMTPD_TLS_AGAIN 1
#define SMTPD_TLS_FAILED (-1)
typedef struct SMTPD_TLS SMTPD_TLS;
typedef struct SMTPD_TLS_SESS SMTPD_TLS_SESS;
SMTPD_TLS *smtpd_tls_create(const char *cert_file, const char *key_file, VSTR *why);
void smtpd_tls_release(SMTPD_TLS *t);
SMTPD_TLS_SESS *smtpd_tls_accept(SMTPD_TLS *t, int fd, VSTR *why);
int smtpd_tls_handshake(SMTPD_TLS_SESS *ts, VSTR *why);
int smtpd_tls_want_write(const SMTPD_TLS_SESS *ts);
ssize_t smtpd_tls_read(SMTPD_TLS_SESS *ts, void *buf, size_t len);
ssize_t smtpd_tls_write(SMTPD_TLS_SESS *ts, const void *buf, size_t len);
int smtpd_tls_pending(const SMTPD_TLS_SESS *ts);
void smtpd_tls_describe(const SMTPD_TLS_SESS *ts, VSTR *out);
void smtpd_tls_end(SMTPD_TLS_SESS *ts);

/* pickup.c */
void pickup_tell_qmgr(PICKUP *p, const PICKUP_FILE *files, size_t nfiles, long long commit_us);
void pickup_connect_qmgr(PICKUP *p);

/* scan.c */
int scan_queue(QSTORE_TXN *txn, const MAILDROP_ENV *env, const char *content, size_t content_len,
               const CLEANUP_INFO *client, PICKUP_FILE *f, VSTR *body, VSTR *why);
void scan_event(void *ctx);
void scan_request(PICKUP *p, long long delay_ms);
void scan_picked_cleanup(PICKUP *p);
void scan_flush_gone(PICKUP *p);

/* cleanup.c */
int cleanup_message(const char *data, size_t len, const CLEANUP_INFO *info, VSTR *out, VSTR *why);
int cleanup_message_limited(const char *data, size_t len, const CLEANUP_INFO *info,
                            size_t header_limit, VSTR *out, CLEANUP_STATS *stats, VSTR *why);
void cleanup_log(const char *qid, const char *source, size_t header_limit,
                 const CLEANUP_STATS *stats);

/* sender.c */
int sender_of_uid(MAILDROP_ENV *env, uid_t uid, const char *origin, int *retry, VSTR *why);

#endif
