/*
 * qlist.h - the queue listing of mailq, written by the command or by qmgr
 */
#ifndef RELAYQ_QLIST_H
#define RELAYQ_QLIST_H

#include <stdio.h>

#include "qstore.h"
#include "vstr.h"

/* How to list: the layout, and which messages are being delivered. */
typedef struct QLIST_OPTS {
    int json;                                          /* postqueue -j objects, not -p */
    int (*is_active)(const char *queue_id, void *ctx); /* NULL: none is */
    void *ctx;
    long maildrop; /* submissions waiting in maildrop/ for pickup, counted by the caller */
} QLIST_OPTS;

typedef struct QLIST QLIST;

QLIST *qlist_create(const QLIST_OPTS *opts);
int qlist_step(QLIST *list, QSTORE_TXN *txn, FILE *out, size_t limit, VSTR *why);
void qlist_free(QLIST *list);
int qlist_write(QSTORE_TXN *txn, const QLIST_OPTS *opts, FILE *out, VSTR *why);
void qlist_write_empty(const QLIST_OPTS *opts, FILE *out);

#endif
