/*
 * listener - a bounded acceptor for one listening socket, UNIX or TCP
 *
 * listener_create()
 *	watch a non-blocking listening descriptor from the event loop and
 *	hand each new connection to accept_fn(listener, fd, uid, ctx). The
 *	listener owns the descriptor from then on; it logs under `name`.
 * listener_on_refuse()
 *	also call refuse_fn(listener, uid, ctx) for each connection refused
 *	at a cap, once it is closed: for a server to whom the connection
 *	itself was news (pickup scans on a refused wake-up).
 * listener_closed()
 *	a connection it handed out has ended: the caller closed it and says
 *	so, once, with the uid it was given.
 * listener_clients()
 *	the connections handed out and not ended yet.
 * listener_free()
 *	stop watching and close the listening descriptor. The connections
 *	handed out stay open and remain the caller's.
 *
 * What a listener guarantees, whoever connects:
 *	- at most limits.clients_max connections at once, and at most
 *	  limits.per_uid_max of one peer: of one uid (SO_PEERCRED) on a UNIX
 *	  socket, of one client address on a TCP socket (the "uid" the
 *	  callbacks get is then a number that stands for the address: the
 *	  IPv4 address itself, an IPv4-mapped IPv6 address as that IPv4
 *	  one, a hash of any other IPv6 address). A connection past a
 *	  cap is accepted and closed at once: its client reads end of file
 *	  instead of waiting in the listen queue;
 *	- one warning per episode of refusals, naming the socket and the cap.
 *	  An episode of the global cap ends when a connection is accepted,
 *	  one of a uid's cap when a connection of that uid is accepted, so a
 *	  flood is a line in the log, not a line per connection;
 *	- at most LISTENER_ACCEPTS_PER_PASS connections taken per pass of the
 *	  event loop: a flood of connects cannot starve other descriptors;
 *	- when the process or the system is out of descriptors or memory
 *	  (accept fails with EMFILE, ENFILE, ENOBUFS or ENOMEM) the listener
 *	  stops watching its socket, with one warning, until LISTENER_PAUSE_MS
 *	  have passed or listener_closed() frees a descriptor, whichever comes
 *	  first: a socket that stays readable cannot make the loop spin.
 *
 * All state is in the object, so a process may run several listeners.
 * The callbacks must not free their listener. Other accept errors are
 * warnings; a listener_closed() that matches no open connection, or
 * limits out of range, are panics.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "htable.h"
#include "listener.h"
#include "msg.h"
#include "mymalloc.h"
#include "sock.h"

#define LISTENER_ACCEPTS_PER_PASS 64 /* connections taken in one pass of the loop */
#define LISTENER_PAUSE_MS 1000       /* out of descriptors: time before trying again */
#define LISTENER_UID_KEY_SIZE 24     /* a long in decimal, its sign and the NUL */

/* The open connections of one uid, while it has any. */
typedef struct LISTENER_USER {
    int clients;
    int refusing; /* its last connection was refused at per_uid_max, and logged */
} LISTENER_USER;

/* One listening socket, the connections it handed out, and its state of refusal. */
struct LISTENER {
    int fd;
    char *name; /* for the log: the socket's path */
    LISTENER_LIMITS limits;
    LISTENER_ACCEPT_FN accept_fn;
    LISTENER_REFUSE_FN refuse_fn; /* or NULL */
    void *ctx;
    int clients;      /* handed out and not ended */
    HTABLE *users;    /* uid in decimal -> LISTENER_USER, for uids with connections */
    int refusing;     /* the last connection was refused at clients_max, and logged */
    int paused;       /* out of descriptors: not watching until the timer or a close */
    int pause_warned; /* the exhaustion was logged; an accepted connection clears it */
};

static void listener_ready(int fd, int events, void *ctx);

/* listener_uid_key - the table key of a uid */
static void listener_uid_key(long uid, char key[LISTENER_UID_KEY_SIZE])
{
    snprintf(key, LISTENER_UID_KEY_SIZE, "%ld", uid);
}

/* listener_addr_key - the number that stands for a TCP client's address */
static long listener_addr_key(const struct sockaddr_storage *peer)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
    uint64_t hash = 14695981039346656037ULL; /* FNV-1a */

    if (peer->ss_family == AF_INET)
        return (long)ntohl(((const struct sockaddr_in *)peer)->sin_addr.s_addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
        return (long)ntohl(((const uint32_t *)in6->sin6_addr.s6_addr)[3]);
    for (int i = 0; i < 16; i++)
        hash = (hash ^ in6->sin6_addr.s6_addr[i]) * 1099511628211ULL;
    return (long)(hash >> 1);
}

/* listener_peer - the uid of a UNIX client, or the number of a TCP client's address, and its
 * name for a warning; -1 when the kernel does not say */
static long listener_peer(int fd, char *who, size_t len)
{
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    struct ucred cred;
    socklen_t cred_len = sizeof(cred);
    char addr[INET6_ADDRSTRLEN];

    if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0 &&
        (peer.ss_family == AF_INET || peer.ss_family == AF_INET6)) {
        sock_addr_text((struct sockaddr *)&peer, addr, sizeof(addr));
        snprintf(who, len, "client %s", addr);
        return listener_addr_key(&peer);
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0) {
        snprintf(who, len, "uid -1");
        return -1;
    }
    snprintf(who, len, "uid %ld", (long)cred.uid);
    return (long)cred.uid;
}

