/*
 * list - the queue listing for users who cannot read the queue themselves
 *
 * list_helpers_create(), list_helpers_free()
 *	the listing helpers of one qmgr: the configuration file they are
 *	started with, how many run, and the commands waiting for one. A
 *	SIGCHLD handler reaps them.
 * list_request()
 *	answer a `list` request on public/control (json=0|1): when the peer
 *	is root, mail_owner or a user authorized_mailq_users names, the
 *	connection waits for a listing helper; otherwise a "permission
 *	denied" error. The request must be the last thing the command sends
 *	and qmgr must owe it nothing: from here the connection is the
 *	helper's. Returns 0, or -1 when the request is not understood (the
 *	caller closes the connection).
 * list_cancel()
 *	the peer is gone: it no longer waits for a helper.
 *
 * A listing is work in proportion to the queue (seconds at a million
 * messages), so qmgr does none of it: it starts showq (daemon_directory,
 * "showq -c CONFIG text|json") with the command's connection as the
 * helper's standard input and closes its own copy. showq lists the queue
 * as mail_owner, at a lower priority, and sends the records qmgr used to
 * send (`list` chunks, then `end`, or `error`). At most LIST_HELPERS_MAX
 * run at once; further requests wait in order, each still a connection
 * of public/control (its per-user and global caps, its idle timeout).
 * A helper that cannot be started is an error reply; one that ends badly
 * is logged. qmgr's own work per listing is one posix_spawn().
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "privs.h"
#include "qmgr.h"

#define LIST_HELPERS_MAX 4 /* showq processes at once */

extern char **environ;

/* The listing helpers of one qmgr. */
struct LIST_HELPERS {
    char *config_path;
    int running;
    QMGR_PEER *wait_head, *wait_tail; /* commands waiting for a helper, by peer->list_next */
};

/* list_error - queue an error reply */
static int list_error(QMGR_PEER *peer, const char *reason)
{
    IPC_REC *reply = ipc_rec_create("error");

    ipc_rec_add(reply, "reason", reason);
    ipc_chan_send(peer->chan, reply);
    ipc_rec_free(reply);
    return 0;
}

/* list_allowed - root, mail_owner, or a user authorized_mailq_users names */
static int list_allowed(const QMGR_PEER *peer)
{
    VSTR *why;
    int allowed;

    if (control_privileged(peer))
        return 1;
    if (peer->uid < 0)
        return 0;
    why = vstr_alloc(100);
    allowed = privs_user_listed((uid_t)peer->uid, var_str(authorized_mailq_users), why);
    if (*vstr_str(why))
        msg_warn("%s", vstr_str(why));
    vstr_free(why);
    return allowed;
}

