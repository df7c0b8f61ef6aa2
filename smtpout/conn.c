/*
 * conn - the byte stream between smtpout and a relay
 *
 * conn_connect()
 *	start a non-blocking TCP connection to one address of the relay
 *	(session.c resolved the name and chooses the address) and return a
 *	CONN whose descriptor becomes writable when the attempt is over. On
 *	an immediate failure (network unreachable) returns NULL with the
 *	reason in `why`.
 * conn_open_fd()
 *	a plain CONN over a stream socket that is already there (a test's
 *	socketpair(2)), named after the address it stands for; the CONN owns
 *	the descriptor.
 * conn_connect_finish()
 *	after the descriptor became writable: 0 when connected, -1 with the
 *	reason ("Connection refused") in `why`.
 * conn_read(), conn_write()
 *	move bytes through the transport's operations; -1 with errno EAGAIN
 *	means "again when the descriptor is ready", 0 from conn_read() is
 *	the end of the stream.
 * conn_pending()
 *	whether the transport holds decoded input that poll(2) cannot see
 *	(a TLS record read in full but not yet handed over).
 * conn_close()
 *	tear down the transport and close the descriptor; the caller must
 *	have stopped watching it in the event loop.
 *
 * This is the seam where TLS slots in: the SMTP session never touches the
 * descriptor's bytes directly, only conn->ops, so STARTTLS can replace the
 * plain operations with a GnuTLS session on the same descriptor (tls.c);
 * conn_close() also frees a TLS session whose handshake never finished.
 *
 * Ownership: the caller owns the CONN and frees it with conn_close().
 * Failures are returned; nothing here exits.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mymalloc.h"
#include "sock.h"
#include "smtpout.h"

/* conn_plain_read - read from the socket */
static ssize_t conn_plain_read(CONN *conn, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = recv(conn->fd, buf, len, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EWOULDBLOCK)
        errno = EAGAIN;
    return n;
}

/* conn_plain_write - write to the socket, never raising SIGPIPE */
static ssize_t conn_plain_write(CONN *conn, const void *buf, size_t len)
{
    ssize_t n;

    do {
        n = send(conn->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EWOULDBLOCK)
        errno = EAGAIN;
    return n;
}

/* conn_plain_close - nothing to undo above the socket */
static void conn_plain_close(CONN *conn)
{
    (void)conn;
}

static const CONN_OPS conn_plain_ops = {
    "plain", conn_plain_read, conn_plain_write, conn_plain_close,
    NULL, /* the kernel's buffer is visible to poll(2) */
};

/* conn_connect - begin a connection to one address of a relay */
CONN *conn_connect(const struct sockaddr *sa, socklen_t len, VSTR *why)
{
    int fd;

    if ((fd = tcp_connect_addr(sa, len, why)) < 0)
        return NULL;
    return conn_open_fd(fd, sa);
}

/* conn_open_fd - a plain CONN over a stream socket, named after the address sa */
CONN *conn_open_fd(int fd, const struct sockaddr *sa)
{
    CONN *conn = mycalloc(1, sizeof(*conn));

    conn->fd = fd;
    conn->ops = &conn_plain_ops;
    sock_addr_text(sa, conn->addr, sizeof(conn->addr));
    return conn;
}

/* conn_connect_finish - the outcome of the connection attempt */
int conn_connect_finish(CONN *conn, VSTR *why)
{
    return tcp_connect_finish(conn->fd, why);
}

/* conn_read - read through the transport */
ssize_t conn_read(CONN *conn, void *buf, size_t len)
{
    return conn->ops->read(conn, buf, len);
}

/* conn_write - write through the transport */
ssize_t conn_write(CONN *conn, const void *buf, size_t len)
{
    return conn->ops->write(conn, buf, len);
}

/* conn_pending - bytes the transport has read and decoded but not handed over */
int conn_pending(CONN *conn)
{
    return conn->ops->pending != NULL && conn->ops->pending(conn);
}

/* conn_close - end the transport and close the socket */
void conn_close(CONN *conn)
{
    if (conn == NULL)
        return;
    conn->ops->close(conn);
    tls_discard(conn); /* also a handshake that never finished */
    if (conn->fd >= 0)
        (void)close(conn->fd);
    myfree(conn);
}
