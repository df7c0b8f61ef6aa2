/*
 * fuzz_qrecord - fuzz target for the stored form of queue records, clear and sealed
 *
 * LLVMFuzzerTestOneInput()
 *	the input's first byte picks what the rest is, as qstore.c would
 *	read it from the queue:
 *	  0-3	an envelope, recipient, attempt or aside record for
 *		qrecord_*_decode(). A record is refused unless its version byte
 *		is right; an accepted one has every string non-NULL, bounded by
 *		the record's bytes (a NUL in a stored string ends it), an
 *		enhanced status code that fits its field, a recipient status
 *		that is a QRCPT_*, the key's values it was given, and it
 *		re-encodes to bytes that decode to the same values and encode
 *		to the same bytes again. A refused record's strings are still
 *		there to free.
 *	  4-6	a recipient or chunk key, an attempt key, a schedule key: a key
 *		decodes for a queue id only when it is exactly what the encoder
 *		makes of that queue id and the values decoded; its own queue
 *		id (the bytes before the numbers) always decodes it. A schedule
 *		key decodes when its size is right and encodes back to itself up
 *		to the first NUL of its queue id.
 *	  7	a sealed record of the database the next byte picks (messages,
 *		recipients, attempts, bodies), bound to the key of a fixed queue
 *		id as qstore.c binds it: opened as it is (hostile bytes), it is
 *		refused with a reason and nothing of it is kept (always so
 *		without a key ring), or it opens and its content is checked as
 *		0-2 check a record. The same bytes sealed under the ring open
 *		to themselves, under the key id of the ring, and not once one
 *		bit is flipped, the record is cut short, or the associated data
 *		names another database.
 *	  8	a sealed maildrop file for seal_drop_open() and
 *		seal_drop_unseal(), which must agree; a file that does not open
 *		(none does without a key ring) leaves a reason and nothing
 *		behind. The same bytes sealed to the ring's public key in
 *		pieces of varying size open to themselves, and not once cut
 *		short or altered.
 *	Other first bytes wrap around.
 *
 * LLVMFuzzerInitialize()
 *	load a key ring from a fixed test key once, and the maildrop public
 *	key published for it, in a temporary directory that is removed at
 *	once: the queue's key file is read from disk only.
 *
 * fuzz-sources: common/mail/qrecord.c common/mail/seal.c common/mail/guarded.c
 * fuzz-sources: common/util/vstr.c common/util/mymalloc.c common/util/msg.c
 * fuzz-libs: -lsodium
 *
 * A broken invariant aborts; a key ring that cannot be made exits. Only
 * the ring is kept between inputs.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "mymalloc.h"
#include "qrecord.h"
#include "seal.h"
#include "vstr.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_QID "0F4C2A91B7E3"      /* the queue id of every record: a valid one, QID_LEN long */
#define FUZZ_INDEX 7u                /* the recipient index in the keys of records */
#define FUZZ_WHEN_MS 1700000000123LL /* the attempt time in the keys of records */
#define FUZZ_KEY_ID 1                /* the id of the fixed test key, as its line says */
#define FUZZ_KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define FUZZ_SEALED_OVERHEAD 44 /* mark, version, key id, 24-byte nonce, 16-byte tag */
#define FUZZ_VERSION 1          /* the first byte of every record */
#define FUZZ_U64_LEN 8          /* bytes of a number in a record */
#define FUZZ_PIECE_MAX 1024     /* the largest piece of a maildrop file sealed at once */
#define FUZZ_PAD "pad"          /* bytes in an output buffer before a record is opened */

/* What the first byte of an input picks. */
enum {
    FUZZ_ENVELOPE,
    FUZZ_RECIPIENT,
    FUZZ_ATTEMPT,
    FUZZ_ASIDE,
    FUZZ_INDEX_KEY,
    FUZZ_ATTEMPT_KEY,
    FUZZ_SCHEDULE_KEY,
    FUZZ_SEALED_RECORD,
    FUZZ_SEALED_FILE,
    FUZZ_KINDS
};

