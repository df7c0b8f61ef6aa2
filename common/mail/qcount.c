/*
 * qcount - how many messages the queue holds, by state, read from the queue itself
 *
 * qcount_take()
 *	count, in one read transaction of an open queue (read-only will do):
 *	all messages and their recipient records (qstore_count_rcpts(): a
 *	recipient already delivered or bounced counts until its message
 *	leaves the queue), those deferred (a schedule entry after `now`),
 *	due (a schedule entry at or before it: waiting for delivery, or in it), on
 *	hold (no schedule entry, not set aside), set aside; the age of the
 *	oldest message that is not set aside (from its queue id: nothing is
 *	decoded, so no key is needed); the map's use and size; and the
 *	finished submissions waiting in maildrop/ (-1 when that directory
 *	cannot be listed). 0, or -1 with a reason when the queue cannot be
 *	read.
 *
 * The metrics daemon and "relayq stats" both count with this, in their
 * own processes, so that the two show the same figures and qmgr never
 * walks the queue for either. The cost is that of qstore_count_more():
 * no walk over the whole schedule.
 */
#include "config.h"

#include <string.h>

#include "qcount.h"
#include "qdir.h"
#include "qid.h"

/* qcount_take - the queue's counts now */
int qcount_take(QSTORE *store, const char *queue_directory, long long now, QCOUNT *count, VSTR *why)
{
    QSTORE_TXN *txn;
    size_t messages = 0, recipients = 0, scheduled = 0, aside = 0, later = 0, used, size;
    char qid[QID_LEN + 1];
    long long born;
    int rc;

    memset(count, 0, sizeof(*count));
    if ((txn = qstore_begin(store, 0, why)) == NULL)
        return -1;
    if (qstore_count(txn, &messages, &scheduled) != QSTORE_OK ||
        qstore_count_rcpts(txn, &recipients) != QSTORE_OK ||
        qstore_count_more(txn, now, &aside, &later) != QSTORE_OK ||
        (rc = qstore_oldest(txn, qid)) < 0) {
        vstr_strcpy(why, qstore_txn_reason(txn));
        qstore_abort(txn);
        return -1;
    }
    qstore_abort(txn);
    count->messages = (long long)messages;
    count->recipients = (long long)recipients;
    count->deferred = (long long)later;
    count->due = (long long)(scheduled - later);
    count->aside = (long long)aside;
    /* Set-aside messages have no schedule entry either: they are not held. */
    count->hold = messages > scheduled + aside ? (long long)(messages - scheduled - aside) : 0;
    if (rc == QSTORE_OK && (born = qid_time(qid)) >= 0 && born < now)
        count->oldest_age = now - born;
    qstore_map_use(store, &used, &size);
    count->map_used = (long long)used;
    count->map_size = (long long)size;
    count->maildrop = qdir_maildrop_count(queue_directory);
    return 0;
}
