/*
 * qstore - the durable mail queue: one LMDB environment
 *
 * This is the only module that calls mdb_*(). The environment holds seven
 * named databases (DESIGN.md): messages (queue id -> envelope),
 * recipients (queue id + 32-bit index -> recipient), bodies (queue id +
 * 32-bit chunk number -> content), schedule (64-bit big-endian time +
 * queue id -> nothing, the due-time index), picked (maildrop file name ->
 * queue id), attempts (queue id + 64-bit time in ms + 32-bit recipient
 * index -> one delivery attempt's outcome) and meta (name -> value: the
 * schema version).
 *
 * qstore_open(), qstore_close()
 *	open the environment in a directory (created when missing unless
 *	read-only) with MDB_NOTLS, so that one process may use it from any
 *	thread and a reader slot is not tied to a thread. Every process opens
 *	its own environment after exec; it is never inherited.
 * qstore_begin(), qstore_commit(), qstore_abort()
 *	transactions. A write transaction carries a sticky error: after the
 *	first failed operation the others do nothing and return the same
 *	error, and commit returns it, so a caller can batch many operations
 *	(group commit) and check once. MDB_MAP_RESIZED (another process grew
 *	the map) and MDB_READERS_FULL (stale readers of dead processes) are
 *	handled here, at begin; MDB_MAP_FULL becomes QSTORE_FULL.
 * qstore_message_*()
 *	envelopes: put (create refuses to overwrite: QSTORE_EXISTS),
 *	get, reschedule (move the schedule entry and rewrite the envelope),
 *	delete (the envelope, its recipients, body and schedule entry) and
 *	scan (every envelope, in queue id order).
 * qstore_rcpt_put(), qstore_rcpts_get()
 *	recipients, written one by one and read all at once.
 * qstore_attempt_put(), qstore_attempts_get(), qstore_attempts_free()
 *	the attempt history of a message, oldest first; deleted with it.
 * qstore_body_put(), qstore_body_get()
 *	content, stored in chunks of QSTORE_CHUNK bytes.
 * qstore_schedule_scan()
 *	visit schedule entries due at or before a time, earliest first, until
 *	the callback returns non-zero.
 * qstore_picked_*()
 *	the record that makes pickup idempotent across crashes.
 * qstore_count()
 *	the number of messages and of schedule entries.
 *
 * Records are versioned binary: a version byte, then fixed-width
 * big-endian integers and length-prefixed strings. A record that does not
 * decode is reported as QSTORE_ERROR with a reason naming the queue id.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>
#include <sodium.h>

#include "msg.h"
#include "mymalloc.h"
#include "qstore.h"

#define QSTORE_SCHEMA "1"
#define QSTORE_CHUNK 65536
#define QSTORE_REC_VERSION 1

struct QSTORE {
    MDB_env *env;
    MDB_dbi messages;
    MDB_dbi recipients;
    MDB_dbi bodies;
    MDB_dbi schedule;
    MDB_dbi picked;
    MDB_dbi attempts;
    MDB_dbi meta;
    int readonly;
};

struct QSTORE_TXN {
    QSTORE *store;
    MDB_txn *txn;
    int error;    /* sticky: the first failure */
    VSTR *reason; /* why it failed */
};

/* qstore_fail - record the first failure of a transaction */
static int qstore_fail(QSTORE_TXN *txn, int rc, const char *what)
{
    if (txn->error == QSTORE_OK) {
        txn->error = (rc == MDB_MAP_FULL) ? QSTORE_FULL : QSTORE_ERROR;
        vstr_sprintf(txn->reason, "%s: %s", what,
                     rc == MDB_MAP_FULL ? "queue map is full (queue_map_size)" : mdb_strerror(rc));
    }
    return txn->error;
}