/* The databases whose records are sealed, and the record each holds. */
static const struct {
    const char *name;
    int kind; /* FUZZ_ENVELOPE..FUZZ_ATTEMPT, or -1: raw content (a body chunk) */
} fuzz_sealed_dbs[] = {
    {"messages", FUZZ_ENVELOPE},
    {"recipients", FUZZ_RECIPIENT},
    {"attempts", FUZZ_ATTEMPT},
    {"bodies", -1},
};

#define FUZZ_SEALED_DBS (sizeof(fuzz_sealed_dbs) / sizeof(fuzz_sealed_dbs[0]))

/* A decoded record of any kind; each kind stores at most FUZZ_STRINGS_MAX strings. */
typedef union FUZZ_RECORD {
    QMSG msg;
    QRCPT rcpt;
    QATTEMPT attempt;
    struct {
        long long when_ms;
        char *reason;
    } aside;
} FUZZ_RECORD;

#define FUZZ_STRINGS_MAX 5

static SEAL_RING *fuzz_ring;                         /* the fixed test key */
static unsigned fuzz_drop_id;                        /* the maildrop public key's id ... */
static unsigned char fuzz_drop_key[SEAL_PUBLIC_LEN]; /* ... and the key, as sendmail reads it */

/* fuzz_decode - a record of a kind, with the key values of FUZZ_QID's records; 0 or -1 */
static int fuzz_decode(int kind, const void *data, size_t len, FUZZ_RECORD *rec)
{
    switch (kind) {
    case FUZZ_ENVELOPE:
        return qrecord_msg_decode(FUZZ_QID, data, len, &rec->msg);
    case FUZZ_RECIPIENT:
        return qrecord_rcpt_decode(FUZZ_INDEX, data, len, &rec->rcpt);
    case FUZZ_ATTEMPT:
        return qrecord_attempt_decode(FUZZ_WHEN_MS, FUZZ_INDEX, data, len, &rec->attempt);
    default:
        return qrecord_aside_decode(data, len, &rec->aside.when_ms, &rec->aside.reason);
    }
}

/* fuzz_encode - the stored form of a record of a kind */
static void fuzz_encode(int kind, const FUZZ_RECORD *rec, VSTR *out)
{
    switch (kind) {
    case FUZZ_ENVELOPE:
        qrecord_msg_encode(&rec->msg, out);
        break;
    case FUZZ_RECIPIENT:
        qrecord_rcpt_encode(&rec->rcpt, out);
        break;
    case FUZZ_ATTEMPT:
        qrecord_attempt_encode(&rec->attempt, out);
        break;
    default:
        qrecord_aside_encode(rec->aside.when_ms, rec->aside.reason, out);
        break;
    }
}

/* fuzz_release - free a decoded record's strings */
static void fuzz_release(int kind, FUZZ_RECORD *rec)
{
    switch (kind) {
    case FUZZ_ENVELOPE:
        qmsg_free(&rec->msg);
        break;
    case FUZZ_RECIPIENT:
        qrecord_rcpt_free(&rec->rcpt);
        break;
    case FUZZ_ATTEMPT:
        qrecord_attempt_free(&rec->attempt);
        break;
    default:
        myfree(rec->aside.reason);
        break;
    }
}

/* fuzz_list - copy the string pointers of a record; how many */
static size_t fuzz_list(const char **strs, const char *const *from, size_t count)
{
    memcpy(strs, from, sizeof(*strs) * count);
    return count;
}

/* fuzz_strings - the strings a record stores, in their order; how many there are */
static size_t fuzz_strings(int kind, const FUZZ_RECORD *rec, const char **strs)
{
    const QRCPT *rcpt = &rec->rcpt;
    const QATTEMPT *attempt = &rec->attempt;

    switch (kind) {
    case FUZZ_ENVELOPE:
        return fuzz_list(strs, (const char *const[]){rec->msg.sender, rec->msg.envid, rec->msg.ret},
                         3);
    case FUZZ_RECIPIENT:
        return fuzz_list(
            strs,
            (const char *const[]){rcpt->dsn, rcpt->addr, rcpt->orcpt, rcpt->notify, rcpt->reply},
            5);
    case FUZZ_ATTEMPT:
        return fuzz_list(strs, (const char *const[]){attempt->dsn, attempt->relay, attempt->reply},
                         3);
    default:
        return fuzz_list(strs, (const char *const[]){rec->aside.reason}, 1);
    }
}

