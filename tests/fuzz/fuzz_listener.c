/*
 * fuzz_listener - fuzz target for the bounded listener, against the real event loop
 *
 * LLVMFuzzerTestOneInput()
 *	the input is a program. Its first byte sets the caps of a new
 *	listener: clients_max 1..8, per_uid_max 0..4 (0: no cap of its own).
 *	Each later byte is one operation: the byte modulo the number of
 *	kinds picks the kind, the quotient is its argument:
 *	  connect	a client connects (one, or up to 8 at once);
 *	  pass		one pass of the event loop, with no wait;
 *	  starve	one pass with no descriptor to spare (RLIMIT_NOFILE at
 *			the lowest free descriptor): accept fails with EMFILE;
 *	  end		the server ends the oldest or the newest connection it
 *			was handed: close() and listener_closed();
 *	  hang up	a client closes its end, whether it was served,
 *			refused or still waiting.
 *	Each client binds an abstract address of its own before it connects,
 *	so that the server can tell which connection it was handed. Beside
 *	the listener runs a model of what it must do: the listen queue is
 *	served in order; a connection is refused exactly when the
 *	connections handed out and not ended are at clients_max or at
 *	per_uid_max; one warning per episode of refusals at a cap, and one
 *	per episode of EMFILE; after EMFILE the listener takes nothing until
 *	listener_closed() or its timer (a second: it may fire only if the
 *	input ran that long). After each operation: listener_clients() is
 *	the number handed out and not ended, never more than either cap; a
 *	connection handed out is non-blocking and close-on-exec and comes
 *	with this process's uid; every client refused or ended reads end of
 *	file and every other one reads nothing yet. At the end every
 *	connection is ended and every client closed, listener_clients() is
 *	0, the listener is freed, the lowest free descriptor is the one
 *	before the input, and the log holds the warnings the model counted,
 *	no more.
 *
 *	Every client has this process's uid, so the per-uid cap is exercised
 *	with one uid only: here it acts as a second global cap. Counts kept
 *	apart for several uids are not exercised (tests/unit_listener.c has
 *	one uid too).
 *
 * LLVMFuzzerInitialize()
 *	make the temporary directory of the socket and of the log, once;
 *	both are removed at exit.
 *
 * fuzz-sources: common/util/listener.c common/util/event.c common/util/htable.c
 * fuzz-sources: common/util/sock.c common/util/iostuff.c common/util/vstr.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c
 *
 * A broken invariant aborts; a socket or directory that cannot be made
 * exits. At most FUZZ_CLIENTS_MAX clients and FUZZ_OPS_MAX operations
 * per input; no descriptor and no listener outlives its input.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "event.h"
#include "fuzz.h"
#include "iostuff.h"
#include "listener.h"
#include "msg.h"
#include "mymalloc.h"
#include "sock.h"
#include "vstr.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CLIENTS_MAX 32        /* connections one input makes, at most */
#define FUZZ_OPS_MAX 512           /* operations of one input, at most */
#define FUZZ_BACKLOG 64            /* more than FUZZ_CLIENTS_MAX: connect never blocks */
#define FUZZ_BURST_MAX 8           /* clients connecting in one operation */
#define FUZZ_PAUSE_MS 1000         /* LISTENER_PAUSE_MS: a pause the listener may end by itself */
#define FUZZ_LOG_MAX (1024 * 1024) /* bytes of the log of one input, at most */
#define FUZZ_CLIENTS_CAP 8         /* clients_max is 1..FUZZ_CLIENTS_CAP */
#define FUZZ_PER_UID_CAPS 5        /* per_uid_max is 0..FUZZ_PER_UID_CAPS - 1 */
#define FUZZ_ADDR_NAME_MAX 64      /* bytes of a client's abstract address */

/* The operations: a byte modulo FUZZ_OPS. */
enum {
    FUZZ_OP_CONNECT,
    FUZZ_OP_CONNECT_BURST,
    FUZZ_OP_PASS,
    FUZZ_OP_STARVE,
    FUZZ_OP_END_OLDEST,
    FUZZ_OP_END_NEWEST,
    FUZZ_OP_HANG_UP,
    FUZZ_OPS
};

/* Where a client's connection is. */
typedef enum {
    FUZZ_WAITING, /* in the listen queue */
    FUZZ_SERVED,  /* handed out, not ended */
    FUZZ_ENDED,   /* handed out, then ended by the server */
    FUZZ_REFUSED  /* closed by the listener at a cap */
} FUZZ_STATE;

