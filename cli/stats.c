/*
 * stats - the queue and the connection pool, as qmgr sees them
 *
 * stats_main()
 *	"relayq stats [-c FILE] [--json]": count the queue (qcount.c: all,
 *	active, due, deferred, on hold, set aside, in maildrop, the oldest
 *	message's age, the map's use; the recipients of all messages and of
 *	those active, as the metrics show them), ask qmgr (public/control) for its
 *	figures and print, per destination, the connections open, busy
 *	and idle, opened and closed (with the reasons), messages per
 *	connection, TLS handshakes and resumptions, AUTH successes and
 *	failures, timeouts, throttling and the rate in force, and the
 *	limits it shares with other instances through shared_limits_server
 *	(rate, concurrency and the leases held here, daily quota and what is
 *	left, the instances counted and the names of the first 16 of them,
 *	whether local shares are in force); the messages
 *	received by source, the notices to senders by kind (failure, delay,
 *	success) and master's restarts per daemon (asked on
 *	public/master); with --json one object on one line, which adds the
 *	recipients by DSN class and qmgr's histograms (time in queue, SMTP
 *	transaction time, messages per connection, commit time and batch),
 *	bounds and sums in seconds as the metrics show them.
 *
 * The queue is counted here, from a read-only transaction, as the
 * metrics daemon counts it, so the two agree and qmgr never walks the
 * queue for either. A user who may not read the queue (only root and
 * mail_owner may) gets qmgr's figures and the active count alone.
 *
 * The reply is checked strictly (qstats.c): every figure must be a
 * number; a malformed reply is EX_PROTOCOL. When qmgr does not listen,
 * the mail system is down: EX_UNAVAILABLE.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>

#include "cli.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qcount.h"
#include "qdir.h"
#include "qstats.h"

#define STATS_TIMEOUT_MS 10000

/* stats_per_connection - messages per connection, one decimal */
static double stats_per_connection(const QSTATS_DEST *dest)
{
    long long conns = qstats_get(dest, "opened");

    /* Connections opened before a qmgr restart still count as one each. */
    if (conns < qstats_get(dest, "open"))
        conns = qstats_get(dest, "open");
    return conns > 0 ? (double)qstats_get(dest, "messages") / (double)conns : 0.0;
}

/* stats_print_instances - "  instances: A, B and N more" */
static void stats_print_instances(const QSTATS *stats, const QSTATS_DEST *d)
{
    long long more = qstats_get(d, "shared_instances") - (long long)stats->ninstance;

    if (stats->ninstance == 0)
        return;
    printf("  instances:");
    for (size_t i = 0; i < stats->ninstance; i++)
        printf("%s %s", i ? "," : "", stats->instances[i]);
    if (more > 0)
        printf(" and %lld more", more);
    printf("\n");
}

/* stats_json_string - a JSON string, escaped */
static void stats_json_string(const char *text)
{
    putchar('"');
    for (const char *cp = text; *cp; cp++)
        if (*cp == '"' || *cp == '\\')
            printf("\\%c", *cp);
        else if ((unsigned char)*cp < 0x20)
            printf("\\u%04x", (unsigned char)*cp);
        else
            putchar(*cp);
    putchar('"');
}

/* stats_print_shared - the limits a destination shares with other instances */
static void stats_print_shared(const QSTATS *stats, const QSTATS_DEST *d)
{
    printf("  shared with %lld instance%s%s:", qstats_get(d, "shared_instances"),
           qstats_get(d, "shared_instances") == 1 ? "" : "s",
           qstats_get(d, "shared_fallback") ? " (server unavailable: local shares)" : "");
    if (qstats_get(d, "shared_rate_milli"))
        printf(" rate %.3g/s;", (double)qstats_get(d, "shared_rate_milli") / 1000.0);
    if (qstats_get(d, "shared_concurrency"))
        printf(" concurrency %lld, %lld leases held here;", qstats_get(d, "shared_concurrency"),
               qstats_get(d, "shared_leases"));
    if (qstats_get(d, "shared_daily")) {
        printf(" daily %lld", qstats_get(d, "shared_daily"));
        if (qstats_get(d, "shared_daily_known"))
            printf(", %lld left", qstats_get(d, "shared_daily_left"));
        printf(";");
    }
    printf("\n");
    stats_print_instances(stats, d);
}

/* stats_text_counts - a label, then "NAME N" pairs separated by commas */
static void stats_text_counts(const char *label, const QSTATS_COUNT *counts, size_t n)
{
    printf("%s", label);
    for (size_t i = 0; i < n; i++)
        printf("%s %s %lld", i ? "," : "", counts[i].name, counts[i].value);
}

/* stats_json_counts - what opens the object, then its "NAME": N members */
static void stats_json_counts(const char *open, const QSTATS_COUNT *counts, size_t n)
{
    printf("%s", open);
    for (size_t i = 0; i < n; i++)
        printf("%s\"%s\": %lld", i ? ", " : "", counts[i].name, counts[i].value);
}

