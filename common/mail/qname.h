/*
 * qname.h - the queue a message is in, by Postfix's queue names
 */
#ifndef RELAYQ_QNAME_H
#define RELAYQ_QNAME_H

#include <stddef.h>

#include "qstore.h"

/* One bit per queue name, so that a set of names is a mask. */
#define QNAME_INCOMING 1 /* in the queue, never tried */
#define QNAME_ACTIVE 2   /* being delivered now */
#define QNAME_DEFERRED 4 /* tried, waiting for its next attempt */
#define QNAME_HOLD 8     /* on hold */

/* The valid names, for a usage message. */
#define QNAME_VALID "active, deferred, hold, incoming"

int qname_of(const QMSG *msg, const QRCPT *rcpts, size_t nrcpt, int active);
const char *qname_str(int qname);
int qname_lookup(const char *name);

#endif
