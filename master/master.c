/*
 * master - relayq's supervisor: start, watch and stop the daemons
 *
 * Usage: master [-f] [-v] [-c CONFIG_FILE]
 *
 * main()
 *	master's part of the daemon skeleton (daemon.c, which reads and
 *	checks the configuration): create the queue directory tree
 *	(as root: owned by mail_owner, group setgid_group; see qdir.c),
 *	drop root privileges to mail_owner, take the queue's lock (one
 *	master per queue), create the LMDB environment, listen on
 *	public/master and public/pickup, detach (unless -f), then spawn
 *	qmgr, pickup, smtpout_workers x smtpout and, when metrics_listen is
 *	set, metrics from daemon_directory and keep them running (child.c).
 *	The sockets of smtpd_listen, smtpd_tls_listen (for pickup) and
 *	metrics_listen (for metrics) are bound as root, before root is
 *	given up; public/pickup is made as mail_owner. Each is passed to its
 *	daemon at each start: a restarted daemon never loses its port, a
 *	port that is taken fails the start, and a client that connects
 *	while its daemon starts or restarts waits in the backlog instead of
 *	being refused ("relayq start" returns once master answers, and by
 *	then every submission socket accepts). SIGHUP re-reads the
 *	configuration, opens maillog_file again (log rotation; a new name),
 *	adjusts the number of smtpout workers and passes SIGHUP on; SIGTERM
 *	and SIGINT stop the children gracefully (SIGKILL after
 *	MASTER_STOP_WAIT s), remove the socket, release the lock and exit
 *	0. When the lock file disappears (the queue directory was removed),
 *	master stops the same way, with a warning.
 *
 * Every check that can fail runs before master detaches and before log
 * output moves to maillog_file, so "relayq start" shows the reason on
 * standard error and gets a non-zero exit status. The daemon's standard
 * error then goes to maillog_file when that is a file (stray output of the
 * children lands there), stays when it is /dev/stderr, and goes to
 * /dev/null with syslog. The working directory is queue_directory, so a
 * relative maillog_file means the same file to master and its children.
 *
 * The lock is flock(2) on pid/master.pid, held for master's life on a
 * close-on-exec descriptor: the children never hold it, and it vanishes
 * with master however master ends. "relayq stop" and "relayq status" test
 * it; the file's text is only the pid, for humans and for stop. It names
 * a live process at every instant: master's own pid once locked, then the
 * daemon's, written by the parent half before it exits.
 *
 * Failures: a bad configuration, a missing mail_owner or setgid_group
 * (or one with id 0, or a setgid_group that is mail_owner's group), a queue that
 * cannot be created or locked, privileges that cannot be dropped: fatal,
 * exit 1, before any child runs. A bad configuration on reload is a
 * warning; the old one stays in force.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgfile.h"
#include "daemon.h"
#include "event.h"
#include "iostuff.h"
#include "mail_proto.h"
#include "master.h"
#include "maillog.h"
#include "msg.h"
#include "mymalloc.h"
#include "netaddr.h"
#include "params.h"
#include "privs.h"
#include "qdir.h"
#include "qstore.h"
#include "sock.h"
#include "vstr.h"

const char *master_config_path;
int master_stopping;

static char *master_queue_dir; /* queue_directory at startup: a reload cannot move it */
static char *master_owner;     /* mail_owner at startup, to warn when a reload changes it */
static int master_lock_fd = -1;
/* The sockets pickup serves: the SMTP listener's, then public/pickup. */
static int master_pickup_fds[DAEMON_LISTEN_FDS_MAX];
static const char *master_pickup_names[DAEMON_LISTEN_FDS_MAX]; /* the parameter, or SOCK_PICKUP */
static int master_pickup_count;
static char *master_smtpd_listen_text;     /* smtpd_listen at startup: a reload cannot change it */
static char *master_smtpd_tls_listen_text; /* smtpd_tls_listen at startup: neither */
static int master_metrics_fd[1];           /* metrics_listen's socket, for metrics */
static const char *master_metrics_name[1]; /* "metrics_listen" */
static int master_metrics_count;           /* 1 when metrics_listen is set */
static char *master_metrics_listen_text; /* metrics_listen at startup: a reload cannot change it */

static const char *master_daemons[] = {"qmgr", "pickup", "smtpout"};

