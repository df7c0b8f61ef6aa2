/*
 * master.h - the master supervisor's private structures and functions
 */
#ifndef RELAYQ_MASTER_H
#define RELAYQ_MASTER_H

#include <sys/types.h>

#include "ipc.h"

#define CHILD_FAST_MS 10000       /* a child that dies sooner counts a fast failure */
#define CHILD_FAST_LIMIT 3        /* fast failures in a row before restarts are delayed */
#define CHILD_DELAY_MAX 60        /* seconds: ceiling of the doubling restart delay */
#define CHILD_CLEAN_MS 1000       /* a clean exit sooner than this waits this long */
#define MASTER_STOP_WAIT 60       /* seconds children get to finish before SIGKILL */
#define MASTER_WATCH_INTERVAL 5   /* seconds between checks that the queue directory exists */
#define MASTER_SMTPD_BACKLOG 128  /* connections waiting for pickup to accept them */
#define MASTER_PICKUP_BACKLOG 128 /* public/pickup clients (sendmail) waiting for pickup */

/*
 * One child slot: a daemon master keeps running (qmgr, pickup, or one of
 * the smtpout workers), with the state that decides when it is restarted.
 * A slot outlives its processes: each restart reuses it, so the throttle
 * follows the slot, not the pid.
 */
typedef struct CHILD {
    char *name;                    /* program name in daemon_directory */
    char *path;                    /* the program last executed, for log lines */
    pid_t pid;                     /* the running process, 0 when none */
    long long started_ms;          /* now_ms() of the last spawn */
    int fast_failures;             /* consecutive failures within CHILD_FAST_MS of start */
    int delay_s;                   /* current restart delay, 0 when not throttled */
    int waiting;                   /* a restart timer is pending */
    int retiring;                  /* sent SIGTERM for good: free the slot when it exits */
    long restarts;                 /* times this slot's program was started again */
    const int *pass_fds;           /* listening sockets the program gets as 3, 4, ... (pickup) */
    const char *const *pass_names; /* each one's name: the parameter that made it */
    int npass;
    struct CHILD *next;
} CHILD;

/* master.c: process-wide state the other files read. */
extern const char *master_config_path; /* absolute configuration file name */
extern int master_stopping;            /* SIGTERM or SIGINT seen: restart nothing */

/* child.c: the child slots. */
CHILD *child_create(const char *name);
void child_pass_fds(CHILD *cp, const int *fds, const char *const *names, int count);
void child_start(CHILD *cp);
void child_reap(int sig, void *ctx);
void child_signal_all(int sig);
void child_set_count(const char *name, int count);
void child_stop_all(void);
int child_kill_all(void);
int child_running(void);
void child_status(IPC_REC *rec);

/* status.c: the public/master socket. */
void status_listen(const char *path);
void status_close(void);

#endif
