/*
 * sock.h - UNIX-domain and TCP socket helpers
 */
#ifndef RELAYQ_SOCK_H
#define RELAYQ_SOCK_H

#include <sys/socket.h>

#include "vstr.h"

int unix_listen(const char *path, int backlog, int mode, VSTR *why);
int tcp_listen(const struct sockaddr *sa, socklen_t len, int backlog, VSTR *why);
int unix_connect(const char *path, VSTR *why);
int sock_accept(int listen_fd);
int tcp_connect_addr(const struct sockaddr *sa, socklen_t len, VSTR *why);
int tcp_connect_finish(int fd, VSTR *why);
void sock_addr_text(const struct sockaddr *sa, char *buf, size_t size);

#endif
