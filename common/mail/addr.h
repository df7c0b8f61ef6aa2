/*
 * addr.h - RFC 5321 envelope address syntax
 */
#ifndef RELAYQ_ADDR_H
#define RELAYQ_ADDR_H

#include <stddef.h>

#include "vstr.h"

#define ADDR_MAX_LOCAL 64   /* RFC 5321 4.5.3.1.1 */
#define ADDR_MAX_DOMAIN 255 /* RFC 5321 4.5.3.1.2 */
#define ADDR_MAX_PATH 256   /* RFC 5321 4.5.3.1.3, without the angle brackets */

/* Flags for addr_check. */
#define ADDR_ALLOW_EMPTY 1 /* the null reverse-path "" is valid (senders) */
#define ADDR_ALLOW_UTF8 2  /* UTF-8 in local part and domain (RFC 6531) */
#define ADDR_ALLOW_BARE 4  /* a local part alone, qualified later with "@myorigin" */

int addr_check(const char *addr, size_t len, int flags, VSTR *why);
int addr_is_bare(const char *addr);
const char *addr_domain(const char *addr);
int addr_needs_utf8(const char *addr);
int addr_extract_list(const char *header_value, size_t len,
                      void (*found)(const char *addr, void *ctx), void *ctx, VSTR *why);

#endif