/* master_check_config - what master needs beyond the parameter table's checks */
static int master_check_config(const CONFIG *cfg, VSTR *why)
{
    if (*config_str(cfg, "relayhost") == '\0') {
        vstr_sprintf(why, "%s: relayhost is empty: relayq only relays; set relayhost = [host]:port",
                     config_path(cfg));
        return -1;
    }
    /* The SMTP listener's TLS and AUTH settings go together. */
    if ((*config_str(cfg, "smtpd_tls_cert_file") == '\0') !=
        (*config_str(cfg, "smtpd_tls_key_file") == '\0')) {
        vstr_sprintf(why,
                     "%s: smtpd_tls_cert_file and smtpd_tls_key_file go together: set both, "
                     "or neither",
                     config_path(cfg));
        return -1;
    }
    if (*config_str(cfg, "smtpd_tls_cert_file") == '\0') {
        if (*config_str(cfg, "smtpd_tls_listen") != '\0') {
            vstr_sprintf(why,
                         "%s: smtpd_tls_listen needs smtpd_tls_cert_file and "
                         "smtpd_tls_key_file",
                         config_path(cfg));
            return -1;
        }
        if (*config_str(cfg, "smtpd_sasl_password_file") != '\0') {
            vstr_sprintf(why,
                         "%s: smtpd_sasl_password_file: AUTH is offered only over TLS; set "
                         "smtpd_tls_cert_file and smtpd_tls_key_file",
                         config_path(cfg));
            return -1;
        }
    }
    /* At a reload: the daemons work in the queue they started with. */
    if (master_queue_dir != NULL && strcmp(config_str(cfg, "queue_directory"), master_queue_dir)) {
        vstr_sprintf(why, "queue_directory changed from %s to %s: that needs a restart",
                     master_queue_dir, config_str(cfg, "queue_directory"));
        return -1;
    }
    return 0;
}

/* master_log_is_file - maillog_file names a file (not syslog, not stderr) */
static int master_log_is_file(const char *maillog)
{
    return *maillog != '\0' && strcmp(maillog, "/dev/stderr") != 0;
}

