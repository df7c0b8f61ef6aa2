/*
 * addr_cache - the relay addresses that failed lately, per process
 *
 * addr_cache_create()
 *	an empty cache whose entries last ttl_ms. smtpout creates one per
 *	process and hands it to every session (worker_create(),
 *	session_create()): what one session learnt, the next connection of
 *	any session of the process uses.
 * addr_cache_fail()
 *	a connection to addr:port failed (refused, unreachable, timed out):
 *	remember it until the entry expires.
 * addr_cache_ok()
 *	a connection to addr:port succeeded: forget an old failure.
 * addr_cache_order()
 *	reorder a relay's addresses for the next connection: those with no
 *	recent failure first, the others after them as a last resort, each
 *	group in the order the name service gave. Nothing is dropped, so a
 *	relay whose addresses all failed lately is still tried.
 *
 * Why: a relay name with a black-holed address would otherwise cost a
 * full smtp_connect_timeout on every connection. With the failure
 * remembered, the black hole costs one connect timeout per process and
 * per ADDR_CACHE_TTL (smtpout.c: 60 s), then the good address comes
 * first; after the entry expires the address is tried in its turn again,
 * so a repaired address comes back into use by itself.
 *
 * The cache holds at most ADDR_CACHE_MAX entries; when full, the expired
 * ones go, and if none has expired the whole cache is forgotten (the
 * worst case is one more connect timeout per bad address).
 *
 * Ownership: the process owns the cache; sessions borrow it. Nothing
 * here fails.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "htable.h"
#include "iostuff.h"
#include "mymalloc.h"
#include "smtpout.h"

#define ADDR_CACHE_MAX 1024 /* addresses remembered at most */

/* addr_cache_key - "addr port", the key of an entry */
static void addr_cache_key(char *key, size_t size, const char *addr, unsigned port)
{
    snprintf(key, size, "%s %u", addr, port);
}

/* addr_cache_create - an empty cache */
ADDR_CACHE *addr_cache_create(long long ttl_ms)
{
    ADDR_CACHE *c = mymalloc(sizeof(*c));

    c->failed = htable_create(64);
    c->ttl_ms = ttl_ms;
    return c;
}

/* The expired keys found by a walk: the walk itself must not remove entries. */
typedef struct ADDR_CACHE_SWEEP {
    char *keys[ADDR_CACHE_MAX];
    size_t count;
    long long now;
} ADDR_CACHE_SWEEP;

/* addr_cache_sweep_one - note an expired entry (htable_walk callback) */
static void addr_cache_sweep_one(const char *key, void *value, void *ctx)
{
    ADDR_CACHE_SWEEP *sweep = ctx;

    if (*(long long *)value <= sweep->now && sweep->count < ADDR_CACHE_MAX)
        sweep->keys[sweep->count++] = mystrdup(key);
}

/* addr_cache_prune - make room: the expired entries, or everything */
static void addr_cache_prune(ADDR_CACHE *c)
{
    ADDR_CACHE_SWEEP *sweep = mymalloc(sizeof(*sweep));

    sweep->count = 0;
    sweep->now = now_ms();
    htable_walk(c->failed, addr_cache_sweep_one, sweep);
    for (size_t i = 0; i < sweep->count; i++) {
        myfree(htable_remove(c->failed, sweep->keys[i]));
        myfree(sweep->keys[i]);
    }
    myfree(sweep);
    if (htable_count(c->failed) >= ADDR_CACHE_MAX) {
        htable_free(c->failed, myfree);
        c->failed = htable_create(64);
    }
}

/* addr_cache_fail - remember a failed address */
void addr_cache_fail(ADDR_CACHE *c, const char *addr, unsigned port)
{
    char key[96];
    long long *until;

    addr_cache_key(key, sizeof(key), addr, port);
    if ((until = htable_get(c->failed, key)) == NULL) {
        if (htable_count(c->failed) >= ADDR_CACHE_MAX)
            addr_cache_prune(c);
        until = mymalloc(sizeof(*until));
        htable_put(c->failed, key, until);
    }
    *until = now_ms() + c->ttl_ms;
}

/* addr_cache_ok - forget a failure of an address that works again */
void addr_cache_ok(ADDR_CACHE *c, const char *addr, unsigned port)
{
    char key[96];

    addr_cache_key(key, sizeof(key), addr, port);
    myfree(htable_remove(c->failed, key));
}

/* addr_cache_bad - whether the address failed lately */
static int addr_cache_bad(ADDR_CACHE *c, const SESS_ADDR *a, unsigned port, long long now)
{
    char key[96];
    long long *until;

    addr_cache_key(key, sizeof(key), a->text, port);
    return (until = htable_get(c->failed, key)) != NULL && *until > now;
}

/* addr_cache_order - addresses without a recent failure first, stable */
void addr_cache_order(ADDR_CACHE *c, SESS_ADDR *list, size_t n, unsigned port)
{
    SESS_ADDR *sorted = mymalloc(sizeof(*sorted) * (n > 0 ? n : 1));
    long long now = now_ms();
    size_t k = 0;

    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++)
            if (addr_cache_bad(c, &list[i], port, now) == pass)
                sorted[k++] = list[i];
    memcpy(list, sorted, sizeof(*sorted) * n);
    myfree(sorted);
}
