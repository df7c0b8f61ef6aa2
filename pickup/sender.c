/*
 * sender - the envelope sender of a local submission that named none
 *
 * sender_of_uid()
 *	sendmail without -f leaves the sender out of the envelope
 *	(own_sender): it is the login name of the submitting uid at
 *	myorigin, as Postfix's sendmail makes it. The uid is the one pickup
 *	trusts (the peer's SO_PEERCRED, or the maildrop file's owner, or
 *	the envelope's uid from root and mail_owner). The sendmail command
 *	leaves this to pickup so that it never asks the system's user
 *	database: it runs without the dynamic loader (doc/internals.md). 0
 *	(done, or nothing to do), or -1 with why: *retry says whether the
 *	lookup failed (a directory service down: try again later) rather
 *	than found no such user.
 *
 * The lookup is getpwuid_r in pickup's loop: quick for /etc/passwd, and
 * as quick as the system's cache (nscd, sssd) for a directory service.
 */
#include "config.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "mymalloc.h"
#include "pickup.h"

#define SENDER_PASSWD_BUF 16384 /* getpwuid_r's buffer: one passwd entry */

/* sender_of_uid - no sender given: the submitting user's login name at origin */
int sender_of_uid(MAILDROP_ENV *env, uid_t uid, const char *origin, int *retry, VSTR *why)
{
    struct passwd pwbuf;
    struct passwd *pw = NULL;
    char buf[SENDER_PASSWD_BUF];
    char *addr;
    size_t len;
    int err;

    *retry = 0;
    if (!env->own_sender)
        return 0;
    if ((err = getpwuid_r(uid, &pwbuf, buf, sizeof(buf), &pw)) != 0) {
        *retry = 1;
        vstr_sprintf(why, "cannot look up the login name of uid %ld: %s", (long)uid, strerror(err));
        return -1;
    }
    if (pw == NULL) {
        vstr_sprintf(why, "uid %ld has no login name: give the sender with sendmail -f", (long)uid);
        return -1;
    }
    len = strlen(pw->pw_name) + 1 + strlen(origin) + 1;
    addr = mymalloc(len);
    snprintf(addr, len, "%s@%s", pw->pw_name, origin);
    if (addr_check(addr, strlen(addr), ADDR_ALLOW_UTF8, why) < 0) {
        VSTR *reason = vstr_alloc(100);

        vstr_sprintf(reason,
                     "the login name of uid %ld makes no usable sender (%s): give the "
                     "sender with sendmail -f",
                     (long)uid, vstr_str(why));
        vstr_strcpy(why, vstr_str(reason));
        vstr_free(reason);
        myfree(addr);
        return -1;
    }
    myfree(env->sender);
    env->sender = addr;
    env->own_sender = 0;
    return 0;
}
