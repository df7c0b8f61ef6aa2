/*
 * qstore_tamper - alter one stored queue record, as an attacker with the disk would
 *
 * Usage: qstore_tamper DB_DIRECTORY DATABASE QUEUE_ID
 *
 * main()
 *	flip one bit in the middle of the value of the first record of
 *	DATABASE (messages, recipients, bodies, attempts) whose key starts with
 *	QUEUE_ID, in a write transaction of LMDB itself, past qstore and its
 *	keys. Prints the record's key length and value length. Run it while
 *	relayq is stopped. Exit 0 when a record was altered, 1 when none was
 *	found, 2 for usage or LMDB errors.
 *
 * This is a test tool (tests/t_seal.sh): it exists to prove that relayq
 * refuses a record altered behind its back.
 */
#include "config.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAMPER_MAX_DBS 16

/* tamper_fail - report an LMDB failure and exit 2 */
static void tamper_fail(const char *what, int rc)
{
    fprintf(stderr, "qstore_tamper: %s: %s\n", what, mdb_strerror(rc));
    exit(2);
}

/* main - flip one bit of one record */
int main(int argc, char **argv)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val key, val;
    const char *qid;
    unsigned char *copy;
    size_t len;
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: qstore_tamper DB_DIRECTORY DATABASE QUEUE_ID\n");
        return 2;
    }
    qid = argv[3];
    len = strlen(qid);
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, TAMPER_MAX_DBS)) != 0 ||
        (rc = mdb_env_open(env, argv[1], MDB_NOTLS, 0600)) != 0)
        tamper_fail(argv[1], rc);
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
        tamper_fail("begin", rc);
    if ((rc = mdb_dbi_open(txn, argv[2], 0, &dbi)) != 0)
        tamper_fail(argv[2], rc);
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        tamper_fail("cursor", rc);
    key.mv_size = len;
    key.mv_data = (void *)qid;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND || (rc == 0 && (key.mv_size < len || memcmp(key.mv_data, qid, len)))) {
        fprintf(stderr, "qstore_tamper: no record of %s in %s\n", qid, argv[2]);
        mdb_txn_abort(txn);
        mdb_env_close(env);
        return 1;
    }
    if (rc != 0)
        tamper_fail("read", rc);
    if ((copy = malloc(val.mv_size ? val.mv_size : 1)) == NULL) {
        fprintf(stderr, "qstore_tamper: out of memory\n");
        return 2;
    }
    memcpy(copy, val.mv_data, val.mv_size);
    copy[val.mv_size / 2] ^= 0x04;
    printf("key %zu bytes, value %zu bytes, bit 2 of byte %zu flipped\n", key.mv_size, val.mv_size,
           val.mv_size / 2);
    val.mv_data = copy;
    if ((rc = mdb_cursor_put(cur, &key, &val, MDB_CURRENT)) != 0)
        tamper_fail("write", rc);
    mdb_cursor_close(cur);
    if ((rc = mdb_txn_commit(txn)) != 0)
        tamper_fail("commit", rc);
    mdb_env_close(env);
    free(copy);
    return 0;
}
