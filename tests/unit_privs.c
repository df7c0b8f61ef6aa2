/*
 * unit_privs - who may list the queue, and which configuration files a
 * setgid relayq trusts
 *
 * privs_user_listed() against the entries of authorized_mailq_users:
 * "anyone" and Postfix's "static:anyone", user names, "@group" by primary
 * and by supplementary membership, unknown names skipped with a reason,
 * an over-long entry skipped; privs_config_trusted() for files owned by
 * root or not, and writable by others or not, judged by what was read:
 * a file renamed over the name after the load does not change the
 * answer. Uses the users and groups
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

#include "params.h"
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

/* make_file - an empty file with an owner and mode; 0, or -1 */
static int make_file(const char *path, uid_t owner, mode_t mode)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        return -1;
    fclose(fp);
    return chown(path, owner, (gid_t)-1) < 0 || chmod(path, mode) < 0 ? -1 : 0;
}

/* trusted_file - make a file with an owner and mode, load it, and ask whether it is trusted */
static int trusted_file(const char *path, uid_t owner, mode_t mode)
{
    VSTR *why = vstr_alloc(100);
    CONFIG *cfg;
    int ret;

    if (make_file(path, owner, mode) < 0 || (cfg = params_read(path, why)) == NULL)
        return -1;
    ret = privs_config_trusted(cfg, why);
    config_free(cfg);
    vstr_free(why);
    return ret;
}

/* trusted_after_swap - load root's file, rename a user's over it, ask: 1 trusted */
static int trusted_after_swap(const char *path, uid_t user)
{
    VSTR *why = vstr_alloc(100);
    VSTR *other = vstr_alloc(100);
    CONFIG *cfg;
    int ret;

    vstr_sprintf(other, "%s.user", path);
    if (make_file(path, 0, 0644) < 0 || make_file(vstr_str(other), user, 0644) < 0 ||
        (cfg = params_read(path, why)) == NULL)
        return -1;
    if (rename(vstr_str(other), path) < 0)
        return -1;
    ret = privs_config_trusted(cfg, why);
    config_free(cfg);
    vstr_free(other);
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

    tap_plan(17);
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
        for (int i = 0; i < 17; i++)
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
        for (int i = 0; i < 5; i++)
            tap_ok(1, "# SKIP file owners can be changed only by root");
        tap_ok(privs_config_trusted(NULL, why) == 0, "no configuration file: not trusted");
    } else {
        tap_ok(trusted_file(path, 0, 0644) == 1, "root's file, mode 0644: trusted");
        tap_ok(trusted_file(path, 0, 0664) == 0, "root's file, writable by its group: not trusted");
        tap_ok(trusted_file(path, 0, 0646) == 0, "root's file, writable by others: not trusted");
        tap_ok(trusted_file(path, nobody_uid, 0600) == 0, "a user's own file: not trusted");
        tap_ok(trusted_after_swap(path, nobody_uid) == 1,
               "root's file read, then a user's renamed over it: what was read is judged");
        tap_ok(privs_config_trusted(NULL, why) == 0 &&
                   strstr(vstr_str(why), "no configuration file") != NULL,
               "no configuration file: not trusted, and said");
    }
    unlink(path);
    vstr_free(why);
    return tap_done();
}