/* qstore_open_dbs - open (and create) the named databases */
static int qstore_open_dbs(QSTORE *store, VSTR *why)
{
    MDB_txn *txn;
    unsigned flags = store->readonly ? 0 : MDB_CREATE;
    int rc;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {
        {"messages", &store->messages}, {"recipients", &store->recipients},
        {"bodies", &store->bodies},     {"schedule", &store->schedule},
        {"picked", &store->picked},     {"attempts", &store->attempts},
        {"meta", &store->meta},
    };

    if ((rc = mdb_txn_begin(store->env, NULL, store->readonly ? MDB_RDONLY : 0, &txn)) != 0) {
        vstr_sprintf(why, "begin transaction: %s", mdb_strerror(rc));
        return -1;
    }
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        if ((rc = mdb_dbi_open(txn, dbs[i].name, flags, dbs[i].dbi)) != 0) {
            vstr_sprintf(why, "open database %s: %s%s", dbs[i].name, mdb_strerror(rc),
                         rc == MDB_NOTFOUND ? " (queue not created yet: start relayq first)" : "");
            mdb_txn_abort(txn);
            return -1;
        }
    }
    if (!store->readonly) {
        MDB_val key = {.mv_size = 6, .mv_data = (void *)"schema"};
        MDB_val val = {.mv_size = strlen(QSTORE_SCHEMA), .mv_data = (void *)QSTORE_SCHEMA};
        MDB_val old;

        rc = mdb_get(txn, store->meta, &key, &old);
        if (rc == MDB_NOTFOUND)
            rc = mdb_put(txn, store->meta, &key, &val, 0);
        else if (rc == 0 && (old.mv_size != val.mv_size ||
                             memcmp(old.mv_data, val.mv_data, val.mv_size) != 0)) {
            vstr_sprintf(why, "queue schema version %.*s, this relayq reads %s", (int)old.mv_size,
                         (char *)old.mv_data, QSTORE_SCHEMA);
            mdb_txn_abort(txn);
            return -1;
        }
        if (rc != 0) {
            vstr_sprintf(why, "write schema version: %s", mdb_strerror(rc));
            mdb_txn_abort(txn);
            return -1;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        vstr_sprintf(why, "commit: %s", mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/* qstore_open - open the queue environment */
QSTORE *qstore_open(const char *dir, size_t map_size, int flags, VSTR *why)
{
    QSTORE *store = mycalloc(1, sizeof(*store));
    unsigned env_flags = MDB_NOTLS;
    int rc;

    if (sodium_init() < 0) {
        vstr_strcpy(why, "libsodium initialisation failed");
        myfree(store);
        return NULL;
    }
    store->readonly = (flags & QSTORE_READONLY) != 0;
    if (store->readonly)
        env_flags |= MDB_RDONLY;
    else if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        vstr_sprintf(why, "create %s: %s", dir, strerror(errno));
        myfree(store);
        return NULL;
    }
    if ((rc = mdb_env_create(&store->env)) != 0 || (rc = mdb_env_set_maxdbs(store->env, 8)) != 0 ||
        (rc = mdb_env_set_maxreaders(store->env, 256)) != 0 ||
        (!store->readonly && (rc = mdb_env_set_mapsize(store->env, map_size)) != 0) ||
        (rc = mdb_env_open(store->env, dir, env_flags, 0600)) != 0) {
        vstr_sprintf(why, "open queue %s: %s", dir, mdb_strerror(rc));
        if (store->env)
            mdb_env_close(store->env);
        myfree(store);
        return NULL;
    }
    if (qstore_open_dbs(store, why) < 0) {
        mdb_env_close(store->env);
        myfree(store);
        return NULL;
    }
    return store;
}

/* qstore_close - close the environment */
void qstore_close(QSTORE *store)
{
    if (store == NULL)
        return;
    mdb_env_close(store->env);
    myfree(store);
}

/* qstore_begin - start a transaction, absorbing resize and stale readers */
QSTORE_TXN *qstore_begin(QSTORE *store, int write, VSTR *why)
{
    QSTORE_TXN *txn;
    MDB_txn *mtxn;
    int rc;

    for (int attempt = 0;; attempt++) {
        rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &mtxn);
        if (rc == 0)
            break;
        if (attempt < 2 && rc == MDB_MAP_RESIZED) {
            /* Another process grew the map: adopt its size. */
            if (mdb_env_set_mapsize(store->env, 0) == 0)
                continue;
        }
        if (attempt < 2 && rc == MDB_READERS_FULL) {
            int dead = 0;

            if (mdb_reader_check(store->env, &dead) == 0 && dead > 0)
                continue;
        }
        vstr_sprintf(why, "begin %s transaction: %s", write ? "write" : "read", mdb_strerror(rc));
        return NULL;
    }
    txn = mycalloc(1, sizeof(*txn));
    txn->store = store;
    txn->txn = mtxn;
    txn->reason = vstr_alloc(100);
    return txn;
}

/* qstore_txn_free - release the wrapper */
static void qstore_txn_free(QSTORE_TXN *txn)
{
    vstr_free(txn->reason);
    myfree(txn);
}

/* qstore_commit - commit, or report the sticky error */
int qstore_commit(QSTORE_TXN *txn, VSTR *why)
{
    int ret = txn->error;
    int rc;

    if (ret != QSTORE_OK) {
        vstr_strcpy(why, vstr_str(txn->reason));
        mdb_txn_abort(txn->txn);
    } else if ((rc = mdb_txn_commit(txn->txn)) != 0) {
        ret = rc == MDB_MAP_FULL ? QSTORE_FULL : QSTORE_ERROR;
        vstr_sprintf(why, "commit: %s",
                     rc == MDB_MAP_FULL ? "queue map is full (queue_map_size)" : mdb_strerror(rc));
    }
    qstore_txn_free(txn);
    return ret;
}

/* qstore_abort - abandon a transaction */
void qstore_abort(QSTORE_TXN *txn)
{
    if (txn == NULL)
        return;
    mdb_txn_abort(txn->txn);
    qstore_txn_free(txn);
}

/* qstore_txn_error - the sticky error, QSTORE_OK when none */
int qstore_txn_error(const QSTORE_TXN *txn)
{
    return txn->error;
}

/* qstore_txn_reason - the text of the sticky error */
const char *qstore_txn_reason(const QSTORE_TXN *txn)
{
    return vstr_str(txn->reason);
}

/*
 * Record encoding.
 */

/* pack_u64 - append a big-endian 64-bit number */
static void pack_u64(VSTR *buf, uint64_t n)
{
    unsigned char bytes[8];

    for (int i = 7; i >= 0; i--) {
        bytes[i] = (unsigned char)(n & 0xff);
        n >>= 8;
    }
    vstr_append(buf, bytes, 8);
}

/* pack_str - append a length-prefixed string */
static void pack_str(VSTR *buf, const char *str)
{
    size_t len = str ? strlen(str) : 0;

    pack_u64(buf, len);
    vstr_append(buf, str ? str : "", len);
}

/* A decoding cursor over a record. */
typedef struct UNPACK {
    const unsigned char *cp;
    const unsigned char *end;
    int bad;
} UNPACK;

/* unpack_u64 - take a big-endian 64-bit number */
static uint64_t unpack_u64(UNPACK *up)
{
    uint64_t n = 0;

    if (up->end - up->cp < 8) {
        up->bad = 1;
        return 0;
    }
    for (int i = 0; i < 8; i++)
        n = (n << 8) | *up->cp++;
    return n;
}

/* unpack_str - take a length-prefixed string (allocated) */
static char *unpack_str(UNPACK *up)
{
    uint64_t len = unpack_u64(up);
    char *str;

    if (up->bad || len > (uint64_t)(up->end - up->cp)) {
        up->bad = 1;
        return mystrdup("");
    }
    str = mystrndup((const char *)up->cp, (size_t)len);
    up->cp += len;
    return str;
}

/* be64_put - a big-endian number into a key buffer */
static void be64_put(unsigned char *out, uint64_t n)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(n & 0xff);
        n >>= 8;
    }
}

