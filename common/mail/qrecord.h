/*
 * qrecord.h - the stored form of queue records: envelopes, recipients, attempts, aside entries
 * and the keys they are stored under
 */
#ifndef RELAYQ_QRECORD_H
#define RELAYQ_QRECORD_H

#include <stddef.h>

#include "qid.h"
#include "vstr.h"

/* Message flags. */
#define QMSG_HOLD 1   /* on hold: never scheduled until released */
#define QMSG_WARNED 2 /* the sender has had its delay notice */

/* A message's envelope. */
typedef struct QMSG {
    char qid[QID_LEN + 1];
    long long arrival_ms;   /* when pickup took it, ms since the epoch */
    long long next_attempt; /* schedule time, s since the epoch; the key in `schedule` */
    long long size;         /* content bytes as stored (CRLF lines) */
    unsigned flags;         /* QMSG_* */
    unsigned attempts;      /* delivery attempts so far */
    unsigned nrcpt;         /* recipients stored */
    char *sender;           /* "" for the null sender */
    char *envid;            /* DSN ENVID or "" */
    char *ret;              /* DSN RET or "" */
} QMSG;

/* Recipient status. */
#define QRCPT_PENDING 0  /* never tried */
#define QRCPT_SENT 1     /* final: accepted by the relay */
#define QRCPT_DEFERRED 2 /* tried, temporary failure */
#define QRCPT_BOUNCED 3  /* final: permanent failure */

/* One recipient of a message. */
typedef struct QRCPT {
    unsigned index;         /* position in the message, from 0 */
    int status;             /* QRCPT_* */
    char dsn[16];           /* last enhanced status code, or "" */
    long long last_attempt; /* s since the epoch, 0 when never tried */
    char *addr;             /* the envelope address */
    char *orcpt;            /* DSN ORCPT or "" */
    char *notify;           /* DSN NOTIFY or "" */
    char *reply;            /* last reply or failure reason, or "" */
} QRCPT;

/* One delivery attempt of one recipient, kept for `relayq show`. */
typedef struct QATTEMPT {
    long long when_ms; /* when the result came back, ms since the epoch */
    unsigned index;    /* the recipient */
    int status;        /* QRCPT_SENT, QRCPT_DEFERRED or QRCPT_BOUNCED */
    char dsn[16];
    char *relay; /* "host[addr]:port" or "none" */
    char *reply; /* the reply or failure reason */
} QATTEMPT;

/* Room for a key: a queue id and a 32-bit number (recipients, body chunks), ... */
#define QRECORD_INDEX_KEY_SIZE (QID_LEN + 4)
/* ... a queue id, a 64-bit time in ms and a 32-bit recipient index (attempts), ... */
#define QRECORD_ATTEMPT_KEY_SIZE (QID_LEN + 12)
/* ... and a 64-bit time in s and a queue id (schedule). */
#define QRECORD_SCHEDULE_KEY_SIZE (8 + QID_LEN)

void qmsg_init(QMSG *msg);
void qmsg_free(QMSG *msg);
void qrecord_rcpt_free(QRCPT *rcpt);
void qrecord_attempt_free(QATTEMPT *attempt);

void qrecord_msg_encode(const QMSG *msg, VSTR *out);
int qrecord_msg_decode(const char *qid, const void *rec, size_t len, QMSG *msg);
void qrecord_rcpt_encode(const QRCPT *rcpt, VSTR *out);
int qrecord_rcpt_decode(unsigned index, const void *rec, size_t len, QRCPT *rcpt);
void qrecord_attempt_encode(const QATTEMPT *attempt, VSTR *out);
int qrecord_attempt_decode(long long when_ms, unsigned index, const void *rec, size_t len,
                           QATTEMPT *attempt);
void qrecord_aside_encode(long long when_ms, const char *reason, VSTR *out);
int qrecord_aside_decode(const void *rec, size_t len, long long *when_ms, char **reason);

size_t qrecord_index_key(unsigned char *key, const char *qid, unsigned index);
int qrecord_index_key_decode(const void *key, size_t len, const char *qid, unsigned *index);
size_t qrecord_attempt_key(unsigned char *key, const char *qid, long long when_ms, unsigned index);
int qrecord_attempt_key_decode(const void *key, size_t len, const char *qid, long long *when_ms,
                               unsigned *index);
size_t qrecord_schedule_key(unsigned char *key, long long when, const char *qid);
int qrecord_schedule_key_decode(const void *key, size_t len, long long *when, char *qid);

#endif