/* fuzz_numbers - how many numbers a record of a kind stores before its strings */
static size_t fuzz_numbers(int kind)
{
    switch (kind) {
    case FUZZ_ENVELOPE:
        return 6; /* arrival, schedule, size, flags, attempts, recipients */
    case FUZZ_RECIPIENT:
        return 2; /* status, last attempt */
    default:
        return 1; /* status, or the time set aside */
    }
}

/* fuzz_promised - the values an accepted record of a kind must have besides its strings */
static int fuzz_promised(int kind, const FUZZ_RECORD *rec)
{
    switch (kind) {
    case FUZZ_ENVELOPE:
        return strcmp(rec->msg.qid, FUZZ_QID) == 0;
    case FUZZ_RECIPIENT:
        return rec->rcpt.index == FUZZ_INDEX && rec->rcpt.status >= QRCPT_PENDING &&
               rec->rcpt.status <= QRCPT_BOUNCED && strlen(rec->rcpt.dsn) < sizeof(rec->rcpt.dsn);
    case FUZZ_ATTEMPT:
        return rec->attempt.when_ms == FUZZ_WHEN_MS && rec->attempt.index == FUZZ_INDEX &&
               strlen(rec->attempt.dsn) < sizeof(rec->attempt.dsn);
    default:
        return 1;
    }
}

/* fuzz_same_numbers - two records of a kind with the same numbers */
static int fuzz_same_numbers(int kind, const FUZZ_RECORD *a, const FUZZ_RECORD *b)
{
    switch (kind) {
    case FUZZ_ENVELOPE:
        return a->msg.arrival_ms == b->msg.arrival_ms &&
               a->msg.next_attempt == b->msg.next_attempt && a->msg.size == b->msg.size &&
               a->msg.flags == b->msg.flags && a->msg.attempts == b->msg.attempts &&
               a->msg.nrcpt == b->msg.nrcpt;
    case FUZZ_RECIPIENT:
        return a->rcpt.status == b->rcpt.status && a->rcpt.last_attempt == b->rcpt.last_attempt;
    case FUZZ_ATTEMPT:
        return a->attempt.status == b->attempt.status;
    default:
        return a->aside.when_ms == b->aside.when_ms;
    }
}

/* fuzz_record - a record of a kind, as qstore.c reads it (kind -1: raw content, no record) */
static void fuzz_record(int kind, const uint8_t *data, size_t len)
{
    const char *strs[FUZZ_STRINGS_MAX], *again_strs[FUZZ_STRINGS_MAX];
    VSTR *wire, *again;
    FUZZ_RECORD rec, copy;
    size_t count, used = 0;

    if (kind < 0)
        return;
    if (fuzz_decode(kind, data, len, &rec) < 0) {
        /* Refused, yet with every string there to free. */
        count = fuzz_strings(kind, &rec, strs);
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(strs[i] != NULL);
        fuzz_release(kind, &rec);
        return;
    }
    /* The version byte, the numbers and the strings, NUL-free, fit in the record. */
    count = fuzz_strings(kind, &rec, strs);
    for (size_t i = 0; i < count; i++) {
        FUZZ_CHECK(strs[i] != NULL);
        used += FUZZ_U64_LEN + strlen(strs[i]);
    }
    FUZZ_CHECK(data[0] == FUZZ_VERSION && 1 + fuzz_numbers(kind) * FUZZ_U64_LEN + used <= len);
    FUZZ_CHECK(fuzz_promised(kind, &rec));

    /* Encoded again, it decodes to the same values and encodes to the same bytes. */
    wire = vstr_alloc(len + 1);
    again = vstr_alloc(len + 1);
    fuzz_encode(kind, &rec, wire);
    FUZZ_CHECK(vstr_len(wire) <= len);
    FUZZ_CHECK(fuzz_decode(kind, vstr_str(wire), vstr_len(wire), &copy) == 0);
    FUZZ_CHECK(fuzz_promised(kind, &copy) && fuzz_same_numbers(kind, &rec, &copy));
    FUZZ_CHECK(fuzz_strings(kind, &copy, again_strs) == count);
    for (size_t i = 0; i < count; i++)
        FUZZ_CHECK(again_strs[i] != NULL && strcmp(again_strs[i], strs[i]) == 0);
    fuzz_encode(kind, &copy, again);
    FUZZ_CHECK(vstr_len(again) == vstr_len(wire) &&
               memcmp(vstr_str(again), vstr_str(wire), vstr_len(wire)) == 0);
    fuzz_release(kind, &copy);
    fuzz_release(kind, &rec);
    vstr_free(wire);
    vstr_free(again);
}