/* be64_get - a big-endian number from a key buffer */
static uint64_t be64_get(const unsigned char *in)
{
    uint64_t n = 0;

    for (int i = 0; i < 8; i++)
        n = (n << 8) | in[i];
    return n;
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

/* qmsg_decode - envelope from its stored form */
static int qmsg_decode(const char *qid, const MDB_val *val, QMSG *msg)
{
    UNPACK up = {val->mv_data, (const unsigned char *)val->mv_data + val->mv_size, 0};

    qmsg_init(msg);
    snprintf(msg->qid, sizeof(msg->qid), "%s", qid);
    if (up.cp == up.end || *up.cp++ != QSTORE_REC_VERSION)
        up.bad = 1;
    msg->arrival_ms = (long long)unpack_u64(&up);
    msg->next_attempt = (long long)unpack_u64(&up);
    msg->size = (long long)unpack_u64(&up);
    msg->flags = (unsigned)unpack_u64(&up);
    msg->attempts = (unsigned)unpack_u64(&up);
    msg->nrcpt = (unsigned)unpack_u64(&up);
    msg->sender = unpack_str(&up);
    msg->envid = unpack_str(&up);
    msg->ret = unpack_str(&up);
    return up.bad ? -1 : 0;
}

/* qmsg_key - the key of a message */
static MDB_val qmsg_key(const char *qid)
{
    MDB_val key = {.mv_size = strlen(qid), .mv_data = (void *)qid};

    return key;
}

/* qstore_message_put - store an envelope */
int qstore_message_put(QSTORE_TXN *txn, const QMSG *msg, int create)
{
    VSTR *buf;
    MDB_val key = qmsg_key(msg->qid), val;
    int rc;

    if (txn->error)
        return txn->error;
    buf = vstr_alloc(128);
    vstr_addch(buf, QSTORE_REC_VERSION);
    pack_u64(buf, (uint64_t)msg->arrival_ms);
    pack_u64(buf, (uint64_t)msg->next_attempt);
    pack_u64(buf, (uint64_t)msg->size);
    pack_u64(buf, msg->flags);
    pack_u64(buf, msg->attempts);
    pack_u64(buf, msg->nrcpt);
    pack_str(buf, msg->sender);
    pack_str(buf, msg->envid);
    pack_str(buf, msg->ret);
    val.mv_size = vstr_len(buf);
    val.mv_data = vstr_str(buf);
    rc = mdb_put(txn->txn, txn->store->messages, &key, &val, create ? MDB_NOOVERWRITE : 0);
    vstr_free(buf);
    if (rc == MDB_KEYEXIST)
        return QSTORE_EXISTS;
    if (rc != 0)
        return qstore_fail(txn, rc, "store envelope");
    return QSTORE_OK;
}

/* qstore_message_get - read an envelope */
int qstore_message_get(QSTORE_TXN *txn, const char *qid, QMSG *msg)
{
    MDB_val key = qmsg_key(qid), val;
    int rc;

    if (txn->error)
        return txn->error;
    rc = mdb_get(txn->txn, txn->store->messages, &key, &val);
    if (rc == MDB_NOTFOUND)
        return QSTORE_NOTFOUND;
    if (rc != 0)
        return qstore_fail(txn, rc, "read envelope");
    if (qmsg_decode(qid, &val, msg) < 0) {
        qmsg_free(msg);
        vstr_sprintf(txn->reason, "%s: malformed envelope record", qid);
        return QSTORE_ERROR;
    }
    return QSTORE_OK;
}

/* schedule_key - build the 8-byte time + queue id key */
static MDB_val schedule_key(unsigned char *buf, long long when, const char *qid)
{
    MDB_val key;
    size_t len = strlen(qid);

    be64_put(buf, (uint64_t)when);
    memcpy(buf + 8, qid, len);
    key.mv_size = 8 + len;
    key.mv_data = buf;
    return key;
}

/* schedule_put - add a schedule entry */
static int schedule_put(QSTORE_TXN *txn, long long when, const char *qid)
{
    unsigned char buf[8 + QID_LEN + 1];
    MDB_val key = schedule_key(buf, when, qid), val = {0, NULL};
    int rc = mdb_put(txn->txn, txn->store->schedule, &key, &val, 0);

    return rc ? qstore_fail(txn, rc, "store schedule entry") : QSTORE_OK;
}

/* schedule_del - remove a schedule entry; a missing one is fine */
static int schedule_del(QSTORE_TXN *txn, long long when, const char *qid)
{
    unsigned char buf[8 + QID_LEN + 1];
    MDB_val key = schedule_key(buf, when, qid);
    int rc = mdb_del(txn->txn, txn->store->schedule, &key, NULL);

    return rc && rc != MDB_NOTFOUND ? qstore_fail(txn, rc, "delete schedule entry") : QSTORE_OK;
}

/* qstore_message_reschedule - move a message to a new schedule time */
int qstore_message_reschedule(QSTORE_TXN *txn, QMSG *msg, long long next_attempt)
{
    if (txn->error)
        return txn->error;
    if (msg->next_attempt > 0 && schedule_del(txn, msg->next_attempt, msg->qid) != QSTORE_OK)
        return txn->error;
    msg->next_attempt = next_attempt;
    if (next_attempt > 0 && schedule_put(txn, next_attempt, msg->qid) != QSTORE_OK)
        return txn->error;
    return qstore_message_put(txn, msg, 0);
}

/* prefix_delete - delete every key of a database that starts with qid */
static int prefix_delete(QSTORE_TXN *txn, MDB_dbi dbi, const char *qid, const char *what)
{
    size_t len = strlen(qid);
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, dbi, &cur)) != 0)
        return qstore_fail(txn, rc, what);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size >= len && memcmp(key.mv_data, qid, len) == 0) {
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
        if (rc == MDB_NOTFOUND || rc == EINVAL)
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, what);
    return QSTORE_OK;
}

