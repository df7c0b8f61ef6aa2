/*
 * privs_group - the set-group-id group of the relayq command
 *
 * privs_group_suspend()
 *	the relayq command's first step when it is installed setgid to
 *	setgid_group: set the effective group back to the real one, keeping
 *	the privileged one as the saved set-group-id, so that nothing runs
 *	with it until privs_group_settle() decides.
 * privs_group_settle()
 *	once the command and its configuration are loaded: with keep
 *	and a trusted configuration file, take the group back (it opens
 *	maildrop/ and public/ and nothing else); otherwise give it up for
 *	good, so that a user-chosen configuration cannot aim the group's
 *	rights at a queue directory of the user's choosing. Does nothing
 *	when the command is not setgid, or once it has settled.
 * privs_config_trusted()
 *	whether the configuration was read from a file only root can have
 *	written: owned by root and not writable by group or others, as
 *	fstat() saw the descriptor that was read (config_file_stat()), so a
 *	file renamed into place between the check and the read cannot win.
 *
 * The group is the process's, so its state is too: one saved gid per
 * process, set by the suspend. Nothing here asks the user or group
 * database: the front (cli/front.c), linked without the dynamic loader,
 * uses this file; the lookups are privs.c's.
 *
 * Failing to give up the group is fatal (msg_fatal).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "msg.h"
#include "privs.h"

/* The privileged group of a setgid command, saved by privs_group_suspend(). */
static gid_t privs_saved_gid;
static int privs_setgid;

/* privs_group_suspend - run without the setgid group until it is needed */
void privs_group_suspend(void)
{
    gid_t real = getgid();

    if (getegid() == real)
        return;
    privs_setgid = 1;
    privs_saved_gid = getegid();
    if (setresgid(real, real, privs_saved_gid) < 0)
        msg_fatal("set the effective group to %ld: %m", (long)real);
}

/* privs_group_settle - keep the setgid group for this command, or drop it for good */
void privs_group_settle(const CONFIG *cfg, int keep)
{
    gid_t real = getgid();
    VSTR *why;

    if (!privs_setgid)
        return;
    why = vstr_alloc(100);
    if (keep == PRIVS_GROUP_KEEP && privs_config_trusted(cfg, why)) {
        if (setresgid(real, privs_saved_gid, privs_saved_gid) < 0)
            msg_fatal("set the effective group to %ld: %m", (long)privs_saved_gid);
    } else {
        if (setresgid(real, real, real) < 0)
            msg_fatal("give up group %ld: %m", (long)privs_saved_gid);
        /*
         * setresgid() can fail silently only in theory; check it held. Root
         * may take any group back by design, so only a process without
         * root's privileges proves the drop by failing to regain it.
         */
        if (getegid() != real || (geteuid() != 0 && setegid(privs_saved_gid) == 0))
            msg_fatal("cannot give up group %ld for good", (long)privs_saved_gid);
        if (msg_verbose && *vstr_str(why))
            msg_info("running without the setgid group: %s", vstr_str(why));
    }
    privs_setgid = 0;
    vstr_free(why);
}

/* privs_config_trusted - only root can have written the configuration that was read */
int privs_config_trusted(const CONFIG *cfg, VSTR *why)
{
    const struct stat *st = cfg ? config_file_stat(cfg) : NULL;

    if (st == NULL) {
        vstr_strcpy(why, "no configuration file was read");
        return 0;
    }
    if (st->st_uid != 0) {
        vstr_sprintf(why, "%s is not owned by root", config_path(cfg));
        return 0;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        vstr_sprintf(why, "%s is writable by group or others", config_path(cfg));
        return 0;
    }
    return 1;
}
