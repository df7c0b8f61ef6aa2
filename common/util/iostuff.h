/*
 * iostuff.h - small file-descriptor helpers
 */
#ifndef RELAYQ_IOSTUFF_H
#define RELAYQ_IOSTUFF_H

#include <stddef.h>
#include <sys/types.h>

int non_blocking(int fd, int on);
int close_on_exec(int fd, int on);
ssize_t write_all(int fd, const void *buf, size_t len);
int fsync_dir(const char *path);
int read_file(const char *path, size_t limit, void **data, size_t *len);
long long now_ms(void);
long long now_us(void);
long long wall_ms(void);

#endif