/* fuzz_key_qid - the queue id before a key's `tail` bytes of numbers (1), or FUZZ_QID (0) */
static int fuzz_key_qid(const uint8_t *data, size_t len, size_t tail, char *qid)
{
    size_t qid_len = len - tail;

    if (len > tail && qid_len <= QID_LEN && memchr(data, '\0', qid_len) == NULL) {
        memcpy(qid, data, qid_len);
        qid[qid_len] = '\0';
        return 1;
    }
    snprintf(qid, QID_LEN + 1, "%s", FUZZ_QID);
    return 0;
}

/* fuzz_index_key - a recipient or body chunk key */
static void fuzz_index_key(const uint8_t *data, size_t len)
{
    unsigned char key[QRECORD_INDEX_KEY_SIZE];
    const char *qids[2] = {NULL, FUZZ_QID};
    char own[QID_LEN + 1];
    unsigned index;
    int from_key = fuzz_key_qid(data, len, 4, own);

    qids[0] = own;
    for (int i = 0; i < 2; i++) {
        if (qrecord_index_key_decode(data, len, qids[i], &index) < 0) {
            /* The queue id a key starts with always decodes it. */
            FUZZ_CHECK(i == 1 || !from_key);
            continue;
        }
        FUZZ_CHECK(qrecord_index_key(key, qids[i], index) == len && memcmp(key, data, len) == 0);
    }
}

/* fuzz_attempt_key - an attempt key */
static void fuzz_attempt_key(const uint8_t *data, size_t len)
{
    unsigned char key[QRECORD_ATTEMPT_KEY_SIZE];
    const char *qids[2] = {NULL, FUZZ_QID};
    char own[QID_LEN + 1];
    long long when_ms;
    unsigned index;
    int from_key = fuzz_key_qid(data, len, 12, own);

    qids[0] = own;
    for (int i = 0; i < 2; i++) {
        if (qrecord_attempt_key_decode(data, len, qids[i], &when_ms, &index) < 0) {
            FUZZ_CHECK(i == 1 || !from_key);
            continue;
        }
        FUZZ_CHECK(qrecord_attempt_key(key, qids[i], when_ms, index) == len &&
                   memcmp(key, data, len) == 0);
    }
}

/* fuzz_schedule_key - a schedule key */
static void fuzz_schedule_key(const uint8_t *data, size_t len)
{
    unsigned char key[QRECORD_SCHEDULE_KEY_SIZE];
    char qid[QID_LEN + 1], again[QID_LEN + 1];
    long long when, when_again;
    size_t key_len;

    if (qrecord_schedule_key_decode(data, len, &when, qid) < 0) {
        FUZZ_CHECK(len <= 8 || len > QRECORD_SCHEDULE_KEY_SIZE);
        return;
    }
    FUZZ_CHECK(len > 8 && len <= QRECORD_SCHEDULE_KEY_SIZE && strlen(qid) <= len - 8);
    /* Up to the first NUL of its queue id, the key is what the encoder makes. */
    key_len = qrecord_schedule_key(key, when, qid);
    FUZZ_CHECK(key_len == 8 + strlen(qid) && memcmp(key, data, key_len) == 0);
    if (*qid != '\0') {
        FUZZ_CHECK(qrecord_schedule_key_decode(key, key_len, &when_again, again) == 0);
        FUZZ_CHECK(when_again == when && strcmp(again, qid) == 0);
    }
}

