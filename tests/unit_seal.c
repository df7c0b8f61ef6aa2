/*
 * unit_seal - tests of encryption at rest: key files, sealed records, the sealed queue and
 * sealed maildrop files
 *
 * Key files: a good file loads (base64 and hex keys, comments, the last key
 * current); an unsafe mode, a malformed line, a bad id, a duplicate id, a
 * key of the wrong length and a file without a key are refused with the
 * file and line. Records: a round trip; a record sealed under a key the
 * ring does not hold; every single flipped bit of a sealed record fails;
 * other associated data fails; an old key still opens after a new one is
 * added. The queue (qstore with a ring): nothing of the content is in the
 * clear on disk; after a rotation old messages read and new ones are
 * sealed under the new id; a flipped byte, a record swapped between
 * messages, a body cut short and a clear record in a sealed message are
 * QSTORE_TAMPERED; a message queued in the clear stays readable and clear;
 * set aside is for good and ends with delete. Maildrop files: a round trip
 * over several chunks; a flipped byte, a file cut short, a file extended
 * and an unknown key id fail; the published public key reads back.
 */
#include "config.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mymalloc.h"
#include "qstore.h"
#include "seal.h"
#include "tap.h"

#define MAP_SIZE (8 * 1024 * 1024)
#define KEY1 "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY2 "2:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
#define SECRET_SENDER "very-secret-sender@example.com"
#define SECRET_RCPT "very-secret-recipient@example.com"
#define SECRET_BODY "Subject: very secret body text"

static char dir[] = "/tmp/unit_seal.XXXXXX";

/* write_file - a file with content and mode; its path (static buffer per call site) */
static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[4][256];
    static int slot;
    char *p = path[slot++ % 4];
    FILE *fp;

    snprintf(p, 256, "%s/%s", dir, name);
    fp = fopen(p, "w");
    fputs(text, fp);
    fclose(fp);
    chmod(p, mode);
    return p;
}

/* load - a ring from text; NULL with the reason in why */
static SEAL_RING *load(const char *name, const char *text, mode_t mode, VSTR *why)
{
    return seal_ring_load(write_file(name, text, mode), geteuid(), why);
}

/* refused - a key file is refused with a reason containing want */
static void refused(const char *name, const char *text, mode_t mode, const char *want)
{
    VSTR *why = vstr_alloc(100);
    SEAL_RING *ring = load(name, text, mode, why);

    tap_ok(ring == NULL && strstr(vstr_str(why), want) != NULL, "%s is refused: %s", name,
           vstr_str(why));
    seal_ring_free(ring);
    vstr_free(why);
}

/* test_key_files - loading and refusing key files */
static void test_key_files(void)
{
    VSTR *why = vstr_alloc(100), *rec = vstr_alloc(100);
    SEAL_RING *ring;

    ring = load("good.keys", "# relayq queue keys\n\n" KEY2 "\n  " KEY1 "  \n", 0600, why);
    if (ring != NULL)
        seal_record(ring, "", 0, "x", 1, rec);
    tap_ok(ring != NULL && seal_ring_max_id(ring) == 2 &&
               seal_key_id(vstr_str(rec), vstr_len(rec)) == 1,
           "a file of a hex and a base64 key loads; the last line seals: %s",
           ring ? "ok" : vstr_str(why));
    tap_ok(ring != NULL && !seal_ring_changed(ring), "an unchanged file is not reported changed");
    seal_ring_free(ring);
    refused("open.keys", KEY1 "\n", 0640, "group or other users have access (mode 0640");
    refused("noline.keys", "# one\n" KEY1 "\nnot a key line\n", 0600, "noline.keys:3: expected");
    refused("badid.keys", "70000:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0600,
            "badid.keys:1: key id \"70000\" is not a number from 1 to 65535");
    refused("zeroid.keys", "0:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0600,
            "zeroid.keys:1: key id \"0\"");
    refused("dup.keys", KEY1 "\n" KEY2 "\n" KEY1 "\n", 0600, "dup.keys:3: duplicate key id 1");
    refused("short.keys", "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n", 0600,
            "short.keys:1: key 1 is not 32 bytes");
    refused("long.keys",
            "1:"
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00\n",
            0600, "long.keys:1: key 1 is not 32 bytes");
    refused("empty.keys", "# nothing yet\n", 0600, "empty.keys: no key in the file");
    tap_ok(seal_ring_load("relative.keys", geteuid(), why) == NULL &&
               strstr(vstr_str(why), "not an absolute path") != NULL,
           "a relative key file name is refused: %s", vstr_str(why));
    vstr_free(why);
    vstr_free(rec);
}

