/*
 * qmgr.h - the queue manager's objects and their operations
 */
#ifndef RELAYQ_QMGR_H
#define RELAYQ_QMGR_H

#include <stddef.h>

#include "dsn.h"
#include "hist.h"
#include "htable.h"
#include "ipc.h"
#include "jobq.h"
#include "listener.h"
#include "qstore.h"
#include "resolve.h"
#include "retry.h"
#include "sched.h"

/*
 * Results of one worker that may wait for their commit while the worker
 * goes on with its next job: after a crash of qmgr at most this many
 * deliveries per worker are repeated (doc/internals.md).
 */
#define QMGR_UNCOMMITTED_MAX 8

/* The notices bounce.c queues, in DSN_KIND order (stats.c, stats_notices[]). */
#define STATS_NOTICES 3

typedef struct QMGR_DEST QMGR_DEST;
typedef struct QMGR_JOB QMGR_JOB;
typedef struct QMGR_MESSAGE QMGR_MESSAGE;
typedef struct QMGR_PEER QMGR_PEER;
typedef struct BULK BULK;
typedef struct LIST_HELPERS LIST_HELPERS;
typedef struct SHARED SHARED;
typedef struct SHARED_CONN SHARED_CONN;
struct redisReply;

/*
 * A message in the active set: its envelope and recipients as loaded
 * from the queue, plus what its jobs have learned since. It stays in
 * memory until every job has finished and its new state is committed.
 */
struct QMGR_MESSAGE {
    QMSG env;
    QRCPT *rcpts;
    size_t nrcpt;
    unsigned char *changed; /* per recipient: a result to write */
    long long active_ms;    /* when it was activated */
    QATTEMPT *attempts;     /* results of this activation, for the history */
    size_t nattempts;
    int jobs_outstanding; /* jobs not yet finished */
    unsigned lost;        /* delivery processes that died delivering it (sched.c keeps the count) */
    int deleted;          /* the operator deleted it during delivery */
    int requeue;          /* the operator requeued it during delivery */
    int fresh;            /* new mail: its jobs take turns with the rest's (jobq.c) */
    int throttled;        /* the relay said "slow down" or limited recipients: retry soon */
    int reroute;          /* its relay was unreachable and the route has another */
    int backoff;          /* a job was deferred by the relay: count the attempt */
    QMGR_DEST *suspend_dest; /* a job waits for this suspended destination's probe */
    unsigned char *relayed;  /* per recipient: sent to a relay without DSN, SUCCESS asked */
    RETRY_DECISION
    decision;         /* what its last finalize decided (retry.c), for the log after commit */
    VSTR *commit_log; /* lines its last finalize will log when committed */
    int notices[STATS_NOTICES]; /* notices its last finalize queued, by DSN_KIND */
    QMGR_PEER **reporters;      /* workers whose results for it wait for its commit */
    size_t nreporters;
    QMGR_MESSAGE *done_next; /* on the list of messages to finalize */
};

/*
 * A route: where a recipient's mail goes, as a list of relays to try in
 * order (failover), from transport_maps, sender_dependent_relayhost_maps
 * or relayhost.
 */
typedef struct QMGR_ROUTE {
    char *spec;        /* the relay list as configured */
    QMGR_DEST **dests; /* one destination per relay, in order */
    size_t ndests;
} QMGR_ROUTE;

/* A job: the recipients of one message that go to one destination. */
struct QMGR_JOB {
    long long id;
    QMGR_MESSAGE *message;
    QMGR_DEST *dest;
    QMGR_ROUTE *route;    /* the route the destination was picked from */
    unsigned *rcpt_index; /* indexes into message->rcpts */
    size_t nrcpt;
    QMGR_PEER *worker; /* the worker delivering it, or NULL while queued */
    int probe;         /* sent to a suspended destination to see whether it is back */
    JOBQ_LINK link;    /* in the destination's queue */
};

/*
 * A destination's suspension (suspend.c): it could not be reached, so
 * its mail waits for one probe per interval instead of each message
 * trying a connection of its own. Times are monotonic milliseconds.
 */
typedef struct SUSPEND {
    int active;            /* suspended now */
    long long since_ms;    /* the first failure of this outage */
    long long probe_at_ms; /* the next probe may start then */
    long long interval_ms; /* the wait that led to probe_at_ms */
    int probes_failed;
} SUSPEND;

