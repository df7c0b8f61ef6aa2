/*
 * qrecord - the stored form of queue records and of the keys they are stored under
 *
 * The queue store (qstore.c) keeps these records in LMDB; this module only
 * turns them into bytes and back, with no database in sight, so that the
 * decoders can be tested and fuzzed on plain buffers. A record is a version
 * byte (QRECORD_VERSION), then fixed-width big-endian 64-bit integers and
 * strings prefixed with their length as a 64-bit integer. Sealing (seal.c)
 * wraps these bytes; it is not done here.
 *
 * qmsg_init(), qmsg_free()
 *	an empty envelope, and the release of its strings (the struct is the
 *	caller's).
 * qrecord_rcpt_free(), qrecord_attempt_free()
 *	release the strings of one recipient or attempt (the struct is the
 *	caller's).
 * qrecord_msg_encode(), qrecord_msg_decode()
 *	an envelope: arrival time, schedule time, size, flags, attempts and
 *	recipient count, then sender, ENVID and RET. The queue id is not in
 *	the record (it is the key): the decoder is given it.
 * qrecord_rcpt_encode(), qrecord_rcpt_decode()
 *	a recipient: status, time of its last attempt, then enhanced status
 *	code, address, ORCPT, NOTIFY and last reply. Its index is in the key:
 *	the decoder is given it. A status that is not a QRCPT_* is refused.
 * qrecord_attempt_encode(), qrecord_attempt_decode()
 *	one delivery attempt: status, then enhanced status code, relay and
 *	reply. Its time and recipient index are in the key.
 * qrecord_aside_encode(), qrecord_aside_decode()
 *	why a message was set aside: the time in ms, then the reason.
 * qrecord_index_key(), qrecord_index_key_decode()
 *	the key of a recipient or a body chunk: the queue id, then a 32-bit
 *	big-endian number (the recipient's index, the chunk's number).
 * qrecord_attempt_key(), qrecord_attempt_key_decode()
 *	the key of an attempt: the queue id, the time in ms (64 bits) and the
 *	recipient index (32 bits), so that a message's attempts sort oldest
 *	first.
 * qrecord_schedule_key(), qrecord_schedule_key_decode()
 *	the key of a schedule entry: the due time in s (64 bits), then the
 *	queue id, so that entries sort earliest first.
 *
 * Encoders replace the content of `out`; a NULL string is stored as "".
 * Key encoders write into a buffer of QRECORD_*_KEY_SIZE bytes and return
 * the key's length; a queue id longer than QID_LEN is a panic.
 *
 * Decoders read a record of any length and never read past it. A string
 * they return is allocated, NUL-terminated and holds at most the bytes
 * the record declares for it, up to the first NUL among them; an
 * enhanced status code is cut to fit its field. Bytes after the last
 * field are ignored. A record that is cut short, has another version byte
 * or (recipients) an unknown status is refused with -1, but the struct is
 * filled with what could be read all the same and its strings are never
 * NULL: the caller releases a decoded record, refused or not, with
 * qmsg_free(), qrecord_rcpt_free(), qrecord_attempt_free() or myfree().
 * Key decoders return -1 for a key that is not of their form (or not of
 * the queue id asked about); a schedule key's queue id ends at its first
 * NUL.
 *
 * No state; running out of memory is fatal (mymalloc).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "msg.h"
#include "mymalloc.h"
#include "qrecord.h"

#define QRECORD_VERSION 1 /* the first byte of every record */
#define QRECORD_U64_LEN 8 /* bytes of a number in a record, and of a time in a key */
#define QRECORD_U32_LEN 4 /* bytes of an index in a key */

/* A decoding cursor over a record: `bad` once a field did not fit. */
typedef struct QRECORD_CURSOR {
    const unsigned char *cp;
    const unsigned char *end;
    int bad;
} QRECORD_CURSOR;

/* qrecord_begin - start a record in out: its version byte */
static void qrecord_begin(VSTR *out)
{
    vstr_reset(out);
    vstr_addch(out, QRECORD_VERSION);
}

