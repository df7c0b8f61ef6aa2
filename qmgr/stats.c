/*
 * stats - what qmgr knows about the connection pool, for relayq stats
 *
 * stats_event()
 *	apply a worker's `conn` record (doc/internals.md): a connection
 *	opened, held across a qmgr restart, closed (with its reason), a TLS
 *	handshake, an AUTH success or failure, a timeout. It also tells qmgr
 *	where the worker's connection goes, which job assignment uses to
 *	prefer a worker already connected to a destination. A malformed
 *	record is a protocol error (-1).
 * stats_init(), stats_dest_init()
 *	empty figures, with the histograms' bucket bounds: qmgr's own
 *	(commit time and batch size) and a destination's.
 * stats_result()
 *	count a finished job's recipients per outcome and per DSN class
 *	("5.1": the class and the subject of the code, or the class alone
 *	when the subject is not one of RFC 3463's), and the message when at
 *	least one recipient was sent: then its time in the queue (from its
 *	arrival) and, when the worker reported it (xfer_ms >= 0), the time
 *	of the SMTP transaction go to the destination's histograms.
 * stats_commit()
 *	a group commit of delivery results: its time and its messages.
 * stats_pickup_figures()
 *	take pickup's figures from one of its records (every `queued` and
 *	`wakeup` carries them whole: "received=SOURCE N", "commit_time=HIST",
 *	"commit_batch=HIST"): they replace what an earlier record said.
 *	Malformed figures are a protocol error (-1), and change nothing.
 * stats_report()
 *	the reply to a `stats` request: the messages in delivery and their
 *	recipients (active_rcpts: every recipient of those messages, as
 *	qmgr_active_rcpts counts them, those done in an earlier attempt
 *	too), and per destination the open, busy and idle connections (from the
 *	workers' state now) and the counters since qmgr started, and whether
 *	it is suspended (dest.c): suspended=1, suspended_for (seconds),
 *	next_probe_in (seconds), parked (messages waiting for the probe);
 *	the throttling signals and the rate in force (rate_milli: thousandths
 *	of a message per second, 0: none), and the recipients by DSN class
 *	(rcpt_STATUS_CLASS, only those seen). Then the histograms, one
 *	"hist=NAME DEST ENCODED" each (hist.c; DEST "-" for qmgr's own), and
 *	the new messages by source, "received=SOURCE N", and the notices
 *	to senders whose commit succeeded (bounce.c, message.c), by kind,
 *	"notices=KIND N" (failure, delay, success: always all three).
 *
 * The queue's other counts (deferred, on hold, ...) are not here: the
 * asker reads them from the queue itself (qcount.c), so that asking,
 * however often, never makes qmgr walk the queue.
 *
 * Counters live in memory and start again at zero when qmgr restarts;
 * open/busy/idle are always current because workers re-announce their
 * connections (`held`) when they reconnect.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "qmgr.h"
#include "qstats.h"

/* The close reasons smtpout reports, in DEST_STATS.closed_by order. */
static const char *const stats_reasons[STATS_REASONS] = {
    "reuse_count", "reuse_time", "idle",   "server_421", "server_close",
    "error",       "stop",       "switch", "reload",     "deferrals",
};

/* Recipient outcomes, in DEST_STATS.rcpt_dsn order, and the DSN classes. */
static const char *const stats_statuses[STATS_STATUSES] = {"sent", "deferred", "bounced"};
static const char stats_classes[STATS_CLASSES] = {'2', '4', '5'};

/* Where new mail comes from, in QMGR_COUNTERS.received order; pickup names them so. */
static const char *const stats_sources[STATS_SOURCES] = {"maildrop", "sendmail", "smtp"};

/* The notices to senders, in DSN_KIND order (QMGR_COUNTERS.notices). */
static const char *const stats_notices[STATS_NOTICES] = {"failure", "delay", "success"};

/* Histogram bounds: microseconds, or messages. */
#define S(n) ((long long)((n)*1000000.0))
static const long long stats_queue_time_bounds[] = {
    S(0.1), S(0.25), S(0.5), S(1),   S(2.5),  S(5),     S(10),
    S(30),  S(60),   S(300), S(900), S(3600), S(14400), S(86400),
};
static const long long stats_xfer_time_bounds[] = {
    S(0.001), S(0.0025), S(0.005), S(0.01), S(0.025), S(0.05), S(0.1),
    S(0.25),  S(0.5),    S(1),     S(2.5),  S(5),     S(10),   S(30),
};
#undef S
static const long long stats_conn_bounds[] = {1,   2,   5,    10,   20,   50,   100,
                                              200, 500, 1000, 2000, 5000, 10000};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* stats_init - qmgr's own figures, empty */
