/*
 * unit_qstats - decoding qmgr's stats reply: destinations, histograms, sources, notices
 *
 * A table of replies, each a list of attributes after "active=3" and
 * "active_rcpts=7" (unless the case leaves them out), with
 * whether qstats_parse() must take it; for the good ones, what it found
 * (destinations, histograms, sources, notices by kind, the names of the
 * instances sharing limits). Then the
 * exposition's numbers (qstats_number) and the table of histogram kinds.
 */
#include "config.h"

#include <string.h>

#include "qstats.h"
#include "tap.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One reply: its attributes as NAME=VALUE, and what the decoder must make of it. */
struct reply_case {
    const char *attrs[4];
    int good;
    size_t ndest, nhist, nreceived;
    const char *why;
    int bare; /* without active and active_rcpts: the case's attributes alone */
};

static const struct reply_case cases[] = {
    {{"dest=a:25 open=1 rate_milli=1500 rcpt_bounced_5.1=2"}, 1, 1, 0, 0, "a destination", 0},
    {{"hist=queue_time a:25 1500000 2 1000000:1 2000000:1 +Inf:0"},
     1,
     0,
     1,
     0,
     "a destination's histogram",
     0},
    {{"hist=commit_time - 300 1 100:0 250:0 500:1 +Inf:0", "received=maildrop 7",
      "received=smtp 0"},
     1,
     0,
     1,
     2,
     "qmgr's own histogram and the sources",
     0},
    {{"hist=queue_time a:25 5 2 10:1 +Inf:0"}, 0, 0, 0, 0, "buckets that do not add up", 0},
    {{"hist=queue_time 5 1 +Inf:1"}, 0, 0, 0, 0, "a histogram without its destination", 0},
    {{"hist=queue_time a:25"}, 0, 0, 0, 0, "a histogram without counts", 0},
    {{"received=maildrop"}, 0, 0, 0, 0, "a source without its count", 0},
    {{"received=maildrop -1"}, 0, 0, 0, 0, "a negative count", 0},
    {{"received=maildrop 7x"}, 0, 0, 0, 0, "a count with trailing text", 0},
    {{"notices=failure 50", "notices=success 1"}, 1, 0, 0, 0, "notices to senders by kind", 0},
    {{"notices=failure"}, 0, 0, 0, 0, "a kind of notice without its count", 0},
    {{"notices=delay -2"}, 0, 0, 0, 0, "a negative count of notices", 0},
    {{"notices=success 1 2"}, 0, 0, 0, 0, "a count of notices with trailing text", 0},
    {{"dest=a:25 open=x"}, 0, 0, 0, 0, "a destination figure that is not a number", 0},
    {{"dest=a:25 shared=1 shared_instances=3", "instance=mx1.example:/var/spool/relayq",
      "instance=mx2.example:/var/spool/relayq"},
     1,
     1,
     0,
     0,
     "the names of the instances sharing limits",
     0},
    {{"histogram=x"}, 0, 0, 0, 0, "an unknown attribute", 0},
    {{"active=3"}, 0, 0, 0, 0, "active without active_rcpts", 1},
    {{"active=3", "active_rcpts=-1"}, 0, 0, 0, 0, "a negative active_rcpts", 1},
    {{"active=3", "active_rcpts=7", "active_rcpts=7"}, 0, 0, 0, 0, "active_rcpts twice", 1},
};

/* reply_build - a stats reply: "active=3 active_rcpts=7" (unless bare), the case's attributes */
static IPC_REC *reply_build(const struct reply_case *c)
{
    IPC_REC *rec = ipc_rec_create("stats");

    if (!c->bare) {
        ipc_rec_add(rec, "active", "3");
        ipc_rec_add(rec, "active_rcpts", "7");
    }
    for (size_t i = 0; i < NELEM(c->attrs) && c->attrs[i] != NULL; i++) {
        const char *eq = strchr(c->attrs[i], '=');
        char name[32];

        snprintf(name, sizeof(name), "%.*s", (int)(eq - c->attrs[i]), c->attrs[i]);
        ipc_rec_add(rec, name, eq + 1);
    }
    return rec;
}

int main(void)
{
    VSTR *why = vstr_alloc(100), *num = vstr_alloc(32);
    QSTATS *stats;
    IPC_REC *rec;

    tap_plan((int)NELEM(cases) + 7);
    for (size_t i = 0; i < NELEM(cases); i++) {
        const struct reply_case *c = cases + i;

        rec = reply_build(c);
        vstr_reset(why);
        stats = qstats_parse(rec, why);
        if (c->good)
            tap_ok(stats != NULL && stats->active == 3 && stats->active_rcpts == 7 &&
                       stats->ndest == c->ndest && stats->nhist == c->nhist &&
                       stats->nreceived == c->nreceived,
                   "taken: %s", c->why);
        else
            tap_ok(stats == NULL && vstr_len(why) > 0, "refused: %s (%s)", c->why, vstr_str(why));
        if (stats != NULL)
            qstats_free(stats);
        ipc_rec_free(rec);
    }

    rec = reply_build(cases + 2);
    stats = qstats_parse(rec, why);
    tap_ok(stats != NULL && strcmp(stats->hists[0].name, "commit_time") == 0 &&
               *stats->hists[0].dest == '\0' && stats->hists[0].hist.count == 1 &&
               stats->hists[0].hist.bounds[2] == 500,
           "qmgr's own histogram: no destination, its bounds and count");
    tap_ok(stats != NULL && strcmp(stats->received[0].name, "maildrop") == 0 &&
               stats->received[0].value == 7,
           "a source and its count");
    qstats_free(stats);
    ipc_rec_free(rec);

    rec = reply_build(cases + 9);
    stats = qstats_parse(rec, why);
    tap_ok(stats != NULL && stats->nnotice == 2 && strcmp(stats->notices[0].name, "failure") == 0 &&
               stats->notices[0].value == 50 && strcmp(stats->notices[1].name, "success") == 0 &&
               stats->notices[1].value == 1,
           "a kind of notice and its count");
    qstats_free(stats);
    ipc_rec_free(rec);

    rec = reply_build(cases + 0);
    stats = qstats_parse(rec, why);
    tap_ok(stats != NULL && qstats_get(stats->dests, "rcpt_bounced_5.1") == 2 &&
               qstats_get(stats->dests, "rate_milli") == 1500,
           "a DSN class and the rate are destination figures");
    qstats_free(stats);
    ipc_rec_free(rec);

    qstats_number(num, 1e6 / 1e6);
    vstr_strcat(num, " ");
    qstats_number(num, 100.0 / 1e6);
    vstr_strcat(num, " ");
    qstats_number(num, 2500.0 / 1e6);
    tap_ok(strcmp(vstr_str(num), "1 0.0001 0.0025") == 0,
           "numbers as the exposition writes them: %s", vstr_str(num));
    tap_ok(qstats_hist_kind("queue_time") != NULL &&
               strcmp(qstats_hist_kind("queue_time")->metric, "relayq_queue_time_seconds") == 0 &&
               qstats_hist_kind("queue_time")->divisor == 1e6,
           "queue_time is shown as relayq_queue_time_seconds, in seconds");
    tap_ok(qstats_hist_kind("nonesuch") == NULL, "an unknown histogram has no kind");
    vstr_free(why);
    vstr_free(num);
    return tap_done();
}
