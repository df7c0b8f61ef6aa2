/*
 * event - a poll(2) event loop with timers and signal delivery
 *
 * event_enable_read(), event_enable_write()
 *	call fn(fd, EVENT_READ|EVENT_WRITE, ctx) when fd is readable or
 *	writable; one read and one write callback per descriptor.
 * event_disable_read(), event_disable_write(), event_disable_readwrite()
 *	stop watching; must be called before a watched descriptor is closed.
 * event_request_timer(), event_cancel_timer()
 *	a one-shot timer identified by (fn, ctx); requesting it again moves it.
 * event_on_signal()
 *	run fn(sig, ctx) from the loop, not from the handler (a self-pipe), so the
 *	callback may do anything.
 * event_after_pass()
 *	a function run at the end of every pass, after all callbacks: the
 *	place to commit the write transaction that a pass accumulated.
 * event_loop()
 *	run one pass: wait at most max_wait_ms (or until the next timer),
 *	then call the ready callbacks and the due timers.
 *
 * The loop is single-threaded and belongs to the process. Failures of
 * poll(2) other than EINTR are fatal.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"

/* Per-descriptor callbacks. */
typedef struct EVENT_FD {
    EVENT_FD_FN read_fn;
    void *read_ctx;
    EVENT_FD_FN write_fn;
    void *write_ctx;
} EVENT_FD;

/* One pending timer, in a list sorted by due time. */
typedef struct EVENT_TIMER {
    long long due;
    EVENT_TIMER_FN fn;
    void *ctx;
    struct EVENT_TIMER *next;
} EVENT_TIMER;

static EVENT_FD *event_fds;
static int event_fd_slots;
static EVENT_TIMER *event_timers;
static struct pollfd *event_pollfds;
static int event_pollfd_slots;
static void (*event_pass_hook)(void *ctx);
static void *event_pass_ctx;

static int event_sig_pipe[2] = {-1, -1};
static EVENT_SIGNAL_FN event_sig_fns[65];
static void *event_sig_ctxs[65];

/* event_slot - the callback slot of a descriptor, growing the table */
static EVENT_FD *event_slot(int fd)
{
    if (fd < 0)
        msg_panic("event: bad descriptor %d", fd);
    if (fd >= event_fd_slots) {
        int slots = event_fd_slots ? event_fd_slots : 64;

        while (slots <= fd)
            slots *= 2;
        event_fds = myrealloc(event_fds, sizeof(*event_fds) * (size_t)slots);
        memset(event_fds + event_fd_slots, 0,
               sizeof(*event_fds) * (size_t)(slots - event_fd_slots));
        event_fd_slots = slots;
    }
    return event_fds + fd;
}

/* event_enable_read - watch a descriptor for input */
void event_enable_read(int fd, EVENT_FD_FN fn, void *ctx)
{
    EVENT_FD *slot = event_slot(fd);

    slot->read_fn = fn;
    slot->read_ctx = ctx;
}

/* event_enable_write - watch a descriptor for output space */
void event_enable_write(int fd, EVENT_FD_FN fn, void *ctx)
{
    EVENT_FD *slot = event_slot(fd);

    slot->write_fn = fn;
    slot->write_ctx = ctx;
}

/* event_disable_read - stop watching for input */
void event_disable_read(int fd)
{
    if (fd >= 0 && fd < event_fd_slots)
        event_fds[fd].read_fn = NULL;
}

/* event_disable_write - stop watching for output space */
void event_disable_write(int fd)
{
    if (fd >= 0 && fd < event_fd_slots)
        event_fds[fd].write_fn = NULL;
}

/* event_disable_readwrite - stop watching a descriptor */
void event_disable_readwrite(int fd)
{
    event_disable_read(fd);
    event_disable_write(fd);
}

/* event_cancel_timer - remove a timer if it is pending */
void event_cancel_timer(EVENT_TIMER_FN fn, void *ctx)
{
    EVENT_TIMER **tpp, *tp;

    for (tpp = &event_timers; (tp = *tpp) != NULL; tpp = &tp->next) {
        if (tp->fn == fn && tp->ctx == ctx) {
            *tpp = tp->next;
            myfree(tp);
            return;
        }
    }
}

