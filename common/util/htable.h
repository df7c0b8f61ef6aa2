/*
 * htable.h - a hash table from strings to pointers
 */
#ifndef RELAYQ_HTABLE_H
#define RELAYQ_HTABLE_H

#include <stddef.h>

typedef struct HTABLE HTABLE;

HTABLE *htable_create(size_t hint);
void htable_free(HTABLE *table, void (*free_value)(void *value));
void htable_put(HTABLE *table, const char *key, void *value);
void *htable_get(const HTABLE *table, const char *key);
void *htable_remove(HTABLE *table, const char *key);
size_t htable_count(const HTABLE *table);
void htable_walk(const HTABLE *table, void (*fn)(const char *key, void *value, void *ctx),
                 void *ctx);

#endif
