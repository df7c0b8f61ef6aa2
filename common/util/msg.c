/*
 * msg - diagnostics in Postfix's log line format
 *
 * msg_init()
 *	set the program name and the initial destination. Daemons log as
 *	"relayq/NAME[PID]: text"; interactive commands (MSG_TO_STDERR_PLAIN)
 *	print "relayq: text".
 * msg_set_logfile()
 *	apply the maillog_file parameter: empty means syslog, anything else
 *	a file opened for appending ("/dev/stderr" works). Returns -1 with
 *	errno set when the file cannot be opened; output is unchanged then.
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
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"

int msg_verbose;

static char msg_name[64] = "relayq";
static MSG_OUTPUT msg_output = MSG_TO_STDERR_PLAIN;
static int msg_fd = 2;
static char msg_host[256];

/* msg_init - name the program and pick the first destination */
void msg_init(const char *progname, MSG_OUTPUT output)
{
    snprintf(msg_name, sizeof(msg_name), "%s", progname);
    msg_output = output;
    msg_fd = 2;
    if (gethostname(msg_host, sizeof(msg_host) - 1) < 0)
        snprintf(msg_host, sizeof(msg_host), "localhost");
    msg_host[strcspn(msg_host, ".")] = '\0';
    if (output == MSG_TO_SYSLOG)
        openlog(msg_name, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* msg_progname - the name given to msg_init */
const char *msg_progname(void)
{
    return msg_name;
}

/* msg_set_logfile - apply the maillog_file parameter */
int msg_set_logfile(const char *maillog_file)
{
    int fd;

    if (msg_output == MSG_TO_STDERR_PLAIN)
        return 0;
    if (maillog_file == NULL || *maillog_file == '\0') {
        if (msg_output != MSG_TO_SYSLOG)
            openlog(msg_name, LOG_PID | LOG_NDELAY, LOG_MAIL);
        msg_output = MSG_TO_SYSLOG;
        return 0;
    }
    if (strcmp(maillog_file, "/dev/stderr") == 0) {
        msg_output = MSG_TO_STDERR;
        msg_fd = 2;
        return 0;
    }
    fd = open(maillog_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
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
        len = snprintf(line, sizeof(line), "%s %s relayq/%s[%ld]: %s%s\n", stamp, msg_host,
                       msg_name, (long)getpid(), prefix, text);
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