/* event_request_timer - set or move a one-shot timer */
void event_request_timer(EVENT_TIMER_FN fn, void *ctx, long long delay_ms)
{
    EVENT_TIMER **tpp, *tp;

    event_cancel_timer(fn, ctx);
    tp = mymalloc(sizeof(*tp));
    tp->due = now_ms() + (delay_ms < 0 ? 0 : delay_ms);
    tp->fn = fn;
    tp->ctx = ctx;
    for (tpp = &event_timers; *tpp && (*tpp)->due <= tp->due; tpp = &(*tpp)->next)
        /* keep the list sorted; equal times run in request order */;
    tp->next = *tpp;
    *tpp = tp;
}

/* event_sig_handler - forward a signal number through the self-pipe */
static void event_sig_handler(int sig)
{
    unsigned char byte = (unsigned char)sig;
    int saved_errno = errno;

    if (write(event_sig_pipe[1], &byte, 1) < 0) {
        /* The pipe is full: the loop already has signals to handle. */
    }
    errno = saved_errno;
}

/* event_sig_read - run the callbacks of signals that arrived */
static void event_sig_read(int fd, int events, void *ctx)
{
    unsigned char sigs[64];
    ssize_t n;

    (void)events;
    (void)ctx;
    while ((n = read(fd, sigs, sizeof(sigs))) > 0)
        for (ssize_t i = 0; i < n; i++)
            if (sigs[i] < 65 && event_sig_fns[sigs[i]])
                event_sig_fns[sigs[i]](sigs[i], event_sig_ctxs[sigs[i]]);
}

/* event_on_signal - deliver a signal to a callback inside the loop */
void event_on_signal(int sig, EVENT_SIGNAL_FN fn, void *ctx)
{
    struct sigaction sa;

    if (sig <= 0 || sig >= 65)
        msg_panic("event_on_signal: bad signal %d", sig);
    if (event_sig_pipe[0] < 0) {
        if (pipe2(event_sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
            msg_fatal("pipe: %m");
        event_enable_read(event_sig_pipe[0], event_sig_read, NULL);
    }
    event_sig_fns[sig] = fn;
    event_sig_ctxs[sig] = ctx;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = event_sig_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, NULL) < 0)
        msg_fatal("sigaction %d: %m", sig);
}

/* event_after_pass - run fn at the end of every loop pass */
void event_after_pass(void (*fn)(void *ctx), void *ctx)
{
    event_pass_hook = fn;
    event_pass_ctx = ctx;
}

/* event_loop - one pass of the event loop */
void event_loop(long long max_wait_ms)
{
    long long now, wait = max_wait_ms;
    int count = 0, n;

    if (event_timers) {
        long long until = event_timers->due - now_ms();

        if (until < 0)
            until = 0;
        if (wait < 0 || until < wait)
            wait = until;
    }
    if (event_pollfd_slots < event_fd_slots) {
        event_pollfds = myrealloc(event_pollfds, sizeof(*event_pollfds) * (size_t)event_fd_slots);
        event_pollfd_slots = event_fd_slots;
    }
    for (int fd = 0; fd < event_fd_slots; fd++) {
        short want =
            (short)((event_fds[fd].read_fn ? POLLIN : 0) | (event_fds[fd].write_fn ? POLLOUT : 0));

        if (want) {
            event_pollfds[count].fd = fd;
            event_pollfds[count].events = want;
            event_pollfds[count].revents = 0;
            count++;
        }
    }
    n = poll(event_pollfds, (nfds_t)count, wait > 0x7fffffff ? 0x7fffffff : (int)wait);
    if (n < 0 && errno != EINTR)
        msg_fatal("poll: %m");
    for (int i = 0; n > 0 && i < count; i++) {
        struct pollfd *pfd = event_pollfds + i;
        int fd = pfd->fd;
        short got = pfd->revents;

        if (got == 0)
            continue;
        /* Errors and hang-ups are reported to both callbacks, which find
         * out the details with read(2) or write(2). */
        if ((got & (POLLIN | POLLHUP | POLLERR)) && fd < event_fd_slots && event_fds[fd].read_fn)
            event_fds[fd].read_fn(fd, EVENT_READ, event_fds[fd].read_ctx);
        if ((got & (POLLOUT | POLLHUP | POLLERR)) && fd < event_fd_slots && event_fds[fd].write_fn)
            event_fds[fd].write_fn(fd, EVENT_WRITE, event_fds[fd].write_ctx);
    }
    now = now_ms();
    while (event_timers && event_timers->due <= now) {
        EVENT_TIMER *tp = event_timers;
        EVENT_TIMER_FN fn = tp->fn;
        void *ctx = tp->ctx;

        event_timers = tp->next;
        myfree(tp);
        fn(ctx);
    }
    if (event_pass_hook)
        event_pass_hook(event_pass_ctx);
}