/* test_records - sealing and opening single records */
static void test_records(void)
{
    VSTR *why = vstr_alloc(100), *rec = vstr_alloc(100), *out = vstr_alloc(100);
    SEAL_RING *one = load("one.keys", KEY1 "\n", 0600, why);
    SEAL_RING *both = load("both.keys", KEY1 "\n" KEY2 "\n", 0600, why);
    SEAL_RING *two = load("two.keys", KEY2 "\n", 0600, why);
    const char plain[] = "a record with an address: " SECRET_RCPT;
    int failures = 0, bits = 0;

    seal_record(one, "recipients\0QID", 14, plain, sizeof(plain), rec);
    tap_ok(seal_is_sealed(vstr_str(rec), vstr_len(rec)) &&
               seal_key_id(vstr_str(rec), vstr_len(rec)) == 1 &&
               memmem(vstr_str(rec), vstr_len(rec), "secret", 6) == NULL,
           "a sealed record is marked, names key id 1 and hides its text");
    tap_ok(seal_open(one, "recipients\0QID", 14, vstr_str(rec), vstr_len(rec), out, why) ==
                   SEAL_OK &&
               vstr_len(out) == sizeof(plain) && memcmp(vstr_str(out), plain, sizeof(plain)) == 0,
           "it opens to the same bytes");
    vstr_reset(out);
    tap_ok(seal_open(two, "recipients\0QID", 14, vstr_str(rec), vstr_len(rec), out, why) ==
                   SEAL_UNKNOWN_KEY &&
               vstr_len(out) == 0,
           "a ring without key id 1 cannot open it: %s", vstr_str(why));
    tap_ok(seal_open(one, "recipients\0QIE", 14, vstr_str(rec), vstr_len(rec), out, why) ==
                   SEAL_BAD &&
               vstr_len(out) == 0,
           "other associated data (another message's key) fails: %s", vstr_str(why));
    tap_ok(seal_open(one, "bodies\0QID", 10, vstr_str(rec), vstr_len(rec), out, why) == SEAL_BAD,
           "another database's name fails");
    for (size_t i = 0; i < vstr_len(rec); i++) {
        for (int b = 0; b < 8; b++) {
            vstr_str(rec)[i] ^= (char)(1 << b);
            if (seal_open(both, "recipients\0QID", 14, vstr_str(rec), vstr_len(rec), out, why) ==
                    SEAL_OK ||
                vstr_len(out) != 0)
                failures++;
            vstr_str(rec)[i] ^= (char)(1 << b);
            bits++;
        }
    }
    tap_ok(failures == 0, "each of the %d single flipped bits makes the record fail (%d opened)",
           bits, failures);
    tap_ok(seal_open(one, "recipients\0QID", 14, vstr_str(rec), vstr_len(rec) - 1, out, why) ==
               SEAL_BAD,
           "a record cut short fails");

    /* Rotation: the new key seals, the old one still opens. */
    seal_record(both, "messages\0Q2", 11, plain, sizeof(plain), rec);
    tap_ok(seal_key_id(vstr_str(rec), vstr_len(rec)) == 2,
           "with a second key, new records use id 2");
    vstr_reset(out);
    seal_record(one, "messages\0Q1", 11, plain, sizeof(plain), rec);
    tap_ok(seal_open(both, "messages\0Q1", 11, vstr_str(rec), vstr_len(rec), out, why) == SEAL_OK,
           "a record sealed under the old key still opens with the new ring");
    seal_ring_free(one);
    seal_ring_free(both);
    seal_ring_free(two);
    vstr_free(why);
    vstr_free(rec);
    vstr_free(out);
}

