/*
 * metrics - relayq's figures for Prometheus, on metrics_listen
 *
 * Usage: metrics [-v] [-c CONFIG_FILE]
 *
 * Master starts this daemon only when metrics_listen is set, as
 * mail_owner like the others, and passes it the socket it bound there as
 * root (descriptor 3, named metrics_listen). On each scrape of /metrics
 * (http.c) the daemon
 *
 *	1. asks qmgr on public/control for its figures (qstats.c: the
 *	   messages in delivery; per destination the connections open, busy
 *	   and idle, the counters and histograms since qmgr started, and
 *	   pickup's figures as pickup last told qmgr), which qmgr answers
 *	   from memory; a qmgr that does not answer within
 *	   METRICS_QMGR_TIMEOUT_MS makes relayq_qmgr_up 0;
 *	   then asks master on public/master for its restarts per daemon
 *	   (qstats_restarts(); no answer: that family has no samples);
 *	2. counts the queue itself in one read transaction (qcount.c), as
 *	   "relayq stats" does: qmgr never walks the queue for a scraper;
 *	3. writes the exposition (expose.c).
 *
 * It runs METRICS_NICE lower than the other daemons: a scrape takes a
 * few milliseconds of CPU, which delivery should not have to share when
 * the machine is busy, and a scraper can wait that long.
 *
 * Ownership: the METRICS state below is main()'s; the queue is opened
 * read-only after exec, never inherited. Failures: no socket from
 * master, a queue that cannot be opened, an HTTP server that cannot
 * start: fatal (master restarts the daemon). A scrape that cannot count
 * the queue or reach qmgr leaves those families out and logs once until
 * it works again.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "mail_proto.h"
#include "metrics.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"

#define METRICS_QMGR_TIMEOUT_MS 2000 /* qmgr must answer a stats request within this */
#define METRICS_NICE 10              /* added to the priority */

/* metrics_page - one scrape: qmgr's figures, the queue's counts, as text */
static void metrics_page(void *ctx, int openmetrics, VSTR *body)
{
    METRICS *metrics = ctx;
    VSTR *why = vstr_alloc(100);
    QCOUNT count;
    QSTATS *stats;
    int counted, rc;

    stats = qstats_ask(metrics->control_path, METRICS_QMGR_TIMEOUT_MS, why);
    if (stats == NULL && !metrics->qmgr_down)
        msg_warn("qmgr gives no figures: %s", vstr_str(why));
    else if (stats != NULL && metrics->qmgr_down)
        msg_info("qmgr gives its figures again");
    metrics->qmgr_down = stats == NULL;
    if (stats != NULL) {
        vstr_reset(why);
        rc = qstats_restarts(stats, metrics->master_path, METRICS_QMGR_TIMEOUT_MS, why);
        if (rc < 0 && !metrics->master_down)
            msg_warn("master gives no restart counts: %s", vstr_str(why));
        metrics->master_down = rc < 0;
    }
    counted = qcount_take(metrics->store, var_str(queue_directory), (long long)time(NULL), &count,
                          why) == 0;
    if (!counted && !metrics->queue_failed)
        msg_warn("cannot count the queue: %s", vstr_str(why));
    metrics->queue_failed = !counted;
    expose_write(body, counted ? &count : NULL, stats, openmetrics);
    if (stats != NULL)
        qstats_free(stats);
    vstr_free(why);
}

/* metrics_prepare - the socket master passed must be there */
static void metrics_prepare(DAEMON *daemon)
{
    if (daemon_listen_fds(daemon) != 1 ||
        strcmp(daemon_listen_fd_name(daemon, 0), "metrics_listen") != 0)
        msg_fatal("no metrics_listen socket from master: metrics runs only under master, "
                  "when metrics_listen is set");
}

/* metrics_init - open the queue read-only and serve */
static void metrics_init(DAEMON *daemon)
{
    METRICS *metrics = daemon_context(daemon);
    VSTR *why = vstr_alloc(100);
    char *db_path;

    errno = 0;
    if (nice(METRICS_NICE) < 0 && errno != 0)
        msg_warn("nice: %m");
    db_path = qdir_path(var_str(queue_directory), QDIR_DB);
    metrics->store = qstore_open(db_path, (size_t)var_int(queue_map_size), QSTORE_READONLY, why);
    if (metrics->store == NULL)
        msg_fatal("%s", vstr_str(why));
    myfree(db_path);
    vstr_free(why);
    metrics->control_path = qdir_path(var_str(queue_directory), SOCK_CONTROL);
    metrics->master_path = qdir_path(var_str(queue_directory), SOCK_MASTER);
    metrics->http = http_create(3, metrics_page, metrics);
    msg_info("daemon started -- version %s, serving /metrics on %s", PACKAGE_VERSION,
             var_str(metrics_listen));
}

/* metrics_stop - SIGTERM: stop serving; the loop then ends */
static void metrics_stop(DAEMON *daemon, int sig)
{
    METRICS *metrics = daemon_context(daemon);

    (void)sig;
    if (metrics->http != NULL) {
        http_free(metrics->http);
        metrics->http = NULL;
    }
}

/* metrics_done - stopped */
static int metrics_done(DAEMON *daemon)
{
    METRICS *metrics = daemon_context(daemon);

    return metrics->http == NULL;
}

/* metrics_finish - release the queue */
static void metrics_finish(DAEMON *daemon)
{
    METRICS *metrics = daemon_context(daemon);

    qstore_close(metrics->store);
    myfree(metrics->control_path);
    myfree(metrics->master_path);
}

/* main - the metrics endpoint */
int main(int argc, char **argv)
{
    static const int params[] = {
        PARAM_ID(queue_directory),
        PARAM_ID(queue_map_size),
        PARAM_ID(metrics_listen),
        -1,
    };
    static const DAEMON_SPEC spec = {
        .name = "metrics",
        .params = params,
        .prepare = metrics_prepare,
        .init = metrics_init,
        .stop = metrics_stop,
        .done = metrics_done,
        .finish = metrics_finish,
        .pass_ms = -1,
    };
    METRICS metrics;

    memset(&metrics, 0, sizeof(metrics));
    return daemon_main(argc, argv, &spec, &metrics);
}
