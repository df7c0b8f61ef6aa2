/*
 * unit_listener - tests of the bounded listener, against the real event loop
 *
 * Clients connect from this process to listeners on sockets in a
 * temporary directory; the event loop runs until what a case expects
 * holds, for a bounded number of passes (no sleeps). A table of caps:
 * under the global cap every connection is handed out; past it, or past
 * the per-uid cap (every client here has this process's uid), the server
 * closes the connection at once (the client reads end of file), with one
 * warning per episode; listener_closed() lets the next one in. Then: at
 * most 64 connections taken per pass; two listeners in one process keep
 * their counts apart; and with RLIMIT_NOFILE lowered so that accept fails
 * with EMFILE, the listener stops watching (the loop waits instead of
 * spinning), takes the waiting connection as soon as listener_closed()
 * frees a descriptor, and after its timer when a descriptor was freed
 * behind its back.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "event.h"
#include "iostuff.h"
#include "listener.h"
#include "msg.h"
#include "sock.h"
#include "tap.h"
#include "vstr.h"

#define SERVER_CONNS_MAX 80  /* connections one test server holds */
#define DRIVE_PASSES_MAX 200 /* passes of the loop before a wait is given up */
#define DRIVE_PASS_MS 50     /* the longest wait of one pass */
#define FLOOD_CONNECTS 70    /* more than a listener takes in one pass */
#define FLOOD_PER_PASS 64    /* LISTENER_ACCEPTS_PER_PASS */
#define IDLE_WINDOW_MS 300   /* a window in which a spinning loop makes thousands of passes */
#define IDLE_PASSES_MAX 20   /* ... and a waiting one about IDLE_WINDOW_MS / DRIVE_PASS_MS */

/* A test server: a listener and the connections it handed out. */
typedef struct SERVER {
    LISTENER *listener;
    char path[128];
    int fds[SERVER_CONNS_MAX]; /* in the order accepted; -1 once ended */
    long uids[SERVER_CONNS_MAX];
    int accepted;
    int refused;
} SERVER;

static char tmpdir[80];
static char log_path[128];
static int log_fd = -1; /* the log, opened for reading before descriptors run short */

/* The caps, and what a number of connections in a row must meet. */
static const struct {
    const char *what;
    int clients_max;
    int per_uid_max;
    int connects;
    int accepted;
    const char *warning; /* logged once for all the refusals, NULL when none */
} cap_cases[] = {
    {"under the global cap", 4, 0, 4, 4, NULL},
    {"past the global cap", 3, 0, 5, 3, "3 clients: refusing connections until some leave"},
    {"past the per-uid cap, under the global one", 8, 2, 5, 2,
     "has 2 connections: refusing more of its connections"},
    {"past the global cap, under the per-uid one", 2, 4, 4, 2,
     "2 clients: refusing connections until some leave"},
};

/* server_accept - keep a connection the listener handed out */
static void server_accept(LISTENER *listener, int fd, long uid, void *ctx)
{
    SERVER *server = ctx;

    (void)listener;
    if (server->accepted >= SERVER_CONNS_MAX)
        msg_panic("%s: more than %d connections", server->path, SERVER_CONNS_MAX);
    server->fds[server->accepted] = fd;
    server->uids[server->accepted] = uid;
    server->accepted++;
}

/* server_refuse - count a connection refused at a cap */
static void server_refuse(LISTENER *listener, long uid, void *ctx)
{
    SERVER *server = ctx;

    (void)listener;
    (void)uid;
    server->refused++;
}

