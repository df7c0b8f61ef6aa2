/*
 * qstats - qmgr's reply to a stats request, decoded
 *
 * qstats_ask()
 *	ask qmgr on public/control (its absolute name) for its figures,
 *	waiting at most timeout_ms for each step; NULL with a reason when
 *	qmgr does not listen, does not answer in time, or answers something
 *	else (the metrics daemon: its scrape then says qmgr is down).
 * qstats_parse()
 *	decode a `stats` reply strictly: "active" (messages in delivery),
 *	"active_rcpts" (their recipients) and one "dest" per destination,
 *	"NAME key=number ...", at most QSTATS_FIELDS_MAX figures each, every
 *	figure a decimal number. NULL with a reason for anything else. The
 *	queue counts an older qmgr sent (messages, deferred, hold) are
 *	accepted and ignored: the queue is counted by its readers now
 *	(qcount.c). Then the histograms, "hist=NAME DEST ENCODED" (DEST "-":
 *	qmgr's own; hist.c decodes), the new messages by source,
 *	"received=SOURCE N", and the notices to senders by kind,
 *	"notices=KIND N" (both optional: an older qmgr sends none), and
 *	the names of the instances that share limits through
 *	shared_limits_server, "instance=NAME" (the first few; the count is
 *	each shared destination's shared_instances).
 * qstats_restarts()
 *	add master's restarts per daemon to the figures: ask master on
 *	public/master (its absolute name) for its status and take its
 *	"restart=NAME N" attributes. -1 with a reason when master does not
 *	answer or answers something else (the figures then have none).
 * qstats_get()
 *	one figure of a destination by its key, 0 when absent.
 * qstats_hist_kind()
 *	how a histogram qmgr names is shown (qstats_hist_kinds[]: its metric,
 *	help and unit), or NULL for one this build does not know.
 * qstats_number()
 *	append a figure in the base unit as the exposition writes it: an
 *	integer plainly, a fraction with as few digits as it needs.
 * qstats_free()
 *	release what qstats_ask() or qstats_parse() returned.
 *
 * "relayq stats" and the metrics daemon decode with this, so that both
 * read qmgr's figures alike. The caller owns the result.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail_proto.h"
#include "mymalloc.h"
#include "qstats.h"

#define QSTATS_VALUE_MAX (1LL << 62) /* the largest figure believed */

const long long qstats_commit_us_bounds[] = {100,   250,   500,   1000,   2500,   5000,
                                             10000, 25000, 50000, 100000, 250000, 1000000};
const int qstats_commit_us_nbounds = sizeof(qstats_commit_us_bounds) / sizeof(long long);
const long long qstats_batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const int qstats_batch_nbounds = sizeof(qstats_batch_bounds) / sizeof(long long);

const QSTATS_HIST_KIND qstats_hist_kinds[] = {
    {"queue_time", "relayq_queue_time_seconds",
     "Time from a message's arrival to its delivery, per delivered message.", 1e6},
    {"xfer_time", "relayq_smtp_transaction_seconds",
     "Time of the SMTP transaction, per delivered message, as the worker measured it.", 1e6},
    {"conn_messages", "relayq_connection_messages",
     "Messages a connection carried, observed when it closed.", 1},
    {"commit_time", "relayq_qmgr_commit_seconds",
     "Time of qmgr's group commits of delivery results.", 1e6},
    {"commit_batch", "relayq_qmgr_commit_batch_messages",
     "Messages whose delivery results one group commit of qmgr recorded.", 1},
    {"pickup_commit_time", "relayq_pickup_commit_seconds",
     "Time of pickup's commits of new mail (as pickup tells qmgr after each).", 1e6},
    {"pickup_commit_batch", "relayq_pickup_commit_batch_messages",
     "New messages one commit of pickup queued.", 1},
    {NULL, NULL, NULL, 0},
};

/* qstats_parse_hist - "NAME DEST ENCODED"; 0, or -1 with a reason */
static int qstats_parse_hist(const char *text, QSTATS_HIST *h, VSTR *why)
{
    const char *dest = strchr(text, ' '), *rest;

    if (dest == NULL || dest == text || (size_t)(dest - text) >= QSTATS_NAME_MAX ||
        (rest = strchr(dest + 1, ' ')) == NULL || rest == dest + 1) {
        vstr_strcpy(why, "malformed histogram: not NAME DEST ...");
        return -1;
    }
    snprintf(h->name, sizeof(h->name), "%.*s", (int)(dest - text), text);
    h->dest = rest == dest + 2 && dest[1] == '-' ? mystrdup("")
                                                 : mystrndup(dest + 1, (size_t)(rest - dest - 1));
    return hist_decode(&h->hist, rest + 1, why);
}

