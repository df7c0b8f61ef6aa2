/*
 * retry.h - what becomes of a message when its deliveries of one pass end
 */
#ifndef RELAYQ_RETRY_H
#define RELAYQ_RETRY_H

#include <stdint.h>

/* The configuration the decision follows (seconds). */
typedef struct RETRY_POLICY {
    long long min_backoff;              /* minimal_backoff_time */
    long long max_backoff;              /* maximal_backoff_time */
    long long lifetime;                 /* maximal_queue_lifetime */
    long long bounce_lifetime;          /* bounce_queue_lifetime: mail from the null sender */
    long long delay_warning;            /* delay_warning_time, 0: never */
    uint32_t (*jitter)(uint32_t upper); /* uniform in [0, upper): the backoff's spread */
} RETRY_POLICY;

/* What the message is, and what its delivery learned. */
typedef struct RETRY_OUTCOME {
    long long arrival; /* s since the epoch */
    int null_sender;
    unsigned attempts;  /* counted before this delivery */
    int warned;         /* the delay notice went out before */
    int pending;        /* a recipient is not final */
    int deleted;        /* the operator deleted it during delivery */
    int requeue;        /* the operator requeued it during delivery */
    int held;           /* the operator held it during delivery */
    unsigned lost;      /* delivery processes that died delivering it, this one included; 0: none */
    int throttled;      /* the relay asked to slow down, or limited recipients */
    int reroute;        /* its relay was down and the route has another */
    long long probe_at; /* > 0: it waits for its suspended destination's probe then */
    int backoff;        /* a relay deferred a recipient */
} RETRY_OUTCOME;

typedef enum {
    RETRY_REMOVE, /* every recipient is final, or the operator deleted it */
    RETRY_EXPIRE, /* too old: the recipients still deferred are bounced, then removed */
    RETRY_HOLD,   /* off the schedule until released */
    RETRY_AGAIN   /* due again at `due` */
} RETRY_ACTION;

/* The decision: the message's new durable state. */
typedef struct RETRY_DECISION {
    RETRY_ACTION action;
    long long due;     /* RETRY_AGAIN: the new schedule time */
    unsigned attempts; /* the new attempt count */
    int warn;          /* the delay notice goes out now (once per message) */
    int requeued;      /* the recipients that are not final start over */
    int poison;        /* a second delivery process died with it: log it */
} RETRY_DECISION;

/* The lost delivery that does not count: a qmgr restart loses every job in flight. */
#define RETRY_LOST_FREE 1

long long retry_backoff(const RETRY_POLICY *policy, unsigned attempts);
void retry_decide(const RETRY_POLICY *policy, const RETRY_OUTCOME *outcome, long long now,
                  RETRY_DECISION *decision);

#endif