/* One client and the server's end of its connection. */
typedef struct FUZZ_CLIENT {
    int fd; /* the client's end; -1 once it hung up */
    FUZZ_STATE state;
    int server_fd;                 /* when FUZZ_SERVED: the descriptor handed out */
    long uid;                      /* when FUZZ_SERVED: the uid it came with */
    char name[FUZZ_ADDR_NAME_MAX]; /* its abstract address, without the leading NUL */
} FUZZ_CLIENT;

/* One input's listener, its clients, and the model of what the listener must do. */
typedef struct FUZZ_RUN {
    LISTENER *listener;
    LISTENER_LIMITS limits;
    FUZZ_CLIENT clients[FUZZ_CLIENTS_MAX];
    int count;   /* clients that connected */
    int handled; /* clients served or refused: the listen queue's head is the next */
    int served[FUZZ_CLIENTS_MAX]; /* the clients served and not ended, in the order served */
    int open;                     /* their number: what listener_clients() must say */
    int refusing;     /* a refusal at clients_max was warned, no connection served since */
    int uid_refusing; /* the same for per_uid_max, while the uid has connections */
    int pause_warned; /* an EMFILE pause was warned, no connection served since */
    int paused;       /* not taking connections until listener_closed() or the timer */
    long long paused_at;
    int warnings; /* lines the log must hold */
} FUZZ_RUN;

static char fuzz_dir[64];         /* the temporary directory */
static char fuzz_path[80];        /* the listening socket */
static char fuzz_log_path[80];    /* the log */
static unsigned long fuzz_serial; /* makes each client's abstract address new */

/* fuzz_cleanup - remove the temporary directory at exit */
static void fuzz_cleanup(void)
{
    unlink(fuzz_path);
    unlink(fuzz_log_path);
    rmdir(fuzz_dir);
}

/* fuzz_client_of - the client at the other end of a connection handed out */
static int fuzz_client_of(const FUZZ_RUN *run, int fd)
{
    struct sockaddr_un peer;
    socklen_t len = sizeof(peer);
    size_t name_len;

    FUZZ_CHECK(getpeername(fd, (struct sockaddr *)&peer, &len) == 0);
    FUZZ_CHECK(len > offsetof(struct sockaddr_un, sun_path) + 1 && peer.sun_path[0] == '\0');
    name_len = len - offsetof(struct sockaddr_un, sun_path) - 1;
    for (int i = 0; i < run->count; i++)
        if (strlen(run->clients[i].name) == name_len &&
            memcmp(run->clients[i].name, peer.sun_path + 1, name_len) == 0)
            return i;
    return -1;
}

/* fuzz_resumed_alone - a paused listener took a connection: only its timer may have let it */
static void fuzz_resumed_alone(FUZZ_RUN *run)
{
    if (!run->paused)
        return;
    FUZZ_CHECK(now_ms() - run->paused_at >= FUZZ_PAUSE_MS);
    run->paused = 0;
}

/* fuzz_accept - the listener hands out the connection at the head of the queue */
static void fuzz_accept(LISTENER *listener, int fd, long uid, void *ctx)
{
    FUZZ_RUN *run = ctx;
    FUZZ_CLIENT *client;
    int who;

    fuzz_resumed_alone(run);
    FUZZ_CHECK(listener == run->listener && fd >= 0 && uid == (long)getuid());
    FUZZ_CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
    FUZZ_CHECK(run->handled < run->count && (who = fuzz_client_of(run, fd)) == run->handled);
    /* Under both caps before it, and counted now. */
    FUZZ_CHECK(run->open < run->limits.clients_max);
    FUZZ_CHECK(run->limits.per_uid_max == 0 || run->open < run->limits.per_uid_max);
    FUZZ_CHECK(listener_clients(listener) == run->open + 1);
    client = run->clients + who;
    client->state = FUZZ_SERVED;
    client->server_fd = fd;
    client->uid = uid;
    run->served[run->open++] = who;
    run->handled++;
    run->refusing = run->uid_refusing = run->pause_warned = 0;
}

/* fuzz_refuse - the listener refused the connection at the head of the queue */
static void fuzz_refuse(LISTENER *listener, long uid, void *ctx)
{
    FUZZ_RUN *run = ctx;

    fuzz_resumed_alone(run);
    FUZZ_CHECK(listener == run->listener && uid == (long)getuid());
    FUZZ_CHECK(run->handled < run->count && listener_clients(listener) == run->open);
    if (run->open >= run->limits.clients_max) {
        run->warnings += !run->refusing;
        run->refusing = 1;
    } else {
        /* Under the global cap, only the per-uid one refuses. */
        FUZZ_CHECK(run->limits.per_uid_max > 0 && run->open >= run->limits.per_uid_max);
        run->warnings += !run->uid_refusing;
        run->uid_refusing = 1;
    }
    run->clients[run->handled++].state = FUZZ_REFUSED;
}