/* qstore_message_delete - remove a message and everything of it */
int qstore_message_delete(QSTORE_TXN *txn, const char *qid)
{
    QMSG msg;
    MDB_val key = qmsg_key(qid);
    int rc;

    if (txn->error)
        return txn->error;
    if ((rc = qstore_message_get(txn, qid, &msg)) != QSTORE_OK)
        return rc;
    if (msg.next_attempt > 0)
        schedule_del(txn, msg.next_attempt, qid);
    qmsg_free(&msg);
    prefix_delete(txn, txn->store->recipients, qid, "delete recipients");
    prefix_delete(txn, txn->store->bodies, qid, "delete body");
    prefix_delete(txn, txn->store->attempts, qid, "delete attempts");
    if (txn->error)
        return txn->error;
    if ((rc = mdb_del(txn->txn, txn->store->messages, &key, NULL)) != 0)
        return qstore_fail(txn, rc, "delete envelope");
    return QSTORE_OK;
}

/* qstore_message_scan - visit every envelope */
int qstore_message_scan(QSTORE_TXN *txn, int (*fn)(const QMSG *msg, void *ctx), void *ctx)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->messages, &cur)) != 0)
        return qstore_fail(txn, rc, "scan envelopes");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char qid[QID_LEN + 1];
        QMSG msg;
        int stop;

        if (key.mv_size > QID_LEN)
            continue;
        memcpy(qid, key.mv_data, key.mv_size);
        qid[key.mv_size] = '\0';
        if (qmsg_decode(qid, &val, &msg) < 0) {
            msg_warn("%s: malformed envelope record, skipped", qid);
            qmsg_free(&msg);
            continue;
        }
        stop = fn(&msg, ctx);
        qmsg_free(&msg);
        if (stop)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "scan envelopes");
    return QSTORE_OK;
}

