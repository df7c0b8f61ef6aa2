/*
 * expose - relayq's figures in the Prometheus text format, or OpenMetrics
 *
 * expose_write()
 *	append to `out` the exposition of one scrape: the queue's counts
 *	(NULL: the queue could not be read; its families are left out;
 *	messages by state, recipients in all and in delivery), and
 *	qmgr's figures (NULL: qmgr did not answer; relayq_qmgr_up says 0 and
 *	the per-destination families are left out). With openmetrics, the
 *	OpenMetrics 1.0 text: a counter's family is named without its
 *	"_total" (its samples keep it), and "# EOF" ends the text.
 *
 * Names follow Prometheus's conventions: the relayq_ prefix, base units
 * (seconds, bytes), "_total" on counters, labels of bounded cardinality
 * only (destination, which comes from the configuration, state, status,
 * reason; never a queue id or an address). Every family has # HELP and
 * # TYPE, and its samples follow together. Label values are escaped (\\,
 * \" and \n) although a destination is host:port: the text must stay
 * well-formed whatever qmgr sends.
 *
 * Besides the per-destination counters and gauges: the rate in force
 * (sent in thousandths), the recipients by DSN class, qmgr's histograms
 * (hist.c; bounds and sums shown in the base unit, qstats_hist_kinds[]),
 * the new messages by source, the notices to senders by kind, and
 * master's restarts per daemon. The limits shared with other instances
 * (relayq_shared_*) show only for the destinations that share some, and
 * only the limits set; which instances share them is a count, never a
 * label, so that the labels stay bounded.
 *
 * The caller owns `out`; nothing here fails.
 */
#include "config.h"

#include <string.h>

#include "metrics.h"

#define EXPOSE_KEYS_MAX 3 /* the most figures one family takes from a destination */

/* A per-destination family: the figures of qmgr's dest record it shows. */
typedef struct EXPOSE_FAMILY {
    const char *name; /* without "_total" */
    const char *type; /* "counter" or "gauge" */
    const char *help;
    const char *label;                         /* the second label's name, or NULL */
    const char *keys[EXPOSE_KEYS_MAX];         /* figures of the dest record */
    const char *label_values[EXPOSE_KEYS_MAX]; /* the second label's value for each */
    const char *prefix;                        /* instead of keys: every figure PREFIXreason */
    double divisors[EXPOSE_KEYS_MAX];          /* 0: the figure as it is; else divided by this */
    const char *only;                  /* a figure that must be non-zero, or NULL: every dest */
    const char *when[EXPOSE_KEYS_MAX]; /* per key: a figure that must be non-zero, or NULL */
} EXPOSE_FAMILY;

