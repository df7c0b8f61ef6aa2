/*
 * privs - who relayq's programs run as, and who may do what
 *
 * privs_refuse_root()
 *	the daemons' first step: exit when running as root. master gives up
 *	root for mail_owner before it starts them, so a daemon running as
 *	root was started by hand, and would write root-owned files into the
 *	queue and parse upstream replies with full privileges.
 * privs_group_suspend(), privs_group_settle(), privs_config_trusted()
 *	the setgid group of the relayq command: privs_group.c.
 * privs_mail_owner()
 *	look up mail_owner as master will use it when started as root: a
 *	user that exists and is not root. 0 with its ids, or -1 with why.
 * privs_become()
 *	give up root for a user for good: its group alone (no supplementary
 *	groups), then real, effective and saved ids, checked by failing to
 *	take root back. What master does before anything runs, and what
 *	root's relayq commands do before they read what mail_owner wrote.
 * privs_setgid_group()
 *	look up setgid_group as master will use it: a group that exists, is
 *	not gid 0 and is not mail_owner's own group (owner_gid; (gid_t)-1
 *	when mail_owner is unknown). 0 with its gid, or -1 with why.
 * privs_user_may_read()
 *	whether a user (uid, primary gid and supplementary groups) may read
 *	a file by its owner and mode bits: what "relayq check" asks of every
 *	file the daemons will open as mail_owner. 1 yes, 0 no (why says who
 *	owns it and its mode), -1 the file cannot be examined (why).
 * privs_user_listed()
 *	whether a user is in an authorized_mailq_users list: names, "@group"
 *	(primary or supplementary member), or "anyone" ("static:anyone" is
 *	accepted for Postfix's spelling). 1 yes, 0 no; an entry naming no
 *	such user or group is skipped and reported in why (the caller logs
 *	it).
 *
 * Failing to give up a privilege is fatal (msg_fatal): running on with
 * it would be worse than not running.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "msg.h"
#include "mymalloc.h"
#include "privs.h"

#define PRIVS_NAME_MAX 256 /* octets of one list entry */

/* privs_refuse_root - a daemon must not run as root */
void privs_refuse_root(void)
{
    if (getuid() == 0 || geteuid() == 0)
        msg_fatal("refusing to run as root: relayq's daemons run as mail_owner; "
                  "start them with \"relayq start\"");
}

/* privs_become - become a user for good */
void privs_become(const char *name, uid_t uid, gid_t gid)
{
    if (setgroups(1, &gid) < 0)
        msg_fatal("setgroups(%ld): %m", (long)gid);
    if (setgid(gid) < 0)
        msg_fatal("setgid(%ld): %m", (long)gid);
    if (setuid(uid) < 0)
        msg_fatal("setuid(%ld): %m", (long)uid);
    /* A saved set-user-id of 0 would let a compromised process climb back. */
    if (setuid(0) == 0 || geteuid() != uid || getuid() != uid || getegid() != gid)
        msg_fatal("cannot drop privileges to \"%s\" for good", name);
    if (msg_verbose)
        msg_info("running as \"%s\" (uid %ld, gid %ld)", name, (long)uid, (long)gid);
}

