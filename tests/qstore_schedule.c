/*
 * qstore_schedule - test helper: check the queue's schedule against its envelopes
 *
 * Usage: qstore_schedule DB_DIR
 *
 * main()
 *	open the queue read-only and, in one read transaction, compare the
 *	schedule index with the envelopes: every schedule entry must belong
 *	to a message whose envelope names that time (next_attempt), and every
 *	message with a next_attempt must have exactly that one entry. Prints
 *	one line per message, "QUEUE_ID next=WHEN attempts=N flags=F
 *	entries=K", then a summary "messages=M entries=E bad=B"; a line for
 *	each disagreement starts with "bad: ". Exit 0 when B is 0, 1 when
 *	not.
 *
 * A failure to open or read the queue is fatal (exit 2 with the reason
 * on standard error).
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "htable.h"
#include "msg.h"
#include "mymalloc.h"
#include "qstore.h"
#include "vstr.h"

/* What the walk found of one queue id. */
typedef struct SCHED_SEEN {
    long long first_when; /* its first schedule entry */
    int entries;
} SCHED_SEEN;

/* The two walks' shared state. */
typedef struct CHECK {
    HTABLE *seen; /* queue id -> SCHED_SEEN */
    size_t messages, entries, bad;
} CHECK;

/* check_entry - count one schedule entry */
static int check_entry(const char *qid, long long when, void *ctx)
{
    CHECK *check = ctx;
    SCHED_SEEN *seen = htable_get(check->seen, qid);

    if (seen == NULL) {
        seen = mycalloc(1, sizeof(*seen));
        seen->first_when = when;
        htable_put(check->seen, qid, seen);
    }
    seen->entries++;
    check->entries++;
    return 0;
}

/* check_message - compare one envelope with its entries */
static int check_message(const QMSG *msg, void *ctx)
{
    CHECK *check = ctx;
    SCHED_SEEN *seen = htable_remove(check->seen, msg->qid);
    int entries = seen ? seen->entries : 0;

    check->messages++;
    printf("%s next=%lld attempts=%u flags=%u entries=%d\n", msg->qid, msg->next_attempt,
           msg->attempts, msg->flags, entries);
    if (entries != (msg->next_attempt > 0) ||
        (entries == 1 && seen->first_when != msg->next_attempt)) {
        printf("bad: %s: next_attempt %lld, %d schedule entr%s (the first at %lld)\n", msg->qid,
               msg->next_attempt, entries, entries == 1 ? "y" : "ies",
               seen ? seen->first_when : 0LL);
        check->bad++;
    }
    myfree(seen);
    return 0;
}

/* check_orphan - a schedule entry without a message */
static void check_orphan(const char *qid, void *value, void *ctx)
{
    CHECK *check = ctx;
    SCHED_SEEN *seen = value;

    printf("bad: %s: %d schedule entr%s, no envelope\n", qid, seen->entries,
           seen->entries == 1 ? "y" : "ies");
    check->bad++;
}

/* main - compare the schedule with the envelopes */
int main(int argc, char **argv)
{
    VSTR *why = vstr_alloc(100);
    CHECK check = {0};
    QSTORE_TXN *txn;
    QSTORE *store;

    msg_init("qstore_schedule", MSG_TO_STDERR_PLAIN);
    if (argc != 2) {
        fprintf(stderr, "usage: qstore_schedule DB_DIR\n");
        return 2;
    }
    if ((store = qstore_open(argv[1], 0, QSTORE_READONLY, why)) == NULL ||
        (txn = qstore_begin(store, 0, why)) == NULL) {
        fprintf(stderr, "qstore_schedule: %s\n", vstr_str(why));
        return 2;
    }
    check.seen = htable_create(1024);
    if (qstore_schedule_scan(txn, LLONG_MAX, check_entry, &check) != QSTORE_OK ||
        qstore_message_scan(txn, NULL, check_message, &check) != QSTORE_OK) {
        fprintf(stderr, "qstore_schedule: %s\n", qstore_txn_reason(txn));
        return 2;
    }
    htable_walk(check.seen, check_orphan, &check);
    printf("messages=%zu entries=%zu bad=%zu\n", check.messages, check.entries, check.bad);
    htable_free(check.seen, myfree);
    qstore_abort(txn);
    qstore_close(store);
    vstr_free(why);
    return check.bad ? 1 : 0;
}
