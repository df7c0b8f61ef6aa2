/*
 * vstr.h - growable, length-counted strings for protocol and untrusted text
 */
#ifndef RELAYQ_VSTR_H
#define RELAYQ_VSTR_H

#include <stdarg.h>
#include <stddef.h>

typedef struct VSTR {
    char *data; /* always NUL-terminated */
    size_t len; /* bytes in use, excluding the terminator */
    size_t cap; /* bytes allocated */
} VSTR;

#define vstr_str(vp) ((vp)->data)
#define vstr_len(vp) ((vp)->len)

VSTR *vstr_alloc(size_t initial);
void vstr_free(VSTR *vp);
void vstr_reset(VSTR *vp);
void vstr_truncate(VSTR *vp, size_t len);
void vstr_reserve(VSTR *vp, size_t extra);
void vstr_append(VSTR *vp, const void *data, size_t len);
void vstr_strcat(VSTR *vp, const char *str);
void vstr_strcpy(VSTR *vp, const char *str);
void vstr_addch(VSTR *vp, int ch);
void vstr_sprintf(VSTR *vp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vstr_sprintf_append(VSTR *vp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vstr_vsprintf_append(VSTR *vp, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void vstr_consume(VSTR *vp, size_t len);

#endif