/* master_prepare_log - as root: make maillog_file appendable by mail_owner */
static void master_prepare_log(uid_t uid, gid_t gid)
{
    const char *maillog = var_str(maillog_file);
    struct stat st;
    int fd;

    if (!master_log_is_file(maillog))
        return;
    /* O_NOFOLLOW: root must not be led to chown a file a symlink points to. */
    fd = open(maillog, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        msg_fatal("open maillog_file %s: %m", maillog);
    if (fstat(fd, &st) < 0)
        msg_fatal("fstat maillog_file %s: %m", maillog);
    if (S_ISREG(st.st_mode) && fchown(fd, uid, gid) < 0)
        msg_fatal("chown maillog_file %s: %m", maillog);
    close(fd);
}

/* The parameter whose addresses master_bind() binds, where their sockets go, and where it says
 * why not. */
typedef struct MASTER_BIND {
    const char *param;
    int *fds;
    const char **names;
    int *count;
    int max;
    VSTR *why;
} MASTER_BIND;

/* master_bind - one address of smtpd_listen, smtpd_tls_listen or metrics_listen: bind it now,
 * while master may */
static int master_bind(const char *word, const struct sockaddr *sa, socklen_t len, void *ctx)
{
    MASTER_BIND *target = ctx;
    int fd;

    if (*target->count == target->max) {
        vstr_sprintf(target->why, "%s: more than %d addresses (at %s)", target->param, target->max,
                     word);
        return -1;
    }
    if ((fd = tcp_listen(sa, len, MASTER_SMTPD_BACKLOG, target->why)) < 0) {
        vstr_sprintf_append(target->why,
                            " (%s: another program may be listening there; stop it, or change %s)",
                            target->param, target->param);
        return -1;
    }
    target->names[*target->count] = target->param;
    target->fds[(*target->count)++] = fd;
    return 0;
}

/* master_listen - bind every address of a parameter, or die saying why */
static void master_listen(MASTER_BIND *target, const char *value)
{
    if (netaddr_listen_each(value, master_bind, target, target->why) < 0)
        msg_fatal("%s", vstr_str(target->why));
}

/* master_smtpd_listen - the SMTP listener's and the metrics endpoint's sockets, before root is
 * given up (ports 25, 465) */
static void master_smtpd_listen(void)
{
    /* One place is kept for public/pickup (master_pickup_listen). */
    MASTER_BIND target = {"smtpd_listen",       master_pickup_fds,         master_pickup_names,
                          &master_pickup_count, DAEMON_LISTEN_FDS_MAX - 1, vstr_alloc(128)};

    master_smtpd_listen_text = mystrdup(var_str(smtpd_listen));
    master_smtpd_tls_listen_text = mystrdup(var_str(smtpd_tls_listen));
    master_metrics_listen_text = mystrdup(var_str(metrics_listen));
    master_listen(&target, master_smtpd_listen_text);
    target.param = "smtpd_tls_listen";
    master_listen(&target, master_smtpd_tls_listen_text);
    target.param = "metrics_listen";
    target.fds = master_metrics_fd;
    target.names = master_metrics_name;
    target.count = &master_metrics_count;
    target.max = 1;
    master_listen(&target, master_metrics_listen_text);
    vstr_free(target.why);
}

/* master_pickup_listen - public/pickup, as mail_owner: open before "relayq start" returns, so
 * a submission never finds it missing while pickup starts or restarts (it waits in the backlog) */
static void master_pickup_listen(void)
{
    char *path = qdir_path(master_queue_dir, SOCK_PICKUP);
    VSTR *why = vstr_alloc(100);
    int fd;

    if ((fd = unix_listen(path, MASTER_PICKUP_BACKLOG, 0666, why)) < 0)
        msg_fatal("%s", vstr_str(why));
    master_pickup_fds[master_pickup_count] = fd;
    master_pickup_names[master_pickup_count++] = SOCK_PICKUP;
    vstr_free(why);
    myfree(path);
}

/* master_setup_queue - create the queue tree as its owner; root becomes mail_owner */
static void master_setup_queue(void)
{
    const char *owner = var_str(mail_owner);
    VSTR *why = vstr_alloc(128);
    uid_t uid = getuid();
    gid_t gid = getgid();
    gid_t drop_group = gid;
    int root = geteuid() == 0;

    if (root && (privs_mail_owner(owner, &uid, &gid, why) < 0 ||
                 privs_setgid_group(var_str(setgid_group), gid, &drop_group, why) < 0))
        msg_fatal("%s", vstr_str(why));
    if (!root && msg_verbose)
        msg_info("not running as root: mail_owner \"%s\" and setgid_group ignored", owner);
    if (qdir_create(master_queue_dir, uid, drop_group, why) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
    /* Relative names in the configuration (maillog_file) mean the same
     * thing to master and to its children from here on. */
    if (chdir(master_queue_dir) < 0)
        msg_fatal("chdir %s: %m", master_queue_dir);
    master_smtpd_listen();
    if (root) {
        master_prepare_log(uid, gid);
        privs_become(owner, uid, gid);
    }
}

/* master_check_readable - a file a daemon will read is readable by mail_owner ("": none) */
static void master_check_readable(const char *param, const char *file)
{
    int fd;

    if (*file == '\0')
        return;
    if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        msg_fatal("%s %s: not readable by the mail system's user (uid %ld): %m", param, file,
                  (long)getuid());
    close(fd);
}

/* master_check_daemons - every program master will run is there, and the
 * configuration is readable by the user they run as */
static void master_check_daemons(void)
{
    VSTR *path = vstr_alloc(256);
    int fd;

    if ((fd = open(master_config_path, O_RDONLY | O_CLOEXEC)) < 0)
        msg_fatal("%s: not readable by the mail system's user (uid %ld): %m", master_config_path,
                  (long)getuid());
    close(fd);
    /* pickup reads these as mail_owner: say so now rather than restart it in a loop. */
    master_check_readable("smtpd_tls_cert_file", var_str(smtpd_tls_cert_file));
    master_check_readable("smtpd_tls_key_file", var_str(smtpd_tls_key_file));
    master_check_readable("smtpd_sasl_password_file", var_str(smtpd_sasl_password_file));
    for (size_t i = 0; i < sizeof(master_daemons) / sizeof(master_daemons[0]); i++) {
        vstr_sprintf(path, "%s/%s", var_str(daemon_directory), master_daemons[i]);
        if (access(vstr_str(path), X_OK) < 0)
            msg_fatal("daemon_directory: cannot execute %s: %m", vstr_str(path));
    }
    vstr_sprintf(path, "%s/metrics", var_str(daemon_directory));
    if (master_metrics_count > 0 && access(vstr_str(path), X_OK) < 0)
        msg_fatal("daemon_directory: cannot execute %s (metrics_listen is set): %m",
                  vstr_str(path));
    vstr_free(path);
}

/* master_write_pid - record the pid of the process that holds the lock */
static int master_write_pid(pid_t pid)
{
    char text[32];
    int len = snprintf(text, sizeof(text), "%ld\n", (long)pid);

    if (ftruncate(master_lock_fd, 0) < 0 || pwrite(master_lock_fd, text, (size_t)len, 0) != len)
        return -1;
    return 0;
}

/* master_lock - one master per queue: take pid/master.pid's lock or die */
static void master_lock(void)
{
    char *path = qdir_path(master_queue_dir, MASTER_LOCK_FILE);
    char text[32];
    ssize_t len;
    long pid;

    master_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (master_lock_fd < 0)
        msg_fatal("open %s: %m", path);
    if (flock(master_lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK)
            msg_fatal("lock %s: %m", path);
        len = pread(master_lock_fd, text, sizeof(text) - 1, 0);
        text[len > 0 ? len : 0] = '\0';
        pid = strtol(text, NULL, 10);
        if (pid > 0)
            msg_fatal("the mail system is already running (pid %ld)", pid);
        msg_fatal("the mail system is already running (%s holds the lock)", path);
    }
    /* From here on the file always names a live master: this process, then
     * (master_detach) the daemon, written before this process exits. */
    if (master_write_pid(getpid()) < 0)
        msg_fatal("write %s: %m", path);
    myfree(path);
}

/* master_create_store - create the LMDB environment once, so readers find it */
static void master_create_store(void)
{
    char *dir = qdir_path(master_queue_dir, QDIR_DB);
    VSTR *why = vstr_alloc(128);
    QSTORE *store;

    if ((store = qstore_open(dir, (size_t)var_int(queue_map_size), 0, why)) == NULL)
        msg_fatal("%s", vstr_str(why));
    /* Closed before any fork: LMDB environments are never inherited. */
    qstore_close(store);
    vstr_free(why);
    myfree(dir);
}

/* master_detach - become a background daemon; the parent exits 0 */
static void master_detach(void)
{
    const char *maillog = var_str(maillog_file);
    pid_t pid;
    int fd;

    if ((pid = fork()) < 0)
        msg_fatal("fork: %m");
    if (pid > 0) {
        if (master_write_pid(pid) < 0) {
            (void)kill(pid, SIGKILL);
            msg_fatal("write %s/%s: %m", master_queue_dir, MASTER_LOCK_FILE);
        }
        _exit(0);
    }
    if (setsid() < 0)
        msg_fatal("setsid: %m");
    if ((fd = open("/dev/null", O_RDWR)) < 0)
        msg_fatal("open /dev/null: %m");
    (void)dup2(fd, 0);
    (void)dup2(fd, 1);
    /* Whoever started master may wait for end-of-file on its stderr: keep
     * it only when the log is meant to go there. */
    if (master_log_is_file(maillog)) {
        int log_fd = open(maillog, O_WRONLY | O_APPEND);

        (void)dup2(log_fd >= 0 ? log_fd : fd, 2);
        if (log_fd > 2)
            close(log_fd);
    } else if (*maillog == '\0') {
        (void)dup2(fd, 2);
    }
    if (fd > 2)
        close(fd);
}

/* master_kill_timer - children that ignore SIGTERM for too long */
static void master_kill_timer(void *ctx)
{
    (void)ctx;
    (void)child_kill_all();
}

/* master_stop_children - stop the children, then leave the loop */
static void master_stop_children(void)
{
    master_stopping = 1;
    child_stop_all();
    event_request_timer(master_kill_timer, NULL, MASTER_STOP_WAIT * 1000LL);
}

/* master_stop - SIGTERM, SIGINT: stop */
static void master_stop(DAEMON *daemon, int sig)
{
    (void)daemon;
    if (master_stopping)
        return;
    msg_info("terminating on signal %d", sig);
    master_stop_children();
}

/*
 * master_watch_queue - stop when the queue directory is gone: its lock file
 * unlinked or replaced means another master may now start on a new tree
 * of the same name, and two would then share nothing but the name.
 */
static void master_watch_queue(void *ctx)
{
    char *path = qdir_path(master_queue_dir, MASTER_LOCK_FILE);
    struct stat held, named;

    (void)ctx;
    if (!master_stopping) {
        if (fstat(master_lock_fd, &held) < 0)
            msg_fatal("fstat %s: %m", path);
        if (held.st_nlink == 0 || stat(path, &named) < 0 || named.st_ino != held.st_ino ||
            named.st_dev != held.st_dev) {
            msg_warn("%s was removed or replaced: the queue directory is gone; stopping", path);
            master_stop_children();
        } else {
            event_request_timer(master_watch_queue, NULL, MASTER_WATCH_INTERVAL * 1000LL);
        }
    }
    myfree(path);
}

/* master_reload - a new configuration is in force: worker count, tell the children */
static void master_reload(DAEMON *daemon)
{
    (void)daemon;
    if (strcmp(var_str(mail_owner), master_owner) != 0)
        msg_warn("reload: mail_owner changed from \"%s\" to \"%s\": that needs a restart",
                 master_owner, var_str(mail_owner));
    if (strcmp(var_str(smtpd_listen), master_smtpd_listen_text) != 0)
        msg_warn("reload: smtpd_listen changed from \"%s\" to \"%s\": that needs a restart",
                 master_smtpd_listen_text, var_str(smtpd_listen));
    if (strcmp(var_str(smtpd_tls_listen), master_smtpd_tls_listen_text) != 0)
        msg_warn("reload: smtpd_tls_listen changed from \"%s\" to \"%s\": that needs a restart",
                 master_smtpd_tls_listen_text, var_str(smtpd_tls_listen));
    if (strcmp(var_str(metrics_listen), master_metrics_listen_text) != 0)
        msg_warn("reload: metrics_listen changed from \"%s\" to \"%s\": that needs a restart",
                 master_metrics_listen_text, var_str(metrics_listen));
    if (master_stopping)
        return;
    /* Signal first: the workers a new count adds read the new file anyway,
     * and a fresh process may not have its SIGHUP handler yet. */
    child_signal_all(SIGHUP);
    child_set_count("smtpout", (int)var_int(smtpout_workers));
}

/* master_finish - everything stopped: release the queue */
static void master_finish(DAEMON *daemon)
{
    (void)daemon;
    status_close();
    (void)flock(master_lock_fd, LOCK_UN);
    close(master_lock_fd);
    if (msg_verbose)
        msg_info("stopped");
}

/* main - the supervisor's life, from checks to shutdown */
/* master_prepare - as root, before the log opens: the queue, its lock, the store, the socket */
static void master_prepare(DAEMON *daemon)
{
    char *socket_path;

    master_config_path = daemon_config_path(daemon);
    master_queue_dir = mystrdup(var_str(queue_directory));
    master_owner = mystrdup(var_str(mail_owner));
    master_setup_queue();
    master_check_daemons();
    master_lock();
    master_create_store();
    socket_path = qdir_path(master_queue_dir, SOCK_MASTER);
    status_listen(socket_path);
    myfree(socket_path);
    master_pickup_listen();
}

/* master_init - detach, then start the daemons */
static void master_init(DAEMON *daemon)
{
    CHILD *pickup;

    if (!daemon_foreground(daemon))
        master_detach();
    /* Children reset SIGPIPE before exec; master itself must survive a
     * status client that hangs up mid-reply (the skeleton ignores it). */
    event_on_signal(SIGCHLD, child_reap, NULL);
    msg_info("daemon started -- version %s, configuration %s", PACKAGE_VERSION, master_config_path);
    child_start(child_create("qmgr"));
    pickup = child_create("pickup");
    child_pass_fds(pickup, master_pickup_fds, master_pickup_names, master_pickup_count);
    child_start(pickup);
    child_set_count("smtpout", (int)var_int(smtpout_workers));
    if (master_metrics_count > 0) {
        CHILD *metrics = child_create("metrics");

        child_pass_fds(metrics, master_metrics_fd, master_metrics_name, master_metrics_count);
        child_start(metrics);
    }
    event_request_timer(master_watch_queue, NULL, MASTER_WATCH_INTERVAL * 1000LL);
}

/* master_done - stopping, and every child is gone */
static int master_done(DAEMON *daemon)
{
    (void)daemon;
    return master_stopping && child_running() == 0;
}

/* main - relayq's supervisor */
int main(int argc, char **argv)
{
    /* The parameters master reads (its own sources; t_param_lists checks). */
    static const int params[] = {
        PARAM_ID(daemon_directory),
        PARAM_ID(queue_directory),
        PARAM_ID(queue_map_size),
        PARAM_ID(relayhost),
        PARAM_ID(setgid_group),
        PARAM_ID(smtpd_listen),
        PARAM_ID(smtpd_tls_listen),
        PARAM_ID(smtpd_tls_cert_file),
        PARAM_ID(smtpd_tls_key_file),
        PARAM_ID(smtpd_sasl_password_file),
        PARAM_ID(smtpout_workers),
        PARAM_ID(metrics_listen),
        -1,
    };
    static const DAEMON_SPEC spec = {
        .name = "master",
        .params = params,
        .flags = DAEMON_FLAG_ROOT | DAEMON_FLAG_DETACH,
        .check = master_check_config,
        .prepare = master_prepare,
        .init = master_init,
        .reload = master_reload,
        .stop = master_stop,
        .done = master_done,
        .finish = master_finish,
        .pass_ms = -1,
    };

    return daemon_main(argc, argv, &spec, NULL);
}
