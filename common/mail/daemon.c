/*
 * daemon - the one skeleton of relayq's daemons: arguments, configuration, signals, loop
 *
 * daemon_main()
 *	the whole life of a daemon (master, pickup, qmgr, smtpout), whose
 *	main() is only its DAEMON_SPEC and that spec's callbacks:
 *	1. descriptors: the listening sockets master passed (their number
 *	   in $RELAYQ_LISTEN_FDS, at most DAEMON_LISTEN_FDS_MAX, as 3, 4,
 *	   ...) are kept, everything else above 2 is closed (what the
 *	   invoker left open would live on in the daemon and hold its
 *	   pipes), and a closed 0, 1 or 2 is opened on /dev/null, so that no
 *	   socket or lock is ever taken for standard error;
 *	2. logging to standard error under the spec's name, then the refusal
 *	   to run as root, unless DAEMON_FLAG_ROOT (master, which gives up
 *	   root itself before it starts anything else);
 *	3. arguments: -c FILE (default: $RELAYQ_CONFIG, else the installed
 *	   file), -v (more logging, may repeat), and -f (stay in the
 *	   foreground) with DAEMON_FLAG_DETACH, then exactly as many operands
 *	   as the spec names (spec->operand_count: none for the four
 *	   daemons; spec->prepare checks their values). Anything else, or
 *	   an operand more or less, prints the usage line and exits 2, in
 *	   every daemon. The file name
 *	   is made absolute (a daemon may change directory; a symlinked name
 *	   stays that name);
 *	4. the configuration: read and checked against the parameter table,
 *	   then by spec->check; any error exits with its "file:line:
 *	   reason";
 *	5. spec->prepare, the mail log opened (maillog.c), SIGPIPE ignored
 *	   (a peer that hangs up is an error of a write, not a death), the
 *	   signals of step 6 caught (a signal that arrives during init waits
 *	   for the loop), then spec->init;
 *	6. signals, delivered inside the loop (event.c): SIGTERM and SIGINT
 *	   call spec->stop; SIGHUP reloads: the file is read and checked as
 *	   at start, and only a configuration that passes replaces the old
 *	   one ("warning: reload: REASON; keeping the old configuration"
 *	   otherwise); then the log is opened again (a rotated file is left
 *	   for the new one), spec->reload runs, and "reload -- version V,
 *	   configuration FILE" is logged: the reload is done. Before it,
 *	   "reload: changed: NAME, ..." names the parameters that concern
 *	   this daemon and have a new value: those of spec->params, and
 *	   those the shared modules read in every daemon
 *	   (daemon_shared_params[]: the log, the queue's key file,
 *	   mail_owner). t_param_lists checks that each daemon's list holds
 *	   every parameter its own sources read;
 *	7. the loop, one pass at most spec->pass_ms long, until spec->done
 *	   says the daemon may end; then spec->finish, and exit status 0.
 * daemon_usage()
 *	print the usage line and exit 2 (spec->prepare, for an operand
 *	whose value it refuses).
 * daemon_context(), daemon_config_path(), daemon_foreground(),
 * daemon_listen_fds(), daemon_listen_fd_name(), daemon_operand()
 *	the context given to daemon_main(), the configuration file's
 *	absolute name, whether -f was given, how many listening sockets
 *	master passed (descriptors 3 to 3 + N - 1; close-on-exec from here),
 *	the name master gave each of them ($RELAYQ_LISTEN_FDNAMES: the
 *	parameter that made it, smtpd_listen or smtpd_tls_listen), and
 *	the operand at an index (NULL past the last one given).
 *
 * One process runs one daemon: the signal callbacks find it through the
 * context the event loop hands them, not through a global.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "event.h"
#include "maillog.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "privs.h"

#define DAEMON_USAGE_STATUS 2 /* exit status of a wrong command line, in every daemon */

/* The parameters the shared modules (maillog.c, qstore.c, privs.c) read in every daemon. */
static const int daemon_shared_params[] = {
    PARAM_ID(maillog_file),
    PARAM_ID(syslog_name),
    PARAM_ID(queue_encryption_key_file),
    PARAM_ID(mail_owner),
    -1,
};

