/*
 * listener.h - a bounded acceptor for one listening socket, UNIX or TCP
 */
#ifndef RELAYQ_LISTENER_H
#define RELAYQ_LISTENER_H

typedef struct LISTENER LISTENER;

/* A new connection: fd is non-blocking and close-on-exec, uid from SO_PEERCRED (-1: unknown),
 * or for TCP a number standing for the client's address. */
typedef void (*LISTENER_ACCEPT_FN)(LISTENER *listener, int fd, long uid, void *ctx);

/* A connection refused at a cap, already closed. */
typedef void (*LISTENER_REFUSE_FN)(LISTENER *listener, long uid, void *ctx);

/* How many connections a listener hands out at once. */
typedef struct LISTENER_LIMITS {
    int clients_max; /* of all peers together, at least 1 */
    int per_uid_max; /* of one uid, or one TCP client address; 0: no cap of its own */
} LISTENER_LIMITS;

LISTENER *listener_create(int listen_fd, const char *name, const LISTENER_LIMITS *limits,
                          LISTENER_ACCEPT_FN accept_fn, void *ctx);
void listener_on_refuse(LISTENER *listener, LISTENER_REFUSE_FN refuse_fn);
void listener_closed(LISTENER *listener, long uid);
int listener_clients(const LISTENER *listener);
void listener_free(LISTENER *listener);

#endif
