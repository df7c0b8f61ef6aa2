/*
 * mymalloc.h - allocation that never returns NULL
 *
 * Every allocator here either succeeds or logs a fatal error and exits, so
 * callers never test for NULL.
 */
#ifndef RELAYQ_MYMALLOC_H
#define RELAYQ_MYMALLOC_H

#include <stddef.h>

void *mymalloc(size_t len);
void *mycalloc(size_t count, size_t len);
void *myrealloc(void *ptr, size_t len);
char *mystrdup(const char *str);
char *mystrndup(const char *str, size_t len);
void myfree(void *ptr);

#endif