static const EXPOSE_FAMILY expose_dest_families[] = {
    {.name = "relayq_messages_delivered",
     .type = "counter",
     .help = "Messages of which the destination accepted at least one recipient.",
     .keys = {"messages"}},
    {.name = "relayq_recipients",
     .type = "counter",
     .help = "Recipients by the outcome of their delivery attempt.",
     .label = "status",
     .keys = {"rcpt_sent", "rcpt_deferred", "rcpt_bounced"},
     .label_values = {"sent", "deferred", "bounced"}},
    {.name = "relayq_connections",
     .type = "gauge",
     .help = "Connections to the destination now, by state.",
     .label = "state",
     .keys = {"open", "busy", "idle"},
     .label_values = {"open", "busy", "idle"}},
    {.name = "relayq_connections_opened",
     .type = "counter",
     .help = "Connections opened to the destination.",
     .keys = {"opened"}},
    {.name = "relayq_connections_closed",
     .type = "counter",
     .help = "Connections closed, by reason.",
     .label = "reason",
     .prefix = "closed_"},
    {.name = "relayq_tls_handshakes",
     .type = "counter",
     .help = "TLS handshakes completed with the destination.",
     .keys = {"tls"}},
    {.name = "relayq_tls_resumptions",
     .type = "counter",
     .help = "TLS handshakes that resumed a session.",
     .keys = {"tls_resumed"}},
    {.name = "relayq_auth_successes",
     .type = "counter",
     .help = "SMTP AUTH exchanges the destination accepted.",
     .keys = {"auth_ok"}},
    {.name = "relayq_auth_failures",
     .type = "counter",
     .help = "SMTP AUTH exchanges the destination refused.",
     .keys = {"auth_fail"}},
    {.name = "relayq_timeouts",
     .type = "counter",
     .help = "Commands the destination did not answer in time.",
     .keys = {"timeouts"}},
    {.name = "relayq_destination_jobs_queued",
     .type = "gauge",
     .help = "Delivery jobs waiting for a worker.",
     .keys = {"queued"}},
    {.name = "relayq_destination_suspended",
     .type = "gauge",
     .help = "Whether delivery to the destination is suspended until a probe succeeds.",
     .keys = {"suspended"}},
    {.name = "relayq_destination_parked_messages",
     .type = "gauge",
     .help = "Messages parked while the destination is suspended.",
     .keys = {"parked"}},
    {.name = "relayq_throttle_events",
     .type = "counter",
     .help = "Throttling signals from the destination: a reply asking to slow down, or "
             "transactions deferred in a row.",
     .keys = {"throttles"}},
    {.name = "relayq_destination_rate_limit",
     .type = "gauge",
     .help = "Messages per second the destination is held to now (configured or learned from "
             "throttling); 0: no limit.",
     .keys = {"rate_milli"},
     .divisors = {1000}},
    /* The limits shared with other instances (qmgr/shared.c), for the
     * destinations that share some; a limit that is not set is left out. */
    {.name = "relayq_shared_limit",
     .type = "gauge",
     .help = "A limit the destination shares with other relayq instances through "
             "shared_limits_server: rate in messages per second, concurrency in connections at "
             "once, daily in messages per rolling 24 hours.",
     .label = "limit",
     .keys = {"shared_rate_milli", "shared_concurrency", "shared_daily"},
     .label_values = {"rate", "concurrency", "daily"},
     .divisors = {1000},
     .only = "shared",
     .when = {"shared_rate_milli", "shared_concurrency", "shared_daily"}},
    {.name = "relayq_shared_limit_used",
     .type = "gauge",
     .help = "Use of a shared limit: concurrency, the leases this instance holds; daily, the "
             "messages every instance sent in the window, at the server's last answer.",
     .label = "limit",
     .keys = {"shared_leases", "shared_daily_used"},
     .label_values = {"concurrency", "daily"},
     .only = "shared",
     .when = {"shared_concurrency", "shared_daily_known"}},
    {.name = "relayq_shared_daily_remaining",
     .type = "gauge",
     .help = "Messages the shared daily quota still allows in the window, at the server's last "
             "answer.",
     .keys = {"shared_daily_left"},
     .only = "shared",
     .when = {"shared_daily_known"}},
    {.name = "relayq_shared_instances",
     .type = "gauge",
     .help = "relayq instances that share the destination's limits, as the server last counted "
             "them.",
     .keys = {"shared_instances"},
     .only = "shared"},
    {.name = "relayq_shared_fallback",
     .type = "gauge",
     .help = "Whether the shared limits server is unavailable and this instance applies its "
             "local share of each limit.",
     .keys = {"shared_fallback"},
     .only = "shared"},
};

/* expose_escape - a label value, escaped for the exposition formats */
static void expose_escape(VSTR *out, const char *value)
{
    for (const char *cp = value; *cp; cp++) {
        if (*cp == '\\')
            vstr_strcat(out, "\\\\");
        else if (*cp == '"')
            vstr_strcat(out, "\\\"");
        else if (*cp == '\n')
            vstr_strcat(out, "\\n");
        else
            vstr_addch(out, *cp);
    }
}

