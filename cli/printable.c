/*
 * printable - untrusted text in a diagnostic
 *
 * relayq_printable()
 *	a copy of at most `limit` bytes (0: RELAYQ_QUOTE_DEFAULT) with
 *	control and non-ASCII bytes shown as "?" and "..." when cut, for a
 *	message that quotes what a user, a file or a peer gave; the caller
 *	frees it. Shared by the full command and the front.
 */
#include "config.h"

#include "cli.h"
#include "mymalloc.h"
#include "vstr.h"

#define RELAYQ_QUOTE_DEFAULT 100 /* bytes of untrusted text shown in a message */

/* relayq_printable - a bounded copy with control and non-ASCII bytes shown as "?" */
char *relayq_printable(const char *text, size_t limit)
{
    VSTR *buf = vstr_alloc(64);
    char *copy;
    size_t i;

    if (limit == 0)
        limit = RELAYQ_QUOTE_DEFAULT;
    for (i = 0; text[i] && i < limit; i++) {
        unsigned char ch = (unsigned char)text[i];

        vstr_addch(buf, ch >= 0x20 && ch < 0x7f ? ch : '?');
    }
    if (text[i])
        vstr_strcat(buf, "...");
    copy = mystrdup(vstr_str(buf));
    vstr_free(buf);
    return copy;
}
