/*
 * control - the client side of the daemons' public sockets and of
 *	master's pid file
 *
 * control_socket_path()
 *	the absolute name of a socket under the configured queue directory;
 *	the caller frees it.
 * control_request()
 *	connect to a socket, check the protocol the server announces, send
 *	one request record and wait for one reply record, all within
 *	timeout_ms. Returns CONTROL_OK with the reply (the caller frees it),
 *	CONTROL_DOWN when nobody listens (the daemon is not running: the
 *	reason is the bare system error), or CONTROL_ERROR when the server
 *	misbehaved or was too slow.
 * control_qmgr_open()
 *	connect to qmgr on public/control and send a request, for a command
 *	that reads a stream of replies itself: exits EX_UNAVAILABLE when
 *	qmgr does not listen or take the request; else returns the channel
 *	(the caller frees it).
 * control_qmgr()
 *	a request to qmgr on public/control for a command that cannot go on
 *	without the answer: exits EX_UNAVAILABLE when qmgr does not listen or
 *	answer, EX_NOPERM when it refuses for lack of privilege, EX_SOFTWARE
 *	for another refusal; else returns the reply (the caller frees it).
 * control_refused()
 *	when a reply from qmgr is an error: exit EX_NOPERM when it refused
 *	for lack of privilege, EX_SOFTWARE for another error; else return.
 * control_master_pid()
 *	whether master runs: its pid file exists and its flock(2) lock is
 *	held. Returns 1 with the pid (0 when the file holds none yet or any
 *	more), 0 when master does not run, -1 with a reason when the file
 *	cannot be examined.
 *
 * The configuration must be loaded. Nothing here exits; the commands
 * decide what a failure means to the user.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli.h"
#include "ipc.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"

#define CONTROL_PID_MAX 64 /* bytes of the pid file that are read */

/* control_socket_path - a socket of the configured queue directory */
char *control_socket_path(const char *socket_name)
{
    return qdir_path(var_str(queue_directory), socket_name);
}

/* control_down_reason - keep only the system error of a failed connect */
static void control_down_reason(VSTR *why, const char *path)
{
    VSTR *prefix = vstr_alloc(100);

    /* unix_connect says "connect to PATH: error"; callers name the path themselves. */
    vstr_sprintf(prefix, "connect to %s: ", path);
    if (strncmp(vstr_str(why), vstr_str(prefix), vstr_len(prefix)) == 0)
        vstr_consume(why, vstr_len(prefix));
    vstr_free(prefix);
}

/* control_send - connect and send one request; CONTROL_OK with the channel */
static int control_send(const char *socket_name, const char *protocol, const IPC_REC *request,
                        int timeout_ms, IPC_CHAN **chan, VSTR *why)
{
    char *path = control_socket_path(socket_name);
    int ret = CONTROL_ERROR;

    if ((*chan = ipc_client_open(path, protocol, timeout_ms, why)) == NULL) {
        /*
         * A failed connect means nobody listens: the daemon is down, an
         * expected state that callers word differently from a misbehaving
         * server.
         */
        if (strncmp(vstr_str(why), "connect to ", 11) == 0) {
            control_down_reason(why, path);
            ret = CONTROL_DOWN;
        }
    } else if (ipc_chan_send_wait(*chan, request, timeout_ms, why) == 0) {
        ret = CONTROL_OK;
    } else {
        ipc_chan_free(*chan);
        *chan = NULL;
    }
    myfree(path);
    return ret;
}

/* control_request - one request, one reply */
int control_request(const char *socket_name, const char *protocol, const IPC_REC *request,
                    int timeout_ms, IPC_REC **reply, VSTR *why)
{
    IPC_CHAN *chan;
    int ret;

    *reply = NULL;
    if ((ret = control_send(socket_name, protocol, request, timeout_ms, &chan, why)) != CONTROL_OK)
        return ret;
    if ((*reply = ipc_chan_recv_wait(chan, timeout_ms, why)) == NULL)
        ret = CONTROL_ERROR;
    ipc_chan_free(chan);
    return ret;
}