/* expose_head - the HELP and TYPE lines of a family */
static void expose_head(VSTR *out, const char *name, const char *type, const char *help,
                        int openmetrics)
{
    const char *suffix = strcmp(type, "counter") == 0 && !openmetrics ? "_total" : "";

    vstr_sprintf_append(out, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix,
                        type);
}

/* expose_sample_start - "NAME{" or "NAME_total{" */
static void expose_sample_start(VSTR *out, const char *name, const char *type)
{
    vstr_sprintf_append(out, "%s%s{", name, strcmp(type, "counter") == 0 ? "_total" : "");
}

/* expose_dest_sample - one sample of a per-destination family */
static void expose_dest_sample(VSTR *out, const EXPOSE_FAMILY *family, const char *dest,
                               const char *label_value, long long value, double divisor)
{
    expose_sample_start(out, family->name, family->type);
    vstr_strcat(out, "destination=\"");
    expose_escape(out, dest);
    vstr_addch(out, '"');
    if (family->label != NULL) {
        vstr_sprintf_append(out, ",%s=\"", family->label);
        expose_escape(out, label_value);
        vstr_addch(out, '"');
    }
    vstr_strcat(out, "} ");
    if (divisor > 0)
        qstats_number(out, (double)value / divisor);
    else
        vstr_sprintf_append(out, "%lld", value);
    vstr_addch(out, '\n');
}

/* expose_dest_family - one family over every destination */
static void expose_dest_family(VSTR *out, const EXPOSE_FAMILY *family, const QSTATS *stats,
                               int openmetrics)
{
    size_t plen = family->prefix ? strlen(family->prefix) : 0;

    expose_head(out, family->name, family->type, family->help, openmetrics);
    for (size_t i = 0; i < stats->ndest; i++) {
        const QSTATS_DEST *dest = stats->dests + i;

        if (family->only != NULL && qstats_get(dest, family->only) == 0)
            continue;
        if (family->prefix != NULL) {
            for (int k = 0; k < dest->count; k++)
                if (strncmp(dest->keys[k], family->prefix, plen) == 0 && dest->keys[k][plen])
                    expose_dest_sample(out, family, dest->name, dest->keys[k] + plen,
                                       dest->values[k], 0);
            continue;
        }
        for (int k = 0; k < EXPOSE_KEYS_MAX && family->keys[k] != NULL; k++)
            if (family->when[k] == NULL || qstats_get(dest, family->when[k]) != 0)
                expose_dest_sample(out, family, dest->name, family->label_values[k],
                                   qstats_get(dest, family->keys[k]), family->divisors[k]);
    }
}

/* expose_gauge - a family of one unlabelled gauge */
static void expose_gauge(VSTR *out, const char *name, const char *help, long long value,
                         int openmetrics)
{
    expose_head(out, name, "gauge", help, openmetrics);
    vstr_sprintf_append(out, "%s %lld\n", name, value);
}