/* put_message - queue one message with two recipients and a body; its id in qid */
static int put_message(QSTORE *store, char *qid, const char *sender, const char *body,
                       size_t body_len)
{
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn = qstore_begin(store, 1, why);
    QMSG msg;
    int rc;

    qmsg_init(&msg);
    do {
        qid_create(msg.qid);
        msg.sender = (char *)sender;
        msg.envid = "";
        msg.ret = "";
        msg.nrcpt = 2;
        msg.size = (long long)body_len;
    } while (qstore_message_put(txn, &msg, 1) == QSTORE_EXISTS);
    for (unsigned i = 0; i < 2; i++) {
        QRCPT rcpt = {.index = i,
                      .addr = *sender ? SECRET_RCPT : "old@example.com",
                      .orcpt = "",
                      .notify = "",
                      .reply = ""};

        qstore_rcpt_put(txn, msg.qid, &rcpt);
    }
    qstore_body_put(txn, msg.qid, body, body_len);
    qstore_message_reschedule(txn, &msg, 1000);
    strcpy(qid, msg.qid);
    rc = qstore_commit(txn, why);
    vstr_free(why);
    return rc;
}

/* read_all - read a message's envelope, recipients and body; the first failure */
static int read_all(QSTORE *store, const char *qid, VSTR *body, VSTR *reason)
{
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn = qstore_begin(store, 0, why);
    QRCPT *rcpts = NULL;
    size_t nrcpt = 0;
    QMSG msg;
    int rc;

    vstr_reset(body);
    if ((rc = qstore_message_get(txn, qid, &msg)) == QSTORE_OK)
        qmsg_free(&msg);
    if (rc == QSTORE_OK && (rc = qstore_rcpts_get(txn, qid, &rcpts, &nrcpt)) == QSTORE_OK)
        qstore_rcpts_free(rcpts, nrcpt);
    if (rc == QSTORE_OK)
        rc = qstore_body_get(txn, qid, body);
    vstr_strcpy(reason, qstore_txn_reason(txn));
    qstore_abort(txn);
    vstr_free(why);
    return rc;
}

/* raw_edit - change the stored form of a record directly in LMDB */
typedef enum { FLIP_BYTE, DELETE_RECORD, COPY_FROM, PUT_CLEAR } RAW_OP;