void stats_init(QMGR_COUNTERS *counters)
{
    memset(counters, 0, sizeof(*counters));
    hist_init(&counters->commit_time, qstats_commit_us_bounds, qstats_commit_us_nbounds);
    hist_init(&counters->commit_batch, qstats_batch_bounds, qstats_batch_nbounds);
    hist_init(&counters->pickup_commit_time, qstats_commit_us_bounds, qstats_commit_us_nbounds);
    hist_init(&counters->pickup_commit_batch, qstats_batch_bounds, qstats_batch_nbounds);
}

/* stats_dest_init - a destination's figures, empty */
void stats_dest_init(DEST_STATS *st)
{
    memset(st, 0, sizeof(*st));
    hist_init(&st->queue_time, stats_queue_time_bounds, NELEM(stats_queue_time_bounds));
    hist_init(&st->xfer_time, stats_xfer_time_bounds, NELEM(stats_xfer_time_bounds));
    hist_init(&st->conn_messages, stats_conn_bounds, NELEM(stats_conn_bounds));
}

/* stats_source_index - the slot of a source of new mail, or -1 */
static int stats_source_index(const char *source)
{
    for (int i = 0; i < STATS_SOURCES; i++)
        if (strcmp(stats_sources[i], source) == 0)
            return i;
    return -1;
}

/* stats_commit - a group commit of delivery results */
void stats_commit(QMGR_COUNTERS *counters, long long elapsed_us, int messages)
{
    hist_observe(&counters->commit_time, elapsed_us);
    hist_observe(&counters->commit_batch, messages);
}

/* stats_pickup_figures - pickup's figures, whole, from any record of pickup's; 0 or -1 */
int stats_pickup_figures(QMGR_COUNTERS *counters, const IPC_REC *rec)
{
    QMGR_COUNTERS got = *counters;
    VSTR *why = vstr_alloc(100);
    char source[16];
    long long n;
    int len, slot, ret = 0;

    for (size_t i = 1; ret == 0 && i < rec->count; i++) {
        const char *name = rec->attrs[i].name, *value = rec->attrs[i].value;

        len = 0;
        if (strcmp(name, "commit_time") == 0)
            ret = hist_decode(&got.pickup_commit_time, value, why);
        else if (strcmp(name, "commit_batch") == 0)
            ret = hist_decode(&got.pickup_commit_batch, value, why);
        else if (strcmp(name, "received") != 0)
            continue;
        else if (sscanf(value, "%15[a-z] %lld%n", source, &n, &len) != 2 || value[len] != '\0' ||
                 n < 0 || (slot = stats_source_index(source)) < 0)
            ret = -1;
        else
            got.received[slot] = n;
    }
    if (ret < 0)
        msg_warn("bad figures from pickup: %s", vstr_len(why) ? vstr_str(why) : "received");
    else
        *counters = got;
    vstr_free(why);
    return ret;
}

/* stats_reason_index - the slot of a close reason, or -1 */
static int stats_reason_index(const char *reason)
{
    for (int i = 0; i < STATS_REASONS; i++)
        if (strcmp(stats_reasons[i], reason) == 0)
            return i;
    return -1;
}