/* fuzz_sealed_ad - the associated data qstore.c seals a record of database db with */
static void fuzz_sealed_ad(size_t db, VSTR *ad)
{
    unsigned char key[QRECORD_ATTEMPT_KEY_SIZE];
    size_t key_len;

    switch (fuzz_sealed_dbs[db].kind) {
    case FUZZ_ENVELOPE:
        key_len = strlen(FUZZ_QID);
        memcpy(key, FUZZ_QID, key_len);
        break;
    case FUZZ_ATTEMPT:
        key_len = qrecord_attempt_key(key, FUZZ_QID, FUZZ_WHEN_MS, FUZZ_INDEX);
        break;
    default: /* a recipient, or the first chunk of a body */
        key_len = qrecord_index_key(key, FUZZ_QID, fuzz_sealed_dbs[db].kind < 0 ? 0 : FUZZ_INDEX);
        break;
    }
    vstr_strcpy(ad, fuzz_sealed_dbs[db].name);
    vstr_addch(ad, '\0');
    vstr_append(ad, key, key_len);
}

/* fuzz_check_refused - a refusal of a sealed record or file: a reason, and out as it was */
static void fuzz_check_refused(int rc, const VSTR *why, const VSTR *out, size_t out_len)
{
    FUZZ_CHECK(rc == SEAL_BAD || rc == SEAL_UNKNOWN_KEY);
    FUZZ_CHECK(vstr_len(why) > 0);
    FUZZ_CHECK(vstr_len(out) == out_len && vstr_str(out)[out_len] == '\0');
}

/* fuzz_open_record - open a sealed record: its content is checked as a clear one, or refused */
static void fuzz_open_record(size_t db, const VSTR *ad, const void *rec, size_t len)
{
    VSTR *out = vstr_alloc(64), *why = vstr_alloc(64);
    int rc;

    /* Without a key ring (queue_encryption_key_file unset), nothing opens. */
    vstr_strcpy(out, FUZZ_PAD);
    fuzz_check_refused(seal_open(NULL, vstr_str(ad), vstr_len(ad), rec, len, out, why), why, out,
                       strlen(FUZZ_PAD));
    vstr_reset(why);
    rc = seal_open(fuzz_ring, vstr_str(ad), vstr_len(ad), rec, len, out, why);
    if (rc == SEAL_OK) {
        FUZZ_CHECK(seal_key_id(rec, len) == FUZZ_KEY_ID);
        FUZZ_CHECK(vstr_len(out) + FUZZ_SEALED_OVERHEAD == len + strlen(FUZZ_PAD));
        fuzz_record(fuzz_sealed_dbs[db].kind, (const uint8_t *)vstr_str(out) + strlen(FUZZ_PAD),
                    vstr_len(out) - strlen(FUZZ_PAD));
    } else {
        fuzz_check_refused(rc, why, out, strlen(FUZZ_PAD));
    }
    vstr_free(out);
    vstr_free(why);
}

/* fuzz_flip - flip one bit of a sealed form, at a place that varies with the input */
static void fuzz_flip(VSTR *sealed, const uint8_t *data, size_t len)
{
    size_t at = (len * 2654435761u + (len > 0 ? data[len - 1] : 0)) % vstr_len(sealed);

    ((unsigned char *)vstr_str(sealed))[at] ^= (unsigned char)(1u << (at % 8));
}