/* qstats_parse_count - "NAME N"; 0, or -1 with a reason */
static int qstats_parse_count(const char *text, QSTATS_COUNT *c, VSTR *why)
{
    char *end;
    const char *sp = strchr(text, ' ');

    if (sp == NULL || sp == text || (size_t)(sp - text) >= QSTATS_NAME_MAX || sp[1] < '0' ||
        sp[1] > '9' || (c->value = strtoll(sp + 1, &end, 10)) > QSTATS_VALUE_MAX || *end) {
        vstr_strcpy(why, "malformed count: not NAME NUMBER");
        return -1;
    }
    snprintf(c->name, sizeof(c->name), "%.*s", (int)(sp - text), text);
    return 0;
}

/* qstats_parse_dest - split "NAME k=v k=v ..."; 0, or -1 with a reason */
static int qstats_parse_dest(const char *text, QSTATS_DEST *dest, VSTR *why)
{
    char *copy = mystrdup(text), *save = NULL, *word;
    int ret = 0;

    if ((word = strtok_r(copy, " ", &save)) == NULL) {
        vstr_strcpy(why, "malformed dest figure: no name");
        myfree(copy);
        return -1;
    }
    dest->name = mystrdup(word);
    while (ret == 0 && (word = strtok_r(NULL, " ", &save)) != NULL) {
        char *eq = strchr(word, '='), *end;
        long long value;

        if (eq == NULL || eq == word || dest->count == QSTATS_FIELDS_MAX) {
            vstr_strcpy(why, "malformed dest figure: not key=number, or too many");
            ret = -1;
            break;
        }
        *eq = '\0';
        value = strtoll(eq + 1, &end, 10);
        if (*end != '\0' || end == eq + 1 || value < -QSTATS_VALUE_MAX ||
            value > QSTATS_VALUE_MAX) {
            vstr_strcpy(why, "malformed dest figure: not a number");
            ret = -1;
            break;
        }
        dest->values[dest->count] = value;
        dest->keys[dest->count++] = mystrdup(word);
    }
    myfree(copy);
    return ret;
}

/* qstats_parse - a stats reply, decoded; NULL with a reason */
QSTATS *qstats_parse(const IPC_REC *reply, VSTR *why)
{
    QSTATS *stats;

    if (strcmp(ipc_rec_type(reply), "stats") != 0) {
        vstr_sprintf(why, "a \"%.20s\" record instead of stats", ipc_rec_type(reply));
        return NULL;
    }
    if (ipc_rec_check(reply, "active,active_rcpts",
                      "messages,deferred,hold,dest*,hist*,received*,notices*,instance*", why) < 0)
        return NULL;
    stats = mycalloc(1, sizeof(*stats));
    stats->dests = mycalloc(reply->count, sizeof(*stats->dests));
    stats->hists = mycalloc(reply->count, sizeof(*stats->hists));
    stats->received = mycalloc(reply->count, sizeof(*stats->received));
    stats->notices = mycalloc(reply->count, sizeof(*stats->notices));
    stats->instances = mycalloc(reply->count, sizeof(*stats->instances));
    if (ipc_rec_get_long(reply, "active", 0, QSTATS_VALUE_MAX, &stats->active, why) < 0 ||
        ipc_rec_get_long(reply, "active_rcpts", 0, QSTATS_VALUE_MAX, &stats->active_rcpts, why) <
            0) {
        qstats_free(stats);
        return NULL;
    }
    for (size_t i = 1; i < reply->count; i++) {
        const char *name = reply->attrs[i].name, *value = reply->attrs[i].value;
        int rc = 0;

        if (strcmp(name, "dest") == 0)
            rc = qstats_parse_dest(value, stats->dests + stats->ndest++, why);
        else if (strcmp(name, "hist") == 0)
            rc = qstats_parse_hist(value, stats->hists + stats->nhist++, why);
        else if (strcmp(name, "received") == 0)
            rc = qstats_parse_count(value, stats->received + stats->nreceived++, why);
        else if (strcmp(name, "notices") == 0)
            rc = qstats_parse_count(value, stats->notices + stats->nnotice++, why);
        else if (strcmp(name, "instance") == 0)
            stats->instances[stats->ninstance++] = mystrdup(value);
        if (rc < 0) {
            qstats_free(stats);
            return NULL;
        }
    }
    return stats;
}

