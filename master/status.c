/*
 * status - master's public/master socket, for "relayq status"
 *
 * status_listen()
 *	listen on the socket (mode 0666: any local user may ask) and serve
 *	clients from the event loop. Each client gets "type=hello",
 *	"protocol=relayq-master-1"; "type=status" is answered with
 *	"type=status", "pid=N", "child=NAME PID STATE" per child slot and
 *	"restarts=N", and "restart=NAME N" per program; any other request
 *	gets "type=error", "reason=TEXT".
 * status_close()
 *	stop listening, remove the socket file, drop every client.
 *
 * Clients are untrusted local users. Everything they can make master
 * hold is bounded: the number of clients (STATUS_CLIENTS_MAX, and
 * STATUS_CLIENTS_PER_UID of one user, kept by the listener, listener.c),
 * the bytes of an unfinished request, the output a client does not read,
 * the requests of one connection and its idle time. A client past a
 * bound, or one that sends a malformed record, is disconnected; master
 * carries on.
 *
 * Ownership: clients and the listening descriptor belong to this module.
 * Failures: a socket that cannot be created is fatal at startup.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "event.h"
#include "ipc.h"
#include "listener.h"
#include "mail_proto.h"
#include "master.h"
#include "msg.h"
#include "mymalloc.h"
#include "sock.h"
#include "vstr.h"

#define STATUS_CLIENTS_MAX 32     /* connections served at once */
#define STATUS_CLIENTS_PER_UID 16 /* connections of one user served at once */
#define STATUS_INPUT_MAX 4096     /* bytes of a request not yet complete */
#define STATUS_OUTPUT_MAX 262144  /* bytes of replies the client has not read */
#define STATUS_REQUESTS_MAX 1000  /* requests on one connection */
#define STATUS_IDLE_MS 30000      /* silence before a client is dropped */

/* One connected client of the status socket. */
typedef struct STATUS_CLIENT {
    IPC_CHAN *chan;
    long uid;          /* the user connected (SO_PEERCRED), -1 when unknown */
    size_t pending_in; /* bytes received since the last complete request */
    int requests;      /* requests answered on this connection */
    struct STATUS_CLIENT *next;
} STATUS_CLIENT;

static LISTENER *status_listener;
static char *status_path;
static STATUS_CLIENT *status_clients;

static void status_read(int fd, int events, void *ctx);
static void status_write(int fd, int events, void *ctx);
static void status_idle(void *ctx);

/* status_drop - disconnect a client */
static void status_drop(STATUS_CLIENT *client)
{
    STATUS_CLIENT **cpp;

    for (cpp = &status_clients; *cpp && *cpp != client; cpp = &(*cpp)->next)
        /* find it */;
    if (*cpp == NULL)
        msg_panic("status_drop: unknown client");
    *cpp = client->next;
    event_disable_readwrite(ipc_chan_fd(client->chan));
    event_cancel_timer(status_idle, client);
    ipc_chan_free(client->chan);
    listener_closed(status_listener, client->uid);
    myfree(client);
}

/* status_idle - a client said nothing for too long */
static void status_idle(void *ctx)
{
    if (msg_verbose)
        msg_info("status client idle for %d s: disconnecting", STATUS_IDLE_MS / 1000);
    status_drop(ctx);
}

/* status_send - queue a record and write what the socket takes; 0 or -1 (dropped) */
static int status_send(STATUS_CLIENT *client, const IPC_REC *rec)
{
    int ret;

    ipc_chan_send(client->chan, rec);
    ret = ipc_chan_flush(client->chan);
    if (ret < 0 || ipc_chan_pending(client->chan) > STATUS_OUTPUT_MAX) {
        if (msg_verbose)
            msg_info("status client %s: disconnecting",
                     ret < 0 ? "write error" : "does not read its replies");
        status_drop(client);
        return -1;
    }
    if (ret == 0)
        event_enable_write(ipc_chan_fd(client->chan), status_write, client);
    return 0;
}

/* status_write - the socket has room for replies that did not fit */
static void status_write(int fd, int events, void *ctx)
{
    STATUS_CLIENT *client = ctx;
    int ret;

    (void)events;
    ret = ipc_chan_flush(client->chan);
    if (ret < 0)
        status_drop(client);
    else if (ret > 0)
        event_disable_write(fd);
}

