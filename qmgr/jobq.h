/*
 * jobq.h - a destination's queue of jobs: new mail and the rest in turn
 */
#ifndef RELAYQ_JOBQ_H
#define RELAYQ_JOBQ_H

#include <stddef.h>

/* The link a queued job carries (intrusive: the queue allocates nothing). */
typedef struct JOBQ_LINK {
    struct JOBQ_LINK *next;
} JOBQ_LINK;

/* Two FIFOs, [0]: retries and the rest, [1]: new mail. */
typedef struct JOBQ {
    JOBQ_LINK *head[2], *tail[2];
    size_t count;
    int turn_new; /* both hold jobs: new mail's turn next */
} JOBQ;

void jobq_push(JOBQ *queue, JOBQ_LINK *link, int fresh);
JOBQ_LINK *jobq_peek(const JOBQ *queue);
JOBQ_LINK *jobq_pop(JOBQ *queue);

#endif
