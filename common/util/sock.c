/*
 * sock - UNIX-domain and TCP socket helpers
 *
 * unix_listen()
 *	create a listening UNIX stream socket at path (an old socket file is
 *	replaced) with the given permission mode; non-blocking, close-on-exec.
 * tcp_listen()
 *	a listening TCP socket on an address (SO_REUSEADDR; an IPv6 one is
 *	IPv6 only, so that [::1] and 127.0.0.1 are two sockets); non-blocking,
 *	close-on-exec. The reason of a failure names the address and port.
 * unix_connect()
 *	connect to a UNIX stream socket; the descriptor is blocking and
 *	close-on-exec.
 * sock_accept()
 *	accept a connection as a non-blocking, close-on-exec descriptor.
 * tcp_connect_addr(), tcp_connect_finish()
 *	start a non-blocking TCP connection to one address (the caller
 *	resolved the name, without blocking: resolve.c), then, once the
 *	descriptor is writable, learn whether it succeeded.
 * sock_addr_text()
 *	a numeric address, without port, for log lines.
 *
 * Failures are returned as -1 with a reason in `why`; nothing here exits.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "iostuff.h"
#include "sock.h"

/* unix_address - fill a sockaddr_un, refusing paths that do not fit */
static int unix_address(const char *path, struct sockaddr_un *sun, VSTR *why)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        vstr_sprintf(why, "socket path too long (%zu bytes, at most %zu): %s", strlen(path),
                     sizeof(sun->sun_path) - 1, path);
        return -1;
    }
    strcpy(sun->sun_path, path);
    return 0;
}

/* unix_listen - listen on a UNIX stream socket */
int unix_listen(const char *path, int backlog, int mode, VSTR *why)
{
    struct sockaddr_un sun;
    int fd;

    if (unix_address(path, &sun, why) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vstr_sprintf(why, "socket: %s", strerror(errno));
        return -1;
    }
    (void)unlink(path);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, (mode_t)mode) < 0 ||
        listen(fd, backlog) < 0) {
        vstr_sprintf(why, "listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* tcp_listen - a listening TCP socket on an address */
int tcp_listen(const struct sockaddr *sa, socklen_t len, int backlog, VSTR *why)
{
    char text[INET6_ADDRSTRLEN];
    unsigned port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                                    : ((const struct sockaddr_in *)sa)->sin_port);
    int on = 1, fd;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vstr_sprintf(why, "socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        (sa->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) ||
        bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) {
        sock_addr_text(sa, text, sizeof(text));
        vstr_sprintf(why, "listen on %s%s%s:%u: %s", sa->sa_family == AF_INET6 ? "[" : "", text,
                     sa->sa_family == AF_INET6 ? "]" : "", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* unix_connect - connect to a UNIX stream socket */
int unix_connect(const char *path, VSTR *why)
{
    struct sockaddr_un sun;
    int fd;

    if (unix_address(path, &sun, why) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vstr_sprintf(why, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        vstr_sprintf(why, "connect to %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* sock_accept - accept one connection, non-blocking */
int sock_accept(int listen_fd)
{
    int fd;

    do {
        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* tcp_connect_addr - begin a non-blocking TCP connection to one address */
int tcp_connect_addr(const struct sockaddr *sa, socklen_t len, VSTR *why)
{
    int fd, on = 1;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vstr_sprintf(why, "socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        vstr_sprintf(why, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* tcp_connect_finish - learn the outcome of a connection attempt */
int tcp_connect_finish(int fd, VSTR *why)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        vstr_sprintf(why, "%s", strerror(err));
        return -1;
    }
    return 0;
}

/* sock_addr_text - numeric address for logging */
void sock_addr_text(const struct sockaddr *sa, char *buf, size_t size)
{
    const void *raw = sa->sa_family == AF_INET6
                          ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                          : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

    if (inet_ntop(sa->sa_family, raw, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "unknown");
}