/* server_open - a listener on tmpdir/name with the given caps */
static void server_open(SERVER *server, const char *name, int clients_max, int per_uid_max)
{
    LISTENER_LIMITS limits = {clients_max, per_uid_max};
    VSTR *why = vstr_alloc(100);
    int fd;

    memset(server, 0, sizeof(*server));
    snprintf(server->path, sizeof(server->path), "%s/%s", tmpdir, name);
    if ((fd = unix_listen(server->path, 128, 0600, why)) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
    server->listener = listener_create(fd, server->path, &limits, server_accept, server);
    listener_on_refuse(server->listener, server_refuse);
}

/* server_end - the server ends its connection number i */
static void server_end(SERVER *server, int i)
{
    close(server->fds[i]);
    listener_closed(server->listener, server->uids[i]);
    server->fds[i] = -1;
}

/* server_close - end every connection, free the listener, remove the socket */
static void server_close(SERVER *server)
{
    for (int i = 0; i < server->accepted; i++)
        if (server->fds[i] >= 0)
            server_end(server, i);
    listener_free(server->listener);
    unlink(server->path);
}

/* client_connect - connect to a test server's socket */
static int client_connect(const SERVER *server)
{
    VSTR *why = vstr_alloc(100);
    int fd;

    if ((fd = unix_connect(server->path, why)) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
    return fd;
}

/* client_closes - close the clients connected, fds[0..count) */
static void client_closes(const int *fds, int count)
{
    for (int i = 0; i < count; i++)
        close(fds[i]);
}

/* client_hung_up - whether the server closed a client's connection (end of file) */
static int client_hung_up(int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    char byte;

    return poll(&pfd, 1, 0) == 1 && read(fd, &byte, 1) == 0;
}

/* drive_until_handled - run the loop until a server accepted or refused `handled` connections */
static int drive_until_handled(const SERVER *server, int handled)
{
    for (int pass = 0; pass < DRIVE_PASSES_MAX; pass++) {
        if (server->accepted + server->refused >= handled)
            return 1;
        event_loop(DRIVE_PASS_MS);
    }
    return server->accepted + server->refused >= handled;
}

/* drive_for_ms - run the loop for a while; the passes it made */
static int drive_for_ms(long long window_ms)
{
    long long start = now_ms();
    int passes = 0;

    while (now_ms() - start < window_ms) {
        event_loop(DRIVE_PASS_MS);
        passes++;
    }
    return passes;
}

/* log_count - lines of the log that contain both texts */
static int log_count(const char *text1, const char *text2)
{
    VSTR *log = vstr_alloc(4096);
    char buf[4096];
    off_t offset = 0;
    ssize_t n;
    int count = 0;

    /* pread on a descriptor opened early: this runs with no descriptor to spare. */
    while ((n = pread(log_fd, buf, sizeof(buf), offset)) > 0) {
        vstr_append(log, buf, (size_t)n);
        offset += n;
    }
    for (char *line = vstr_str(log), *end; *line; line = end + 1) {
        if ((end = strchr(line, '\n')) == NULL)
            break;
        *end = '\0';
        if (strstr(line, text1) != NULL && strstr(line, text2) != NULL)
            count++;
    }
    vstr_free(log);
    return count;
}

/* run_cap_case - connections in a row against one row of cap_cases */
static void run_cap_case(size_t row)
{
    int expect = cap_cases[row].accepted, connects = cap_cases[row].connects;
    const char *what = cap_cases[row].what, *warning = cap_cases[row].warning;
    int clients[SERVER_CONNS_MAX], ok;
    char name[32];
    SERVER server;

    snprintf(name, sizeof(name), "cap%zu", row);
    server_open(&server, name, cap_cases[row].clients_max, cap_cases[row].per_uid_max);
    for (int i = 0; i < connects; i++)
        clients[i] = client_connect(&server);
    ok = drive_until_handled(&server, connects);
    tap_ok(ok && server.accepted == expect && server.refused == connects - expect &&
               listener_clients(server.listener) == expect,
           "%s: %d of %d connections handed out, the rest refused", what, server.accepted,
           connects);
    ok = 1;
    for (int i = 0; i < server.accepted; i++)
        ok &= server.uids[i] == (long)getuid();
    tap_ok(ok, "%s: each connection comes with the client's uid", what);
    ok = 1;
    for (int i = 0; i < connects; i++)
        ok &= client_hung_up(clients[i]) == (i >= expect);
    tap_ok(ok, "%s: the refused clients read end of file, the others do not", what);
    if (warning)
        tap_ok(log_count(server.path, warning) == 1, "%s: one warning for %d refusals", what,
               connects - expect);

    /* A connection that ends makes room for one more. */
    server_end(&server, 0);
    clients[connects] = client_connect(&server);
    tap_ok(drive_until_handled(&server, connects + 1) && server.accepted == expect + 1 &&
               listener_clients(server.listener) == expect,
           "%s: listener_closed() lets the next connection in", what);
    if (warning) {
        /* That accept ended the episode: the next refusal is news. */
        clients[connects + 1] = client_connect(&server);
        tap_ok(drive_until_handled(&server, connects + 2) &&
                   server.refused == connects - expect + 1 && log_count(server.path, warning) == 2,
               "%s: a refusal after an accepted connection is warned again", what);
        close(clients[connects + 1]);
    }
    client_closes(clients, connects + 1);
    server_close(&server);
}

/* run_flood - a listener takes at most FLOOD_PER_PASS connections in one pass */
static void run_flood(void)
{
    int clients[FLOOD_CONNECTS];
    SERVER server;

    server_open(&server, "flood", 2 * FLOOD_CONNECTS, 0);
    for (int i = 0; i < FLOOD_CONNECTS; i++)
        clients[i] = client_connect(&server);
    event_loop(0);
    tap_ok(server.accepted == FLOOD_PER_PASS, "a flood of %d connects: %d taken in one pass",
           FLOOD_CONNECTS, server.accepted);
    tap_ok(drive_until_handled(&server, FLOOD_CONNECTS) && server.accepted == FLOOD_CONNECTS,
           "... and the rest in the next");
    client_closes(clients, FLOOD_CONNECTS);
    server_close(&server);
}

/* run_two_listeners - two listeners in one process share no count */
static void run_two_listeners(void)
{
    int clients[5];
    SERVER one, two;

    server_open(&one, "one", 2, 0);
    server_open(&two, "two", 2, 0);
    clients[0] = client_connect(&one);
    clients[1] = client_connect(&one);
    clients[2] = client_connect(&two);
    clients[3] = client_connect(&one);
    clients[4] = client_connect(&two);
    tap_ok(drive_until_handled(&one, 3) && drive_until_handled(&two, 2) && one.accepted == 2 &&
               one.refused == 1 && two.accepted == 2 && two.refused == 0,
           "two listeners: the full one refuses while the other still accepts");
    server_end(&two, 0);
    tap_ok(listener_clients(one.listener) == 2 && listener_clients(two.listener) == 1,
           "two listeners: a connection that ends on one does not count on the other");
    tap_ok(log_count(one.path, "refusing") == 1 && log_count(two.path, "refusing") == 0,
           "two listeners: only the full one warns");
    client_closes(clients, 5);
    server_close(&one);
    server_close(&two);
}

/* open_spare - a descriptor to free later, so that one becomes available */
static int open_spare(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        msg_fatal("open /dev/null: %m");
    return fd;
}

/* run_emfile - out of descriptors, the listener pauses instead of spinning */
static void run_emfile(void)
{
    static const char paused[] = "accept: Too many open files: pausing new connections";
    struct rlimit saved, low;
    int clients[3], spare1, spare2, lowest, passes;
    SERVER server;

    server_open(&server, "emfile", 8, 0);
    clients[0] = client_connect(&server);
    tap_ok(drive_until_handled(&server, 1) && server.accepted == 1,
           "descriptors: the first connection is handed out");
    clients[1] = client_connect(&server);
    spare1 = open_spare();
    spare2 = open_spare();
    /* The lowest free descriptor becomes the limit: accept gets EMFILE. */
    lowest = open_spare();
    close(lowest);
    if (getrlimit(RLIMIT_NOFILE, &saved) < 0)
        msg_fatal("getrlimit: %m");
    low = saved;
    low.rlim_cur = (rlim_t)lowest;
    if (setrlimit(RLIMIT_NOFILE, &low) < 0)
        msg_fatal("setrlimit: %m");

    passes = drive_for_ms(IDLE_WINDOW_MS);
    tap_ok(server.accepted == 1 && passes <= IDLE_PASSES_MAX && log_count(server.path, paused) == 1,
           "descriptors short: the listener stops watching, warned once, and the loop waits "
           "(%d passes in %d ms)",
           passes, IDLE_WINDOW_MS);

    server_end(&server, 0);
    event_loop(0);
    tap_ok(server.accepted == 2,
           "listener_closed() resumes at once: the waiting connection is taken in the next pass");

    close(spare1);
    clients[2] = client_connect(&server);
    passes = drive_for_ms(IDLE_WINDOW_MS);
    tap_ok(server.accepted == 2 && passes <= IDLE_PASSES_MAX && log_count(server.path, paused) == 2,
           "short again after an accepted connection: paused, and warned again");
    close(spare2);
    tap_ok(drive_until_handled(&server, 3) && server.accepted == 3,
           "after its timer the listener takes the connection that a descriptor freed behind its "
           "back let in");

    if (setrlimit(RLIMIT_NOFILE, &saved) < 0)
        msg_fatal("setrlimit: %m");
    client_closes(clients, 3);
    server_close(&server);
}

int main(void)
{
    const char *base = getenv("TMPDIR");

    /* Short, for socket paths; never the source tree (make distcheck). */
    if (base == NULL || *base == '\0' || strlen(base) > sizeof(tmpdir) - 32)
        base = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%s/unit_listener.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        perror(tmpdir);
        return 2;
    }
    snprintf(log_path, sizeof(log_path), "%s/log", tmpdir);
    msg_init("unit_listener", MSG_TO_STDERR);
    if (msg_set_log("relayq", log_path) < 0 || (log_fd = open(log_path, O_RDONLY)) < 0) {
        perror(log_path);
        return 2;
    }

    for (size_t row = 0; row < sizeof(cap_cases) / sizeof(cap_cases[0]); row++)
        run_cap_case(row);
    run_flood();
    run_two_listeners();
    run_emfile();

    close(log_fd);
    unlink(log_path);
    if (rmdir(tmpdir) < 0)
        tap_diag("cannot remove %s: %s", tmpdir, strerror(errno));
    return tap_done();
}
