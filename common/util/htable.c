/*
 * htable - a hash table from strings to pointers
 *
 * htable_create(), htable_free()
 *	make and destroy a table; htable_free calls free_value (when not
 *	NULL) on every value. The table copies keys; values are the caller's.
 * htable_put()
 *	insert or replace.
 * htable_get(), htable_remove()
 *	look up; remove and return the value (NULL when absent).
 * htable_count(), htable_walk()
 *	size, and a visit of every entry (the callback must not change the
 *	table).
 *
 * Chained buckets, doubled when the load passes 1; FNV-1a hashing.
 */
#include "config.h"

#include <string.h>

#include "htable.h"
#include "mymalloc.h"

typedef struct HTABLE_ENTRY {
    char *key;
    void *value;
    struct HTABLE_ENTRY *next;
} HTABLE_ENTRY;

struct HTABLE {
    HTABLE_ENTRY **buckets;
    size_t size;  /* number of buckets, a power of two */
    size_t count; /* entries */
};

/* htable_hash - FNV-1a */
static size_t htable_hash(const char *key)
{
    size_t h = 14695981039346656037ULL;

    while (*key)
        h = (h ^ (unsigned char)*key++) * 1099511628211ULL;
    return h;
}

/* htable_create - an empty table */
HTABLE *htable_create(size_t hint)
{
    HTABLE *table = mymalloc(sizeof(*table));

    table->size = 16;
    while (table->size < hint)
        table->size *= 2;
    table->buckets = mycalloc(table->size, sizeof(*table->buckets));
    table->count = 0;
    return table;
}

/* htable_grow - double the buckets */
static void htable_grow(HTABLE *table)
{
    size_t size = table->size * 2;
    HTABLE_ENTRY **buckets = mycalloc(size, sizeof(*buckets));

    for (size_t i = 0; i < table->size; i++) {
        HTABLE_ENTRY *ep = table->buckets[i], *next;

        for (; ep; ep = next) {
            size_t b = htable_hash(ep->key) & (size - 1);

            next = ep->next;
            ep->next = buckets[b];
            buckets[b] = ep;
        }
    }
    myfree(table->buckets);
    table->buckets = buckets;
    table->size = size;
}

/* htable_put - insert or replace */
void htable_put(HTABLE *table, const char *key, void *value)
{
    size_t b = htable_hash(key) & (table->size - 1);
    HTABLE_ENTRY *ep;

    for (ep = table->buckets[b]; ep; ep = ep->next)
        if (strcmp(ep->key, key) == 0) {
            ep->value = value;
            return;
        }
    ep = mymalloc(sizeof(*ep));
    ep->key = mystrdup(key);
    ep->value = value;
    ep->next = table->buckets[b];
    table->buckets[b] = ep;
    if (++table->count > table->size)
        htable_grow(table);
}

/* htable_get - look up */
void *htable_get(const HTABLE *table, const char *key)
{
    size_t b = htable_hash(key) & (table->size - 1);

    for (HTABLE_ENTRY *ep = table->buckets[b]; ep; ep = ep->next)
        if (strcmp(ep->key, key) == 0)
            return ep->value;
    return NULL;
}

/* htable_remove - remove and return the value */
void *htable_remove(HTABLE *table, const char *key)
{
    size_t b = htable_hash(key) & (table->size - 1);

    for (HTABLE_ENTRY **epp = &table->buckets[b], *ep; (ep = *epp) != NULL; epp = &ep->next)
        if (strcmp(ep->key, key) == 0) {
            void *value = ep->value;

            *epp = ep->next;
            myfree(ep->key);
            myfree(ep);
            table->count--;
            return value;
        }
    return NULL;
}

/* htable_count - number of entries */
size_t htable_count(const HTABLE *table)
{
    return table->count;
}

/* htable_walk - visit every entry */
void htable_walk(const HTABLE *table, void (*fn)(const char *key, void *value, void *ctx),
                 void *ctx)
{
    for (size_t i = 0; i < table->size; i++)
        for (HTABLE_ENTRY *ep = table->buckets[i]; ep; ep = ep->next)
            fn(ep->key, ep->value, ctx);
}

/* htable_free - destroy the table */
void htable_free(HTABLE *table, void (*free_value)(void *value))
{
    if (table == NULL)
        return;
    for (size_t i = 0; i < table->size; i++) {
        HTABLE_ENTRY *ep = table->buckets[i], *next;

        for (; ep; ep = next) {
            next = ep->next;
            if (free_value)
                free_value(ep->value);
            myfree(ep->key);
            myfree(ep);
        }
    }
    myfree(table->buckets);
    myfree(table);
}
