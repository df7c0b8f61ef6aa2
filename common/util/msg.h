/*
 * msg.h - diagnostics in Postfix's log line format
 */
#ifndef RELAYQ_MSG_H
#define RELAYQ_MSG_H

#include <stdarg.h>

/* Where log lines go. */
typedef enum {
    MSG_TO_STDERR_PLAIN, /* "relayq: text" for interactive commands */
    MSG_TO_STDERR,       /* timestamped lines on standard error */
    MSG_TO_FILE,         /* timestamped lines appended to a file */
    MSG_TO_SYSLOG        /* syslog(3), facility mail */
} MSG_OUTPUT;

/* The longest syslog_name msg_set_log() uses (the parameter's bound). */
#define MSG_SYSLOG_NAME_MAX 64

extern int msg_verbose;

void msg_init(const char *progname, MSG_OUTPUT output);
int msg_set_log(const char *syslog_name, const char *maillog_file);
const char *msg_progname(void);

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void msg_fatal_status(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
