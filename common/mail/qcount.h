/*
 * qcount.h - how many messages the queue holds, by state, read from the queue itself
 */
#ifndef RELAYQ_QCOUNT_H
#define RELAYQ_QCOUNT_H

#include "qstore.h"
#include "vstr.h"

/* The queue's figures at one instant (one read transaction). */
typedef struct QCOUNT {
    long long messages;   /* every message in the queue file */
    long long recipients; /* their recipient records: still to deliver, or done in a message
                             that has some left (qstore_count_rcpts()) */
    long long due;        /* scheduled at or before now: waiting for delivery, or in it */
    long long deferred;   /* scheduled after now */
    long long hold;       /* on hold */
    long long aside;      /* set aside for good */
    long long oldest_age; /* seconds since the oldest message (not set aside) came; 0: none */
    long long map_used;   /* bytes of the map in use */
    long long map_size;   /* bytes of the map */
    long long maildrop;   /* submissions waiting in maildrop/, -1: not readable */
} QCOUNT;

int qcount_take(QSTORE *store, const char *queue_directory, long long now, QCOUNT *count,
                VSTR *why);

#endif