/* Why a connection closed, as smtpout reports it; the order of stats_reasons[]. */
#define STATS_REASONS 10

/*
 * Recipients' outcomes by DSN class (stats.c): status (sent, deferred,
 * bounced) by class (2, 4, 5) by subject (the second part of the code,
 * 0 to 7; STATS_SUBJECTS - 1 for any other, shown as the class alone),
 * so that the labels stay few whatever relays answer.
 */
#define STATS_STATUSES 3
#define STATS_CLASSES 3
#define STATS_SUBJECTS 9

/* Where new mail came from, as pickup names it (stats.c, stats_sources[]). */
#define STATS_SOURCES 3

/* What qmgr has learned about a destination's connections since it started. */
typedef struct DEST_STATS {
    long long opened; /* new connections */
    long long closed; /* connections that ended */
    long long closed_by[STATS_REASONS];
    long long tls;         /* TLS handshakes */
    long long tls_resumed; /* of which resumed sessions */
    long long auth_ok;
    long long auth_fail;
    long long timeouts;
    long long messages; /* messages with a recipient sent */
    long long rcpt_sent, rcpt_deferred, rcpt_bounced;
    long long rcpt_dsn[STATS_STATUSES][STATS_CLASSES][STATS_SUBJECTS];
    long long throttles; /* throttling signals: replies, or transactions deferred in a row */
    HIST queue_time;     /* us from arrival to delivery, per delivered message */
    HIST xfer_time;      /* us of the SMTP transaction, per delivered message */
    HIST conn_messages;  /* messages a connection carried, when it closed */
} DEST_STATS;

/* What qmgr has counted outside any destination since it started (stats.c). */
typedef struct QMGR_COUNTERS {
    HIST commit_time;                  /* us of a group commit of delivery results */
    HIST commit_batch;                 /* messages finalized by that commit */
    HIST pickup_commit_time;           /* pickup's commits' times (us), as pickup last told */
    HIST pickup_commit_batch;          /* and their new messages */
    long long received[STATS_SOURCES]; /* new messages pickup queued, by source, as it last told */
    long long notices[STATS_NOTICES];  /* notices to senders committed, by DSN_KIND */
} QMGR_COUNTERS;

/*
 * A destination's grants of the shared rate (shared.c): tokens the
 * shared-limits server granted this instance and it has not used yet.
 */
typedef struct QMGR_GRANTS {
    int pending;             /* a grant request in flight */
    int tokens;              /* granted, not used yet */
    long long granted_ms;    /* when they were granted */
    long long not_before_ms; /* the server said: none before then */
    long long daily_left;    /* the daily quota left at the server's last answer */
    int daily_known;         /* daily_left is an answer, not unknown */
    long long fallback_sent; /* messages sent under the daily quota while the server is away */
} QMGR_GRANTS;

/*
 * A destination's leases of a shared concurrency limit (shared.c): each
 * lets one connection of this instance to the relay be open; the server
 * forgets a lease that is not renewed, so a dead instance's slots return.
 */
typedef struct QMGR_LEASES {
    char **ids; /* the leases held */
    int count;
    int pending;             /* an acquisition or renewal in flight */
    char *asking;            /* the id being acquired, or NULL */
    long long not_before_ms; /* refused: ask again then */
    long long renewed_ms;    /* the last renewal */
    long long empty_ms;      /* since when no job waits for the relay, 0: some wait */
} QMGR_LEASES;

/*
 * A destination (next hop): a relay host and port, with its queue of
 * jobs waiting for a worker, its concurrency window and its statistics.
 */
