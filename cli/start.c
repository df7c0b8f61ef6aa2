/*
 * start - run, stop, reload and ask master
 *
 * start_main()
 *	"relayq start [-c FILE] [-f]": check the configuration (as "relayq
 *	check"), refuse when master already runs, then run master. With -f
 *	master replaces this process and stays in the foreground (systemd);
 *	without, master daemonizes itself and this process waits, bounded,
 *	until master answers on its status socket, so that "start" returning
 *	0 means the mail system is up: master made the submission sockets
 *	(public/pickup, smtpd_listen) before it answers, so a client of
 *	either waits for pickup rather than be refused; relayq commands that
 *	ask qmgr (stats, mailq's shared limits) may find it still starting.
 * start_stop_main()
 *	"relayq stop": SIGTERM to master, then wait, bounded, until master
 *	has released its pid file lock (its children have finished).
 * start_reload_main()
 *	"relayq reload": SIGHUP to master, which re-reads the configuration.
 * start_status_main()
 *	"relayq status": whether master runs, and its children, as master
 *	reports them. Exit 0 when running, 1 when not.
 *
 * Only root, or the user who owns the queue directory (an installation
 * run without root), may start, stop or reload: anyone else gets
 * EX_NOPERM with the reason, before anything is tried.
 *
 * Whether master runs is decided by the lock on pid/master.pid, never by
 * the pid alone: a stale file of a crashed master holds no lock.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "cli.h"
#include "iostuff.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

#define START_WAIT_MS 15000 /* master must answer within this after start */
#define STOP_WAIT_MS 60000  /* master must release its lock within this after SIGTERM */
#define POLL_MS 50          /* between two looks at master */
#define STATUS_TIMEOUT_MS 1000
#define PID_WAIT_MS 2000 /* a locked pid file must get its pid within this */

/* start_sleep_ms - pause between polls */
static void start_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        /* continue */;
}

/* start_options - the "[-c FILE]" of the commands that take nothing else */
static const char *start_options(int argc, char **argv, const char *command)
{
    const char *path = NULL;
    int ch;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:")) != -1) {
        if (ch != 'c')
            relayq_usage(command, NULL);
        path = optarg;
    }
    if (optind != argc)
        relayq_usage(command, NULL);
    return path;
}

/*
 * start_may_control - only root, or the user the queue belongs to, starts,
 * stops and reloads the mail system; anyone else is told so, EX_NOPERM
 */
static void start_may_control(const char *command)
{
    const char *dir = var_str(queue_directory);
    struct stat st;

    /* A queue not made yet will be this user's own (an unprivileged installation). */
    if (geteuid() == 0 || stat(dir, &st) < 0 || st.st_uid == geteuid())
        return;
    msg_fatal_status(EX_NOPERM,
                     "%s: permission denied: the mail system of %s belongs to uid %ld; "
                     "run \"relayq %s\" as root",
                     command, dir, (long)st.st_uid, command);
}

/* start_running_pid - master's pid, or exit 1 when it does not run */
static pid_t start_running_pid(void)
{
    VSTR *why = vstr_alloc(100);
    pid_t pid = 0;

    long long deadline = now_ms() + PID_WAIT_MS;

    for (;;) {
        switch (control_master_pid(&pid, why)) {
        case 0:
            msg_fatal("the mail system is not running");
        case 1:
            break;
        default:
            msg_fatal("cannot tell whether the mail system runs: %s", vstr_str(why));
        }
        if (pid > 1)
            break;
        /* Locked but not yet written: master is starting. */
        if (now_ms() >= deadline)
            msg_fatal_status(EX_UNAVAILABLE, "master holds %s but wrote no process id in it",
                             MASTER_LOCK_FILE);
        start_sleep_ms(POLL_MS);
    }
    vstr_free(why);
    return pid;
}

