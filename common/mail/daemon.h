/*
 * daemon.h - the one skeleton of relayq's daemons: arguments, configuration, signals, loop
 */
#ifndef RELAYQ_DAEMON_H
#define RELAYQ_DAEMON_H

#include "cfgfile.h"
#include "vstr.h"

typedef struct DAEMON DAEMON;

/* Listening sockets master opened for a daemon arrive as descriptors 3, 4, ...,
 * their number in this variable of the environment. */
#define DAEMON_LISTEN_FDS_ENV "RELAYQ_LISTEN_FDS"
#define DAEMON_LISTEN_FDS_MAX 16
#define DAEMON_LISTEN_NAMES_ENV "RELAYQ_LISTEN_FDNAMES" /* their names, ':' between */
#define DAEMON_LISTEN_NAME_MAX 31                       /* bytes of one name */

#define DAEMON_FLAG_ROOT 1   /* started as root and gives it up itself (master) */
#define DAEMON_FLAG_DETACH 2 /* goes to the background unless -f (master) */

/* What one daemon is: its name, and what it does at each step of its life. */
typedef struct DAEMON_SPEC {
    const char *name;  /* the log tag and the usage line */
    int flags;         /* DAEMON_FLAG_* */
    const int *params; /* PARAM_ID()s of the parameters it reads, ending with -1 */
    /* A check of a configuration beyond the parameter table, at start and
     * before a reload puts it in force; 0, or -1 with a reason (NULL: none). */
    int (*check)(const CONFIG *cfg, VSTR *why);
    /* With the configuration loaded, before the mail log opens (NULL: none). */
    void (*prepare)(DAEMON *daemon);
    /* With the log open: open what the daemon works with, start its work. */
    void (*init)(DAEMON *daemon);
    /* A reload put a new configuration in force (NULL: nothing more to do). */
    void (*reload)(DAEMON *daemon);
    /* SIGTERM or SIGINT: begin to stop. */
    void (*stop)(DAEMON *daemon, int sig);
    /* After each pass of the loop: may the process end now (NULL: it ends by exiting). */
    int (*done)(DAEMON *daemon);
    /* After the loop: release what init took (NULL: nothing). */
    void (*finish)(DAEMON *daemon);
    long long pass_ms; /* the longest wait of one pass of the loop; -1: until an event */
    /* The operands it takes after the options, as the usage line shows
     * them ("text|json"; NULL: none), and how many: exactly that many,
     * at most DAEMON_OPERANDS_MAX. */
    const char *operands;
    int operand_count;
} DAEMON_SPEC;

#define DAEMON_OPERANDS_MAX 4

int daemon_main(int argc, char **argv, const DAEMON_SPEC *spec, void *ctx);
void __attribute__((noreturn)) daemon_usage(const DAEMON *daemon);
void *daemon_context(const DAEMON *daemon);
const char *daemon_config_path(const DAEMON *daemon);
int daemon_foreground(const DAEMON *daemon);
int daemon_listen_fds(const DAEMON *daemon);
const char *daemon_listen_fd_name(const DAEMON *daemon, int index);
const char *daemon_operand(const DAEMON *daemon, int index);

#endif