/* list_spawn - start a helper on the peer's connection; its pid, or -1 with errno */
static pid_t list_spawn(LIST_HELPERS *helpers, QMGR_PEER *peer, LIST_FORMAT format)
{
    VSTR *path = vstr_alloc(256);
    posix_spawn_file_actions_t actions;
    char *argv[6];
    int argc = 0, err;
    pid_t pid = -1;

    vstr_sprintf(path, "%s/showq", var_str(daemon_directory));
    argv[argc++] = "showq";
    argv[argc++] = "-c";
    argv[argc++] = helpers->config_path;
    if (msg_verbose)
        argv[argc++] = "-v";
    argv[argc++] = format == LIST_JSON ? "json" : "text";
    argv[argc] = NULL;
    if ((err = posix_spawn_file_actions_init(&actions)) == 0) {
        /* dup2 onto 0 clears close-on-exec for the copy the helper gets. */
        if ((err = posix_spawn_file_actions_adddup2(&actions, ipc_chan_fd(peer->chan), 0)) == 0)
            err = posix_spawn(&pid, vstr_str(path), &actions, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
    }
    vstr_free(path);
    errno = err;
    return err == 0 ? pid : -1;
}

/* list_start - hand waiting commands to helpers while there is room */
static void list_start(void *ctx)
{
    LIST_HELPERS *helpers = ctx;
    QMGR_PEER *peer;
    VSTR *why;

    while (helpers->running < LIST_HELPERS_MAX && (peer = helpers->wait_head) != NULL) {
        LIST_FORMAT format = peer->list_format;

        list_cancel(helpers, peer);
        if (list_spawn(helpers, peer, format) < 0) {
            why = vstr_alloc(100);
            vstr_sprintf(why, "cannot start the listing helper %s/showq: %s",
                         var_str(daemon_directory), strerror(errno));
            msg_warn("%s", vstr_str(why));
            list_error(peer, vstr_str(why));
            vstr_free(why);
            continue;
        }
        helpers->running++;
        /* The helper has the connection now; qmgr's copy goes. */
        qmgr_peer_close(peer);
    }
}

/* list_reap - SIGCHLD: helpers that ended make room for waiting commands */
static void list_reap(int sig, void *ctx)
{
    LIST_HELPERS *helpers = ctx;
    int status;
    pid_t pid;

    (void)sig;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        helpers->running--;
        if (WIFSIGNALED(status))
            msg_warn("listing helper pid %ld killed by signal %d", (long)pid, WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            msg_warn("listing helper pid %ld exited with status %d", (long)pid,
                     WEXITSTATUS(status));
    }
    list_start(helpers);
}

/* list_helpers_create - no helper running, none waiting */
LIST_HELPERS *list_helpers_create(const char *config_path)
{
    LIST_HELPERS *helpers = mycalloc(1, sizeof(*helpers));

    helpers->config_path = mystrdup(config_path);
    event_on_signal(SIGCHLD, list_reap, helpers);
    return helpers;
}

/* list_helpers_free - release the record of them (helpers still running finish alone) */
void list_helpers_free(LIST_HELPERS *helpers)
{
    event_cancel_timer(list_start, helpers);
    myfree(helpers->config_path);
    myfree(helpers);
}

/* list_cancel - the peer no longer waits for a helper */
void list_cancel(LIST_HELPERS *helpers, QMGR_PEER *peer)
{
    QMGR_PEER *prev = NULL, *p = helpers->wait_head;

    if (peer->list_format == LIST_NONE)
        return;
    for (; p != peer; prev = p, p = p->list_next)
        if (p == NULL)
            msg_panic("list_cancel: the peer is not waiting");
    if (prev)
        prev->list_next = peer->list_next;
    else
        helpers->wait_head = peer->list_next;
    if (helpers->wait_tail == peer)
        helpers->wait_tail = prev;
    peer->list_next = NULL;
    peer->list_format = LIST_NONE;
}

/* list_request - answer a list request */
int list_request(LIST_HELPERS *helpers, QMGR_PEER *peer, const IPC_REC *rec)
{
    VSTR *why = vstr_alloc(100);
    long long json;

    if (ipc_rec_check(rec, "json", "", why) < 0 ||
        ipc_rec_get_long(rec, "json", 0, 1, &json, why) < 0) {
        msg_warn("list request from uid %ld: %s", peer->uid, vstr_str(why));
        vstr_free(why);
        return -1;
    }
    vstr_free(why);
    if (!list_allowed(peer)) {
        msg_warn("refused list from uid %ld: not in authorized_mailq_users", peer->uid);
        return list_error(peer, "permission denied: not in authorized_mailq_users");
    }
    if (ipc_chan_buffered(peer->chan) > 0 || ipc_chan_pending(peer->chan) > 0)
        return list_error(peer, "a listing must be the last request on its connection");
    peer->list_format = json ? LIST_JSON : LIST_TEXT;
    peer->list_next = NULL;
    if (helpers->wait_tail)
        helpers->wait_tail->list_next = peer;
    else
        helpers->wait_head = peer;
    helpers->wait_tail = peer;
    /* After this pass: the peer's read handler is still using it now. */
    event_request_timer(list_start, helpers, 0);
    return 0;
}