/* start_ask_status - master's status record, or NULL with a reason */
static IPC_REC *start_ask_status(VSTR *why)
{
    IPC_REC *req = ipc_rec_create("status");
    IPC_REC *reply = NULL;

    if (control_request(SOCK_MASTER, PROTO_MASTER, req, STATUS_TIMEOUT_MS, &reply, why) ==
            CONTROL_OK &&
        strcmp(ipc_rec_type(reply), "status") != 0) {
        vstr_sprintf(why, "unexpected reply of type \"%.40s\"", ipc_rec_type(reply));
        ipc_rec_free(reply);
        reply = NULL;
    }
    ipc_rec_free(req);
    return reply;
}

/* start_master_gone - whether a daemonized master has already died */
static int start_master_gone(void)
{
    VSTR *why = vstr_alloc(100);
    pid_t pid;
    int gone;

    /* Not yet locked is not gone: master may still be setting up. */
    gone = control_master_pid(&pid, why) == 1 && pid > 1 && kill(pid, 0) < 0 && errno == ESRCH;
    vstr_free(why);
    return gone;
}

/* start_main - "relayq start [-c FILE] [-f]" */
int start_main(int argc, char **argv)
{
    const char *path = NULL;
    char *config;
    char *master;
    char *args[5];
    VSTR *why;
    IPC_REC *reply;
    pid_t pid = 0;
    pid_t child;
    long long deadline;
    int foreground = 0;
    int child_done = 0;
    int status;
    int ch;
    int fd;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:f")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        default:
            relayq_usage("start", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("start", NULL);
    if (check_run(path) > 0)
        exit(EX_CONFIG);
    start_may_control("start");
    why = vstr_alloc(100);
    if (control_master_pid(&pid, why) == 1) {
        if (pid > 1)
            msg_fatal("the mail system is already running (pid %ld)", (long)pid);
        msg_fatal("the mail system is already running");
    }
    /* Master may chdir(); hand it a name that means the same file from anywhere. */
    if ((config = realpath(config_path(var_config), NULL)) == NULL)
        config = mystrdup(config_path(var_config));
    vstr_sprintf(why, "%s/master", var_str(daemon_directory));
    master = mystrdup(vstr_str(why));
    args[0] = "master";
    args[1] = foreground ? "-f" : "-c";
    args[2] = foreground ? "-c" : config;
    args[3] = foreground ? config : NULL;
    args[4] = NULL;
    fflush(stdout);
    if (foreground) {
        execv(master, args);
        msg_fatal_status(EX_OSERR, "cannot execute %s: %s", master, strerror(errno));
    }

    if ((child = fork()) < 0)
        msg_fatal_status(EX_OSERR, "fork: %s", strerror(errno));
    if (child == 0) {
        /* Master has no use for our terminal input; keep stderr for its early errors. */
        if ((fd = open("/dev/null", O_RDONLY)) >= 0 && fd != 0) {
            dup2(fd, 0);
            close(fd);
        }
        execv(master, args);
        msg_fatal_status(EX_OSERR, "cannot execute %s: %s", master, strerror(errno));
    }
    deadline = now_ms() + START_WAIT_MS;
    for (;;) {
        if (!child_done && waitpid(child, &status, WNOHANG) == child) {
            child_done = 1;
            /* The parent half of a daemonizing master exits 0; anything else is a failure. */
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                msg_fatal_status(EX_SOFTWARE, "master did not start: see the log");
        }
        if ((reply = start_ask_status(why)) != NULL) {
            ipc_rec_free(reply);
            break;
        }
        if (child_done && start_master_gone())
            msg_fatal_status(EX_SOFTWARE, "master did not start: see the log");
        if (now_ms() >= deadline)
            msg_fatal_status(EX_UNAVAILABLE, "master did not start: see the log");
        start_sleep_ms(POLL_MS);
    }
    vstr_free(why);
    myfree(master);
    myfree(config);
    return 0;
}

/* start_stop_main - "relayq stop [-c FILE]" */
int start_stop_main(int argc, char **argv)
{
    VSTR *why;
    pid_t pid;
    pid_t now_pid;
    long long deadline;
    int state;

    relayq_load_config(start_options(argc, argv, "stop"));
    start_may_control("stop");
    pid = start_running_pid();
    if (kill(pid, SIGTERM) < 0)
        msg_fatal("cannot signal master (pid %ld): %s", (long)pid, strerror(errno));
    why = vstr_alloc(100);
    deadline = now_ms() + STOP_WAIT_MS;
    /* Master lets go of its lock last, after its children have finished. */
    while ((state = control_master_pid(&now_pid, why)) != 0) {
        if (state < 0)
            msg_fatal("cannot tell whether the mail system stopped: %s", vstr_str(why));
        if (now_ms() >= deadline)
            msg_fatal_status(EX_UNAVAILABLE,
                             "the mail system did not stop within %d seconds "
                             "(pid %ld)",
                             STOP_WAIT_MS / 1000, (long)pid);
        start_sleep_ms(POLL_MS);
    }
    vstr_free(why);
    return 0;
}

/* start_reload_main - "relayq reload [-c FILE]" */
int start_reload_main(int argc, char **argv)
{
    pid_t pid;

    relayq_load_config(start_options(argc, argv, "reload"));
    start_may_control("reload");
    pid = start_running_pid();
    if (kill(pid, SIGHUP) < 0)
        msg_fatal("cannot signal master (pid %ld): %s", (long)pid, strerror(errno));
    return 0;
}

/* start_print_child - one "child=NAME PID STATE" attribute, for humans */
static void start_print_child(const char *value)
{
    char *shown = relayq_printable(value, 200);
    char *cp = shown;
    size_t name_len = strcspn(cp, " ");
    size_t pid_len;

    if (cp[name_len] != ' ') {
        printf("  %s\n", shown);
    } else {
        cp += name_len + 1;
        pid_len = strcspn(cp, " ");
        /* A child waiting to be restarted has no process: pid 0. */
        if (pid_len == 1 && cp[0] == '0')
            printf("  %.*s%s\n", (int)name_len, shown, cp + pid_len);
        else
            printf("  %.*s pid %.*s%s\n", (int)name_len, shown, (int)pid_len, cp, cp + pid_len);
    }
    myfree(shown);
}

/* start_status_main - "relayq status [-c FILE]" */
int start_status_main(int argc, char **argv)
{
    VSTR *why = vstr_alloc(100);
    IPC_REC *reply;
    const char *restarts;
    pid_t pid;
    char *shown;

    relayq_load_config(start_options(argc, argv, "status"));
    switch (control_master_pid(&pid, why)) {
    case 0:
        printf("relayq: the mail system is not running\n");
        return 1;
    case 1:
        break;
    default:
        msg_fatal("cannot tell whether the mail system runs: %s", vstr_str(why));
    }
    if ((reply = start_ask_status(why)) == NULL) {
        if (pid > 1)
            printf("relayq: the mail system is running: PID %ld\n", (long)pid);
        else
            printf("relayq: the mail system is running\n");
        fflush(stdout);
        msg_warn("master does not answer on %s: %s", SOCK_MASTER, vstr_str(why));
        vstr_free(why);
        return 0;
    }
    if (ipc_rec_check(reply, "pid", "child*,restarts,restart*", why) < 0)
        msg_fatal_status(EX_PROTOCOL, "bad status reply from master: %s", vstr_str(why));
    shown = relayq_printable(ipc_rec_get(reply, "pid"), 20);
    printf("relayq: the mail system is running: PID %s\n", shown);
    myfree(shown);
    for (size_t i = 1; i < reply->count; i++)
        if (strcmp(reply->attrs[i].name, "child") == 0)
            start_print_child(reply->attrs[i].value);
    if ((restarts = ipc_rec_get(reply, "restarts")) != NULL && strcmp(restarts, "0") != 0) {
        shown = relayq_printable(restarts, 20);
        printf("  children restarted: %s\n", shown);
        myfree(shown);
    }
    ipc_rec_free(reply);
    vstr_free(why);
    return 0;
}
