/*
 * dest_policy.h - one relay's entry of destination_policy_maps, parsed
 */
#ifndef RELAYQ_DEST_POLICY_H
#define RELAYQ_DEST_POLICY_H

#include "maps.h"
#include "vstr.h"

/* The characters and length of a name limits are shared under (shared_key=). */
#define DEST_POLICY_KEY_CHARS                                                                      \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:_-@[]/+="
#define DEST_POLICY_KEY_MAX 200

/* DEST_POLICY models the limits one entry sets; what it does not set keeps the defaults. */
typedef struct DEST_POLICY {
    int concurrency;     /* connections at once; 0: not set */
    int recipient_limit; /* recipients per job; 0: not set */
    int daily;           /* messages per rolling 24 h (shared limits only); 0: not set */
    double rate;         /* messages per second; < 0: not set */
    int local;           /* "local": kept per instance, not shared */
    char *shared_key;    /* "shared_key=": the name the limits are shared under; NULL: not set */
} DEST_POLICY;

int dest_policy_parse(const char *value, DEST_POLICY *policy, VSTR *why);
void dest_policy_free(DEST_POLICY *policy);
int dest_policy_check(const MAPS *map, VSTR *why);
const char *dest_policy_daily_entry(const MAPS *map);

#endif
