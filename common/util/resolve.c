/*
 * resolve - host name lookups that do not block the event loop
 *
 * resolve_create()
 *	a resolver for the process's event loop: a pipe whose read end the
 *	loop watches. One per process is enough; it serves any number of
 *	lookups at once.
 * resolve_start()
 *	begin looking up host (A and AAAA, or one family: AF_INET,
 *	AF_INET6, AF_UNSPEC) for a TCP port. fn(ctx, res, error) is called
 *	later from an event-loop callback, never from inside
 *	resolve_start(). NULL with the reason in `why` when the lookup
 *	could not even be queued.
 * resolve_cancel()
 *	the caller no longer wants the answer: fn is not called. The
 *	lookup itself runs to its end and its memory is freed then.
 * resolve_numeric()
 *	an address literal, converted without any lookup (getaddrinfo with
 *	AI_NUMERICHOST never asks a name service): 0 and the list (free it
 *	with freeaddrinfo()), or -1 when host is not a literal.
 *
 * Mechanism: glibc's getaddrinfo_a() with SIGEV_THREAD notification.
 * glibc runs the lookup in its own helper thread (the name services,
 * /etc/hosts and DNS alike, may block there as long as they like) and
 * then calls resolve_notify() in a short-lived thread, which only writes
 * the request's address to the pipe: a write of one pointer is atomic,
 * so the loop reads whole pointers and does everything else -- the
 * callback, freeing -- in its own thread. SIGEV_SIGNAL was not chosen:
 * the process's signals already mean something (daemon.c), and a
 * signal carries no pointer through the self-pipe. gai_cancel() is not
 * used: a request it removes is never notified, a running one may be, so
 * a cancelled request instead stays allocated until its notification,
 * which always comes.
 *
 * Ownership: the resolver owns every request until its notification
 * has been read; the caller's handle is valid until fn was called or
 * resolve_cancel() returned. Failures to create the pipe are fatal;
 * a lookup that fails is reported through fn.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "msg.h"
#include "mymalloc.h"
#include "resolve.h"

#define RESOLVE_BATCH 64 /* notifications read from the pipe at once */

/* RESOLVER models the process's channel from glibc's threads to the loop. */
struct RESOLVER {
    int pipe_fd[2]; /* [0] watched by the loop, [1] written by resolve_notify() */
};

/* RESOLVE_REQ models one lookup in flight and who waits for it. */
struct RESOLVE_REQ {
    struct gaicb cb;
    struct addrinfo hints;
    struct sigevent sev;
    char service[16];
    char *host;
    int notify_fd; /* the resolver's pipe, for the notifying thread */
    RESOLVE_FN fn; /* NULL: cancelled */
    void *ctx;
};

/* resolve_notify - in glibc's thread: hand the finished request to the loop */
static void resolve_notify(union sigval sv)
{
    RESOLVE_REQ *req = sv.sival_ptr;
    ssize_t n;

    do {
        n = write(req->notify_fd, &req, sizeof(req));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(req))
        msg_panic("resolve_notify: write: %s", strerror(errno));
}

/* resolve_finish - in the loop: answer the waiting caller, free the request */
static void resolve_finish(RESOLVE_REQ *req)
{
    int err = gai_error(&req->cb);
    char error[256];

    if (req->fn != NULL) {
        if (err == 0) {
            req->fn(req->ctx, req->cb.ar_result, NULL);
        } else {
            snprintf(error, sizeof(error), "%s",
                     err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));
            req->fn(req->ctx, NULL, error);
        }
    }
    if (req->cb.ar_result != NULL)
        freeaddrinfo(req->cb.ar_result);
    myfree(req->host);
    myfree(req);
}

/* resolve_event - notifications are waiting in the pipe */
static void resolve_event(int fd, int events, void *ctx)
{
    RESOLVE_REQ *done[RESOLVE_BATCH];
    ssize_t n;

    (void)events;
    (void)ctx;
    do {
        n = read(fd, done, sizeof(done));
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN)
        msg_fatal("resolve: read from the notification pipe: %s", strerror(errno));
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(done[0]); i++)
        resolve_finish(done[i]);
}

/* resolve_create - the process's resolver */
RESOLVER *resolve_create(void)
{
    RESOLVER *r = mymalloc(sizeof(*r));

    if (pipe2(r->pipe_fd, O_CLOEXEC) < 0)
        msg_fatal("resolve: pipe: %s", strerror(errno));
    /* The loop must never wait on the pipe; glibc's thread may. */
    if (fcntl(r->pipe_fd[0], F_SETFL, O_NONBLOCK) < 0)
        msg_fatal("resolve: fcntl: %s", strerror(errno));
    event_enable_read(r->pipe_fd[0], resolve_event, r);
    return r;
}

/* resolve_start - begin a lookup; the answer comes through fn */
RESOLVE_REQ *resolve_start(RESOLVER *r, const char *host, unsigned port, int family, RESOLVE_FN fn,
                           void *ctx, VSTR *why)
{
    RESOLVE_REQ *req = mycalloc(1, sizeof(*req));
    struct gaicb *list[1];
    int err;

    req->host = mystrdup(host);
    snprintf(req->service, sizeof(req->service), "%u", port);
    req->hints.ai_family = family;
    req->hints.ai_socktype = SOCK_STREAM;
    req->hints.ai_flags = AI_NUMERICSERV; /* not AI_ADDRCONFIG: it ignores loopback */
    req->cb.ar_name = req->host;
    req->cb.ar_service = req->service;
    req->cb.ar_request = &req->hints;
    req->sev.sigev_notify = SIGEV_THREAD;
    req->sev.sigev_notify_function = resolve_notify;
    req->sev.sigev_value.sival_ptr = req;
    req->notify_fd = r->pipe_fd[1];
    req->fn = fn;
    req->ctx = ctx;
    list[0] = &req->cb;
    if ((err = getaddrinfo_a(GAI_NOWAIT, list, 1, &req->sev)) != 0) {
        vstr_sprintf(why, "%s", err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));
        myfree(req->host);
        myfree(req);
        return NULL;
    }
    return req;
}

/* resolve_cancel - drop interest in a lookup; the request is freed when it ends */
void resolve_cancel(RESOLVE_REQ *req)
{
    req->fn = NULL;
    req->ctx = NULL;
}

/* resolve_numeric - an address literal, without a lookup */
int resolve_numeric(const char *host, unsigned port, int family, struct addrinfo **res)
{
    struct addrinfo hints;
    char service[16];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%u", port);
    return getaddrinfo(host, service, &hints, res) == 0 ? 0 : -1;
}
