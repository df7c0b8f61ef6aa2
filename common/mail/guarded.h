/*
 * guarded.h - secrets in libsodium guarded memory
 */
#ifndef RELAYQ_GUARDED_H
#define RELAYQ_GUARDED_H

#include <stddef.h>
#include <sys/stat.h>

#include "vstr.h"

void *guarded_alloc(size_t len);
int guarded_open(const char *path, const char *what, struct stat *st, VSTR *why);
char *guarded_read_file(int fd, const char *path, size_t size, VSTR *why);

#endif