struct DAEMON {
    const DAEMON_SPEC *spec;
    void *ctx;         /* the daemon's own state */
    char *config_path; /* absolute */
    int foreground;    /* -f */
    int listen_fds;    /* passed listening sockets, from 3 on */
    char listen_names[DAEMON_LISTEN_FDS_MAX][DAEMON_LISTEN_NAME_MAX + 1]; /* their names */
    char *operands[DAEMON_OPERANDS_MAX + 1];                              /* NULL after the last */
};

/* daemon_listen_names - the passed sockets' names, "a:b:c"; a missing one is "" */
static void daemon_listen_names(DAEMON *daemon, const char *names, int count)
{
    for (int i = 0; i < count && names != NULL; i++) {
        size_t len = strcspn(names, ":");

        if (len <= DAEMON_LISTEN_NAME_MAX)
            memcpy(daemon->listen_names[i], names, len);
        names = names[len] == ':' ? names + len + 1 : NULL;
    }
}

/* daemon_sanitize_fds - keep what master passed, close the rest; 0, 1 and 2 always open */
static int daemon_sanitize_fds(DAEMON *daemon)
{
    const char *passed = getenv(DAEMON_LISTEN_FDS_ENV);
    char *end = NULL;
    long count = passed != NULL ? strtol(passed, &end, 10) : 0;

    if (passed == NULL || *passed == '\0' || *end != '\0' || count < 0 ||
        count > DAEMON_LISTEN_FDS_MAX)
        count = 0;
    daemon_listen_names(daemon, getenv(DAEMON_LISTEN_NAMES_ENV), (int)count);
    (void)unsetenv(DAEMON_LISTEN_FDS_ENV);
    (void)unsetenv(DAEMON_LISTEN_NAMES_ENV);
    closefrom(3 + count);
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            _exit(1);
    for (int fd = 3; fd < 3 + count; fd++)
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            _exit(1);
    return (int)count;
}

/* daemon_usage - the command line is wrong */
void daemon_usage(const DAEMON *daemon)
{
    msg_fatal_status(DAEMON_USAGE_STATUS, "usage: %s %s[-v] [-c config_file]%s%s",
                     daemon->spec->name, (daemon->spec->flags & DAEMON_FLAG_DETACH) ? "[-f] " : "",
                     daemon->spec->operands ? " " : "",
                     daemon->spec->operands ? daemon->spec->operands : "");
}

/* daemon_abspath - a file name relative to the working directory, made absolute */
static char *daemon_abspath(const char *path)
{
    VSTR *buf;
    char *cwd, *result;

    /* Not realpath(): a symlinked /etc/relayq/relayq.conf stays by that name. */
    if (path[0] == '/')
        return mystrdup(path);
    if ((cwd = getcwd(NULL, 0)) == NULL)
        msg_fatal("getcwd: %m");
    buf = vstr_alloc(256);
    vstr_sprintf(buf, "%s/%s", cwd, path);
    free(cwd);
    result = mystrdup(vstr_str(buf));
    vstr_free(buf);
    return result;
}

/* daemon_changed - append the parameters of a list whose value differs between two configurations
 */
static void daemon_changed(const CONFIG *old, const CONFIG *new, const int *ids, VSTR *changed)
{
    for (; *ids >= 0; ids++) {
        const char *name = params_table[*ids].name;

        if (strcmp(config_str(old, name), config_str(new, name)) != 0)
            vstr_sprintf_append(changed, "%s%s", vstr_len(changed) ? ", " : "", name);
    }
}

/* daemon_load - read, check and put in force the configuration; -1 with a
 * reason. changed (NULL at start): the daemon's parameters with a new value */
static int daemon_load(DAEMON *daemon, VSTR *changed, VSTR *why)
{
    CONFIG *cfg = params_read(daemon->config_path, why);

    if (cfg == NULL)
        return -1;
    if (daemon->spec->check != NULL && daemon->spec->check(cfg, why) < 0) {
        config_free(cfg);
        return -1;
    }
    if (changed != NULL) {
        daemon_changed(var_config, cfg, daemon_shared_params, changed);
        daemon_changed(var_config, cfg, daemon->spec->params, changed);
    }
    return params_use(cfg, why);
}