/* qrecord_put_u64 - append a big-endian 64-bit number */
static void qrecord_put_u64(VSTR *out, uint64_t n)
{
    unsigned char bytes[QRECORD_U64_LEN];

    for (int i = QRECORD_U64_LEN - 1; i >= 0; i--) {
        bytes[i] = (unsigned char)(n & 0xff);
        n >>= 8;
    }
    vstr_append(out, bytes, sizeof(bytes));
}

/* qrecord_put_str - append a length-prefixed string */
static void qrecord_put_str(VSTR *out, const char *str)
{
    size_t len = str ? strlen(str) : 0;

    qrecord_put_u64(out, len);
    vstr_append(out, str ? str : "", len);
}

/* qrecord_start - a cursor past the version byte of a record */
static QRECORD_CURSOR qrecord_start(const void *rec, size_t len)
{
    QRECORD_CURSOR cur = {rec, (const unsigned char *)rec + len, 0};

    if (cur.cp == cur.end || *cur.cp++ != QRECORD_VERSION)
        cur.bad = 1;
    return cur;
}

/* qrecord_get_u64 - take a big-endian 64-bit number; 0 when it does not fit */
static uint64_t qrecord_get_u64(QRECORD_CURSOR *cur)
{
    uint64_t n = 0;

    if (cur->end - cur->cp < QRECORD_U64_LEN) {
        cur->bad = 1;
        return 0;
    }
    for (int i = 0; i < QRECORD_U64_LEN; i++)
        n = (n << 8) | *cur->cp++;
    return n;
}

/* qrecord_get_str - take a length-prefixed string (allocated); "" when it does not fit */
static char *qrecord_get_str(QRECORD_CURSOR *cur)
{
    uint64_t len = qrecord_get_u64(cur);
    char *str;

    if (cur->bad || len > (uint64_t)(cur->end - cur->cp)) {
        cur->bad = 1;
        return mystrdup("");
    }
    str = mystrndup((const char *)cur->cp, (size_t)len);
    cur->cp += len;
    return str;
}

/* qrecord_get_dsn - take a length-prefixed string into a fixed field, cut to fit */
static void qrecord_get_dsn(QRECORD_CURSOR *cur, char *dsn, size_t size)
{
    char *text = qrecord_get_str(cur);

    snprintf(dsn, size, "%s", text);
    myfree(text);
}

/* qrecord_be_put - a big-endian number of `width` bytes into a key */
static void qrecord_be_put(unsigned char *out, uint64_t n, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (unsigned char)(n & 0xff);
        n >>= 8;
    }
}

/* qrecord_be_get - a big-endian number of `width` bytes from a key */
static uint64_t qrecord_be_get(const unsigned char *in, int width)
{
    uint64_t n = 0;

    for (int i = 0; i < width; i++)
        n = (n << 8) | in[i];
    return n;
}

/* qrecord_qid_len - the length of a queue id that goes into a key */
static size_t qrecord_qid_len(const char *qid)
{
    size_t len = strlen(qid);

    if (len > QID_LEN)
        msg_panic("qrecord: queue id \"%.20s\" is longer than %d characters", qid, QID_LEN);
    return len;
}

/* qmsg_init - an empty envelope */
void qmsg_init(QMSG *msg)
{
    memset(msg, 0, sizeof(*msg));
}

/* qmsg_free - release an envelope's strings */
void qmsg_free(QMSG *msg)
{
    myfree(msg->sender);
    myfree(msg->envid);
    myfree(msg->ret);
    msg->sender = msg->envid = msg->ret = NULL;
}

/* qrecord_rcpt_free - release a recipient's strings */
void qrecord_rcpt_free(QRCPT *rcpt)
{
    myfree(rcpt->addr);
    myfree(rcpt->orcpt);
    myfree(rcpt->notify);
    myfree(rcpt->reply);
    rcpt->addr = rcpt->orcpt = rcpt->notify = rcpt->reply = NULL;
}

/* qrecord_attempt_free - release an attempt's strings */
void qrecord_attempt_free(QATTEMPT *attempt)
{
    myfree(attempt->relay);
    myfree(attempt->reply);
    attempt->relay = attempt->reply = NULL;
}

