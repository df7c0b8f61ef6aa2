/*
 * mymalloc - allocation that never returns NULL
 *
 * mymalloc(), mycalloc(), myrealloc()
 *	allocate like their libc counterparts; an allocation failure is fatal.
 * mystrdup(), mystrndup()
 *	copy a string (at most len bytes for mystrndup), always terminated.
 * myfree()
 *	release memory; a NULL pointer is accepted.
 *
 * Failures: running out of memory is fatal (msg_fatal), so the process
 * exits and master restarts it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mymalloc.h"
#include "msg.h"

/* mymalloc - allocate or die */
void *mymalloc(size_t len)
{
    void *ptr = malloc(len ? len : 1);

    if (ptr == NULL)
        msg_fatal("out of memory allocating %zu bytes", len);
    return ptr;
}

/* mycalloc - allocate zeroed memory or die */
void *mycalloc(size_t count, size_t len)
{
    void *ptr = calloc(count ? count : 1, len ? len : 1);

    if (ptr == NULL)
        msg_fatal("out of memory allocating %zu x %zu bytes", count, len);
    return ptr;
}

/* myrealloc - resize or die */
void *myrealloc(void *ptr, size_t len)
{
    void *grown = realloc(ptr, len ? len : 1);

    if (grown == NULL)
        msg_fatal("out of memory reallocating %zu bytes", len);
    return grown;
}

/* mystrdup - copy a string or die */
char *mystrdup(const char *str)
{
    return mystrndup(str, strlen(str));
}

/* mystrndup - copy at most len bytes of a string or die */
char *mystrndup(const char *str, size_t len)
{
    size_t n = strnlen(str, len);
    char *copy = mymalloc(n + 1);

    memcpy(copy, str, n);
    copy[n] = '\0';
    return copy;
}

/* myfree - release memory */
void myfree(void *ptr)
{
    free(ptr);
}
