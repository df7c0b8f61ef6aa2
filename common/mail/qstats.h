/*
 * qstats.h - qmgr's reply to a stats request, decoded
 */
#ifndef RELAYQ_QSTATS_H
#define RELAYQ_QSTATS_H

#include "hist.h"
#include "ipc.h"
#include "vstr.h"

#define QSTATS_FIELDS_MAX 128 /* figures of one destination */
#define QSTATS_NAME_MAX 64    /* bytes of a histogram's or a source's name */

/* One destination's figures: its name and key=number pairs, in reply order. */
typedef struct QSTATS_DEST {
    char *name;
    char *keys[QSTATS_FIELDS_MAX];
    long long values[QSTATS_FIELDS_MAX];
    int count;
} QSTATS_DEST;

/* One histogram qmgr keeps: its name, its destination ("": qmgr's own) and its counts. */
typedef struct QSTATS_HIST {
    char name[QSTATS_NAME_MAX];
    char *dest;
    HIST hist;
} QSTATS_HIST;

/* A labelled count outside any destination: new messages by source, notices by kind. */
typedef struct QSTATS_COUNT {
    char name[QSTATS_NAME_MAX];
    long long value;
} QSTATS_COUNT;

/* What qmgr knows: messages in delivery, and each destination's pool and counters. */
typedef struct QSTATS {
    long long active;       /* messages in delivery */
    long long active_rcpts; /* their recipients, those done in an earlier attempt too */
    QSTATS_DEST *dests;
    size_t ndest;
    QSTATS_HIST *hists;
    size_t nhist;
    QSTATS_COUNT *received;
    size_t nreceived;
    QSTATS_COUNT *notices; /* notices to senders by kind (failure, delay, success) */
    size_t nnotice;
    QSTATS_COUNT *restarts; /* master's, per daemon (qstats_restarts()), or NULL */
    size_t nrestart;
    char **instances; /* the first names of the instances sharing limits */
    size_t ninstance;
} QSTATS;

/* How a histogram is shown: by qmgr's name, its metric, and the unit's divisor. */
typedef struct QSTATS_HIST_KIND {
    const char *name;   /* as qmgr names it */
    const char *metric; /* the Prometheus family */
    const char *help;
    double divisor; /* to the base unit: 1e6 for microseconds shown as seconds */
} QSTATS_HIST_KIND;

extern const QSTATS_HIST_KIND qstats_hist_kinds[];

/* The bounds of the commit histograms (pickup's and qmgr's): microseconds, messages. */
extern const long long qstats_commit_us_bounds[];
extern const int qstats_commit_us_nbounds;
extern const long long qstats_batch_bounds[];
extern const int qstats_batch_nbounds;

QSTATS *qstats_ask(const char *control_path, int timeout_ms, VSTR *why);
QSTATS *qstats_parse(const IPC_REC *reply, VSTR *why);
int qstats_restarts(QSTATS *stats, const char *master_path, int timeout_ms, VSTR *why);
long long qstats_get(const QSTATS_DEST *dest, const char *key);
const QSTATS_HIST_KIND *qstats_hist_kind(const char *name);
void qstats_number(VSTR *out, double value);
void qstats_free(QSTATS *stats);

#endif