/* expose_queue - the queue's families */
static void expose_queue(VSTR *out, const QCOUNT *count, const QSTATS *stats, int openmetrics)
{
    long long active = stats != NULL ? stats->active : 0;
    const struct {
        const char *state;
        long long value;
    } states[] = {
        {"active", active},
        /* Due mail that no worker has yet; the active mail is due mail too. */
        {"waiting", count->due > active ? count->due - active : 0},
        {"deferred", count->deferred},
        {"hold", count->hold},
        {"aside", count->aside},
        {"maildrop", count->maildrop},
    };

    expose_head(out, "relayq_queue_messages", "gauge",
                "Messages in the queue by state; maildrop: submissions not yet picked up.",
                openmetrics);
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (states[i].value >= 0 && (stats != NULL || strcmp(states[i].state, "active") != 0))
            vstr_sprintf_append(out, "relayq_queue_messages{state=\"%s\"} %lld\n", states[i].state,
                                states[i].value);
    /* Recipients: all from the queue's own count, active from qmgr. The
     * other states would need every message's recipients read at each
     * scrape, so they are not split (doc/internals.md). */
    expose_head(out, "relayq_queue_recipients", "gauge",
                "Recipients in the queue: all (of every message in the queue, set aside or not; "
                "one already delivered or bounced counts until its message leaves), active (of "
                "the messages in delivery).",
                openmetrics);
    vstr_sprintf_append(out, "relayq_queue_recipients{state=\"all\"} %lld\n", count->recipients);
    if (stats != NULL)
        vstr_sprintf_append(out, "relayq_queue_recipients{state=\"active\"} %lld\n",
                            stats->active_rcpts);
    expose_gauge(out, "relayq_queue_oldest_message_age_seconds",
                 "Age of the oldest message in the queue (0: the queue is empty).",
                 count->oldest_age, openmetrics);
    expose_gauge(out, "relayq_queue_map_used_bytes", "Bytes of the queue's LMDB map in use.",
                 count->map_used, openmetrics);
    expose_gauge(out, "relayq_queue_map_size_bytes",
                 "Size of the queue's LMDB map (queue_map_size).", count->map_size, openmetrics);
    expose_head(out, "relayq_queue_map_used_ratio", "gauge",
                "Share of the queue's LMDB map in use; new mail waits in maildrop when it is full.",
                openmetrics);
    vstr_sprintf_append(out, "relayq_queue_map_used_ratio %.6f\n",
                        count->map_size > 0 ? (double)count->map_used / (double)count->map_size
                                            : 0.0);
}

/* expose_labelled - "METRIC{LABEL="VALUE"": a sample's start, the rest to the caller */
static void expose_labelled(VSTR *out, const char *metric, const char *label, const char *value)
{
    vstr_sprintf_append(out, "%s{%s=\"", metric, label);
    expose_escape(out, value);
    vstr_addch(out, '"');
}

/* expose_dsn - recipients by outcome and DSN class: the dest figures rcpt_STATUS_CLASS */
static void expose_dsn(VSTR *out, const QSTATS *stats, int openmetrics)
{
    static const char *const statuses[] = {"sent_", "deferred_", "bounced_"};

    expose_head(out, "relayq_recipients_dsn", "counter",
                "Recipients by the outcome of their delivery attempt and the class of its DSN "
                "code (class.subject, or the class alone).",
                openmetrics);
    for (size_t i = 0; i < stats->ndest; i++) {
        const QSTATS_DEST *dest = stats->dests + i;

        for (int k = 0; k < dest->count; k++) {
            const char *key = dest->keys[k];

            if (strncmp(key, "rcpt_", 5) != 0)
                continue;
            for (size_t st = 0; st < sizeof(statuses) / sizeof(statuses[0]); st++) {
                size_t len = strlen(statuses[st]);

                if (strncmp(key + 5, statuses[st], len) != 0 || key[5 + len] == '\0')
                    continue;
                expose_labelled(out, "relayq_recipients_dsn_total", "destination", dest->name);
                vstr_sprintf_append(out, ",status=\"%.*s\",dsn_class=\"", (int)len - 1,
                                    statuses[st]);
                expose_escape(out, key + 5 + len);
                vstr_sprintf_append(out, "\"} %lld\n", dest->values[k]);
            }
        }
    }
}

/* expose_hist_labels - the name and labels of one line of a histogram:
 * NAME_SUFFIX{destination=..,le=..} */
static void expose_hist_labels(VSTR *out, const char *metric, const char *suffix,
                               const QSTATS_HIST *h, const char *le)
{
    const char *sep = "";

    vstr_sprintf_append(out, "%s%s", metric, suffix);
    if (*h->dest == '\0' && le == NULL)
        return;
    vstr_addch(out, '{');
    if (*h->dest) {
        vstr_strcat(out, "destination=\"");
        expose_escape(out, h->dest);
        vstr_addch(out, '"');
        sep = ",";
    }
    if (le != NULL)
        vstr_sprintf_append(out, "%sle=\"%s\"", sep, le);
    vstr_addch(out, '}');
}