/* qstats_request - one request of `type` and its reply; NULL with a reason */
static IPC_REC *qstats_request(const char *path, const char *proto, const char *type,
                               int timeout_ms, VSTR *why)
{
    IPC_REC *req = ipc_rec_create(type), *reply = NULL;
    IPC_CHAN *chan;

    if ((chan = ipc_client_open(path, proto, timeout_ms, why)) != NULL &&
        ipc_chan_send_wait(chan, req, timeout_ms, why) == 0)
        reply = ipc_chan_recv_wait(chan, timeout_ms, why);
    if (chan != NULL)
        ipc_chan_free(chan);
    ipc_rec_free(req);
    return reply;
}

/* qstats_ask - qmgr's figures now; NULL with a reason */
QSTATS *qstats_ask(const char *control_path, int timeout_ms, VSTR *why)
{
    IPC_REC *reply = qstats_request(control_path, PROTO_CONTROL, "stats", timeout_ms, why);
    QSTATS *stats = NULL;

    if (reply != NULL) {
        stats = qstats_parse(reply, why);
        ipc_rec_free(reply);
    }
    return stats;
}

/* qstats_restarts - master's restarts per daemon, added to the figures; 0, or -1 with a reason */
int qstats_restarts(QSTATS *stats, const char *master_path, int timeout_ms, VSTR *why)
{
    IPC_REC *reply = qstats_request(master_path, PROTO_MASTER, "status", timeout_ms, why);
    QSTATS_COUNT *restarts;
    size_t n = 0;

    if (reply == NULL)
        return -1;
    if (strcmp(ipc_rec_type(reply), "status") != 0) {
        vstr_sprintf(why, "a \"%.20s\" record instead of status", ipc_rec_type(reply));
        ipc_rec_free(reply);
        return -1;
    }
    if (ipc_rec_check(reply, "pid", "child*,restarts,restart*", why) < 0) {
        ipc_rec_free(reply);
        return -1;
    }
    restarts = mycalloc(reply->count, sizeof(*restarts));
    for (size_t i = 1; i < reply->count; i++)
        if (strcmp(reply->attrs[i].name, "restart") == 0 &&
            qstats_parse_count(reply->attrs[i].value, restarts + n++, why) < 0) {
            myfree(restarts);
            ipc_rec_free(reply);
            return -1;
        }
    ipc_rec_free(reply);
    if (stats->restarts != NULL)
        myfree(stats->restarts);
    stats->restarts = restarts;
    stats->nrestart = n;
    return 0;
}

/* qstats_get - one figure of a destination, 0 when absent */
long long qstats_get(const QSTATS_DEST *dest, const char *key)
{
    for (int i = 0; i < dest->count; i++)
        if (strcmp(dest->keys[i], key) == 0)
            return dest->values[i];
    return 0;
}

/* qstats_hist_kind - how a histogram is shown, NULL when unknown */
const QSTATS_HIST_KIND *qstats_hist_kind(const char *name)
{
    for (const QSTATS_HIST_KIND *k = qstats_hist_kinds; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* qstats_number - a figure in the base unit, as few digits as it needs */
void qstats_number(VSTR *out, double value)
{
    if (value == (double)(long long)value)
        vstr_sprintf_append(out, "%lld", (long long)value);
    else
        vstr_sprintf_append(out, "%.9g", value);
}

/* qstats_free - release the decoded figures */
void qstats_free(QSTATS *stats)
{
    for (size_t i = 0; i < stats->nhist; i++)
        myfree(stats->hists[i].dest);
    myfree(stats->hists);
    myfree(stats->received);
    myfree(stats->notices);
    for (size_t i = 0; i < stats->ninstance; i++)
        myfree(stats->instances[i]);
    myfree(stats->instances);
    if (stats->restarts != NULL)
        myfree(stats->restarts);
    for (size_t i = 0; i < stats->ndest; i++) {
        myfree(stats->dests[i].name);
        for (int k = 0; k < stats->dests[i].count; k++)
            myfree(stats->dests[i].keys[k]);
    }
    myfree(stats->dests);
    myfree(stats);
}
