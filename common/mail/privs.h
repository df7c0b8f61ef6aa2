/*
 * privs.h - who relayq's programs run as, and who may do what
 */
#ifndef RELAYQ_PRIVS_H
#define RELAYQ_PRIVS_H

#include <sys/types.h>

#include "cfgfile.h"
#include "vstr.h"

/* What a setgid relayq command does with its group. */
#define PRIVS_GROUP_DROP 0 /* give it up for good */
#define PRIVS_GROUP_KEEP 1 /* keep it, if the configuration is trusted */

void privs_refuse_root(void);
void privs_group_suspend(void);
void privs_group_settle(const CONFIG *cfg, int keep);
int privs_config_trusted(const CONFIG *cfg, VSTR *why);
int privs_mail_owner(const char *owner, uid_t *uid, gid_t *gid, VSTR *why);
void privs_become(const char *name, uid_t uid, gid_t gid);
int privs_setgid_group(const char *name, gid_t owner_gid, gid_t *gid, VSTR *why);
int privs_user_may_read(const char *path, const char *user, VSTR *why);
int privs_user_listed(uid_t uid, const char *list, VSTR *why);

#endif
