/*
 * child - master's child slots: spawn, reap, restart, throttle
 *
 * child_create()
 *	add an empty slot for the program NAME of daemon_directory; it runs
 *	nothing until child_start().
 * child_start()
 *	fork and exec "daemon_directory/NAME -c CONFIG [-v]" in a slot.
 * child_reap()
 *	the SIGCHLD callback: collect every exited child, log how it ended
 *	(Postfix's words), and restart it at once or after a delay.
 * child_signal_all()
 *	send a signal to every running child that is not retiring.
 * child_set_count()
 *	grow or shrink the number of slots of one program (the smtpout
 *	workers on reload): new slots start at once, extra ones get SIGTERM
 *	and are freed when they exit.
 * child_stop_all(), child_kill_all()
 *	shutdown: cancel pending restarts and send SIGTERM; later SIGKILL to
 *	whatever is left (returns how many).
 * child_running()
 *	how many children are alive (not yet reaped).
 * child_status()
 *	add "child=NAME PID STATE" per slot, "restarts=N" and, per program,
 *	"restart=NAME N" (the metrics' restarts per daemon) to a record.
 *
 * Throttle: a child that dies less than CHILD_FAST_MS after its start
 * counts a fast failure; from CHILD_FAST_LIMIT fast failures in a row on,
 * the restart waits 1 s, doubling up to CHILD_DELAY_MAX s; a child that
 * ran CHILD_FAST_MS or longer clears its slot's record. A clean exit 0 is
 * no failure, but one that comes within CHILD_CLEAN_MS of the start waits
 * that long, so a daemon that exits at once cannot make master spin.
 *
 * Children start fresh: every descriptor of master is close-on-exec, and
 * the child resets signal dispositions and the signal mask before exec.
 *
 * Ownership: slots belong to this module. Failures: fork failure is
 * retried after a delay; exec failure ends the child with status 127,
 * which master sees as a fast failure.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "event.h"
#include "iostuff.h"
#include "master.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "vstr.h"

static CHILD *child_list;
static long child_restarts; /* restarts of existing slots, for status */

static void child_wake(void *ctx);

/* child_create - append an idle slot for a program */
CHILD *child_create(const char *name)
{
    CHILD *cp = mycalloc(1, sizeof(*cp));
    CHILD **cpp;

    cp->name = mystrdup(name);
    for (cpp = &child_list; *cpp; cpp = &(*cpp)->next)
        /* keep start order: status lists children as they were added */;
    *cpp = cp;
    return cp;
}

/* child_free - unlink and release a slot that runs nothing */
static void child_free(CHILD *cp)
{
    CHILD **cpp;

    if (cp->pid != 0)
        msg_panic("child_free: %s slot still has pid %ld", cp->name, (long)cp->pid);
    if (cp->waiting)
        event_cancel_timer(child_wake, cp);
    for (cpp = &child_list; *cpp != cp; cpp = &(*cpp)->next)
        if (*cpp == NULL)
            msg_panic("child_free: %s slot not in the list", cp->name);
    *cpp = cp->next;
    myfree(cp->name);
    myfree(cp->path);
    myfree(cp);
}

/* child_pass_fds - the listening sockets a slot's program gets, and their names (kept by master) */
void child_pass_fds(CHILD *cp, const int *fds, const char *const *names, int count)
{
    if (count > DAEMON_LISTEN_FDS_MAX)
        msg_panic("child_pass_fds: %d descriptors, at most %d", count, DAEMON_LISTEN_FDS_MAX);
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) > DAEMON_LISTEN_NAME_MAX || strchr(names[i], ':') != NULL)
            msg_panic("child_pass_fds: bad descriptor name \"%s\"", names[i]);
    cp->pass_fds = fds;
    cp->pass_names = names;
    cp->npass = count;
}

/* child_place_fds - in the new process: the passed sockets as 3, 4, ..., kept across exec */
static void child_place_fds(const CHILD *cp)
{
    int high[DAEMON_LISTEN_FDS_MAX];
    char count[16];
    char names[DAEMON_LISTEN_FDS_MAX * (DAEMON_LISTEN_NAME_MAX + 1) + 1];
    size_t used = 0;

    /* Out of the way first: a passed socket may already sit at 3 or 4. */
    for (int i = 0; i < cp->npass; i++)
        if ((high[i] = fcntl(cp->pass_fds[i], F_DUPFD, 3 + DAEMON_LISTEN_FDS_MAX)) < 0)
            _exit(1);
    for (int i = 0; i < cp->npass; i++)
        if (dup2(high[i], 3 + i) < 0) /* dup2 leaves close-on-exec off */
            _exit(1);
    snprintf(count, sizeof(count), "%d", cp->npass);
    names[0] = '\0';
    for (int i = 0; i < cp->npass; i++)
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ":" : "",
                                 cp->pass_names[i]);
    if (setenv(DAEMON_LISTEN_FDS_ENV, count, 1) < 0 ||
        setenv(DAEMON_LISTEN_NAMES_ENV, names, 1) < 0)
        _exit(1);
}