/* qrecord_msg_encode - the stored form of an envelope */
void qrecord_msg_encode(const QMSG *msg, VSTR *out)
{
    qrecord_begin(out);
    qrecord_put_u64(out, (uint64_t)msg->arrival_ms);
    qrecord_put_u64(out, (uint64_t)msg->next_attempt);
    qrecord_put_u64(out, (uint64_t)msg->size);
    qrecord_put_u64(out, msg->flags);
    qrecord_put_u64(out, msg->attempts);
    qrecord_put_u64(out, msg->nrcpt);
    qrecord_put_str(out, msg->sender);
    qrecord_put_str(out, msg->envid);
    qrecord_put_str(out, msg->ret);
}

/* qrecord_msg_decode - an envelope from its stored form; -1 when malformed */
int qrecord_msg_decode(const char *qid, const void *rec, size_t len, QMSG *msg)
{
    QRECORD_CURSOR cur = qrecord_start(rec, len);

    qmsg_init(msg);
    snprintf(msg->qid, sizeof(msg->qid), "%s", qid);
    msg->arrival_ms = (long long)qrecord_get_u64(&cur);
    msg->next_attempt = (long long)qrecord_get_u64(&cur);
    msg->size = (long long)qrecord_get_u64(&cur);
    msg->flags = (unsigned)qrecord_get_u64(&cur);
    msg->attempts = (unsigned)qrecord_get_u64(&cur);
    msg->nrcpt = (unsigned)qrecord_get_u64(&cur);
    msg->sender = qrecord_get_str(&cur);
    msg->envid = qrecord_get_str(&cur);
    msg->ret = qrecord_get_str(&cur);
    return cur.bad ? -1 : 0;
}

/* qrecord_rcpt_encode - the stored form of a recipient */
void qrecord_rcpt_encode(const QRCPT *rcpt, VSTR *out)
{
    qrecord_begin(out);
    qrecord_put_u64(out, (uint64_t)rcpt->status);
    qrecord_put_u64(out, (uint64_t)rcpt->last_attempt);
    qrecord_put_str(out, rcpt->dsn);
    qrecord_put_str(out, rcpt->addr);
    qrecord_put_str(out, rcpt->orcpt);
    qrecord_put_str(out, rcpt->notify);
    qrecord_put_str(out, rcpt->reply);
}

/* qrecord_rcpt_decode - a recipient from its stored form; -1 when malformed */
int qrecord_rcpt_decode(unsigned index, const void *rec, size_t len, QRCPT *rcpt)
{
    QRECORD_CURSOR cur = qrecord_start(rec, len);

    memset(rcpt, 0, sizeof(*rcpt));
    rcpt->index = index;
    rcpt->status = (int)qrecord_get_u64(&cur);
    rcpt->last_attempt = (long long)qrecord_get_u64(&cur);
    qrecord_get_dsn(&cur, rcpt->dsn, sizeof(rcpt->dsn));
    rcpt->addr = qrecord_get_str(&cur);
    rcpt->orcpt = qrecord_get_str(&cur);
    rcpt->notify = qrecord_get_str(&cur);
    rcpt->reply = qrecord_get_str(&cur);
    return cur.bad || rcpt->status < QRCPT_PENDING || rcpt->status > QRCPT_BOUNCED ? -1 : 0;
}

/* qrecord_attempt_encode - the stored form of a delivery attempt */
void qrecord_attempt_encode(const QATTEMPT *attempt, VSTR *out)
{
    qrecord_begin(out);
    qrecord_put_u64(out, (uint64_t)attempt->status);
    qrecord_put_str(out, attempt->dsn);
    qrecord_put_str(out, attempt->relay);
    qrecord_put_str(out, attempt->reply);
}

/* qrecord_attempt_decode - a delivery attempt from its stored form; -1 when malformed */
int qrecord_attempt_decode(long long when_ms, unsigned index, const void *rec, size_t len,
                           QATTEMPT *attempt)
{
    QRECORD_CURSOR cur = qrecord_start(rec, len);

    attempt->when_ms = when_ms;
    attempt->index = index;
    attempt->status = (int)qrecord_get_u64(&cur);
    qrecord_get_dsn(&cur, attempt->dsn, sizeof(attempt->dsn));
    attempt->relay = qrecord_get_str(&cur);
    attempt->reply = qrecord_get_str(&cur);
    return cur.bad ? -1 : 0;
}

