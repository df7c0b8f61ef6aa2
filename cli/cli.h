/*
 * cli.h - the relayq command: one program, many commands
 *
 * relayq.c dispatches on the command word (or on the program name, when
 * invoked as sendmail, mailq, postqueue, postsuper or postconf) to one
 * *_main() function per command. The
 * commands share the configuration loader and the clients of the daemons'
 * sockets (control.c). That full command is installed as libexec's
 * relayq-command; the relayq users run is the front (front.c), which
 * queues sendmail's messages itself and runs the full command for the
 * rest.
 */
#ifndef RELAYQ_CLI_H
#define RELAYQ_CLI_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

#include "ipc.h"
#include "maildrop.h"
#include "qstore.h"
#include "seal.h"
#include "vstr.h"

/* One command: what the user types, and the function that runs it. */
typedef struct CLI_CMD {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command word */
    const char *usage;                 /* arguments, for the usage line */
    int group; /* installed setgid: PRIVS_GROUP_KEEP for the commands that reach the queue */
} CLI_CMD;

/* relayq.c */
const char *relayq_config_file(const char *path);
void relayq_load_config(const char *path);
void relayq_read_as_mail_owner(void);
char *relayq_config_dir(const char *dir);
void relayq_usage(const char *command, const char *args) __attribute__((noreturn));

/* start.c */
int start_main(int argc, char **argv);
int start_stop_main(int argc, char **argv);
int start_reload_main(int argc, char **argv);
int start_status_main(int argc, char **argv);

/* printable.c */
char *relayq_printable(const char *text, size_t limit);

/* check.c */
int check_main(int argc, char **argv);
int check_run(const char *path);
int keygen_main(int argc, char **argv);

/* sendmail.c */
#define SENDMAIL_PIECE_MAX 65536 /* longest piece of a line handled at once */

/* Standard input, read in pieces that never cross a line end. */
typedef struct SENDMAIL_INPUT {
    int fd;
    char *buf; /* SENDMAIL_PIECE_MAX bytes read ahead */
    size_t pos;
    size_t len;
    int eof;        /* read(2) returned 0 */
    int line_start; /* the next byte starts a line */
} SENDMAIL_INPUT;

/* One logical header of the message: its lines, continuation lines included. */
typedef struct SENDMAIL_HDR {
    size_t offset; /* in the header buffer */
    size_t len;
    size_t name_len; /* the field name, without blanks and colon */
    int drop;        /* not written to the queue (Bcc) */
} SENDMAIL_HDR;

/* The options of a sendmail command line. */
typedef struct SENDMAIL_ARGS {
    int mode;             /* 'm' queue a message, 's' -bs, 'p' -bp, 'q' -q, 'i' -bi */
    const char *config;   /* -C or -c FILE, or NULL */
    const char *site;     /* -qR SITE, or NULL */
    const char *sender;   /* -f, or NULL: pickup names the submitting user */
    const char *fullname; /* -F, or NULL */
    const char *notify;   /* -N, or NULL */
    const char *ret;      /* -R, or NULL */
    const char *envid;    /* -V, or NULL */
    int extract;          /* -t */
    int dots;             /* a lone "." ends the message (no -i) */
    int first_rcpt;       /* argv index of the first recipient argument */
} SENDMAIL_ARGS;

/* SENDMAIL_OUT - the maildrop file being written, its size accounting, its first failure */
typedef struct SENDMAIL_OUT {
    int fd;
    VSTR *buf;            /* not yet written */
    long long content;    /* message bytes so far */
    long long limit;      /* message_size_limit, 0: none */
    SEAL_DROP *seal;      /* sealing the file (queue_encryption_key_file), or NULL */
    VSTR *sealed;         /* sealed bytes not yet written */
    int status;           /* 0, or the sysexits code of the first failure */
    int nospace;          /* that failure was ENOSPC or EDQUOT */
    VSTR *why;            /* its one-line reason */
    const char *maildrop; /* the directory of the file */
    int filed;            /* the file exists: the message was too big to hand to pickup */
    char name[PATH_MAX];  /* the file's final path, once committed */
    char queue_id[64];    /* or the queue id pickup committed it as, "" */
} SENDMAIL_OUT;

int sendmail_args(int argc, char **argv, SENDMAIL_ARGS *args);
int sendmail_queue(const SENDMAIL_ARGS *args, int argc, char **argv);
int sendmail_no_aliases(void);
int sendmail_open(SENDMAIL_OUT *out, const MAILDROP_ENV *env, const char *maildrop);
int sendmail_content(SENDMAIL_OUT *out, const char *data, size_t len);
int sendmail_commit(SENDMAIL_OUT *out, const char *maildrop);
void sendmail_close(SENDMAIL_OUT *out);
void sendmail_wakeup(void);
void sendmail_catch_signals(void);

/* sendmail_modes.c */
int sendmail_main(int argc, char **argv);

/* mailq.c */
int mailq_main(int argc, char **argv);

/* ops.c */
int ops_main(int argc, char **argv);
int ops_is_queue_word(const char *word);
void ops_add_target(IPC_REC *req, const char *word);
void ops_add_queue(IPC_REC *req, const char *name);
void ops_run(const IPC_REC *req, int dry_run);

/* postqueue.c */
int postqueue_main(int argc, char **argv);

/* postsuper.c */
int postsuper_main(int argc, char **argv);

/* config.c */
int config_main(int argc, char **argv);
int config_postconf_main(int argc, char **argv);

/* stats.c */
int stats_main(int argc, char **argv);

/* flush.c */
int flush_main(int argc, char **argv);

/* show.c */
int show_main(int argc, char **argv);

/* passwd.c */
int passwd_main(int argc, char **argv);

/* qshape.c */
int qshape_main(int argc, char **argv);

/* control.c */
#define CONTROL_OK 0       /* a reply arrived */
#define CONTROL_DOWN (-1)  /* nobody listens on the socket */
#define CONTROL_ERROR (-2) /* the server broke the protocol or timed out */

int control_request(const char *socket_name, const char *protocol, const IPC_REC *request,
                    int timeout_ms, IPC_REC **reply, VSTR *why);
char *control_socket_path(const char *socket_name);
IPC_CHAN *control_qmgr_open(const IPC_REC *request, int timeout_ms);
IPC_REC *control_qmgr(const IPC_REC *request, const char *what, int timeout_ms);
void control_refused(const IPC_REC *reply, const char *what);
int control_master_pid(pid_t *pid, VSTR *why);

#endif