/* qid_index_key - queue id + 32-bit big-endian number */
static MDB_val qid_index_key(unsigned char *buf, const char *qid, unsigned index)
{
    size_t len = strlen(qid);
    MDB_val key;

    memcpy(buf, qid, len);
    buf[len] = (unsigned char)(index >> 24);
    buf[len + 1] = (unsigned char)(index >> 16);
    buf[len + 2] = (unsigned char)(index >> 8);
    buf[len + 3] = (unsigned char)index;
    key.mv_size = len + 4;
    key.mv_data = buf;
    return key;
}

/* qstore_rcpt_put - store one recipient */
int qstore_rcpt_put(QSTORE_TXN *txn, const char *qid, const QRCPT *rcpt)
{
    unsigned char kbuf[QID_LEN + 4];
    MDB_val key = qid_index_key(kbuf, qid, rcpt->index), val;
    VSTR *buf;
    int rc;

    if (txn->error)
        return txn->error;
    buf = vstr_alloc(128);
    vstr_addch(buf, QSTORE_REC_VERSION);
    pack_u64(buf, (uint64_t)rcpt->status);
    pack_u64(buf, (uint64_t)rcpt->last_attempt);
    pack_str(buf, rcpt->dsn);
    pack_str(buf, rcpt->addr);
    pack_str(buf, rcpt->orcpt);
    pack_str(buf, rcpt->notify);
    pack_str(buf, rcpt->reply);
    val.mv_size = vstr_len(buf);
    val.mv_data = vstr_str(buf);
    rc = mdb_put(txn->txn, txn->store->recipients, &key, &val, 0);
    vstr_free(buf);
    return rc ? qstore_fail(txn, rc, "store recipient") : QSTORE_OK;
}

