/*
 * smtpout - relayq's delivery process
 *
 * Usage: smtpout [-v] [-c CONFIG_FILE]   (started by master)
 *
 * main()
 *	smtpout's part of the daemon skeleton (daemon.c): open the queue
 *	and start smtpout_sessions_per_worker workers (worker.c), each one
 *	SMTP session with its own connection to qmgr, all in this process's
 *	one event loop. qmgr gives jobs to workers, not to processes: a
 *	destination's concurrency counts connections. The workers share the
 *	process's resolver (resolve.c: relay names are looked up off the
 *	loop) and its ADDR_CACHE (addr_cache.c: a relay address whose
 *	connection failed is tried last for SMTPOUT_ADDR_TTL, 60 s, so a
 *	black hole costs one smtp_connect_timeout per process and minute).
 *
 * Signals: SIGTERM (and SIGINT) let every worker finish its job in
 * flight, send its result and QUIT; the process exits 0 once the last
 * session closed. SIGHUP re-reads the configuration (daemon.c; on error
 * the old one stays and nothing else is read again), which takes effect
 * for the next job; the credentials file is read again, and a connection
 * whose credential or TLS policy changed is retired before it carries
 * another job. A changed smtpout_sessions_per_worker takes effect when
 * master starts the process again (relayq stop and start).
 *
 * The queue is only read here: qmgr is the one writer of delivery state.
 * A process keeps up to SMTPOUT_MAPPED_MAX of queue pages mapped
 * (qstore.c), eight times the other processes' limit: it reads every
 * body once, and each time the store lets go of its mapped pages they
 * are mapped again, page by page. With the 64 MB of the others, a
 * backlog of 100,000 messages drained 13% slower (bench/drain, 3,002
 * against 3,445 msg/s, medians of 3 in one run); the pages are the page
 * cache's, shared by every process, not the process's own memory.
 *
 * Fatal: a configuration that does not load at start-up, a queue that
 * does not open, a log file that cannot be opened. Everything about
 * qmgr or the relay is recovered from.
 */
#include "config.h"

#include <stdlib.h>

#include "daemon.h"
#include "event.h"
#include "iostuff.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "qstore.h"
#include "smtpout.h"

#define SMTPOUT_EXIT_FLUSH 5000 /* ms to hand the last results to qmgr at exit */
#define SMTPOUT_MAPPED_MAX ((size_t)512 * 1024 * 1024) /* queue pages kept mapped */
#define SMTPOUT_ADDR_TTL 60000 /* ms a relay address that failed is tried last */

/* SMTPOUT models the process: its queue, its workers, and how many have stopped. */
typedef struct SMTPOUT {
    QSTORE *store;
    char *qmgr_path;
    RESOLVER *resolver;     /* relay name lookups off the event loop */
    ADDR_CACHE *addr_cache; /* relay addresses that failed lately, for every session */
    WORKER **workers;
    int count;
    int stopped; /* workers whose session closed for the stop */
    int stopping;
} SMTPOUT;

/* smtpout_worker_stopped - a worker is done; the last one ends the process */
static void smtpout_worker_stopped(void *ctx, WORKER *worker)
{
    SMTPOUT *proc = ctx;
    long long deadline;

    (void)worker;
    if (++proc->stopped < proc->count)
        return;
    deadline = now_ms() + SMTPOUT_EXIT_FLUSH;
    for (int i = 0; i < proc->count; i++)
        worker_flush_results(proc->workers[i], deadline);
    msg_info("stopping");
    exit(0);
}

/* smtpout_stop - SIGTERM: stop after the jobs in flight */
static void smtpout_stop(DAEMON *daemon, int sig)
{
    SMTPOUT *proc = daemon_context(daemon);
    int busy = 0;

    if (proc->stopping)
        return;
    proc->stopping = 1;
    for (int i = 0; i < proc->count; i++)
        busy += worker_busy(proc->workers[i]);
    msg_info("signal %d: stopping%s", sig, busy ? " after the jobs in flight" : "");
    for (int i = 0; i < proc->count; i++)
        worker_stop(proc->workers[i]);
}

/* smtpout_reload - the configuration changed: TLS, credentials and the sessions follow */
static void smtpout_reload(DAEMON *daemon)
{
    SMTPOUT *proc = daemon_context(daemon);

    VSTR *why = vstr_alloc(100);

    /* The table was read at start: a bad one now keeps the old one in force. */
    if (tls_reload(why) < 0)
        msg_warn("reload: smtp_tls_policy_maps %s; keeping the old table", vstr_str(why));
    vstr_free(why);
    auth_reload();
    for (int i = 0; i < proc->count; i++)
        worker_reload(proc->workers[i]);
}

/* smtpout_init - open the queue, start the workers */
static void smtpout_init(DAEMON *daemon)
{
    SMTPOUT *proc = daemon_context(daemon);
    VSTR *why = vstr_alloc(128);
    char *db_path;

    db_path = qdir_path(var_str(queue_directory), QDIR_DB);
    proc->store = qstore_open(db_path, (size_t)var_int(queue_map_size), 0, why);
    if (proc->store == NULL)
        msg_fatal("open queue %s: %s", db_path, vstr_str(why));
    qstore_set_mapped_limit(proc->store, SMTPOUT_MAPPED_MAX);
    myfree(db_path);
    proc->qmgr_path = qdir_path(var_str(queue_directory), SOCK_QMGR);

    if (tls_reload(why) < 0)
        msg_fatal("smtp_tls_policy_maps %s", vstr_str(why));
    vstr_free(why);
    auth_reload();
    proc->resolver = resolve_create();
    proc->addr_cache = addr_cache_create(SMTPOUT_ADDR_TTL);
    proc->count = (int)var_int(smtpout_sessions_per_worker);
    proc->workers = mymalloc(sizeof(*proc->workers) * (size_t)proc->count);
    for (int i = 0; i < proc->count; i++)
        proc->workers[i] = worker_create(proc->store, proc->qmgr_path, proc->resolver,
                                         proc->addr_cache, smtpout_worker_stopped, proc);
}

/* main - the delivery process; it ends by exiting once its last session closed */
int main(int argc, char **argv)
{
    /* The parameters smtpout reads (its own sources; t_param_lists checks). */
    static const int params[] = {
        PARAM_ID(inet_protocols),
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
        PARAM_ID(smtp_mx_address_limit),
        PARAM_ID(smtp_quit_timeout),
        PARAM_ID(smtp_rcpt_timeout),
        PARAM_ID(smtp_sasl_auth_enable),
        PARAM_ID(smtp_sasl_auth_failure_suspend),
        PARAM_ID(smtp_sasl_password_maps),
        PARAM_ID(smtp_starttls_timeout),
        PARAM_ID(smtp_tls_CAfile),
        PARAM_ID(smtp_tls_security_level),
        PARAM_ID(smtp_tls_policy_maps),
        PARAM_ID(smtp_tls_wrappermode),
        PARAM_ID(smtp_use_chunking),
        PARAM_ID(smtpout_sessions_per_worker),
        -1,
    };
    static SMTPOUT proc;
    static const DAEMON_SPEC spec = {
        .name = "smtpout",
        .params = params,
        .init = smtpout_init,
        .reload = smtpout_reload,
        .stop = smtpout_stop,
        .pass_ms = -1,
    };

    return daemon_main(argc, argv, &spec, &proc);
}