/* fuzz_check_clients - the counts hold, and each client reads what its state says */
static void fuzz_check_clients(const FUZZ_RUN *run)
{
    struct pollfd pfds[FUZZ_CLIENTS_MAX];
    const FUZZ_CLIENT *watched[FUZZ_CLIENTS_MAX];
    int count = 0, polled;
    char byte;

    FUZZ_CHECK(listener_clients(run->listener) == run->open && run->open >= 0);
    FUZZ_CHECK(run->open <= run->limits.clients_max);
    FUZZ_CHECK(run->limits.per_uid_max == 0 || run->open <= run->limits.per_uid_max);
    for (int i = 0; i < run->count; i++) {
        if (run->clients[i].fd < 0)
            continue;
        pfds[count].fd = run->clients[i].fd;
        pfds[count].events = POLLIN;
        pfds[count].revents = 0;
        watched[count++] = run->clients + i;
    }
    /* libFuzzer's timer (SIGALRM) may interrupt the poll: ask again. */
    while ((polled = poll(pfds, (nfds_t)count, 0)) < 0 && errno == EINTR)
        ;
    FUZZ_CHECK(polled >= 0);
    for (int i = 0; i < count; i++) {
        if (watched[i]->state == FUZZ_REFUSED || watched[i]->state == FUZZ_ENDED)
            FUZZ_CHECK((pfds[i].revents & (POLLIN | POLLHUP)) && read(pfds[i].fd, &byte, 1) == 0);
        else
            FUZZ_CHECK(pfds[i].revents == 0);
    }
}

/* fuzz_connect - a new client connects from an abstract address of its own */
static void fuzz_connect(FUZZ_RUN *run)
{
    FUZZ_CLIENT *client = run->clients + run->count;
    struct sockaddr_un addr, server;
    socklen_t addr_len;
    int fd;

    if (run->count >= FUZZ_CLIENTS_MAX)
        return;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    snprintf(client->name, sizeof(client->name), "relayq-fuzz-listener.%ld.%lu", (long)getpid(),
             fuzz_serial++);
    memcpy(addr.sun_path + 1, client->name, strlen(client->name));
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(client->name));
    memset(&server, 0, sizeof(server));
    server.sun_family = AF_UNIX;
    snprintf(server.sun_path, sizeof(server.sun_path), "%s", fuzz_path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, addr_len) < 0 ||
        connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0) {
        perror("fuzz_listener: client");
        exit(1);
    }
    client->fd = fd;
    client->state = FUZZ_WAITING;
    client->server_fd = -1;
    run->count++;
}

/* fuzz_pass - one pass of the loop; unless paused, it handles the whole queue */
static void fuzz_pass(FUZZ_RUN *run)
{
    event_loop(0);
    if (!run->paused)
        FUZZ_CHECK(run->handled == run->count);
}

/* fuzz_lowest_fd - the lowest free descriptor, the next one the process would get */
static int fuzz_lowest_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        perror("fuzz_listener: /dev/null");
        exit(1);
    }
    close(fd);
    return fd;
}

/* fuzz_starve - one pass with no descriptor to spare: a waiting connection makes it pause */
static void fuzz_starve(FUZZ_RUN *run)
{
    struct rlimit saved, low;
    int lowest = fuzz_lowest_fd(), handled = run->handled;

    if (getrlimit(RLIMIT_NOFILE, &saved) < 0) {
        perror("fuzz_listener: getrlimit");
        exit(1);
    }
    low = saved;
    low.rlim_cur = (rlim_t)lowest;
    if (setrlimit(RLIMIT_NOFILE, &low) < 0) {
        perror("fuzz_listener: setrlimit");
        exit(1);
    }
    if (!run->paused && run->handled < run->count) {
        run->warnings += !run->pause_warned;
        run->pause_warned = 1;
        run->paused = 1;
        run->paused_at = now_ms();
    }
    event_loop(0);
    if (setrlimit(RLIMIT_NOFILE, &saved) < 0) {
        perror("fuzz_listener: setrlimit");
        exit(1);
    }
    /* Accept failed at once, or was not tried: nothing was handled. */
    FUZZ_CHECK(run->handled == handled);
}

/* fuzz_end - the server ends the connection it was handed at position `at` of served */
static void fuzz_end(FUZZ_RUN *run, int at)
{
    FUZZ_CLIENT *client = run->clients + run->served[at];

    close(client->server_fd);
    listener_closed(run->listener, client->uid);
    client->state = FUZZ_ENDED;
    client->server_fd = -1;
    memmove(run->served + at, run->served + at + 1,
            sizeof(run->served[0]) * (size_t)(run->open - at - 1));
    /* The uid's entry, and with it its episode, goes with its last connection. */
    if (--run->open == 0)
        run->uid_refusing = 0;
    /* A descriptor was freed: a paused listener watches again at once. */
    run->paused = 0;
}

