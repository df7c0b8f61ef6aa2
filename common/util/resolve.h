/*
 * resolve.h - host name lookups that do not block the event loop
 */
#ifndef RELAYQ_RESOLVE_H
#define RELAYQ_RESOLVE_H

#include <netdb.h>

#include "vstr.h"

typedef struct RESOLVER RESOLVER;
typedef struct RESOLVE_REQ RESOLVE_REQ;

/* The answer: res is the list (valid during the call only), or NULL with error set. */
typedef void (*RESOLVE_FN)(void *ctx, const struct addrinfo *res, const char *error);

RESOLVER *resolve_create(void);
RESOLVE_REQ *resolve_start(RESOLVER *r, const char *host, unsigned port, int family, RESOLVE_FN fn,
                           void *ctx, VSTR *why);
void resolve_cancel(RESOLVE_REQ *req);
int resolve_numeric(const char *host, unsigned port, int family, struct addrinfo **res);

#endif