/* listener_admit - count a new connection of a peer in, or refuse it (0) with one warning */
static int listener_admit(LISTENER *listener, long uid, const char *who)
{
    char key[LISTENER_UID_KEY_SIZE];
    LISTENER_USER *user;

    if (listener->clients >= listener->limits.clients_max) {
        if (!listener->refusing)
            msg_warn("%s: %d clients: refusing connections until some leave", listener->name,
                     listener->limits.clients_max);
        listener->refusing = 1;
        return 0;
    }
    listener_uid_key(uid, key);
    if ((user = htable_get(listener->users, key)) == NULL) {
        user = mycalloc(1, sizeof(*user));
        htable_put(listener->users, key, user);
    }
    if (listener->limits.per_uid_max > 0 && user->clients >= listener->limits.per_uid_max) {
        if (!user->refusing)
            msg_warn("%s: %s has %d connections: refusing more of its connections", listener->name,
                     who, user->clients);
        user->refusing = 1;
        return 0;
    }
    listener->refusing = 0;
    user->refusing = 0;
    listener->pause_warned = 0;
    listener->clients++;
    user->clients++;
    return 1;
}

/* listener_resume_timer - try the socket again after a pause */
static void listener_resume_timer(void *ctx)
{
    LISTENER *listener = ctx;

    listener->paused = 0;
    event_enable_read(listener->fd, listener_ready, listener);
}

/* listener_pause - out of descriptors or memory: stop watching for a while */
static void listener_pause(LISTENER *listener, int err)
{
    if (!listener->pause_warned)
        msg_warn("%s: accept: %s: pausing new connections until one ends or for %d ms",
                 listener->name, strerror(err), LISTENER_PAUSE_MS);
    listener->pause_warned = 1;
    listener->paused = 1;
    event_disable_read(listener->fd);
    event_request_timer(listener_resume_timer, listener, LISTENER_PAUSE_MS);
}

/* listener_ready - take the connections waiting on the socket */
static void listener_ready(int fd, int events, void *ctx)
{
    LISTENER *listener = ctx;
    char who[INET6_ADDRSTRLEN + 16];
    long uid;
    int conn;

    (void)events;
    for (int i = 0; i < LISTENER_ACCEPTS_PER_PASS; i++) {
        if ((conn = sock_accept(fd)) < 0) {
            if (errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listener_pause(listener, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                msg_warn("%s: accept: %m", listener->name);
            return;
        }
        uid = listener_peer(conn, who, sizeof(who));
        if (listener_admit(listener, uid, who)) {
            listener->accept_fn(listener, conn, uid, listener->ctx);
        } else {
            close(conn);
            if (listener->refuse_fn)
                listener->refuse_fn(listener, uid, listener->ctx);
        }
    }
}

/* listener_create - serve a listening socket from the event loop */
LISTENER *listener_create(int listen_fd, const char *name, const LISTENER_LIMITS *limits,
                          LISTENER_ACCEPT_FN accept_fn, void *ctx)
{
    LISTENER *listener;

    if (limits->clients_max < 1 || limits->per_uid_max < 0)
        msg_panic("listener_create: %s: bad limits %d, %d per uid", name, limits->clients_max,
                  limits->per_uid_max);
    listener = mycalloc(1, sizeof(*listener));
    listener->fd = listen_fd;
    listener->name = mystrdup(name);
    listener->limits = *limits;
    listener->accept_fn = accept_fn;
    listener->ctx = ctx;
    listener->users = htable_create(16);
    event_enable_read(listen_fd, listener_ready, listener);
    return listener;
}

/* listener_on_refuse - be told of the connections refused at a cap */
void listener_on_refuse(LISTENER *listener, LISTENER_REFUSE_FN refuse_fn)
{
    listener->refuse_fn = refuse_fn;
}

/* listener_closed - a connection handed out has ended */
void listener_closed(LISTENER *listener, long uid)
{
    char key[LISTENER_UID_KEY_SIZE];
    LISTENER_USER *user;

    listener_uid_key(uid, key);
    if ((user = htable_get(listener->users, key)) == NULL || listener->clients <= 0)
        msg_panic("listener_closed: %s: no connection of uid %ld is open", listener->name, uid);
    listener->clients--;
    if (--user->clients == 0)
        myfree(htable_remove(listener->users, key));
    /* The descriptor it held is free: no need to wait for the timer. */
    if (listener->paused) {
        event_cancel_timer(listener_resume_timer, listener);
        listener_resume_timer(listener);
    }
}

/* listener_clients - the connections open now */
int listener_clients(const LISTENER *listener)
{
    return listener->clients;
}

/* listener_free - stop serving and close the listening socket */
void listener_free(LISTENER *listener)
{
    event_disable_readwrite(listener->fd);
    event_cancel_timer(listener_resume_timer, listener);
    close(listener->fd);
    htable_free(listener->users, myfree);
    myfree(listener->name);
    myfree(listener);
}