/* daemon_reload - SIGHUP: a new configuration, when it passes every check */
static void daemon_reload(int sig, void *ctx)
{
    DAEMON *daemon = ctx;
    VSTR *why = vstr_alloc(128);
    VSTR *changed = vstr_alloc(128);

    (void)sig;
    if (daemon_load(daemon, changed, why) < 0) {
        msg_warn("reload: %s; keeping the old configuration", vstr_str(why));
    } else {
        if (vstr_len(changed) > 0)
            msg_info("reload: changed: %s", vstr_str(changed));
        /* Opened again even under the same name: after a rotation (the file
         * renamed away), reload is what moves the log to a new file. */
        maillog_reload();
        if (daemon->spec->reload != NULL)
            daemon->spec->reload(daemon);
        msg_info("reload -- version %s, configuration %s", PACKAGE_VERSION, daemon->config_path);
    }
    vstr_free(changed);
    vstr_free(why);
}

/* daemon_stop - SIGTERM or SIGINT */
static void daemon_stop(int sig, void *ctx)
{
    DAEMON *daemon = ctx;

    daemon->spec->stop(daemon, sig);
}

/* daemon_main - run one daemon from its command line to its exit */
int daemon_main(int argc, char **argv, const DAEMON_SPEC *spec, void *ctx)
{
    DAEMON daemon = {.spec = spec, .ctx = ctx};
    const char *config = NULL;
    VSTR *why;
    int ch;

    daemon.listen_fds = daemon_sanitize_fds(&daemon);
    msg_init(spec->name, MSG_TO_STDERR);
    if (!(spec->flags & DAEMON_FLAG_ROOT))
        privs_refuse_root();
    while ((ch = getopt(argc, argv, (spec->flags & DAEMON_FLAG_DETACH) ? "c:fv" : "c:v")) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'f':
            daemon.foreground = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            daemon_usage(&daemon);
        }
    }
    if (argc - optind != spec->operand_count || spec->operand_count > DAEMON_OPERANDS_MAX)
        daemon_usage(&daemon);
    for (int i = 0; optind + i < argc; i++)
        daemon.operands[i] = argv[optind + i];
    daemon.config_path = daemon_abspath(config != NULL ? config : params_default_path());
    why = vstr_alloc(128);
    if (daemon_load(&daemon, NULL, why) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);

    if (spec->prepare != NULL)
        spec->prepare(&daemon);
    maillog_start();
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        msg_fatal("signal SIGPIPE: %m");
    /* Before init: once init has said "daemon started" or spawned
     * anything, a SIGTERM must reach spec->stop, not kill the process. */
    event_on_signal(SIGTERM, daemon_stop, &daemon);
    event_on_signal(SIGINT, daemon_stop, &daemon);
    event_on_signal(SIGHUP, daemon_reload, &daemon);
    spec->init(&daemon);

    do
        event_loop(spec->pass_ms);
    while (spec->done == NULL || !spec->done(&daemon));
    if (spec->finish != NULL)
        spec->finish(&daemon);
    myfree(daemon.config_path);
    return 0;
}

/* daemon_operand - an operand after the options, NULL past the last */
const char *daemon_operand(const DAEMON *daemon, int index)
{
    return index >= 0 && index < DAEMON_OPERANDS_MAX ? daemon->operands[index] : NULL;
}

/* daemon_context - the daemon's own state */
void *daemon_context(const DAEMON *daemon)
{
    return daemon->ctx;
}

/* daemon_config_path - the configuration file, an absolute name */
const char *daemon_config_path(const DAEMON *daemon)
{
    return daemon->config_path;
}

/* daemon_listen_fds - how many listening sockets master passed, from descriptor 3 on */
int daemon_listen_fds(const DAEMON *daemon)
{
    return daemon->listen_fds;
}

/* daemon_listen_fd_name - the name master gave the passed socket 3 + index, or "" */
const char *daemon_listen_fd_name(const DAEMON *daemon, int index)
{
    if (index < 0 || index >= daemon->listen_fds)
        return "";
    return daemon->listen_names[index];
}

/* daemon_foreground - was -f given */
int daemon_foreground(const DAEMON *daemon)
{
    return daemon->foreground;
}