/* stats_event - apply a worker's connection event */
int stats_event(QMGR_PEER *worker, const IPC_REC *rec)
{
    VSTR *why = vstr_alloc(100);
    const char *event, *reason;
    QMGR_DEST *dest;
    DEST_STATS *st;
    long long carried = -1;
    int slot;

    if (ipc_rec_check(rec, "event,dest", "reason,messages,resumed", why) < 0) {
        msg_warn("worker pid %ld: %s", worker->pid, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    if (ipc_rec_get(rec, "messages") != NULL &&
        ipc_rec_get_long(rec, "messages", 0, 1LL << 40, &carried, why) < 0) {
        msg_warn("worker pid %ld: %s", worker->pid, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    vstr_free(why);
    event = ipc_rec_get(rec, "event");
    if ((dest = dest_by_name(ipc_rec_get(rec, "dest"))) == NULL) {
        msg_warn("worker pid %ld: bad destination in conn record", worker->pid);
        return -1;
    }
    st = &dest->stats;
    if (strcmp(event, "open") == 0) {
        st->opened++;
        worker->conn_dest = dest;
    } else if (strcmp(event, "held") == 0) {
        worker->conn_dest = dest;
    } else if (strcmp(event, "close") == 0) {
        reason = ipc_rec_get(rec, "reason");
        if (reason == NULL || (slot = stats_reason_index(reason)) < 0) {
            msg_warn("worker pid %ld: close event without a known reason", worker->pid);
            return -1;
        }
        st->closed++;
        st->closed_by[slot]++;
        if (carried >= 0)
            hist_observe(&st->conn_messages, carried);
        /* Transaction after transaction refused for now: the relay is loaded. */
        if (strcmp(reason, "deferrals") == 0)
            dest_note_deferrals(dest);
        if (worker->conn_dest == dest)
            worker->conn_dest = NULL;
    } else if (strcmp(event, "tls") == 0) {
        st->tls++;
        if (ipc_rec_get(rec, "resumed") && strcmp(ipc_rec_get(rec, "resumed"), "1") == 0)
            st->tls_resumed++;
    } else if (strcmp(event, "auth_ok") == 0) {
        st->auth_ok++;
        shared_auth_ok(qmgr_shared, dest);
    } else if (strcmp(event, "auth_fail") == 0) {
        st->auth_fail++;
        /* A rejected credential (5xx) is rejected for every instance. */
        reason = ipc_rec_get(rec, "reason");
        if (reason != NULL && strcmp(reason, "rejected") == 0)
            shared_auth_rejected(qmgr_shared, dest);
    } else if (strcmp(event, "timeout") == 0) {
        st->timeouts++;
    } else {
        msg_warn("worker pid %ld: unknown conn event \"%.20s\"", worker->pid, event);
        return -1;
    }
    return 0;
}

/* stats_dsn_count - count a recipient's outcome by the class of its DSN code */
static void stats_dsn_count(DEST_STATS *st, int status, const char *dsn)
{
    int class, subject = STATS_SUBJECTS - 1;

    for (class = 0; class < STATS_CLASSES && stats_classes[class] != dsn[0]; class ++)
        /* void */;
    if (class == STATS_CLASSES || dsn[1] != '.')
        return;
    if (dsn[2] >= '0' && dsn[2] < '0' + STATS_SUBJECTS - 1 && dsn[3] == '.')
        subject = dsn[2] - '0';
    st->rcpt_dsn[status][class][subject]++;
}

/* stats_result - count a finished job's outcome */
void stats_result(QMGR_DEST *dest, const QMGR_MESSAGE *message, const QMGR_JOB *job,
                  long long xfer_ms)
{
    int sent = 0;

    for (size_t i = 0; i < job->nrcpt; i++) {
        const QRCPT *rcpt = &message->rcpts[job->rcpt_index[i]];

        switch (rcpt->status) {
        case QRCPT_SENT:
            dest->stats.rcpt_sent++;
            stats_dsn_count(&dest->stats, 0, rcpt->dsn);
            sent = 1;
            break;
        case QRCPT_DEFERRED:
            dest->stats.rcpt_deferred++;
            stats_dsn_count(&dest->stats, 1, rcpt->dsn);
            break;
        case QRCPT_BOUNCED:
            dest->stats.rcpt_bounced++;
            stats_dsn_count(&dest->stats, 2, rcpt->dsn);
            break;
        }
    }
    if (!sent)
        return;
    dest->stats.messages++;
    /* Arrival is wall-clock ms (pickup's clock): the same clock here. */
    hist_observe(&dest->stats.queue_time, (wall_ms() - message->env.arrival_ms) * 1000);
    if (xfer_ms >= 0)
        hist_observe(&dest->stats.xfer_time, xfer_ms * 1000);
}

/* stats_report_hist - one "hist=NAME DEST ENCODED" */
static void stats_report_hist(IPC_REC *reply, VSTR *line, const char *name, const char *dest,
                              const HIST *h)
{
    vstr_sprintf(line, "%s %s ", name, dest);
    hist_encode(h, line);
    ipc_rec_add(reply, "hist", vstr_str(line));
}

/* stats_report - the reply to a stats request */
IPC_REC *stats_report(void)
{
    IPC_REC *reply = ipc_rec_create("stats");
    VSTR *line = vstr_alloc(256);
    long long now = now_ms(), now_s = (long long)time(NULL);

    /* Only what qmgr holds in memory: a scrape every 100 ms (the metrics
     * daemon) must cost qmgr nothing in proportion to the queue. */
    ipc_rec_add_long(reply, "active", (long long)htable_count(qmgr_active));
    ipc_rec_add_long(reply, "active_rcpts", (long long)qmgr_active_rcpts);
    for (QMGR_DEST *dest = dest_list(); dest; dest = dest->next) {
        const DEST_STATS *st = &dest->stats;
        int open = 0, busy = 0;

        for (QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next) {
            if (peer->kind != PEER_WORKER)
                continue;
            if (peer->conn_dest == dest)
                open++;
            if (peer->job && peer->job->dest == dest)
                busy++;
        }
        vstr_sprintf(line,
                     "%s open=%d busy=%d idle=%d queued=%zu opened=%lld closed=%lld "
                     "messages=%lld rcpt_sent=%lld rcpt_deferred=%lld rcpt_bounced=%lld "
                     "tls=%lld tls_resumed=%lld auth_ok=%lld auth_fail=%lld timeouts=%lld",
                     dest->name, open, busy, open > busy ? open - busy : 0, dest->jobs.count,
                     st->opened, st->closed, st->messages, st->rcpt_sent, st->rcpt_deferred,
                     st->rcpt_bounced, st->tls, st->tls_resumed, st->auth_ok, st->auth_fail,
                     st->timeouts);
        /* A suspended destination: since when, the next probe, the mail parked for it. */
        vstr_sprintf_append(line, " throttles=%lld rate_milli=%lld", st->throttles,
                            (long long)(dest_rate(dest) * 1000 + 0.5));
        for (int s = 0; s < STATS_STATUSES; s++)
            for (int c = 0; c < STATS_CLASSES; c++)
                for (int j = 0; j < STATS_SUBJECTS; j++) {
                    if (st->rcpt_dsn[s][c][j] == 0)
                        continue;
                    vstr_sprintf_append(line, " rcpt_%s_%c", stats_statuses[s], stats_classes[c]);
                    if (j < STATS_SUBJECTS - 1)
                        vstr_sprintf_append(line, ".%d", j);
                    vstr_sprintf_append(line, "=%lld", st->rcpt_dsn[s][c][j]);
                }
        vstr_sprintf_append(line, " suspended=%d suspended_for=%lld next_probe_in=%lld parked=%zu",
                            dest_suspended(dest),
                            dest_suspended(dest) ? (now - dest->suspend.since_ms) / 1000 : 0,
                            dest_suspended(dest) ? dest_probe_time(dest) - now_s : 0,
                            dest->parked ? htable_count(dest->parked) : 0);
        for (int i = 0; i < STATS_REASONS; i++)
            vstr_sprintf_append(line, " closed_%s=%lld", stats_reasons[i], st->closed_by[i]);
        shared_stats(qmgr_shared, dest, line);
        ipc_rec_add(reply, "dest", vstr_str(line));
    }
    shared_stats_instances(qmgr_shared, reply);
    /* The histograms follow the destinations, so each line stays short. */
    for (QMGR_DEST *dest = dest_list(); dest; dest = dest->next) {
        stats_report_hist(reply, line, "queue_time", dest->name, &dest->stats.queue_time);
        stats_report_hist(reply, line, "xfer_time", dest->name, &dest->stats.xfer_time);
        stats_report_hist(reply, line, "conn_messages", dest->name, &dest->stats.conn_messages);
    }
    stats_report_hist(reply, line, "commit_time", "-", &qmgr_counters.commit_time);
    stats_report_hist(reply, line, "commit_batch", "-", &qmgr_counters.commit_batch);
    stats_report_hist(reply, line, "pickup_commit_time", "-", &qmgr_counters.pickup_commit_time);
    stats_report_hist(reply, line, "pickup_commit_batch", "-", &qmgr_counters.pickup_commit_batch);
    for (int i = 0; i < STATS_SOURCES; i++) {
        vstr_sprintf(line, "%s %lld", stats_sources[i], qmgr_counters.received[i]);
        ipc_rec_add(reply, "received", vstr_str(line));
    }
    for (int i = 0; i < STATS_NOTICES; i++) {
        vstr_sprintf(line, "%s %lld", stats_notices[i], qmgr_counters.notices[i]);
        ipc_rec_add(reply, "notices", vstr_str(line));
    }
    vstr_free(line);
    return reply;
}