/* stats_print_text - the human-readable report; count NULL: the queue is not readable */
static void stats_print_text(const QSTATS *stats, const QCOUNT *count)
{
    const QSTATS_DEST *dests = stats->dests;
    size_t ndest = stats->ndest;

    if (count == NULL) {
        printf("queue: %lld active (%lld recipients; only root and mail_owner may count the "
               "rest)\n",
               stats->active, stats->active_rcpts);
    } else {
        printf("queue: %lld messages (%lld recipients), %lld active (%lld recipients), %lld "
               "deferred, %lld on hold, %lld set aside, ",
               count->messages, count->recipients, stats->active, stats->active_rcpts,
               count->deferred, count->hold, count->aside);
        if (count->maildrop >= 0)
            printf("%lld in maildrop; ", count->maildrop);
        printf("oldest %lld s; map %lld of %lld bytes used (%.1f%%)\n", count->oldest_age,
               count->map_used, count->map_size,
               count->map_size > 0 ? 100.0 * (double)count->map_used / (double)count->map_size
                                   : 0.0);
    }
    for (size_t i = 0; i < ndest; i++) {
        const QSTATS_DEST *d = dests + i;
        const char *sep = "";

        printf("destination %s\n", d->name);
        if (qstats_get(d, "suspended"))
            printf("  suspended: down for %lld s, next probe in %lld s, %lld messages parked\n",
                   qstats_get(d, "suspended_for"), qstats_get(d, "next_probe_in"),
                   qstats_get(d, "parked"));
        printf("  connections: %lld open (%lld busy, %lld idle), %lld opened, %lld closed\n",
               qstats_get(d, "open"), qstats_get(d, "busy"), qstats_get(d, "idle"),
               qstats_get(d, "opened"), qstats_get(d, "closed"));
        printf("  closed by:  ");
        for (int k = 0; k < d->count; k++)
            if (strncmp(d->keys[k], "closed_", 7) == 0 && d->values[k] > 0) {
                printf("%s %s=%lld", sep, d->keys[k] + 7, d->values[k]);
                sep = ",";
            }
        printf("%s\n", *sep ? "" : " nothing yet");
        printf("  messages: %lld delivered, %.1f per connection; recipients: %lld sent, "
               "%lld deferred, %lld bounced; %lld jobs queued\n",
               qstats_get(d, "messages"), stats_per_connection(d), qstats_get(d, "rcpt_sent"),
               qstats_get(d, "rcpt_deferred"), qstats_get(d, "rcpt_bounced"),
               qstats_get(d, "queued"));
        printf("  tls: %lld handshakes, %lld resumed; auth: %lld ok, %lld failed; timeouts: %lld\n",
               qstats_get(d, "tls"), qstats_get(d, "tls_resumed"), qstats_get(d, "auth_ok"),
               qstats_get(d, "auth_fail"), qstats_get(d, "timeouts"));
        printf("  throttling: %lld signals; rate limit %.3f messages/s (0: none)\n",
               qstats_get(d, "throttles"), (double)qstats_get(d, "rate_milli") / 1000.0);
        if (qstats_get(d, "shared"))
            stats_print_shared(stats, d);
    }
    stats_text_counts("received:", stats->received, stats->nreceived);
    stats_text_counts("\nnotices:", stats->notices, stats->nnotice);
    stats_text_counts("\nrestarts:", stats->restarts, stats->nrestart);
    printf("%s\n", stats->nrestart ? "" : " unknown (master does not answer)");
}

/* stats_print_hist - one histogram as a JSON object, in the metrics' units */
static void stats_print_hist(const QSTATS_HIST *h, int first)
{
    const QSTATS_HIST_KIND *kind = qstats_hist_kind(h->name);
    double divisor = kind != NULL ? kind->divisor : 1;
    VSTR *num = vstr_alloc(32);

    /* Names and destinations are qmgr's words (no quote, no backslash: qstats.c). */
    printf("%s{\"name\": \"%s\", \"metric\": \"%s\", \"destination\": \"%s\", \"count\": %lld",
           first ? "" : ", ", h->name, kind != NULL ? kind->metric : "", h->dest, h->hist.count);
    qstats_number(num, (double)h->hist.sum / divisor);
    printf(", \"sum\": %s, \"buckets\": {", vstr_str(num));
    for (int b = 0; b <= h->hist.nbounds; b++) {
        vstr_reset(num);
        if (b < h->hist.nbounds)
            qstats_number(num, (double)h->hist.bounds[b] / divisor);
        else
            vstr_strcat(num, "+Inf");
        printf("%s\"%s\": %lld", b ? ", " : "", vstr_str(num), hist_cumulative(&h->hist, b));
    }
    printf("}}");
    vstr_free(num);
}