/* fuzz_sealed_record - hostile bytes as a sealed record, then the same bytes sealed and altered */
static void fuzz_sealed_record(const uint8_t *data, size_t size)
{
    size_t db = size > 0 ? data[0] % FUZZ_SEALED_DBS : 0;
    size_t len = size > 0 ? size - 1 : 0;
    VSTR *ad = vstr_alloc(64), *sealed = vstr_alloc(len + 64), *other = vstr_alloc(64);
    VSTR *out = vstr_alloc(len + 1), *why = vstr_alloc(64);

    data += size > 0;
    fuzz_sealed_ad(db, ad);
    fuzz_open_record(db, ad, data, len);

    seal_record(fuzz_ring, vstr_str(ad), vstr_len(ad), data, len, sealed);
    FUZZ_CHECK(vstr_len(sealed) == len + FUZZ_SEALED_OVERHEAD);
    FUZZ_CHECK(seal_is_sealed(vstr_str(sealed), vstr_len(sealed)) &&
               seal_key_id(vstr_str(sealed), vstr_len(sealed)) == FUZZ_KEY_ID);
    FUZZ_CHECK(seal_open(fuzz_ring, vstr_str(ad), vstr_len(ad), vstr_str(sealed), vstr_len(sealed),
                         out, why) == SEAL_OK);
    FUZZ_CHECK(vstr_len(out) == len && memcmp(vstr_str(out), data, len) == 0);
    fuzz_open_record(db, ad, vstr_str(sealed), vstr_len(sealed));

    /* Moved to another database, cut short, or one bit flipped: refused. */
    fuzz_sealed_ad((db + 1) % FUZZ_SEALED_DBS, other);
    vstr_reset(out);
    fuzz_check_refused(seal_open(fuzz_ring, vstr_str(other), vstr_len(other), vstr_str(sealed),
                                 vstr_len(sealed), out, why),
                       why, out, 0);
    fuzz_check_refused(seal_open(fuzz_ring, vstr_str(ad), vstr_len(ad), vstr_str(sealed),
                                 vstr_len(sealed) - 1, out, why),
                       why, out, 0);
    fuzz_flip(sealed, data, len);
    fuzz_check_refused(seal_open(fuzz_ring, vstr_str(ad), vstr_len(ad), vstr_str(sealed),
                                 vstr_len(sealed), out, why),
                       why, out, 0);
    vstr_free(ad);
    vstr_free(sealed);
    vstr_free(other);
    vstr_free(out);
    vstr_free(why);
}

/* fuzz_open_file - open a maildrop file both ways pickup may; they agree */
static void fuzz_open_file(const void *data, size_t len)
{
    VSTR *out = vstr_alloc(len + 16), *why = vstr_alloc(64);
    char *copy = mymalloc(len + 1);
    size_t copy_len = len;
    int rc, unsealed;

    vstr_strcpy(out, FUZZ_PAD);
    fuzz_check_refused(seal_drop_open(NULL, data, len, out, why), why, out, strlen(FUZZ_PAD));
    vstr_reset(why);
    rc = seal_drop_open(fuzz_ring, data, len, out, why);
    if (rc != SEAL_OK)
        fuzz_check_refused(rc, why, out, strlen(FUZZ_PAD));
    else
        FUZZ_CHECK(seal_drop_is_sealed(data, len));

    /* seal_drop_unseal() leaves a clear file as it is and opens a sealed one. */
    memcpy(copy, data, len);
    copy[len] = '\0';
    unsealed = seal_drop_unseal(fuzz_ring, &copy, &copy_len, why);
    if (!seal_drop_is_sealed(data, len)) {
        FUZZ_CHECK(rc == SEAL_BAD && unsealed == 0 && copy_len == len);
        FUZZ_CHECK(memcmp(copy, data, len) == 0);
    } else if (rc == SEAL_OK) {
        FUZZ_CHECK(unsealed == 0 && copy_len == vstr_len(out) - strlen(FUZZ_PAD));
        FUZZ_CHECK(memcmp(copy, vstr_str(out) + strlen(FUZZ_PAD), copy_len) == 0);
        FUZZ_CHECK(copy[copy_len] == '\0');
    } else {
        FUZZ_CHECK(unsealed < 0 && copy_len == len && memcmp(copy, data, len) == 0);
    }
    myfree(copy);
    vstr_free(out);
    vstr_free(why);
}