/* raw - apply a raw edit to the record of db whose key is qid + suffix */
static int raw(const char *db, const char *qid, const void *suffix, size_t suffix_len, RAW_OP op,
               const char *from_qid)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val key, val, src;
    char kbuf[64], sbuf[64];
    int rc;

    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, MAP_SIZE);
    if (mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0)
        return -1;
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, db, 0, &dbi);
    memcpy(kbuf, qid, strlen(qid));
    memcpy(kbuf + strlen(qid), suffix, suffix_len);
    key.mv_data = kbuf;
    key.mv_size = strlen(qid) + suffix_len;
    rc = mdb_get(txn, dbi, &key, &val);
    if (rc == 0 && op == FLIP_BYTE) {
        char *copy = mymalloc(val.mv_size);

        memcpy(copy, val.mv_data, val.mv_size);
        copy[val.mv_size / 2] ^= 0x20;
        val.mv_data = copy;
        rc = mdb_put(txn, dbi, &key, &val, 0);
        myfree(copy);
    } else if (rc == 0 && op == DELETE_RECORD) {
        rc = mdb_del(txn, dbi, &key, NULL);
    } else if (rc == 0 && op == COPY_FROM) {
        memcpy(sbuf, from_qid, strlen(from_qid));
        memcpy(sbuf + strlen(from_qid), suffix, suffix_len);
        src.mv_data = sbuf;
        src.mv_size = key.mv_size;
        if ((rc = mdb_get(txn, dbi, &src, &val)) == 0)
            rc = mdb_put(txn, dbi, &key, &val, 0);
    } else if (rc == 0 && op == PUT_CLEAR) {
        val.mv_data = (void *)"Subject: forged\r\n\r\nforged\r\n";
        val.mv_size = strlen(val.mv_data);
        rc = mdb_put(txn, dbi, &key, &val, 0);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

/* data_has - whether the queue's data file contains a string */
static int data_has(const char *text)
{
    char path[256];
    FILE *fp;
    char *data;
    long size;
    int found;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    rewind(fp);
    data = mymalloc((size_t)size);
    found = fread(data, 1, (size_t)size, fp) == (size_t)size &&
            memmem(data, (size_t)size, text, strlen(text)) != NULL;
    fclose(fp);
    myfree(data);
    return found;
}

/* test_queue - the sealed queue */
static void test_queue(void)
{
    static const unsigned char idx0[4] = {0, 0, 0, 0}, idx1[4] = {0, 0, 0, 1},
                               idx2[4] = {0, 0, 0, 2};
    VSTR *why = vstr_alloc(100), *body = vstr_alloc(1000), *reason = vstr_alloc(100);
    char *big = mymalloc(150000);
    char clear_qid[QID_LEN + 1], old_qid[QID_LEN + 1], new_qid[QID_LEN + 1], qid[QID_LEN + 1];
    char big_qid[QID_LEN + 1];
    unsigned env_id = 9, body_id = 9;
    QSTORE *store;
    QSTORE_TXN *txn;
    QMSG msg;
    int rc;

    memset(big, 'b', 150000);
    memcpy(big, SECRET_BODY "\r\n\r\n", strlen(SECRET_BODY) + 4);
    store = qstore_open(dir, MAP_SIZE, 0, why);
    if (!tap_ok(store != NULL, "open a queue: %s", store ? "ok" : vstr_str(why)))
        return;

    /* A message from before encryption was on. */
    put_message(store, clear_qid, "", "Subject: old\r\n\r\nold\r\n", 21);
    qstore_set_keyring(store, load("q1.keys", KEY1 "\n", 0600, why));
    put_message(store, old_qid, SECRET_SENDER, SECRET_BODY "\r\n", strlen(SECRET_BODY) + 2);
    put_message(store, big_qid, SECRET_SENDER, big, 150000);
    tap_ok(read_all(store, clear_qid, body, reason) == QSTORE_OK && strstr(vstr_str(body), "old"),
           "with a key ring, a message queued in the clear still reads");
    tap_ok(read_all(store, old_qid, body, reason) == QSTORE_OK &&
               strcmp(vstr_str(body), SECRET_BODY "\r\n") == 0,
           "a sealed message reads back");
    tap_ok(read_all(store, big_qid, body, reason) == QSTORE_OK && vstr_len(body) == 150000 &&
               memcmp(vstr_str(body), big, 150000) == 0,
           "a sealed body of three chunks reads back");
    txn = qstore_begin(store, 0, why);
    rc = qstore_seal_ids(txn, old_qid, &env_id, &body_id);
    qstore_abort(txn);
    tap_ok(rc == QSTORE_OK && env_id == 1 && body_id == 1, "it is sealed under key id 1");
    tap_ok(data_has("very-secret") == 0 && data_has("very secret body") == 0,
           "no sender, recipient or body text is in data.mdb in the clear");

    /* The clear message stays clear when it is written again. */
    txn = qstore_begin(store, 1, why);
    qstore_message_get(txn, clear_qid, &msg);
    qstore_message_reschedule(txn, &msg, 2000);
    qmsg_free(&msg);
    rc = qstore_seal_ids(txn, clear_qid, &env_id, &body_id);
    qstore_commit(txn, why);
    tap_ok(rc == QSTORE_OK && env_id == 0 && body_id == 0,
           "a clear message written again stays clear");

    /* Rotation. */
    qstore_set_keyring(store, load("q2.keys", KEY1 "\n" KEY2 "\n", 0600, why));
    put_message(store, new_qid, SECRET_SENDER, "Subject: new\r\n\r\nnew\r\n", 21);
    txn = qstore_begin(store, 0, why);
    rc = qstore_seal_ids(txn, new_qid, &env_id, &body_id);
    qstore_abort(txn);
    tap_ok(rc == QSTORE_OK && env_id == 2 && body_id == 2,
           "after a rotation new mail uses key id 2");
    tap_ok(read_all(store, old_qid, body, reason) == QSTORE_OK, "mail under key id 1 still reads");
    qstore_set_keyring(store, load("q3.keys", KEY2 "\n", 0600, why));
    rc = read_all(store, old_qid, body, reason);
    tap_ok(rc == QSTORE_ERROR && strstr(vstr_str(reason), "sealed under key id 1") != NULL,
           "without key id 1 it is refused, not tampered: %s", vstr_str(reason));
    qstore_set_keyring(store, load("q2.keys", KEY1 "\n" KEY2 "\n", 0600, why));
    qstore_close(store);
    store = NULL;

    /* Tampering, done to the file directly as an attacker would. */
    store = qstore_open(dir, MAP_SIZE, 0, why); /* no ring: a clear message */
    put_message(store, qid, "", "x", 1);
    qstore_close(store);
    raw("recipients", old_qid, idx1, 4, FLIP_BYTE, NULL);
    raw("messages", new_qid, "", 0, FLIP_BYTE, NULL);
    raw("bodies", big_qid, idx2, 4, DELETE_RECORD, NULL);
    store = qstore_open(dir, MAP_SIZE, 0, why);
    qstore_set_keyring(store, load("q2.keys", KEY1 "\n" KEY2 "\n", 0600, why));
    rc = read_all(store, old_qid, body, reason);
    tap_ok(rc == QSTORE_TAMPERED && strstr(vstr_str(reason), "recipients fails authentication"),
           "a flipped byte in a recipient is QSTORE_TAMPERED: %s", vstr_str(reason));
    rc = read_all(store, new_qid, body, reason);
    tap_ok(rc == QSTORE_TAMPERED && strstr(vstr_str(reason), "messages fails authentication"),
           "a flipped byte in an envelope is QSTORE_TAMPERED: %s", vstr_str(reason));
    rc = read_all(store, big_qid, body, reason);
    tap_ok(rc == QSTORE_TAMPERED && vstr_len(body) == 0 &&
               strstr(vstr_str(reason), "bodies fails authentication"),
           "a body cut short is QSTORE_TAMPERED and yields nothing: %s", vstr_str(reason));
    qstore_close(store);
    raw("recipients", big_qid, idx0, 4, COPY_FROM, old_qid);
    raw("bodies", old_qid, idx0, 4, PUT_CLEAR, NULL);
    store = qstore_open(dir, MAP_SIZE, 0, why);
    qstore_set_keyring(store, load("q2.keys", KEY1 "\n" KEY2 "\n", 0600, why));
    txn = qstore_begin(store, 0, why);
    {
        QRCPT *rcpts;
        size_t nrcpt;

        rc = qstore_rcpts_get(txn, big_qid, &rcpts, &nrcpt);
        tap_ok(rc == QSTORE_TAMPERED, "a recipient record copied from another message fails");
        vstr_reset(body);
        rc = qstore_body_get(txn, old_qid, body);
        tap_ok(rc == QSTORE_TAMPERED && vstr_len(body) == 0,
               "a clear body put in place of a sealed one fails: %s", qstore_txn_reason(txn));
        rc = qstore_body_verify(txn, qid);
        tap_ok(rc == QSTORE_OK, "a clear message's body verifies");
    }
    qstore_abort(txn);

    /* Set aside for good. */
    txn = qstore_begin(store, 1, why);
    qstore_aside_put(txn, old_qid, 1000, "queue record in recipients fails authentication");
    rc = qstore_commit(txn, why);
    txn = qstore_begin(store, 1, why);
    {
        long long when = -1;
        QMSG env;

        qstore_message_get(txn, old_qid, &env);
        qstore_message_reschedule(txn, &env, 5000);
        when = env.next_attempt;
        qmsg_free(&env);
        vstr_reset(reason);
        tap_ok(rc == QSTORE_OK && qstore_aside_get(txn, old_qid, reason) == QSTORE_OK &&
                   strstr(vstr_str(reason), "recipients") != NULL && when == 0,
               "a message set aside stays off the schedule when rescheduled");
        tap_ok(qstore_message_delete(txn, old_qid) == QSTORE_OK &&
                   qstore_aside_get(txn, old_qid, NULL) == QSTORE_NOTFOUND,
               "delete removes a message set aside");
        tap_ok(qstore_message_delete(txn, new_qid) == QSTORE_OK,
               "delete removes a message whose envelope fails authentication");
    }
    tap_ok(qstore_commit(txn, why) == QSTORE_OK, "those changes commit");
    qstore_close(store);
    myfree(big);
    vstr_free(why);
    vstr_free(body);
    vstr_free(reason);
}

/* test_maildrop - sealed maildrop files */
static void test_maildrop(void)
{
    VSTR *why = vstr_alloc(100), *file = vstr_alloc(1000), *out = vstr_alloc(1000);
    SEAL_RING *ring = load("m.keys", KEY1 "\n" KEY2 "\n", 0600, why);
    SEAL_RING *other = load("m1.keys", KEY1 "\n", 0600, why);
    char path[256];
    unsigned char pk[SEAL_PUBLIC_LEN];
    unsigned id = 0;
    char *chunk = mymalloc(70000), *data;
    size_t len, good_len;
    SEAL_DROP *drop;
    int fails = 0;

    memset(chunk, 'c', 70000);
    memcpy(chunk, SECRET_RCPT, strlen(SECRET_RCPT));
    snprintf(path, sizeof(path), "%s/maildrop_key", dir);
    tap_ok(seal_drop_publish(ring, path, why) == 0 && seal_drop_key_read(path, &id, pk, why) == 0 &&
               id == 2,
           "the public key is published and reads back with the current id: %s",
           id == 2 ? "ok" : vstr_str(why));
    drop = seal_drop_create(id, pk, file);
    seal_drop_push(drop, chunk, 70000, 0, file);
    seal_drop_push(drop, "tail\n", 5, 1, file);
    seal_drop_free(drop);
    tap_ok(seal_drop_is_sealed(vstr_str(file), vstr_len(file)) &&
               memmem(vstr_str(file), vstr_len(file), "secret", 6) == NULL,
           "a sealed file is recognised and hides its text");
    tap_ok(seal_drop_open(ring, vstr_str(file), vstr_len(file), out, why) == SEAL_OK &&
               vstr_len(out) == 70005 && memcmp(vstr_str(out), chunk, 70000) == 0 &&
               memcmp(vstr_str(out) + 70000, "tail\n", 5) == 0,
           "it opens to the same content over two chunks");
    vstr_reset(out);
    tap_ok(seal_drop_open(other, vstr_str(file), vstr_len(file), out, why) == SEAL_UNKNOWN_KEY,
           "a ring without its key id cannot open it: %s", vstr_str(why));
    good_len = vstr_len(file);
    for (size_t i = 0; i < good_len; i += 997) {
        vstr_str(file)[i] ^= 1;
        if (seal_drop_open(ring, vstr_str(file), good_len, out, why) == SEAL_OK ||
            vstr_len(out) != 0)
            fails++;
        vstr_str(file)[i] ^= 1;
    }
    tap_ok(fails == 0, "a flipped byte anywhere makes it fail");
    tap_ok(seal_drop_open(ring, vstr_str(file), good_len - 22, out, why) == SEAL_BAD,
           "a file without its last chunk fails: %s", vstr_str(why));
    vstr_append(file, "more", 4);
    tap_ok(seal_drop_open(ring, vstr_str(file), vstr_len(file), out, why) == SEAL_BAD,
           "a file with bytes after the final chunk fails: %s", vstr_str(why));
    len = good_len;
    data = mymalloc(len + 1);
    memcpy(data, vstr_str(file), len);
    tap_ok(seal_drop_unseal(ring, &data, &len, why) == 0 && len == 70005,
           "unseal replaces the file's bytes by its content");
    tap_ok(seal_drop_unseal(NULL, &data, &len, why) == 0 && len == 70005,
           "a clear file is left as it is");
    myfree(data);
    seal_ring_free(ring);
    seal_ring_free(other);
    myfree(chunk);
    vstr_free(why);
    vstr_free(file);
    vstr_free(out);
}

int main(void)
{
    char cmd[300];

    if (mkdtemp(dir) == NULL)
        return 1;
    test_key_files();
    test_records();
    test_queue();
    test_maildrop();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        tap_diag("could not remove %s", dir);
    return tap_done();
}