/* child_exec - in the new process: reset signals and become the daemon */
static void child_exec(const CHILD *cp, sigset_t *saved_mask, pid_t master)
{
    const char *path = cp->path;

    struct sigaction sa;
    char *argv[5];
    int argc = 0;

    /* A daemon outlives a master killed with SIGKILL only to race the next
     * master's daemons for the same queue: it gets SIGTERM when master
     * dies (kept across exec), and exits at once if master is already gone. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
        _exit(1);

    /* Caught signals revert to default on exec anyway, but ignored ones
     * (SIGPIPE) would stay ignored; the daemon must start as if run by hand. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL);
    sigemptyset(saved_mask);
    (void)sigprocmask(SIG_SETMASK, saved_mask, NULL);
    child_place_fds(cp);

    argv[argc++] = (char *)path;
    argv[argc++] = "-c";
    argv[argc++] = (char *)master_config_path;
    if (msg_verbose)
        argv[argc++] = "-v";
    argv[argc] = NULL;
    execv(path, argv);
    msg_fatal_status(127, "exec %s: %m", path);
}

/* child_start - fork and exec the slot's program */
void child_start(CHILD *cp)
{
    VSTR *path = vstr_alloc(256);
    sigset_t block, saved;
    pid_t pid, master = getpid();

    if (cp->pid != 0)
        msg_panic("child_start: %s slot already runs pid %ld", cp->name, (long)cp->pid);
    vstr_sprintf(path, "%s/%s", var_str(daemon_directory), cp->name);
    myfree(cp->path);
    cp->path = mystrdup(vstr_str(path));
    vstr_free(path);

    /* No handler may run in the child between fork and exec: it would write
     * into master's signal pipe. Block everything across the fork. */
    sigfillset(&block);
    (void)sigprocmask(SIG_BLOCK, &block, &saved);
    pid = fork();
    if (pid == 0)
        child_exec(cp, &saved, master);
    (void)sigprocmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        msg_warn("fork %s: %m; trying again in 1 s", cp->path);
        cp->waiting = 1;
        event_request_timer(child_wake, cp, 1000);
        return;
    }
    cp->pid = pid;
    cp->started_ms = now_ms();
    if (msg_verbose)
        msg_info("started %s pid %ld", cp->path, (long)pid);
}

/* child_wake - a delayed restart is due */
static void child_wake(void *ctx)
{
    CHILD *cp = ctx;

    cp->waiting = 0;
    if (master_stopping)
        return;
    child_restarts++;
    cp->restarts++;
    child_start(cp);
}

/* child_wait - restart the slot after a delay */
static void child_wait(CHILD *cp, long long delay_ms)
{
    cp->waiting = 1;
    event_request_timer(child_wake, cp, delay_ms);
}

/* child_find - the slot of a pid, or NULL */
static CHILD *child_find(pid_t pid)
{
    for (CHILD *cp = child_list; cp; cp = cp->next)
        if (cp->pid == pid)
            return cp;
    return NULL;
}

/* child_log_exit - say how a child ended, quietly when master asked for it */
static void child_log_exit(const CHILD *cp, pid_t pid, int status)
{
    int asked = master_stopping || cp->retiring;

    if (WIFSIGNALED(status)) {
        if (asked && WTERMSIG(status) == SIGTERM) {
            if (msg_verbose)
                msg_info("process %s pid %ld killed by signal %d", cp->path, (long)pid,
                         WTERMSIG(status));
        } else {
            msg_warn("process %s pid %ld killed by signal %d", cp->path, (long)pid,
                     WTERMSIG(status));
        }
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        msg_warn("process %s pid %ld exit status %d", cp->path, (long)pid, WEXITSTATUS(status));
    } else if (msg_verbose) {
        msg_info("process %s pid %ld exit status 0", cp->path, (long)pid);
    }
}

/* child_restart - decide when a slot whose process ended runs again */
static void child_restart(CHILD *cp, int status)
{
    long long ran = now_ms() - cp->started_ms;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    if (ran >= CHILD_FAST_MS) {
        cp->fast_failures = 0;
        cp->delay_s = 0;
    }
    if (clean) {
        if (ran < CHILD_CLEAN_MS) {
            child_wait(cp, CHILD_CLEAN_MS);
            return;
        }
    } else if (ran < CHILD_FAST_MS && ++cp->fast_failures >= CHILD_FAST_LIMIT) {
        cp->delay_s = cp->delay_s ? cp->delay_s * 2 : 1;
        if (cp->delay_s > CHILD_DELAY_MAX)
            cp->delay_s = CHILD_DELAY_MAX;
        msg_warn("%s: process keeps dying: delaying restart by %d s", cp->path, cp->delay_s);
        child_wait(cp, (long long)cp->delay_s * 1000);
        return;
    }
    child_restarts++;
    cp->restarts++;
    child_start(cp);
}