/* control_qmgr_open - send a request to qmgr; exit when it is down or does not take it */
IPC_CHAN *control_qmgr_open(const IPC_REC *request, int timeout_ms)
{
    VSTR *why = vstr_alloc(100);
    IPC_CHAN *chan = NULL;

    switch (control_send(SOCK_CONTROL, PROTO_CONTROL, request, timeout_ms, &chan, why)) {
    case CONTROL_OK:
        break;
    case CONTROL_DOWN:
        msg_fatal_status(EX_UNAVAILABLE, "the mail system is down (cannot connect to %s: %s)",
                         control_socket_path(SOCK_CONTROL), vstr_str(why));
    default:
        msg_fatal_status(EX_UNAVAILABLE, "no answer from qmgr: %s", vstr_str(why));
    }
    vstr_free(why);
    return chan;
}

/* control_qmgr - ask qmgr; exit with the right code when it is down, refuses or errs */
IPC_REC *control_qmgr(const IPC_REC *request, const char *what, int timeout_ms)
{
    VSTR *why = vstr_alloc(100);
    IPC_CHAN *chan = control_qmgr_open(request, timeout_ms);
    IPC_REC *reply;

    if ((reply = ipc_chan_recv_wait(chan, timeout_ms, why)) == NULL)
        msg_fatal_status(EX_UNAVAILABLE, "no answer from qmgr: %s", vstr_str(why));
    ipc_chan_free(chan);
    control_refused(reply, what);
    vstr_free(why);
    return reply;
}

/* control_refused - exit when qmgr's reply is an error: EX_NOPERM for a refusal */
void control_refused(const IPC_REC *reply, const char *what)
{
    const char *reason;

    if (strcmp(ipc_rec_type(reply), "error") != 0)
        return;
    if ((reason = ipc_rec_get(reply, "reason")) == NULL)
        reason = "(no reason given)";
    msg_fatal_status(strncmp(reason, "permission denied", 17) == 0 ? EX_NOPERM : EX_SOFTWARE,
                     "qmgr refused the %s: %s", what, relayq_printable(reason, 500));
}

/* control_master_pid - is master running, and as which process */
int control_master_pid(pid_t *pid, VSTR *why)
{
    char *path = qdir_path(var_str(queue_directory), MASTER_LOCK_FILE);
    char buf[CONTROL_PID_MAX + 1];
    ssize_t got;
    long num;
    char *end;
    int fd;
    int ret = -1;

    *pid = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        if (errno == ENOENT) {
            ret = 0;
        } else {
            vstr_sprintf(why, "open %s: %s", path, strerror(errno));
        }
        myfree(path);
        return ret;
    }
    /* A lock we can take is a lock nobody holds: master is not running. */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        close(fd);
        myfree(path);
        return 0;
    }
    if (errno != EWOULDBLOCK) {
        vstr_sprintf(why, "lock %s: %s", path, strerror(errno));
    } else if ((got = read(fd, buf, CONTROL_PID_MAX)) < 0) {
        vstr_sprintf(why, "read %s: %s", path, strerror(errno));
    } else {
        buf[got] = '\0';
        errno = 0;
        num = strtol(buf, &end, 10);
        /* kill() with 0, 1 or a negative pid would signal far more than master. */
        /*
         * Master locks before it writes its pid, and may empty the file as
         * it exits: the lock alone says it runs. kill() with 0, 1 or a
         * negative pid would signal far more than master: 0 means unknown.
         */
        if (end == buf || (*end != '\0' && *end != '\n') || errno != 0 || num <= 1 || num > INT_MAX)
            *pid = 0;
        else
            *pid = (pid_t)num;
        ret = 1;
    }
    close(fd);
    myfree(path);
    return ret;
}
