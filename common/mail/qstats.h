/*
 * qstats.h - qmgr's reply to a stats request, decoded
 */
#ifndef RELAYQ_QSTATS_H
#define RELAYQ_QSTATS_H

#include "ipc.h"
#include "vstr.h"

#define QSTATS_FIELDS_MAX 64 /* figures of one destination */

/* One destination's figures: its name and key=number pairs, in reply order. */
typedef struct QSTATS_DEST {
    char *name;
    char *keys[QSTATS_FIELDS_MAX];
    long long values[QSTATS_FIELDS_MAX];
    int count;
} QSTATS_DEST;

/* What qmgr knows: messages in delivery, and each destination's pool and counters. */
typedef struct QSTATS {
    long long active;
    QSTATS_DEST *dests;
    size_t ndest;
} QSTATS;

QSTATS *qstats_ask(const char *control_path, int timeout_ms, VSTR *why);
QSTATS *qstats_parse(const IPC_REC *reply, VSTR *why);
long long qstats_get(const QSTATS_DEST *dest, const char *key);
void qstats_free(QSTATS *stats);

#endif
