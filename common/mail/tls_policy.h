/*
 * tls_policy.h - the TLS policy of one relay: smtp_tls_policy_maps over the global parameters
 */
#ifndef RELAYQ_TLS_POLICY_H
#define RELAYQ_TLS_POLICY_H

#include "maps.h"
#include "vstr.h"

/* Security levels, weakest first (smtp_tls_security_level's words). */
#define TLS_POLICY_NONE 0
#define TLS_POLICY_MAY 1
#define TLS_POLICY_ENCRYPT 2
#define TLS_POLICY_VERIFY 3

/* TLS_POLICY models what a connection to one relay requires of TLS. */
typedef struct TLS_POLICY {
    int level;       /* TLS_POLICY_* */
    char *match;     /* verify: the name the certificate must carry; NULL: the relay's */
    char *cafile;    /* trust anchors; "" the system's store */
    char *priority;  /* the GnuTLS priority string from protocols= and ciphers= */
    char *canonical; /* every setting in one string, for the connection's identity */
} TLS_POLICY;

/* What a relay without an entry gets: a level word and a CA file ("" the system's store). */
typedef struct TLS_POLICY_DEFAULTS {
    const char *level;
    const char *cafile;
} TLS_POLICY_DEFAULTS;

int tls_policy_level(const char *word);
int tls_policy_lookup(const MAPS *map, const TLS_POLICY_DEFAULTS *defaults, const char *relay,
                      unsigned port, TLS_POLICY *policy, VSTR *why);
int tls_policy_check(const MAPS *map, VSTR *why);
void tls_policy_copy(TLS_POLICY *to, const TLS_POLICY *from);
void tls_policy_free(TLS_POLICY *policy);

#endif