/* child_reap - SIGCHLD: collect exited children and restart them */
void child_reap(int sig, void *ctx)
{
    int status;
    pid_t pid;
    CHILD *cp;

    (void)sig;
    (void)ctx;
    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;
        if ((cp = child_find(pid)) == NULL) {
            /* Not ours: a leftover of a detach fork, say. Nothing to restart. */
            if (msg_verbose)
                msg_info("reaped unknown pid %ld", (long)pid);
            continue;
        }
        cp->pid = 0;
        child_log_exit(cp, pid, status);
        if (master_stopping)
            continue;
        if (cp->retiring) {
            child_free(cp);
            continue;
        }
        child_restart(cp, status);
    }
}

/* child_signal_all - send a signal to every child that is meant to stay */
void child_signal_all(int sig)
{
    for (CHILD *cp = child_list; cp; cp = cp->next)
        if (cp->pid != 0 && !cp->retiring && kill(cp->pid, sig) < 0 && errno != ESRCH)
            msg_warn("kill %s pid %ld: %m", cp->path, (long)cp->pid);
}

/* child_retire - stop a slot for good: free it now or when its process exits */
static void child_retire(CHILD *cp)
{
    if (cp->pid == 0) {
        child_free(cp);
        return;
    }
    cp->retiring = 1;
    if (kill(cp->pid, SIGTERM) < 0 && errno != ESRCH)
        msg_warn("kill %s pid %ld: %m", cp->path, (long)cp->pid);
}

/* child_set_count - make count slots of a program active */
void child_set_count(const char *name, int count)
{
    int active = 0;
    CHILD *victim;

    for (CHILD *cp = child_list; cp; cp = cp->next)
        if (strcmp(cp->name, name) == 0 && !cp->retiring)
            active++;
    for (; active < count; active++)
        child_start(child_create(name));
    for (; active > count; active--) {
        /* A slot waiting out a throttle delay goes first: it serves nobody. */
        victim = NULL;
        for (CHILD *cp = child_list; cp; cp = cp->next)
            if (strcmp(cp->name, name) == 0 && !cp->retiring &&
                (victim == NULL || !victim->waiting))
                victim = cp;
        if (victim == NULL)
            msg_panic("child_set_count: no active %s slot", name);
        child_retire(victim);
    }
}

/* child_stop_all - shutdown: no more restarts, SIGTERM to everyone */
void child_stop_all(void)
{
    for (CHILD *cp = child_list; cp; cp = cp->next) {
        if (cp->waiting) {
            event_cancel_timer(child_wake, cp);
            cp->waiting = 0;
        }
        if (cp->pid != 0 && kill(cp->pid, SIGTERM) < 0 && errno != ESRCH)
            msg_warn("kill %s pid %ld: %m", cp->path, (long)cp->pid);
    }
}

/* child_kill_all - shutdown deadline: SIGKILL what is left */
int child_kill_all(void)
{
    int count = 0;

    for (CHILD *cp = child_list; cp; cp = cp->next) {
        if (cp->pid == 0)
            continue;
        msg_warn("process %s pid %ld did not stop within %d s: killing it", cp->path, (long)cp->pid,
                 MASTER_STOP_WAIT);
        (void)kill(cp->pid, SIGKILL);
        count++;
    }
    return count;
}

/* child_running - children not yet reaped */
int child_running(void)
{
    int count = 0;

    for (CHILD *cp = child_list; cp; cp = cp->next)
        if (cp->pid != 0)
            count++;
    return count;
}

/* child_status - describe the slots in a status record */
void child_status(IPC_REC *rec)
{
    for (CHILD *cp = child_list; cp; cp = cp->next)
        ipc_rec_addf(rec, "child", "%s %ld %s", cp->name, (long)cp->pid,
                     cp->pid != 0 ? "running" : "waiting");
    ipc_rec_add_long(rec, "restarts", child_restarts);
    /* Per program, over its slots now (a slot a reload retired takes its count along). */
    for (CHILD *cp = child_list; cp; cp = cp->next) {
        CHILD *first = child_list;
        long total = 0;

        while (strcmp(first->name, cp->name) != 0)
            first = first->next;
        if (first != cp)
            continue;
        for (CHILD *same = cp; same; same = same->next)
            if (strcmp(same->name, cp->name) == 0)
                total += same->restarts;
        ipc_rec_addf(rec, "restart", "%s %ld", cp->name, total);
    }
}
