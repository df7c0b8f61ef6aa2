/*
 * qstore_put - test helper: put one message into a queue directory's LMDB store
 *
 * Usage: qstore_put QUEUE_DIRECTORY BODY_FILE SENDER RCPT...
 *
 * main()
 *	store an envelope (arrival now, due now), one pending recipient
 *	record per RCPT (indexes from 0) and the body file's bytes as they
 *	are, in one write transaction, then print the new queue id. This
 *	stands in for pickup in tests of the programs that read the queue.
 *
 * Ownership: everything is released at exit. Any failure is fatal
 * (exit 1 with the reason on standard error).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iostuff.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "qdir.h"
#include "qstore.h"

#define QSTORE_PUT_MAP_SIZE (64UL * 1024 * 1024) /* bytes: tests are small */
#define QSTORE_PUT_BODY_MAX (256UL * 1024 * 1024)

/* main - store the message and print its queue id */
int main(int argc, char **argv)
{
    VSTR *why = vstr_alloc(128);
    QSTORE *store;
    QSTORE_TXN *txn;
    QMSG msg;
    void *data;
    size_t len;
    char *db;

    msg_init("qstore_put", MSG_TO_STDERR_PLAIN);
    if (argc < 5)
        msg_fatal("usage: qstore_put QUEUE_DIRECTORY BODY_FILE SENDER RCPT...");
    if (read_file(argv[2], QSTORE_PUT_BODY_MAX, &data, &len) < 0)
        msg_fatal("read %s: %m", argv[2]);
    db = qdir_path(argv[1], QDIR_DB);
    if ((store = qstore_open(db, QSTORE_PUT_MAP_SIZE, 0, why)) == NULL)
        msg_fatal("open %s: %s", db, vstr_str(why));
    if ((txn = qstore_begin(store, 1, why)) == NULL)
        msg_fatal("%s", vstr_str(why));

    qmsg_init(&msg);
    qid_create(msg.qid);
    msg.arrival_ms = wall_ms();
    msg.next_attempt = (long long)time(NULL);
    msg.size = (long long)len;
    msg.nrcpt = (unsigned)(argc - 4);
    msg.sender = argv[3];
    msg.envid = "";
    msg.ret = "";
    (void)qstore_message_put(txn, &msg, 1);
    for (int i = 4; i < argc; i++) {
        QRCPT rcpt;

        memset(&rcpt, 0, sizeof(rcpt));
        rcpt.index = (unsigned)(i - 4);
        rcpt.status = QRCPT_PENDING;
        rcpt.addr = argv[i];
        rcpt.orcpt = "";
        rcpt.notify = "";
        rcpt.reply = "";
        (void)qstore_rcpt_put(txn, msg.qid, &rcpt);
    }
    (void)qstore_body_put(txn, msg.qid, data, len);
    if (qstore_commit(txn, why) != QSTORE_OK)
        msg_fatal("commit: %s", vstr_str(why));
    qstore_close(store);
    printf("%s\n", msg.qid);
    myfree(data);
    myfree(db);
    vstr_free(why);
    return 0;
}
