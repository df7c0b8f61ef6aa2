/*
 * qname - the queue a message is in, by Postfix's queue names
 *
 * relayq keeps every message in one LMDB queue; the Postfix queue names
 * that operators filter by (postsuper -d ALL deferred) are states of a
 * message there, one at a time, tested in this order:
 *
 *	active     qmgr is delivering it right now;
 *	hold       it is on hold (never tried until released);
 *	deferred   it has had at least one attempt and waits for its next;
 *	incoming   it has never been tried yet.
 *
 * Postfix's maildrop (mail that pickup has not taken yet) has no queue id
 * in relayq, so no operation can name it; it is not a name here.
 *
 * qname_of()
 *	the queue of a message from its envelope (flags, attempt count), its
 *	recipients (one deferred without an attempt counted: deferred) and
 *	whether qmgr is delivering it: one QNAME_* bit.
 * qname_str()
 *	the name of one QNAME_* bit, as mailq --json prints it.
 * qname_lookup()
 *	the QNAME_* bit of a name, or 0 when it is not one.
 *
 * No state, no failures.
 */
#include "config.h"

#include <string.h>

#include "qname.h"
#include "qstore.h"

static const struct {
    const char *name;
    int bit;
} qname_table[] = {
    {"active", QNAME_ACTIVE},
    {"deferred", QNAME_DEFERRED},
    {"hold", QNAME_HOLD},
    {"incoming", QNAME_INCOMING},
};

#define QNAME_COUNT (sizeof(qname_table) / sizeof(qname_table[0]))

/* qname_of - the queue a message is in */
int qname_of(const QMSG *msg, const QRCPT *rcpts, size_t nrcpt, int active)
{
    if (active)
        return QNAME_ACTIVE;
    if (msg->flags & QMSG_HOLD)
        return QNAME_HOLD;
    if (msg->attempts > 0)
        return QNAME_DEFERRED;
    /* Deferred without an attempt counted (its destination suspended, the
     * relay throttling) is deferred all the same, as in Postfix. */
    for (size_t i = 0; i < nrcpt; i++)
        if (rcpts[i].status == QRCPT_DEFERRED)
            return QNAME_DEFERRED;
    return QNAME_INCOMING;
}

/* qname_str - the name of a queue */
const char *qname_str(int qname)
{
    for (size_t i = 0; i < QNAME_COUNT; i++)
        if (qname_table[i].bit == qname)
            return qname_table[i].name;
    return "unknown";
}

/* qname_lookup - the queue of a name, or 0 */
int qname_lookup(const char *name)
{
    for (size_t i = 0; i < QNAME_COUNT; i++)
        if (strcmp(qname_table[i].name, name) == 0)
            return qname_table[i].bit;
    return 0;
}