/* qrecord_aside_encode - the stored form of an aside entry */
void qrecord_aside_encode(long long when_ms, const char *reason, VSTR *out)
{
    qrecord_begin(out);
    qrecord_put_u64(out, (uint64_t)when_ms);
    qrecord_put_str(out, reason);
}

/* qrecord_aside_decode - when and why, from an aside entry; -1 when malformed */
int qrecord_aside_decode(const void *rec, size_t len, long long *when_ms, char **reason)
{
    QRECORD_CURSOR cur = qrecord_start(rec, len);

    *when_ms = (long long)qrecord_get_u64(&cur);
    *reason = qrecord_get_str(&cur);
    return cur.bad ? -1 : 0;
}

/* qrecord_index_key - the key of a recipient or a body chunk; its length */
size_t qrecord_index_key(unsigned char *key, const char *qid, unsigned index)
{
    size_t len = qrecord_qid_len(qid);

    memcpy(key, qid, len);
    qrecord_be_put(key + len, index, QRECORD_U32_LEN);
    return len + QRECORD_U32_LEN;
}

/* qrecord_index_key_decode - the number in a recipient or chunk key of qid; -1 for another key */
int qrecord_index_key_decode(const void *key, size_t len, const char *qid, unsigned *index)
{
    size_t qid_len = strlen(qid);

    if (len != qid_len + QRECORD_U32_LEN || memcmp(key, qid, qid_len) != 0)
        return -1;
    *index = (unsigned)qrecord_be_get((const unsigned char *)key + qid_len, QRECORD_U32_LEN);
    return 0;
}

/* qrecord_attempt_key - the key of a delivery attempt; its length */
size_t qrecord_attempt_key(unsigned char *key, const char *qid, long long when_ms, unsigned index)
{
    size_t len = qrecord_qid_len(qid);

    memcpy(key, qid, len);
    qrecord_be_put(key + len, (uint64_t)when_ms, QRECORD_U64_LEN);
    qrecord_be_put(key + len + QRECORD_U64_LEN, index, QRECORD_U32_LEN);
    return len + QRECORD_U64_LEN + QRECORD_U32_LEN;
}

/* qrecord_attempt_key_decode - time and recipient of an attempt key of qid; -1 for another key */
int qrecord_attempt_key_decode(const void *key, size_t len, const char *qid, long long *when_ms,
                               unsigned *index)
{
    const unsigned char *bytes = key;
    size_t qid_len = strlen(qid);

    if (len != qid_len + QRECORD_U64_LEN + QRECORD_U32_LEN || memcmp(key, qid, qid_len) != 0)
        return -1;
    *when_ms = (long long)qrecord_be_get(bytes + qid_len, QRECORD_U64_LEN);
    *index = (unsigned)qrecord_be_get(bytes + qid_len + QRECORD_U64_LEN, QRECORD_U32_LEN);
    return 0;
}

/* qrecord_schedule_key - the key of a schedule entry; its length */
size_t qrecord_schedule_key(unsigned char *key, long long when, const char *qid)
{
    size_t len = qrecord_qid_len(qid);

    qrecord_be_put(key, (uint64_t)when, QRECORD_U64_LEN);
    memcpy(key + QRECORD_U64_LEN, qid, len);
    return QRECORD_U64_LEN + len;
}

/* qrecord_schedule_key_decode - due time and queue id (QID_LEN + 1 bytes) of a schedule key */
int qrecord_schedule_key_decode(const void *key, size_t len, long long *when, char *qid)
{
    const unsigned char *bytes = key;

    if (len <= QRECORD_U64_LEN || len > QRECORD_SCHEDULE_KEY_SIZE)
        return -1;
    *when = (long long)qrecord_be_get(bytes, QRECORD_U64_LEN);
    memcpy(qid, bytes + QRECORD_U64_LEN, len - QRECORD_U64_LEN);
    qid[len - QRECORD_U64_LEN] = '\0';
    return 0;
}