/* qrcpt_decode - recipient from its stored form */
static int qrcpt_decode(const MDB_val *key, const MDB_val *val, QRCPT *rcpt)
{
    UNPACK up = {val->mv_data, (const unsigned char *)val->mv_data + val->mv_size, 0};
    const unsigned char *kp = (const unsigned char *)key->mv_data + key->mv_size - 4;
    char *dsn;

    memset(rcpt, 0, sizeof(*rcpt));
    rcpt->index =
        ((unsigned)kp[0] << 24) | ((unsigned)kp[1] << 16) | ((unsigned)kp[2] << 8) | kp[3];
    if (up.cp == up.end || *up.cp++ != QSTORE_REC_VERSION)
        up.bad = 1;
    rcpt->status = (int)unpack_u64(&up);
    rcpt->last_attempt = (long long)unpack_u64(&up);
    dsn = unpack_str(&up);
    snprintf(rcpt->dsn, sizeof(rcpt->dsn), "%s", dsn);
    myfree(dsn);
    rcpt->addr = unpack_str(&up);
    rcpt->orcpt = unpack_str(&up);
    rcpt->notify = unpack_str(&up);
    rcpt->reply = unpack_str(&up);
    return up.bad || rcpt->status < QRCPT_PENDING || rcpt->status > QRCPT_BOUNCED ? -1 : 0;
}

/* qstore_rcpts_get - read all recipients of a message */
int qstore_rcpts_get(QSTORE_TXN *txn, const char *qid, QRCPT **list, size_t *count)
{
    size_t len = strlen(qid), n = 0, cap = 4;
    QRCPT *rcpts;
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    int rc;

    if (txn->error)
        return txn->error;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->recipients, &cur)) != 0)
        return qstore_fail(txn, rc, "read recipients");
    rcpts = mymalloc(sizeof(*rcpts) * cap);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && key.mv_size == len + 4 && memcmp(key.mv_data, qid, len) == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (n == cap)
            rcpts = myrealloc(rcpts, sizeof(*rcpts) * (cap *= 2));
        if (qrcpt_decode(&key, &val, rcpts + n) < 0) {
            qstore_rcpts_free(rcpts, n + 1);
            mdb_cursor_close(cur);
            vstr_sprintf(txn->reason, "%s: malformed recipient record", qid);
            return QSTORE_ERROR;
        }
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        qstore_rcpts_free(rcpts, n);
        return qstore_fail(txn, rc, "read recipients");
    }
    *list = rcpts;
    *count = n;
    return QSTORE_OK;
}

/* qstore_rcpts_free - release a recipient list */
void qstore_rcpts_free(QRCPT *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        myfree(list[i].addr);
        myfree(list[i].orcpt);
        myfree(list[i].notify);
        myfree(list[i].reply);
    }
    myfree(list);
}

