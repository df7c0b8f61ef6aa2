/*
 * vstr - growable, length-counted strings
 *
 * vstr_alloc(), vstr_free()
 *	create and destroy a string; the buffer is always NUL-terminated so
 *	vstr_str() can be passed to C string functions, while vstr_len()
 *	counts embedded NUL bytes too.
 * vstr_append(), vstr_strcat(), vstr_addch(), vstr_sprintf*()
 *	add data, growing the buffer as needed.
 * vstr_reset(), vstr_truncate(), vstr_consume()
 *	shorten from the end or remove a prefix.
 *
 * Ownership: the caller owns the VSTR and frees it with vstr_free().
 * Failures: allocation failure is fatal (see mymalloc).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mymalloc.h"
#include "vstr.h"

/* vstr_alloc - create an empty string */
VSTR *vstr_alloc(size_t initial)
{
    VSTR *vp = mymalloc(sizeof(*vp));

    vp->cap = initial < 16 ? 16 : initial;
    vp->data = mymalloc(vp->cap);
    vp->data[0] = '\0';
    vp->len = 0;
    return vp;
}

/* vstr_free - destroy a string */
void vstr_free(VSTR *vp)
{
    if (vp == NULL)
        return;
    myfree(vp->data);
    myfree(vp);
}

/* vstr_reset - make the string empty, keeping its buffer */
void vstr_reset(VSTR *vp)
{
    vp->len = 0;
    vp->data[0] = '\0';
}

/* vstr_truncate - shorten the string to len bytes */
void vstr_truncate(VSTR *vp, size_t len)
{
    if (len < vp->len) {
        vp->len = len;
        vp->data[len] = '\0';
    }
}

/* vstr_reserve - make room for extra more bytes plus the terminator */
void vstr_reserve(VSTR *vp, size_t extra)
{
    size_t need = vp->len + extra + 1;

    if (need <= vp->cap)
        return;
    while (vp->cap < need)
        vp->cap *= 2;
    vp->data = myrealloc(vp->data, vp->cap);
}

/* vstr_append - add len bytes */
void vstr_append(VSTR *vp, const void *data, size_t len)
{
    vstr_reserve(vp, len);
    memcpy(vp->data + vp->len, data, len);
    vp->len += len;
    vp->data[vp->len] = '\0';
}

/* vstr_strcat - add a C string */
void vstr_strcat(VSTR *vp, const char *str)
{
    vstr_append(vp, str, strlen(str));
}

/* vstr_strcpy - replace the content with a C string */
void vstr_strcpy(VSTR *vp, const char *str)
{
    vstr_reset(vp);
    vstr_strcat(vp, str);
}

/* vstr_addch - add one byte */
void vstr_addch(VSTR *vp, int ch)
{
    vstr_reserve(vp, 1);
    vp->data[vp->len++] = (char)ch;
    vp->data[vp->len] = '\0';
}

/* vstr_vsprintf_append - add formatted text */
void vstr_vsprintf_append(VSTR *vp, const char *fmt, va_list ap)
{
    va_list copy;
    int need;

    va_copy(copy, ap);
    need = vsnprintf(vp->data + vp->len, vp->cap - vp->len, fmt, copy);
    va_end(copy);
    if (need < 0) {
        vp->data[vp->len] = '\0';
        return;
    }
    if ((size_t)need >= vp->cap - vp->len) {
        vstr_reserve(vp, (size_t)need);
        vsnprintf(vp->data + vp->len, vp->cap - vp->len, fmt, ap);
    }
    vp->len += (size_t)need;
}

/* vstr_sprintf_append - add formatted text */
void vstr_sprintf_append(VSTR *vp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vstr_vsprintf_append(vp, fmt, ap);
    va_end(ap);
}

/* vstr_sprintf - replace the content with formatted text */
void vstr_sprintf(VSTR *vp, const char *fmt, ...)
{
    va_list ap;

    vstr_reset(vp);
    va_start(ap, fmt);
    vstr_vsprintf_append(vp, fmt, ap);
    va_end(ap);
}

/* vstr_consume - remove the first len bytes */
void vstr_consume(VSTR *vp, size_t len)
{
    if (len >= vp->len) {
        vstr_reset(vp);
        return;
    }
    memmove(vp->data, vp->data + len, vp->len - len);
    vp->len -= len;
    vp->data[vp->len] = '\0';
}
