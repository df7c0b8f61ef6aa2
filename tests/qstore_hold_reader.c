/*
 * qstore_hold_reader - test helper: sit inside a read transaction of a queue
 *
 * Usage: qstore_hold_reader DB_DIR
 *
 * main()
 *	open the queue's LMDB environment read-only through the qstore API
 *	(as `relayq mailq` does), begin a read transaction, read the message
 *	count in it (so the reader slot holds a snapshot), print "ready" on
 *	standard output and wait for a signal. A test kills it with SIGKILL:
 *	the reader slot then belongs to a dead process, as after a `relayq
 *	mailq` killed in the middle of a big listing.
 *
 * Any failure to open the queue or begin the transaction is fatal (exit 1
 * with the reason on standard error).
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "msg.h"
#include "qstore.h"
#include "vstr.h"

/* main - hold a read transaction until killed */
int main(int argc, char **argv)
{
    VSTR *why = vstr_alloc(100);
    size_t messages, scheduled;
    QSTORE_TXN *txn;
    QSTORE *store;

    msg_init("qstore_hold_reader", MSG_TO_STDERR_PLAIN);
    if (argc != 2)
        msg_fatal("usage: qstore_hold_reader DB_DIR");
    if ((store = qstore_open(argv[1], 0, QSTORE_READONLY, why)) == NULL)
        msg_fatal("%s", vstr_str(why));
    if ((txn = qstore_begin(store, 0, why)) == NULL)
        msg_fatal("%s", vstr_str(why));
    if (qstore_count(txn, &messages, &scheduled) != QSTORE_OK)
        msg_fatal("%s", qstore_txn_reason(txn));
    printf("ready %zu\n", messages);
    fflush(stdout);
    for (;;)
        pause();
}