/* qstore_attempt_put - record one recipient's delivery attempt */
int qstore_attempt_put(QSTORE_TXN *txn, const char *qid, const QATTEMPT *attempt)
{
    unsigned char kbuf[QID_LEN + 12];
    size_t len = strlen(qid);
    MDB_val key, val;
    VSTR *buf;
    int rc;

    if (txn->error)
        return txn->error;
    memcpy(kbuf, qid, len);
    be64_put(kbuf + len, (uint64_t)attempt->when_ms);
    kbuf[len + 8] = (unsigned char)(attempt->index >> 24);
    kbuf[len + 9] = (unsigned char)(attempt->index >> 16);
    kbuf[len + 10] = (unsigned char)(attempt->index >> 8);
    kbuf[len + 11] = (unsigned char)attempt->index;
    key.mv_size = len + 12;
    key.mv_data = kbuf;
    buf = vstr_alloc(128);
    vstr_addch(buf, QSTORE_REC_VERSION);
    pack_u64(buf, (uint64_t)attempt->status);
    pack_str(buf, attempt->dsn);
    pack_str(buf, attempt->relay);
    pack_str(buf, attempt->reply);
    val.mv_size = vstr_len(buf);
    val.mv_data = vstr_str(buf);
    rc = mdb_put(txn->txn, txn->store->attempts, &key, &val, 0);
    vstr_free(buf);
    return rc ? qstore_fail(txn, rc, "store attempt") : QSTORE_OK;
}

/* qstore_attempts_get - the attempt history of a message, oldest first */
int qstore_attempts_get(QSTORE_TXN *txn, const char *qid, QATTEMPT **list, size_t *count)
{
    size_t len = strlen(qid), n = 0, cap = 4;
    QATTEMPT *attempts;
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    int rc;

    if (txn->error)
        return txn->error;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->attempts, &cur)) != 0)
        return qstore_fail(txn, rc, "read attempts");
    attempts = mymalloc(sizeof(*attempts) * cap);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && key.mv_size == len + 12 && memcmp(key.mv_data, qid, len) == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const unsigned char *kp = (const unsigned char *)key.mv_data + len;
        UNPACK up = {val.mv_data, (const unsigned char *)val.mv_data + val.mv_size, 0};
        QATTEMPT *at;
        char *dsn;

        if (n == cap)
            attempts = myrealloc(attempts, sizeof(*attempts) * (cap *= 2));
        at = attempts + n++;
        at->when_ms = (long long)be64_get(kp);
        at->index =
            ((unsigned)kp[8] << 24) | ((unsigned)kp[9] << 16) | ((unsigned)kp[10] << 8) | kp[11];
        if (up.cp == up.end || *up.cp++ != QSTORE_REC_VERSION)
            up.bad = 1;
        at->status = (int)unpack_u64(&up);
        dsn = unpack_str(&up);
        snprintf(at->dsn, sizeof(at->dsn), "%s", dsn);
        myfree(dsn);
        at->relay = unpack_str(&up);
        at->reply = unpack_str(&up);
        if (up.bad) {
            qstore_attempts_free(attempts, n);
            mdb_cursor_close(cur);
            vstr_sprintf(txn->reason, "%s: malformed attempt record", qid);
            return QSTORE_ERROR;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        qstore_attempts_free(attempts, n);
        return qstore_fail(txn, rc, "read attempts");
    }
    *list = attempts;
    *count = n;
    return QSTORE_OK;
}

/* qstore_attempts_free - release an attempt list */
void qstore_attempts_free(QATTEMPT *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        myfree(list[i].relay);
        myfree(list[i].reply);
    }
    myfree(list);
}

/* qstore_body_put - store content in chunks */
int qstore_body_put(QSTORE_TXN *txn, const char *qid, const char *data, size_t len)
{
    unsigned char kbuf[QID_LEN + 4];
    unsigned chunk = 0;
    size_t off = 0;

    if (txn->error)
        return txn->error;
    do {
        size_t n = len - off > QSTORE_CHUNK ? QSTORE_CHUNK : len - off;
        MDB_val key = qid_index_key(kbuf, qid, chunk++);
        MDB_val val = {.mv_size = n, .mv_data = (void *)(data + off)};
        int rc = mdb_put(txn->txn, txn->store->bodies, &key, &val, 0);

        if (rc != 0)
            return qstore_fail(txn, rc, "store body");
        off += n;
    } while (off < len);
    return QSTORE_OK;
}