/* expose_hists - every histogram qmgr sent, family by family */
static void expose_hists(VSTR *out, const QSTATS *stats, int openmetrics)
{
    VSTR *le = vstr_alloc(32);

    for (const QSTATS_HIST_KIND *kind = qstats_hist_kinds; kind->name; kind++) {
        expose_head(out, kind->metric, "histogram", kind->help, openmetrics);
        for (size_t i = 0; i < stats->nhist; i++) {
            const QSTATS_HIST *h = stats->hists + i;

            if (strcmp(h->name, kind->name) != 0)
                continue;
            for (int b = 0; b <= h->hist.nbounds; b++) {
                vstr_reset(le);
                if (b < h->hist.nbounds)
                    qstats_number(le, (double)h->hist.bounds[b] / kind->divisor);
                else
                    vstr_strcat(le, "+Inf");
                expose_hist_labels(out, kind->metric, "_bucket", h, vstr_str(le));
                vstr_sprintf_append(out, " %lld\n", hist_cumulative(&h->hist, b));
            }
            expose_hist_labels(out, kind->metric, "_sum", h, NULL);
            vstr_addch(out, ' ');
            qstats_number(out, (double)h->hist.sum / kind->divisor);
            vstr_addch(out, '\n');
            expose_hist_labels(out, kind->metric, "_count", h, NULL);
            vstr_sprintf_append(out, " %lld\n", h->hist.count);
        }
    }
    vstr_free(le);
}

/* expose_counts - a counter family of one label over named counts */
static void expose_counts(VSTR *out, const char *name, const char *label, const char *help,
                          const QSTATS_COUNT *counts, size_t n, int openmetrics)
{
    VSTR *metric = vstr_alloc(64);

    vstr_sprintf(metric, "%s_total", name);
    expose_head(out, name, "counter", help, openmetrics);
    for (size_t i = 0; i < n; i++) {
        expose_labelled(out, vstr_str(metric), label, counts[i].name);
        vstr_sprintf_append(out, "} %lld\n", counts[i].value);
    }
    vstr_free(metric);
}

/* expose_write - one scrape's exposition */
void expose_write(VSTR *out, const QCOUNT *count, const QSTATS *stats, int openmetrics)
{
    expose_head(out, "relayq_build_info", "gauge", "The relayq version that runs; always 1.",
                openmetrics);
    vstr_strcat(out, "relayq_build_info{version=\"");
    expose_escape(out, PACKAGE_VERSION);
    vstr_strcat(out, "\"} 1\n");
    expose_gauge(out, "relayq_qmgr_up", "Whether qmgr answered this scrape's request for figures.",
                 stats != NULL, openmetrics);
    if (count != NULL)
        expose_queue(out, count, stats, openmetrics);
    if (stats != NULL) {
        for (size_t i = 0; i < sizeof(expose_dest_families) / sizeof(expose_dest_families[0]); i++)
            expose_dest_family(out, expose_dest_families + i, stats, openmetrics);
        expose_dsn(out, stats, openmetrics);
        expose_hists(out, stats, openmetrics);
        expose_counts(out, "relayq_messages_received", "source",
                      "New messages queued, by how they came (maildrop: a file of the sendmail "
                      "command; sendmail: handed over to pickup; smtp: an SMTP client).",
                      stats->received, stats->nreceived, openmetrics);
        expose_counts(out, "relayq_dsn_notices", "kind",
                      "Delivery status notices queued to senders, by kind (failure: bounced or "
                      "expired recipients; delay: still retried; success: relayed without DSN), "
                      "counted once their transaction committed.",
                      stats->notices, stats->nnotice, openmetrics);
        expose_counts(out, "relayq_daemon_restarts", "daemon",
                      "Times master started a daemon again after it ended (from master's status; "
                      "absent when master does not answer).",
                      stats->restarts, stats->nrestart, openmetrics);
    }
    if (openmetrics)
        vstr_strcat(out, "# EOF\n");
}
