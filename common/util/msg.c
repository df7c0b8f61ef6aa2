/*
 * msg - diagnostics in Postfix's log line format
 *
 * msg_init()
 *	set the program name and the initial destination. Daemons log as
 *	"relayq/NAME[PID]: text" (the syslog ident "relayq/NAME", as Postfix
 *	logs "postfix/smtp"); interactive commands (MSG_TO_STDERR_PLAIN)
 *	print "relayq: text".
 * msg_set_log()
 *	apply the syslog_name and maillog_file parameters: the name replaces
 *	"relayq" in "relayq/NAME[PID]:"; an empty maillog_file means syslog,
 *	anything else a file opened for appending ("/dev/stderr" works). The
 *	file is opened again on every call, so that a caller that re-reads its
 *	configuration also follows a log file renamed away (rotation); a
 *	standard error open on the old file is moved to the new one. Returns
 *	-1 with errno set when the file cannot be opened; the destination is
 *	unchanged then (the name is applied).
 * msg_info(), msg_warn(), msg_error()
 *	log a line; warnings and errors carry "warning: " / "error: ".
 * msg_fatal(), msg_fatal_status()
 *	log "fatal: text" and exit (status 1, or the one given): a problem
 *	of the environment; master restarts a daemon that exits.
 * msg_panic()
 *	log "panic: text" and abort: a broken invariant.
 *
 * Every line is written with one write(2) so that processes sharing a log
 * file never interleave partial lines.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"

int msg_verbose;

#define MSG_SYSLOG_NAME "relayq" /* syslog_name's default */

/* One process logs to one place: this state is the process's, like its pid. */
static char msg_name[64] = "relayq";
/* "SYSLOG_NAME/NAME": openlog() keeps the pointer, so it lives here. */
static char msg_ident[64 + MSG_SYSLOG_NAME_MAX + 2] = MSG_SYSLOG_NAME;
static MSG_OUTPUT msg_output = MSG_TO_STDERR_PLAIN;
static int msg_fd = 2;
static char msg_host[256];

/* msg_set_ident - the tag of every line: SYSLOG_NAME/PROGRAM */
static void msg_set_ident(const char *syslog_name)
{
    snprintf(msg_ident, sizeof(msg_ident), "%.*s/%s", MSG_SYSLOG_NAME_MAX, syslog_name, msg_name);
}

/* msg_init - name the program and pick the first destination */
void msg_init(const char *progname, MSG_OUTPUT output)
{
    snprintf(msg_name, sizeof(msg_name), "%s", progname);
    msg_set_ident(MSG_SYSLOG_NAME);
    msg_output = output;
    msg_fd = 2;
    if (gethostname(msg_host, sizeof(msg_host) - 1) < 0)
        snprintf(msg_host, sizeof(msg_host), "localhost");
    msg_host[strcspn(msg_host, ".")] = '\0';
    if (output == MSG_TO_SYSLOG)
        openlog(msg_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* msg_progname - the name given to msg_init */
const char *msg_progname(void)
{
    return msg_name;
}

/* msg_same_file - whether two descriptors are open on one file */
static int msg_same_file(int fd1, int fd2)
{
    struct stat st1, st2;

    return fd1 != fd2 && fstat(fd1, &st1) == 0 && fstat(fd2, &st2) == 0 &&
           st1.st_dev == st2.st_dev && st1.st_ino == st2.st_ino;
}

/* msg_set_log - apply the syslog_name and maillog_file parameters */
int msg_set_log(const char *syslog_name, const char *maillog_file)
{
    int fd;

    if (msg_output == MSG_TO_STDERR_PLAIN)
        return 0;
    msg_set_ident(syslog_name);
    if (maillog_file == NULL || *maillog_file == '\0') {
        /* Again even when already on syslog: the ident may have changed. */
        closelog();
        openlog(msg_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
        if (msg_fd > 2)
            close(msg_fd);
        msg_fd = 2;
        msg_output = MSG_TO_SYSLOG;
        return 0;
    }
    if (strcmp(maillog_file, "/dev/stderr") == 0) {
        if (msg_fd > 2)
            close(msg_fd);
        msg_fd = 2;
        msg_output = MSG_TO_STDERR;
        return 0;
    }
    fd = open(maillog_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    /* A detached master points its standard error, which its children
     * inherit, at the log file: stray output follows the log too. */
    if (msg_output == MSG_TO_FILE && msg_same_file(2, msg_fd))
        (void)dup2(fd, 2);
    if (msg_fd > 2)
        close(msg_fd);
    msg_fd = fd;
    msg_output = MSG_TO_FILE;
    return 0;
}

/* msg_emit - format and write one line at the given severity */
static void msg_emit(int priority, const char *prefix, const char *fmt, va_list ap)
{
    char text[4096];
    char line[4096 + 512];
    int saved_errno = errno;
    int len;

    vsnprintf(text, sizeof(text), fmt, ap);
    /* Log lines are single lines, whatever the caller passed in. */
    for (char *cp = text; *cp; cp++)
        if (*cp == '\n' || *cp == '\r')
            *cp = ' ';

    switch (msg_output) {
    case MSG_TO_SYSLOG:
        syslog(priority, "%s%s", prefix, text);
        break;
    case MSG_TO_STDERR_PLAIN:
        len = snprintf(line, sizeof(line), "relayq: %s%s\n", prefix, text);
        if (len > (int)sizeof(line) - 1)
            len = (int)sizeof(line) - 1;
        if (write(2, line, (size_t)len) < 0)
            break;
        break;
    case MSG_TO_STDERR:
    case MSG_TO_FILE: {
        time_t now = time(NULL);
        struct tm tm;
        char stamp[32];

        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        len = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s\n", stamp, msg_host, msg_ident,
                       (long)getpid(), prefix, text);
        if (len > (int)sizeof(line) - 1) {
            len = (int)sizeof(line) - 1;
            line[len - 1] = '\n';
        }
        if (write(msg_fd, line, (size_t)len) < 0)
            break;
        break;
    }
    }
    errno = saved_errno;
}

/* msg_info - log an informational line */
void msg_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_emit(LOG_INFO, "", fmt, ap);
    va_end(ap);
}

/* msg_warn - log a recovered problem */
void msg_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_emit(LOG_WARNING, "warning: ", fmt, ap);
    va_end(ap);
}

/* msg_error - log an error that the caller reports upward */
void msg_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_emit(LOG_ERR, "error: ", fmt, ap);
    va_end(ap);
}

/* msg_fatal_status - log a fatal problem and exit with the given status */
void msg_fatal_status(int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_emit(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    exit(status);
}

/* msg_fatal - log a fatal problem and exit 1 */
void msg_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_emit(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

/* msg_panic - log a broken invariant and abort */
void msg_panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    msg_emit(LOG_CRIT, "panic: ", fmt, ap);
    va_end(ap);
    abort();
}