/* status_reply - answer one request; 0 or -1 when the client was dropped */
static int status_reply(STATUS_CLIENT *client, const IPC_REC *req)
{
    const char *type = ipc_rec_type(req);
    VSTR *why = vstr_alloc(100);
    IPC_REC *reply;
    int ret;

    if (strcmp(type, "status") == 0 && ipc_rec_check(req, "", "", why) == 0) {
        reply = ipc_rec_create("status");
        ipc_rec_add_long(reply, "pid", (long long)getpid());
        child_status(reply);
    } else {
        if (strcmp(type, "status") != 0)
            vstr_sprintf(why, "unknown request type \"%.40s\"", type);
        reply = ipc_rec_create("error");
        ipc_rec_add(reply, "reason", vstr_str(why));
    }
    ret = status_send(client, reply);
    ipc_rec_free(reply);
    vstr_free(why);
    return ret;
}

/* status_read - take requests from a client */
static void status_read(int fd, int events, void *ctx)
{
    STATUS_CLIENT *client = ctx;
    VSTR *why;
    IPC_REC *req;
    int avail = 0, ret;

    (void)events;
    /* Count bytes before the channel buffers them, so that a request that
     * never ends cannot make master hold more than STATUS_INPUT_MAX. */
    if (ioctl(fd, FIONREAD, &avail) == 0 && avail > 0)
        client->pending_in += (size_t)avail;
    if (client->pending_in > STATUS_INPUT_MAX) {
        msg_warn("status client: request longer than %d bytes: disconnecting", STATUS_INPUT_MAX);
        status_drop(client);
        return;
    }
    if ((ret = ipc_chan_fill(client->chan)) <= 0) {
        status_drop(client);
        return;
    }
    why = vstr_alloc(100);
    while ((ret = ipc_chan_next(client->chan, &req, why)) > 0) {
        client->pending_in = 0;
        ret = ++client->requests > STATUS_REQUESTS_MAX ? -1 : status_reply(client, req);
        ipc_rec_free(req);
        if (ret < 0) {
            if (client->requests > STATUS_REQUESTS_MAX) {
                msg_warn("status client: more than %d requests: disconnecting",
                         STATUS_REQUESTS_MAX);
                status_drop(client);
            }
            vstr_free(why);
            return;
        }
    }
    if (ret < 0) {
        msg_warn("status client: %s: disconnecting", vstr_str(why));
        status_drop(client);
    } else {
        event_request_timer(status_idle, client, STATUS_IDLE_MS);
    }
    vstr_free(why);
}

/* status_accept - greet a new client; the listener keeps the count of clients */
static void status_accept(LISTENER *listener, int conn, long uid, void *ctx)
{
    STATUS_CLIENT *client = mycalloc(1, sizeof(*client));
    IPC_REC *hello;

    (void)listener;
    (void)ctx;
    client->chan = ipc_chan_create(conn);
    client->uid = uid;
    client->next = status_clients;
    status_clients = client;
    event_enable_read(conn, status_read, client);
    event_request_timer(status_idle, client, STATUS_IDLE_MS);
    hello = ipc_rec_create("hello");
    ipc_rec_add(hello, "protocol", PROTO_MASTER);
    (void)status_send(client, hello);
    ipc_rec_free(hello);
}

/* status_listen - create the socket and serve it from the event loop */
void status_listen(const char *path)
{
    static const LISTENER_LIMITS limits = {STATUS_CLIENTS_MAX, STATUS_CLIENTS_PER_UID};
    VSTR *why = vstr_alloc(100);
    int fd;

    if ((fd = unix_listen(path, 64, 0666, why)) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
    status_path = mystrdup(path);
    status_listener = listener_create(fd, path, &limits, status_accept, NULL);
}

/* status_close - stop serving and remove the socket */
void status_close(void)
{
    while (status_clients)
        status_drop(status_clients);
    if (status_listener == NULL)
        return;
    listener_free(status_listener);
    status_listener = NULL;
    if (unlink(status_path) < 0 && errno != ENOENT)
        msg_warn("remove %s: %m", status_path);
    myfree(status_path);
    status_path = NULL;
}