struct QMGR_DEST {
    char *name; /* "host:port" */
    char *host;
    unsigned port;
    int busy;               /* jobs in delivery */
    int limit;              /* concurrency limit */
    JOBQ jobs;              /* waiting for a worker: new mail and the rest in turn */
    double rate_limit;      /* configured messages per second, 0: none */
    double adaptive_rate;   /* learned from throttling replies, 0: none */
    double tokens;          /* token bucket for the rate, at most one */
    long long refill_ms;    /* when tokens were last added */
    long long window_ms;    /* start of the current one-second window */
    int window_count;       /* deliveries in it */
    int last_window_count;  /* deliveries in the one before */
    long long decrease_ms;  /* the last multiplicative decrease */
    int deferrals_slowed;   /* slowed for deferred transactions; none delivered since */
    SUSPEND suspend;        /* down: one probe per interval (suspend.c) */
    char *suspend_reason;   /* the failure that suspended it */
    int held;               /* held back by a shared limit, not down (dest_hold) */
    int auth_held;          /* held back by an AUTH rejection shared by the instances */
    int auth_checking;      /* a look at the shared AUTH state in flight */
    long long auth_free_ms; /* when the server last said its credential may log in */
    char suspend_dsn[12];
    HTABLE *parked;   /* queue ids waiting for the probe (bounded), or NULL */
    HTABLE *released; /* queue ids to make due now after a resume, or NULL */
    int rcpt_limit;   /* most recipients of a message in one job */
    int shared_local; /* "local": its limits stay per instance */
    char *shared_key; /* the name its limits are shared under (shared_key=, or NAME/USER);
                         NULL: its name */
    int limit_shared; /* "concurrency=" in its entry: shared when a server is set */
    int daily;        /* "daily=": messages per rolling 24 h, kept by the server; 0: none */
    QMGR_GRANTS grants;
    QMGR_LEASES leases;
    DEST_STATS stats;
    QMGR_DEST *next;
};

/* What a peer on one of qmgr's sockets turned out to be. */
typedef enum {
    PEER_NEW,    /* connected to private/qmgr, not introduced yet */
    PEER_PICKUP, /* pickup, sending wake-ups */
    PEER_WORKER, /* an smtpout process */
    PEER_CONTROL /* a relayq command on public/control */
} PEER_KIND;

/* The listing a command waits for (list.c). */
typedef enum { LIST_NONE, LIST_TEXT, LIST_JSON } LIST_FORMAT;

/* A connection to qmgr: pickup, an smtpout worker or a command. */
struct QMGR_PEER {
    IPC_CHAN *chan;
    PEER_KIND kind;
    long pid;                /* workers: their process id */
    long uid;                /* the peer's user id (SO_PEERCRED), -1 when unknown */
    LISTENER *listener;      /* the socket it came from, told when it ends */
    QMGR_JOB *job;           /* workers: the job in delivery, or NULL when idle */
    int uncommitted;         /* workers: results of finished messages, not yet committed */
    int reports;             /* workers: results held by active messages (reporters) */
    QMGR_DEST *conn_dest;    /* workers: where their open connection goes, or NULL */
    BULK *bulk;              /* commands: the operation running for it (bulk.c), or NULL */
    LIST_FORMAT list_format; /* commands: waiting for a listing helper (list.c), or LIST_NONE */
    QMGR_PEER *list_next;    /* the next command waiting for one */
    QMGR_PEER *prev, *next;
};

/* qmgr.c: process-wide state. */
extern QSTORE *qmgr_store;
extern HTABLE *qmgr_active;      /* queue id -> QMGR_MESSAGE */
extern SCHED *qmgr_sched;        /* every scheduled message, and when it is due */
extern size_t qmgr_active_rcpts; /* recipients of the active set */
extern QMGR_PEER *qmgr_peers;
extern QMGR_COUNTERS qmgr_counters;     /* figures for relayq stats and the metrics daemon */
extern LIST_HELPERS *qmgr_list_helpers; /* showq processes for other users' listings */
extern int qmgr_resync_wanted;          /* compare the schedule with the queue after this pass */
extern int qmgr_stopping;               /* SIGTERM: no new jobs, exit when idle */
extern SHARED *qmgr_shared;             /* limits shared with other instances, or NULL */
void qmgr_peer_close(QMGR_PEER *peer);