/* qstore_body_get - read the whole content */
int qstore_body_get(QSTORE_TXN *txn, const char *qid, VSTR *out)
{
    size_t len = strlen(qid);
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    int rc, found = 0;

    if (txn->error)
        return txn->error;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->bodies, &cur)) != 0)
        return qstore_fail(txn, rc, "read body");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && key.mv_size == len + 4 && memcmp(key.mv_data, qid, len) == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        vstr_append(out, val.mv_data, val.mv_size);
        found = 1;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "read body");
    return found ? QSTORE_OK : QSTORE_NOTFOUND;
}

/* qstore_schedule_scan - visit due schedule entries, earliest first */
int qstore_schedule_scan(QSTORE_TXN *txn, long long upto,
                         int (*fn)(const char *qid, long long when, void *ctx), void *ctx)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->schedule, &cur)) != 0)
        return qstore_fail(txn, rc, "scan schedule");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char qid[QID_LEN + 1];
        long long when;

        if (key.mv_size < 9 || key.mv_size > 8 + QID_LEN)
            continue;
        when = (long long)be64_get(key.mv_data);
        if (when > upto)
            break;
        memcpy(qid, (char *)key.mv_data + 8, key.mv_size - 8);
        qid[key.mv_size - 8] = '\0';
        if (fn(qid, when, ctx))
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "scan schedule");
    return QSTORE_OK;
}

/* qstore_picked_put - remember that a maildrop file became a message */
int qstore_picked_put(QSTORE_TXN *txn, const char *name, const char *qid)
{
    MDB_val key = {.mv_size = strlen(name), .mv_data = (void *)name};
    MDB_val val = {.mv_size = strlen(qid), .mv_data = (void *)qid};
    int rc;

    if (txn->error)
        return txn->error;
    rc = mdb_put(txn->txn, txn->store->picked, &key, &val, 0);
    return rc ? qstore_fail(txn, rc, "store picked entry") : QSTORE_OK;
}

/* qstore_picked_get - the queue id a maildrop file became, if any */
int qstore_picked_get(QSTORE_TXN *txn, const char *name, char *qid)
{
    MDB_val key = {.mv_size = strlen(name), .mv_data = (void *)name}, val;
    int rc;

    if (txn->error)
        return txn->error;
    rc = mdb_get(txn->txn, txn->store->picked, &key, &val);
    if (rc == MDB_NOTFOUND)
        return QSTORE_NOTFOUND;
    if (rc != 0)
        return qstore_fail(txn, rc, "read picked entry");
    snprintf(qid, QID_LEN + 1, "%.*s", (int)val.mv_size, (char *)val.mv_data);
    return QSTORE_OK;
}

/* qstore_picked_delete - forget a maildrop file that is gone */
int qstore_picked_delete(QSTORE_TXN *txn, const char *name)
{
    MDB_val key = {.mv_size = strlen(name), .mv_data = (void *)name};
    int rc;

    if (txn->error)
        return txn->error;
    rc = mdb_del(txn->txn, txn->store->picked, &key, NULL);
    return rc && rc != MDB_NOTFOUND ? qstore_fail(txn, rc, "delete picked entry") : QSTORE_OK;
}

/* qstore_picked_scan - visit every picked entry's file name */
int qstore_picked_scan(QSTORE_TXN *txn, int (*fn)(const char *name, void *ctx), void *ctx)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->picked, &cur)) != 0)
        return qstore_fail(txn, rc, "scan picked");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char *name = mystrndup(key.mv_data, key.mv_size);
        int stop = fn(name, ctx);

        myfree(name);
        if (stop)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "scan picked");
    return QSTORE_OK;
}

/* qstore_count - how many messages and schedule entries there are */
int qstore_count(QSTORE_TXN *txn, size_t *messages, size_t *scheduled)
{
    MDB_stat st;
    int rc;

    if ((rc = mdb_stat(txn->txn, txn->store->messages, &st)) != 0)
        return qstore_fail(txn, rc, "stat messages");
    *messages = st.ms_entries;
    if ((rc = mdb_stat(txn->txn, txn->store->schedule, &st)) != 0)
        return qstore_fail(txn, rc, "stat schedule");
    *scheduled = st.ms_entries;
    return QSTORE_OK;
}