/* privs_mail_owner - mail_owner's uid and gid, as master will drop to them */
int privs_mail_owner(const char *owner, uid_t *uid, gid_t *gid, VSTR *why)
{
    struct passwd *pw;

    if ((pw = getpwnam(owner)) == NULL) {
        vstr_sprintf(why, "mail_owner \"%.100s\": no such user", owner);
        return -1;
    }
    if (pw->pw_uid == 0) {
        vstr_sprintf(
            why, "mail_owner \"%.100s\" has uid 0: relayq's processes must not run as root", owner);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* privs_setgid_group - the group of maildrop/ and public/; never root's or mail_owner's */
int privs_setgid_group(const char *name, gid_t owner_gid, gid_t *gid, VSTR *why)
{
    struct group *gr;

    if ((gr = getgrnam(name)) == NULL) {
        vstr_sprintf(why,
                     "setgid_group \"%.100s\": no such group: create it (groupadd --system "
                     "%.100s) or name another",
                     name, name);
        return -1;
    }
    if (gr->gr_gid == 0) {
        vstr_sprintf(why,
                     "setgid_group \"%.100s\" has gid 0: it would open the queue to the root "
                     "group",
                     name);
        return -1;
    }
    /* The daemons would otherwise share the group that every user's mail passes through. */
    if (owner_gid != (gid_t)-1 && gr->gr_gid == owner_gid) {
        vstr_sprintf(why,
                     "setgid_group \"%.100s\" is mail_owner's own group: give it a group of "
                     "its own",
                     name);
        return -1;
    }
    *gid = gr->gr_gid;
    return 0;
}

/* privs_user_may_read - may this user read the file, by owner and mode */
int privs_user_may_read(const char *path, const char *user, VSTR *why)
{
    struct passwd *pw;
    struct stat st;
    gid_t groups[256];
    int ngroups = (int)(sizeof(groups) / sizeof(groups[0]));
    mode_t bit = S_IROTH;

    if ((pw = getpwnam(user)) == NULL) {
        vstr_sprintf(why, "no such user \"%.100s\"", user);
        return -1;
    }
    if (stat(path, &st) < 0) {
        vstr_sprintf(why, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_uid == pw->pw_uid) {
        bit = S_IRUSR;
    } else {
        /* A user in more groups than fit is judged by the ones that do. */
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) < 0)
            ngroups = (int)(sizeof(groups) / sizeof(groups[0]));
        for (int i = 0; i < ngroups; i++)
            if (groups[i] == st.st_gid)
                bit = S_IRGRP;
    }
    if (st.st_mode & bit)
        return 1;
    vstr_sprintf(why, "%s: owned by uid %ld, gid %ld, mode %04o: user \"%.100s\" cannot read it",
                 path, (long)st.st_uid, (long)st.st_gid, (unsigned)(st.st_mode & 07777), user);
    return 0;
}

/* privs_in_group - is the user a member of the group, primary or supplementary */
static int privs_in_group(uid_t uid, const struct group *gr)
{
    struct passwd *pw = getpwuid(uid);

    if (pw == NULL)
        return 0;
    if (pw->pw_gid == gr->gr_gid)
        return 1;
    for (char **member = gr->gr_mem; *member; member++)
        if (strcmp(*member, pw->pw_name) == 0)
            return 1;
    return 0;
}

/* privs_entry_matches - one list entry against the user; -1: no such user or group */
static int privs_entry_matches(uid_t uid, const char *entry)
{
    struct passwd *pw;
    struct group *gr;

    if (strcmp(entry, "anyone") == 0 || strcmp(entry, "static:anyone") == 0)
        return 1;
    if (entry[0] == '@') {
        if ((gr = getgrnam(entry + 1)) == NULL)
            return -1;
        return privs_in_group(uid, gr);
    }
    if ((pw = getpwnam(entry)) == NULL)
        return -1;
    return pw->pw_uid == uid;
}

/* privs_user_listed - is the user in an authorized_mailq_users list */
int privs_user_listed(uid_t uid, const char *list, VSTR *why)
{
    char entry[PRIVS_NAME_MAX];
    const char *cp = list;
    size_t len;
    int match;

    vstr_strcpy(why, "");
    while (*cp) {
        while (*cp == ',' || isspace((unsigned char)*cp))
            cp++;
        for (len = 0; cp[len] && cp[len] != ',' && !isspace((unsigned char)cp[len]); len++)
            /* count */;
        if (len == 0)
            break;
        if (len >= sizeof(entry)) {
            vstr_sprintf(why, "authorized_mailq_users: an entry over %d octets was skipped",
                         PRIVS_NAME_MAX - 1);
        } else {
            memcpy(entry, cp, len);
            entry[len] = '\0';
            match = privs_entry_matches(uid, entry);
            if (match == 1)
                return 1;
            if (match < 0)
                vstr_sprintf(why, "authorized_mailq_users: no such user or group \"%.100s\"",
                             entry);
        }
        cp += len;
    }
    return 0;
}
