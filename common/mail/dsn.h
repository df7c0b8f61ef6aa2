/*
 * dsn.h - RFC 3464 delivery status notifications
 */
#ifndef RELAYQ_DSN_H
#define RELAYQ_DSN_H

#include <stddef.h>

#include "vstr.h"

/* Which notice a DSN is. */
typedef enum {
    DSN_FAILED,  /* permanent failure, or the message outlived its queue lifetime */
    DSN_DELAYED, /* still being retried (delay_warning_time) */
    DSN_RELAYED  /* handed to a relay that does not speak DSN, NOTIFY=SUCCESS asked */
} DSN_KIND;

/* One recipient the notice is about. */
typedef struct DSN_RCPT {
    const char *addr;       /* the envelope recipient */
    const char *orcpt;      /* DSN ORCPT as given ("rfc822;addr"), or "" */
    const char *status;     /* X.Y.Z */
    const char *reason;     /* the stored reply or failure reason */
    long long last_attempt; /* s since the epoch, 0 when never tried */
} DSN_RCPT;

/* The message a notice is about, and how to write the notice. */
typedef struct DSN_INFO {
    DSN_KIND kind;
    const char *hostname;  /* myhostname: Reporting-MTA and From */
    const char *queue_id;  /* the original message's queue id */
    const char *notice_id; /* the notice's own queue id, for its Message-ID */
    const char *sender;    /* the original sender: the notice's recipient */
    const char *envid;     /* DSN ENVID or "" */
    int return_headers;    /* RET=HDRS: return only the header section */
    long long arrival;     /* s since the epoch */
    long long now;         /* s since the epoch: the notice's date */
    int expired;           /* failed because the queue lifetime ran out */
    long long retry_until; /* DSN_DELAYED: when the queue gives up, or 0 */
    const char *content;   /* the original message, CRLF lines */
    size_t content_len;
    size_t size_limit;    /* bounce_size_limit: larger content returns headers only */
    const char *boundary; /* MIME boundary, unique per notice */
} DSN_INFO;

void dsn_build(const DSN_INFO *info, const DSN_RCPT *rcpts, size_t count, VSTR *out);
void dsn_split_reason(const char *reason, VSTR *remote_mta, VSTR *diagnostic);
void dsn_date(long long when, VSTR *out);

#endif
