/*
 * qdir.h - the queue directory's layout
 */
#ifndef RELAYQ_QDIR_H
#define RELAYQ_QDIR_H

#include <sys/types.h>

#include "vstr.h"

char *qdir_path(const char *queue_directory, const char *relative);
int qdir_maildrop_ready(const char *name);
long qdir_maildrop_count(const char *queue_directory);
int qdir_create(const char *queue_directory, uid_t owner, gid_t group, VSTR *why);
int qdir_verify(const char *queue_directory, uid_t owner, VSTR *why);

#endif
