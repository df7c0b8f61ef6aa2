/*
 * unit_privs - who may list the queue, and which configuration files a
 * setgid relayq trusts
 *
 * privs_user_listed() against the entries of authorized_mailq_users:
 * "anyone" and Postfix's "static:anyone", user names, "@group" by primary
 * and by supplementary membership, unknown names skipped with a reason,
 * an over-long entry skipped; privs_config_trusted() for files owned by
 * root or not, and writable by others or not. Uses the users and groups
 * every Debian system has (root, nobody, daemon; groups root, nogroup,
 * mail); file ownership checks need root and are skipped otherwise.
 */
#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privs.h"
#include "tap.h"

/* listed - privs_user_listed() with its reason discarded */
static int listed(uid_t uid, const char *list)
{
    VSTR *why = vstr_alloc(100);
    int ret = privs_user_listed(uid, list, why);

    vstr_free(why);
    return ret;
}

/* trusted_file - make a file with an owner and mode, and ask whether it is trusted */
static int trusted_file(const char *path, uid_t owner, mode_t mode)
{
    VSTR *why = vstr_alloc(100);
    FILE *fp = fopen(path, "w");
    int ret;

    if (fp == NULL)
        return -1;
    fclose(fp);
    if (chown(path, owner, (gid_t)-1) < 0 || chmod(path, mode) < 0)
        return -1;
    ret = privs_config_trusted(path, why);
    vstr_free(why);
    return ret;
}

/* main - run the cases */
int main(void)
{
    struct passwd *pw;
    uid_t nobody_uid = 0, daemon_uid = 0;
    int have_users = 1;
    VSTR *why = vstr_alloc(100);
    char long_entry[400];
    char path[] = "/tmp/unit_privs.XXXXXX";
    int fd;

    tap_plan(16);
    /* getpwnam() returns one static buffer: keep the ids, not the pointers. */
    if ((pw = getpwnam("nobody")) != NULL)
        nobody_uid = pw->pw_uid;
    else
        have_users = 0;
    if ((pw = getpwnam("daemon")) != NULL)
        daemon_uid = pw->pw_uid;
    else
        have_users = 0;
    if (!have_users || getgrnam("nogroup") == NULL) {
        for (int i = 0; i < 16; i++)
            tap_ok(1, "# SKIP no nobody, daemon or nogroup here");
        return tap_done();
    }
    tap_ok(listed(nobody_uid, "anyone") == 1, "anyone lists everybody");
    tap_ok(listed(nobody_uid, "static:anyone") == 1, "static:anyone, Postfix's spelling");
    tap_ok(listed(nobody_uid, "") == 0, "an empty list names nobody");
    tap_ok(listed(nobody_uid, "root, daemon") == 0, "a list of others does not name nobody");
    tap_ok(listed(nobody_uid, "root,nobody") == 1, "a name in a comma list");
    tap_ok(listed(daemon_uid, " root  daemon ") == 1, "a name in a blank list");
    tap_ok(listed(nobody_uid, "@nogroup") == 1, "@group: by primary group");
    tap_ok(listed(daemon_uid, "@nogroup") == 0, "@group: not a member");
    tap_ok(privs_user_listed(nobody_uid, "no-such-user-xyz, nobody", why) == 1 &&
               strstr(vstr_str(why), "no such user or group \"no-such-user-xyz\"") != NULL,
           "an unknown name is skipped, with a reason: %s", vstr_str(why));
    tap_ok(privs_user_listed(nobody_uid, "@no-such-group-xyz", why) == 0 &&
               strstr(vstr_str(why), "@no-such-group-xyz") != NULL,
           "an unknown group is skipped, with a reason");
    memset(long_entry, 'a', sizeof(long_entry) - 1);
    long_entry[sizeof(long_entry) - 1] = '\0';
    tap_ok(privs_user_listed(nobody_uid, long_entry, why) == 0 &&
               strstr(vstr_str(why), "over 255 octets") != NULL,
           "an over-long entry is skipped, with a reason");

    if ((fd = mkstemp(path)) < 0)
        return 1;
    close(fd);
    if (geteuid() != 0) {
        for (int i = 0; i < 4; i++)
            tap_ok(1, "# SKIP file owners can be changed only by root");
        tap_ok(privs_config_trusted("/no/such/file", why) == 0, "a missing file is not trusted");
    } else {
        tap_ok(trusted_file(path, 0, 0644) == 1, "root's file, mode 0644: trusted");
        tap_ok(trusted_file(path, 0, 0664) == 0, "root's file, writable by its group: not trusted");
        tap_ok(trusted_file(path, 0, 0646) == 0, "root's file, writable by others: not trusted");
        tap_ok(trusted_file(path, nobody_uid, 0600) == 0, "a user's own file: not trusted");
        tap_ok(privs_config_trusted("/no/such/file", why) == 0 &&
                   strstr(vstr_str(why), "/no/such/file") != NULL,
               "a missing file is not trusted, and named");
    }
    unlink(path);
    vstr_free(why);
    return tap_done();
}