/* fuzz_hang_up - a client closes its end */
static void fuzz_hang_up(FUZZ_RUN *run, unsigned arg)
{
    FUZZ_CLIENT *client;

    if (run->count == 0)
        return;
    client = run->clients + arg % (unsigned)run->count;
    if (client->fd >= 0) {
        close(client->fd);
        client->fd = -1;
    }
}

/* fuzz_log_warnings - warning lines in the log */
static int fuzz_log_warnings(void)
{
    void *log;
    size_t len;
    int count = 0;

    if (read_file(fuzz_log_path, FUZZ_LOG_MAX, &log, &len) < 0) {
        perror(fuzz_log_path);
        exit(1);
    }
    for (const char *cp = log; (cp = strstr(cp, "warning: ")) != NULL; cp++)
        count++;
    myfree(log);
    return count;
}

/* fuzz_finish - end every connection, close every client, free the listener: no descriptor left */
static void fuzz_finish(FUZZ_RUN *run, int lowest_fd)
{
    while (run->open > 0)
        fuzz_end(run, 0);
    fuzz_check_clients(run);
    for (int i = 0; i < run->count; i++)
        if (run->clients[i].fd >= 0)
            close(run->clients[i].fd);
    FUZZ_CHECK(listener_clients(run->listener) == 0);
    listener_free(run->listener);
    FUZZ_CHECK(fuzz_lowest_fd() == lowest_fd);
    FUZZ_CHECK(fuzz_log_warnings() == run->warnings);
}

/* LLVMFuzzerInitialize - the directory of the socket and the log, and the log */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *base = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    /* Short, for the socket's path. */
    if (base == NULL || *base == '\0' || strlen(base) > sizeof(fuzz_dir) - 32)
        base = "/tmp";
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz_listener.XXXXXX", base);
    if (mkdtemp(fuzz_dir) == NULL) {
        perror(fuzz_dir);
        exit(1);
    }
    snprintf(fuzz_path, sizeof(fuzz_path), "%s/socket", fuzz_dir);
    snprintf(fuzz_log_path, sizeof(fuzz_log_path), "%s/log", fuzz_dir);
    atexit(fuzz_cleanup);
    msg_init("fuzz_listener", MSG_TO_STDERR);
    if (msg_set_log("relayq", fuzz_log_path) < 0) {
        perror(fuzz_log_path);
        exit(1);
    }
    return 0;
}

/* LLVMFuzzerTestOneInput - one listener driven by a program of operations */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FUZZ_RUN run;
    VSTR *why;
    int fd, lowest_fd;

    if (size == 0)
        return 0;
    lowest_fd = fuzz_lowest_fd();
    memset(&run, 0, sizeof(run));
    run.limits.clients_max = 1 + data[0] % FUZZ_CLIENTS_CAP;
    run.limits.per_uid_max = data[0] / FUZZ_CLIENTS_CAP % FUZZ_PER_UID_CAPS;
    if (truncate(fuzz_log_path, 0) < 0) {
        perror(fuzz_log_path);
        exit(1);
    }
    why = vstr_alloc(100);
    if ((fd = unix_listen(fuzz_path, FUZZ_BACKLOG, 0600, why)) < 0) {
        fprintf(stderr, "fuzz_listener: %s\n", vstr_str(why));
        exit(1);
    }
    vstr_free(why);
    run.listener = listener_create(fd, fuzz_path, &run.limits, fuzz_accept, &run);
    listener_on_refuse(run.listener, fuzz_refuse);

    for (size_t i = 1; i < size && i <= FUZZ_OPS_MAX; i++) {
        unsigned arg = data[i] / FUZZ_OPS;

        switch (data[i] % FUZZ_OPS) {
        case FUZZ_OP_CONNECT:
            fuzz_connect(&run);
            break;
        case FUZZ_OP_CONNECT_BURST:
            for (unsigned n = 0; n <= arg % FUZZ_BURST_MAX; n++)
                fuzz_connect(&run);
            break;
        case FUZZ_OP_PASS:
            fuzz_pass(&run);
            break;
        case FUZZ_OP_STARVE:
            fuzz_starve(&run);
            break;
        case FUZZ_OP_END_OLDEST:
            if (run.open > 0)
                fuzz_end(&run, 0);
            break;
        case FUZZ_OP_END_NEWEST:
            if (run.open > 0)
                fuzz_end(&run, run.open - 1);
            break;
        case FUZZ_OP_HANG_UP:
            fuzz_hang_up(&run, arg);
            break;
        }
        fuzz_check_clients(&run);
    }
    fuzz_finish(&run, lowest_fd);
    return 0;
}