/* fuzz_sealed_file - hostile bytes as a maildrop file, then the same bytes sealed and altered */
static void fuzz_sealed_file(const uint8_t *data, size_t len)
{
    VSTR *file = vstr_alloc(len + 256), *out = vstr_alloc(len + 1), *why = vstr_alloc(64);
    unsigned piece = (unsigned)len * 2654435761u; /* varied, yet the same for an input */
    SEAL_DROP *drop;
    size_t sent = 0;

    fuzz_open_file(data, len);

    FUZZ_CHECK((drop = seal_drop_create(fuzz_drop_id, fuzz_drop_key, file)) != NULL);
    do {
        size_t n = 1 + (piece >> 16) % FUZZ_PIECE_MAX;

        piece = piece * 1103515245u + 12345u;
        if (n > len - sent)
            n = len - sent;
        seal_drop_push(drop, data + sent, n, sent + n == len, file);
        sent += n;
    } while (sent < len);
    seal_drop_free(drop);
    FUZZ_CHECK(seal_drop_is_sealed(vstr_str(file), vstr_len(file)));
    FUZZ_CHECK(seal_drop_open(fuzz_ring, vstr_str(file), vstr_len(file), out, why) == SEAL_OK);
    FUZZ_CHECK(vstr_len(out) == len && memcmp(vstr_str(out), data, len) == 0);
    fuzz_open_file(vstr_str(file), vstr_len(file));

    vstr_reset(out);
    fuzz_check_refused(seal_drop_open(fuzz_ring, vstr_str(file), vstr_len(file) - 1, out, why), why,
                       out, 0);
    fuzz_flip(file, data, len);
    fuzz_check_refused(seal_drop_open(fuzz_ring, vstr_str(file), vstr_len(file), out, why), why,
                       out, 0);
    vstr_free(file);
    vstr_free(out);
    vstr_free(why);
}

/* LLVMFuzzerInitialize - the key ring of a fixed test key, and its maildrop public key */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char key_line[] = "1:" FUZZ_KEY_HEX "\n"; /* FUZZ_KEY_ID */
    const char *base = getenv("TMPDIR");
    char dir[256], keys[300], drop_key[300];
    VSTR *why = vstr_alloc(100);
    int fd = -1;

    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "%s/fuzz_qrecord.XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(dir) != NULL) {
        snprintf(keys, sizeof(keys), "%s/keys", dir);
        snprintf(drop_key, sizeof(drop_key), "%s/maildrop_key", dir);
        fd = open(keys, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0 || write(fd, key_line, sizeof(key_line) - 1) != (ssize_t)sizeof(key_line) - 1 ||
        close(fd) < 0) {
        perror("fuzz_qrecord: the key file");
        exit(1);
    }
    if ((fuzz_ring = seal_ring_load(keys, geteuid(), why)) == NULL ||
        seal_drop_publish(fuzz_ring, drop_key, why) < 0 ||
        seal_drop_key_read(drop_key, &fuzz_drop_id, fuzz_drop_key, why) < 0) {
        fprintf(stderr, "fuzz_qrecord: %s\n", vstr_str(why));
        exit(1);
    }
    unlink(drop_key);
    unlink(keys);
    rmdir(dir);
    vstr_free(why);
    return 0;
}

/* LLVMFuzzerTestOneInput - one record or key, clear or sealed, picked by the first byte */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rec = data + 1;
    size_t len = size - 1;

    if (size == 0)
        return 0;
    switch (data[0] % FUZZ_KINDS) {
    case FUZZ_INDEX_KEY:
        fuzz_index_key(rec, len);
        break;
    case FUZZ_ATTEMPT_KEY:
        fuzz_attempt_key(rec, len);
        break;
    case FUZZ_SCHEDULE_KEY:
        fuzz_schedule_key(rec, len);
        break;
    case FUZZ_SEALED_RECORD:
        fuzz_sealed_record(rec, len);
        break;
    case FUZZ_SEALED_FILE:
        fuzz_sealed_file(rec, len);
        break;
    default:
        fuzz_record(data[0] % FUZZ_KINDS, rec, len);
        break;
    }
    return 0;
}