/* dest.c */
QMGR_DEST *dest_find(const char *host, unsigned port);
void dest_suspend(QMGR_DEST *dest, const QMGR_JOB *job, const char *dsn, const char *reason);
void dest_resume(QMGR_DEST *dest);
int dest_suspended(const QMGR_DEST *dest);
int dest_probe_wanted(const QMGR_DEST *dest);
void dest_probe_now(void);
long long dest_probe_time(const QMGR_DEST *dest);
void dest_suspend_text(const QMGR_DEST *dest, VSTR *text);
void dest_park(QMGR_DEST *dest, const char *qid);
void dest_release(void);
void dest_enqueue(QMGR_DEST *dest, QMGR_JOB *job);
QMGR_JOB *dest_dequeue(QMGR_DEST *dest);
QMGR_JOB *dest_peek(const QMGR_DEST *dest);
QMGR_JOB *dest_peek(const QMGR_DEST *dest);
QMGR_DEST *dest_list(void);
QMGR_DEST *dest_by_name(const char *name);
int dest_take_token(QMGR_DEST *dest, long long *wait_ms);
int dest_take_slot(QMGR_DEST *dest, const QMGR_PEER *worker, long long *wait_ms);
void dest_hold(QMGR_DEST *dest, long long wait_ms, const char *reason);
void dest_note_delivery(QMGR_DEST *dest);
void dest_note_throttle(QMGR_DEST *dest);
void dest_note_deferrals(QMGR_DEST *dest);
double dest_rate(const QMGR_DEST *dest);
void dest_init(void);
void dest_reload(void);

/* route.c */
void route_init(void);
int route_reload(void);
QMGR_ROUTE *route_for(const char *sender, const char *rcpt);
QMGR_DEST *route_pick(const QMGR_ROUTE *route);

/* message.c */
QMGR_MESSAGE *message_activate(QSTORE_TXN *txn, const char *qid, int *status);
void message_job_done(QMGR_MESSAGE *message);
int message_finalize_done(void);
void message_free(QMGR_MESSAGE *message);
void message_add_attempt(QMGR_MESSAGE *message, unsigned index, const char *relay);
void message_defer_suspended(QMGR_MESSAGE *message, const QMGR_JOB *job);
int message_done_pending(void);
size_t message_done_count(void);
long long message_done_since_ms(void);
int message_commit_failing(void);
void message_forget_reporter(QMGR_PEER *worker);

/* scan.c */
void scan_load(int initial);
void scan_schedule(void);

/* assign.c */
void assign_jobs(void);
void job_free(QMGR_JOB *job);

/* result.c */
int result_receive(QMGR_PEER *worker, const IPC_REC *rec);
void result_worker_lost(QMGR_PEER *worker);

/* stats.c */
void stats_init(QMGR_COUNTERS *counters);
void stats_dest_init(DEST_STATS *st);
int stats_event(QMGR_PEER *worker, const IPC_REC *rec);
void stats_result(QMGR_DEST *dest, const QMGR_MESSAGE *message, const QMGR_JOB *job,
                  long long xfer_ms);
void stats_commit(QMGR_COUNTERS *counters, long long elapsed_us, int messages);
int stats_pickup_figures(QMGR_COUNTERS *counters, const IPC_REC *rec);
IPC_REC *stats_report(void);

/* bounce.c */
int bounce_wants(const QRCPT *rcpt, DSN_KIND kind);
int bounce_notify(QSTORE_TXN *txn, QMGR_MESSAGE *message, DSN_KIND kind,
                  const unsigned char *include, int expired);

/* The operator's operations on messages (ops.c). */
typedef enum { OPS_HOLD, OPS_RELEASE, OPS_DELETE, OPS_REQUEUE } OPS_KIND;

/*
 * What an operator's request does to each message it reaches: the
 * operation and the selectors that narrow it (ops.c).
 */
typedef struct OPS_SPEC {
    OPS_KIND kind;
    const char *name; /* "hold", "release", "delete", "requeue" */
    char *sender;     /* selectors, NULL when not given */
    char *recipient;
    char *domain;
    long long older_than; /* -1 when not given */
    int queues;           /* QNAME_* mask; 0 when not given */
    long long now;        /* s: when the request came; release and requeue make mail due then */
    int dry_run;          /* change nothing, say what would change */
} OPS_SPEC;

/* ops.c */
int ops_request(QMGR_PEER *peer, const IPC_REC *rec);
int ops_message(const OPS_SPEC *spec, QSTORE_TXN *txn, const char *qid, QMGR_MESSAGE **active);
void ops_apply_active(const OPS_SPEC *spec, QMGR_MESSAGE *message);
void ops_spec_free(OPS_SPEC *spec);

/* A batch size that shrinks on a full map and the failures allowed in a row (batch.c). */
typedef struct BATCH {
    size_t max;   /* the batch size when all is well */
    size_t size;  /* the next batch's size */
    int fail_max; /* failed commits in a row that end the operation */
    int failures; /* failed commits in a row so far */
} BATCH;

