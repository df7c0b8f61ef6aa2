/*
 * qstats - qmgr's reply to a stats request, decoded
 *
 * qstats_ask()
 *	ask qmgr on public/control (its absolute name) for its figures,
 *	waiting at most timeout_ms for each step; NULL with a reason when
 *	qmgr does not listen, does not answer in time, or answers something
 *	else (the metrics daemon: its scrape then says qmgr is down).
 * qstats_parse()
 *	decode a `stats` reply strictly: "active" (messages in delivery) and
 *	one "dest" per destination, "NAME key=number ...", at most
 *	QSTATS_FIELDS_MAX figures each, every figure a decimal number. NULL
 *	with a reason for anything else. The queue counts an older qmgr
 *	sent (messages, deferred, hold) are accepted and ignored: the queue
 *	is counted by its readers now (qcount.c).
 * qstats_get()
 *	one figure of a destination by its key, 0 when absent.
 * qstats_free()
 *	release what qstats_ask() or qstats_parse() returned.
 *
 * "relayq stats" and the metrics daemon decode with this, so that both
 * read qmgr's figures alike. The caller owns the result.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mail_proto.h"
#include "mymalloc.h"
#include "qstats.h"

#define QSTATS_VALUE_MAX (1LL << 62) /* the largest figure believed */

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
    if (ipc_rec_check(reply, "active", "messages,deferred,hold,dest*", why) < 0)
        return NULL;
    stats = mycalloc(1, sizeof(*stats));
    stats->dests = mycalloc(reply->count, sizeof(*stats->dests));
    if (ipc_rec_get_long(reply, "active", 0, QSTATS_VALUE_MAX, &stats->active, why) < 0) {
        qstats_free(stats);
        return NULL;
    }
    for (size_t i = 1; i < reply->count; i++)
        if (strcmp(reply->attrs[i].name, "dest") == 0 &&
            qstats_parse_dest(reply->attrs[i].value, stats->dests + stats->ndest++, why) < 0) {
            qstats_free(stats);
            return NULL;
        }
    return stats;
}

/* qstats_ask - qmgr's figures now; NULL with a reason */
QSTATS *qstats_ask(const char *control_path, int timeout_ms, VSTR *why)
{
    IPC_REC *req = ipc_rec_create("stats"), *reply = NULL;
    QSTATS *stats = NULL;
    IPC_CHAN *chan;

    if ((chan = ipc_client_open(control_path, PROTO_CONTROL, timeout_ms, why)) != NULL &&
        ipc_chan_send_wait(chan, req, timeout_ms, why) == 0 &&
        (reply = ipc_chan_recv_wait(chan, timeout_ms, why)) != NULL)
        stats = qstats_parse(reply, why);
    if (reply != NULL)
        ipc_rec_free(reply);
    if (chan != NULL)
        ipc_chan_free(chan);
    ipc_rec_free(req);
    return stats;
}

/* qstats_get - one figure of a destination, 0 when absent */
long long qstats_get(const QSTATS_DEST *dest, const char *key)
{
    for (int i = 0; i < dest->count; i++)
        if (strcmp(dest->keys[i], key) == 0)
            return dest->values[i];
    return 0;
}

/* qstats_free - release the decoded figures */
void qstats_free(QSTATS *stats)
{
    for (size_t i = 0; i < stats->ndest; i++) {
        myfree(stats->dests[i].name);
        for (int k = 0; k < stats->dests[i].count; k++)
            myfree(stats->dests[i].keys[k]);
    }
    myfree(stats->dests);
    myfree(stats);
}