/* stats_print_json - one JSON object on one line; count NULL: the queue is not readable */
static void stats_print_json(const QSTATS *stats, const QCOUNT *count)
{
    const QSTATS_DEST *dests = stats->dests;
    size_t ndest = stats->ndest;

    printf("{\"queue\": {\"active\": %lld, \"active_recipients\": %lld", stats->active,
           stats->active_rcpts);
    if (count != NULL)
        printf(", \"messages\": %lld, \"recipients\": %lld, \"due\": %lld, \"deferred\": %lld, "
               "\"hold\": %lld, "
               "\"aside\": %lld, \"maildrop\": %lld, \"oldest_age\": %lld, \"map_used\": %lld, "
               "\"map_size\": %lld",
               count->messages, count->recipients, count->due, count->deferred, count->hold,
               count->aside, count->maildrop, count->oldest_age, count->map_used, count->map_size);
    printf("}, \"destinations\": [");
    for (size_t i = 0; i < ndest; i++) {
        const QSTATS_DEST *d = dests + i;

        /* Destination names are host:port, checked by qmgr: no quoting needed
         * beyond what a host name can hold, but escape anyway. */
        printf("%s{\"name\": \"", i ? ", " : "");
        for (const char *cp = d->name; *cp; cp++)
            printf(*cp == '"' || *cp == '\\' ? "\\%c" : "%c", *cp);
        printf("\"");
        for (int k = 0; k < d->count; k++)
            printf(", \"%s\": %lld", d->keys[k], d->values[k]);
        printf(", \"messages_per_connection\": %.1f, \"rate_limit\": %.3f", stats_per_connection(d),
               (double)qstats_get(d, "rate_milli") / 1000.0);
        if (qstats_get(d, "shared")) {
            printf(", \"shared_instance_names\": [");
            for (size_t n = 0; n < stats->ninstance; n++) {
                printf("%s", n ? ", " : "");
                stats_json_string(stats->instances[n]);
            }
            printf("]");
        }
        printf("}");
    }
    stats_json_counts("], \"received\": {", stats->received, stats->nreceived);
    stats_json_counts("}, \"notices\": {", stats->notices, stats->nnotice);
    stats_json_counts("}, \"restarts\": {", stats->restarts, stats->nrestart);
    printf("}, \"histograms\": [");
    for (size_t i = 0; i < stats->nhist; i++)
        stats_print_hist(stats->hists + i, i == 0);
    printf("]}\n");
}

/* stats_count - the queue's counts, read here; NULL when this user may not read the queue */
static QCOUNT *stats_count(QCOUNT *count)
{
    char *dbdir = qdir_path(var_str(queue_directory), QDIR_DB);
    char *datafile = qdir_path(dbdir, "data.mdb");
    VSTR *why = vstr_alloc(100);
    QCOUNT *result = NULL;
    QSTORE *store;
    struct stat st;

    if (stat(datafile, &st) < 0 && errno == ENOENT) {
        memset(count, 0, sizeof(*count)); /* no queue yet: nothing in it */
        result = count;
    } else if ((store = qstore_open(dbdir, (size_t)var_int(queue_map_size), QSTORE_READONLY,
                                    why)) != NULL) {
        if (qcount_take(store, var_str(queue_directory), (long long)time(NULL), count, why) < 0)
            msg_fatal_status(EX_IOERR, "cannot count the queue: %s", vstr_str(why));
        qstore_close(store);
        result = count;
    }
    vstr_free(why);
    myfree(datafile);
    myfree(dbdir);
    return result;
}

/* stats_main - "relayq stats [-c FILE] [--json]" */
int stats_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {0, 0, 0, 0}};
    IPC_REC *req = ipc_rec_create("stats"), *reply = NULL;
    VSTR *why = vstr_alloc(100);
    const char *config = NULL;
    char *master;
    QCOUNT count_buf, *count;
    QSTATS *stats;
    int json = 0, ch;

    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            relayq_usage("stats", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("stats", NULL);
    relayq_load_config(config);
    relayq_read_as_mail_owner();

    reply = control_qmgr(req, "stats request", STATS_TIMEOUT_MS);
    if ((stats = qstats_parse(reply, why)) == NULL)
        msg_fatal_status(EX_PROTOCOL, "unexpected reply from qmgr: %s", vstr_str(why));
    /* Master's restarts per daemon, as the metrics daemon asks for them; none when it is silent. */
    master = qdir_path(var_str(queue_directory), SOCK_MASTER);
    if (qstats_restarts(stats, master, STATS_TIMEOUT_MS, why) < 0)
        msg_warn("master gives no restart counts: %s", vstr_str(why));
    myfree(master);
    count = stats_count(&count_buf);
    if (json)
        stats_print_json(stats, count);
    else
        stats_print_text(stats, count);
    qstats_free(stats);
    ipc_rec_free(reply);
    ipc_rec_free(req);
    vstr_free(why);
    return 0;
}