/* What gather.c weighs to decide when the waiting results are committed. */
#define GATHER_BATCH 32  /* results that are worth a commit of their own */
#define GATHER_MAX_MS 10 /* the longest a result waits for others */
typedef struct GATHER_VIEW {
    int stopping;
    int commit_failing;      /* the last commit of results failed */
    size_t done;             /* messages whose results wait */
    int worker_at_cap;       /* a worker has QMGR_UNCOMMITTED_MAX results waiting */
    int jobs_in_flight;      /* jobs the workers are delivering */
    long long oldest_age_ms; /* how long the oldest result has waited */
} GATHER_VIEW;

/* gather.c */
long long gather_wait_ms(const GATHER_VIEW *v);

/* batch.c */
void batch_init(BATCH *b, size_t max, int fail_max);
void batch_ok(BATCH *b);
int batch_failed(BATCH *b, int full);

/* bulk.c */
BULK *bulk_create(QMGR_PEER *peer, OPS_SPEC *spec, char **qids, size_t nqids, int want_ids);
void bulk_cancel(BULK *bulk);

/* control.c */
int control_make_due(QSTORE_TXN *txn, const char *qid, long long now);
int control_request(QMGR_PEER *peer, const IPC_REC *rec);
int control_privileged(const QMGR_PEER *peer);

/* suspend.c */
int suspend_is_dead(const char *relay, const char *dsn, const char *reply);
long long suspend_next_interval(long long base_ms, long long prev_ms, long long outage_ms);
int suspend_fail(SUSPEND *s, long long now, long long base_ms, int probe);
long long suspend_resume(SUSPEND *s, long long now);
int suspend_probe_due(const SUSPEND *s, long long now);

/* shared_conn.c */
typedef void (*SHARED_CONN_FN)(void *ctx, const struct redisReply *reply, const char *why);
typedef void (*SHARED_CONN_STATE_FN)(void *ctx, int up, const char *why);
int shared_conn_parse(const char *url, char **host, int *port, char **password, int *db, VSTR *why);
SHARED_CONN *shared_conn_create(const char *url, const char *const *scripts, RESOLVER *resolver,
                                SHARED_CONN_STATE_FN state_fn, void *state_ctx, VSTR *why);
int shared_conn_up(const SHARED_CONN *conn);
int shared_conn_settled(const SHARED_CONN *conn);
int shared_conn_script(SHARED_CONN *conn, int script, SHARED_CONN_FN fn, void *ctx, int nkeys,
                       int argc, const char **argv);
void shared_conn_free(SHARED_CONN *conn);

/* shared.c */
SHARED *shared_create(RESOLVER *resolver);
SHARED *shared_reload(SHARED *sh, RESOLVER *resolver);
void shared_free(SHARED *sh);
int shared_applies(const SHARED *sh, const QMGR_DEST *dest);
const char *shared_dest_key(const QMGR_DEST *dest);
double shared_fallback_share(const SHARED *sh);
int shared_rate_take(SHARED *sh, QMGR_DEST *dest, long long *wait_ms);
void shared_rate_unget(QMGR_DEST *dest);
int shared_daily_fallback(const SHARED *sh, QMGR_DEST *dest);
void shared_stats(const SHARED *sh, const QMGR_DEST *dest, VSTR *line);
void shared_stats_instances(const SHARED *sh, IPC_REC *reply);
void shared_auth_rejected(SHARED *sh, QMGR_DEST *dest);
void shared_auth_ok(SHARED *sh, QMGR_DEST *dest);
int shared_auth_fresh(SHARED *sh, QMGR_DEST *dest, long long *wait_ms);
int shared_lease_take(SHARED *sh, QMGR_DEST *dest, const QMGR_PEER *worker, long long *wait_ms);
int shared_lease_users(const QMGR_DEST *dest, const QMGR_PEER *except);

/* list.c */
LIST_HELPERS *list_helpers_create(const char *config_path);
void list_helpers_free(LIST_HELPERS *helpers);
int list_request(LIST_HELPERS *helpers, QMGR_PEER *peer, const IPC_REC *rec);
void list_cancel(LIST_HELPERS *helpers, QMGR_PEER *peer);

#endif
