/*
 * smtpsink.h - shared declarations of the smtpsink test SMTP server
 *
 * smtpsink is split into four modules: smtpsink.c (options, listening
 * socket, signals, the poll(2) loop), conn.c (socket and TLS I/O of one
 * connection, closing), smtp.c (the SMTP dialogue, faults, message
 * storage) and util.c (buffers, base64, clock, event log). Everything is
 * single-threaded; the globals below are owned by smtpsink.c.
 */
#ifndef SMTPSINK_H
#define SMTPSINK_H

#include <stddef.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>

#define SINK_MAX_LINE 4096                            /* longest command line, CRLF excluded */
#define SINK_MAX_RCPT 1000                            /* recipients per message */
#define SINK_IN_CAP (1024 * 1024)                     /* stop reading above this much input */
#define SINK_OUT_HIGH (256 * 1024)                    /* stop processing above this much output */
#define SINK_HARD_MAX_MSG ((size_t)512 * 1024 * 1024) /* message cap without --size */
#define SINK_READ_MARKS 4096  /* reads with unconsumed input remembered; reading waits above */
#define SINK_MAX_DELAY 600000 /* --delay limit, milliseconds */

/* sbuf - a growable byte buffer consumed from the front */
typedef struct sbuf {
    char *data;
    size_t pos; /* first unconsumed byte */
    size_t len; /* end of the data */
    size_t cap; /* allocated size */
} sbuf;

/* Commands that --reply, --bad-reply and --stall can name; CONNECT, TLS
 * and BODY are no commands but moments a fault can hit: the TCP handshake,
 * the TLS handshake, the message content after the 354 or a BDAT line. */
enum sink_cmd {
    CMD_GREETING,
    CMD_EHLO,
    CMD_HELO,
    CMD_MAIL,
    CMD_RCPT,
    CMD_DATA,
    CMD_DOT,
    CMD_NOOP,
    CMD_RSET,
    CMD_QUIT,
    CMD_AUTH,
    CMD_STARTTLS,
    CMD_VRFY,
    CMD_HELP,
    CMD_BDAT,
    CMD_CONNECT,
    CMD_TLS,
    CMD_BODY,
    CMD_OTHER,
    CMD_COUNT
};

enum drop_mode { DROP_NONE, DROP_BEFORE, DROP_AFTER };

/* What --bad-reply sends instead of (or before) a reply. */
enum bad_reply {
    BAD_NONE,
    BAD_GARBAGE, /* a line that is no SMTP reply, control bytes included */
    BAD_LONG,    /* SINK_LONG_REPLY octets with no line end, then nothing */
    BAD_FLOOD,   /* SINK_FLOOD_LINES continuation lines before the real reply */
    BAD_MIXED,   /* a continuation line of another code before the real reply */
    BAD_BIG      /* SINK_BIG_LINES continuation lines of SINK_BIG_WIDTH octets before it */
};

#define SINK_LONG_REPLY 100000 /* octets of a --bad-reply long line */
#define SINK_GARBAGE "\001garbage\377 from smtpsink: this is no SMTP reply\r\n"
#define SINK_FLOOD_LINES 5000 /* continuation lines of a --bad-reply flood */
#define SINK_BIG_LINES 990    /* continuation lines of a --bad-reply big ... */
#define SINK_BIG_WIDTH 4000   /* ... each this long: a valid reply of 4 MB */

/* A fault that acts a limited number of times, counted over all connections. */
struct fault_limit {
    unsigned long times; /* 0 = always */
    unsigned long used;
};

struct rcpt_reply {
    char *addr;          /* matched case-insensitively */
    char *reply;         /* "NNN text" */
    unsigned long times; /* 0 = always */
    unsigned long used;
};

struct sink_config {
    const char *listen;
    const char *port_file;
    const char *pid_file;
    const char *log_file;
    const char *maildir;
    const char *hostname;
    unsigned long long size_limit; /* 0 = no SIZE */
    int pipelining;
    int eightbitmime;
    int smtputf8;
    int dsn;
    int chunking; /* --chunking: CHUNKING offered, BDAT served */
    const char *tls_cert;
    const char *tls_key;
    const char *tls_priority;
    int implicit_tls;
    const char *auth_file;
    int require_auth;
    int require_tls;
    const char *reply[CMD_COUNT];
    struct fault_limit reply_limit[CMD_COUNT];
    enum bad_reply bad_reply[CMD_COUNT];
    struct fault_limit bad_limit[CMD_COUNT];
    struct rcpt_reply *rcpt_replies;
    size_t n_rcpt_replies;
    unsigned long after421;
    enum drop_mode drop;
    unsigned long drop_every;
    struct fault_limit drop_limit;
    long long stall_ms[CMD_COUNT]; /* 0 = no stall */
    struct fault_limit stall_limit[CMD_COUNT];
    long long idle_ms;
    unsigned long rate_limit;
    unsigned long max_conns;
    size_t max_rcpts;   /* recipients per transaction, 0: SINK_MAX_RCPT */
    long long delay_ms; /* --delay: every reply leaves this much later */
    int timestamps;     /* --timestamps: "message" lines end in t=UNIX_MS */
};

struct sink_stats {
    unsigned long connections;
    unsigned long messages;
    unsigned long tls;
    unsigned long auth_ok;
    unsigned long auth_fail;
    unsigned long dots;  /* ends of messages (dot, BDAT LAST) seen, for --drop-every */
    unsigned long reads; /* reads that returned data, all connections (see conn.c) */
};

enum conn_state {
    CS_HANDSHAKE, /* TLS handshake in progress */
    CS_SMTP,      /* normal dialogue */
    CS_CLOSING,   /* flushing the last replies */
    CS_DRAIN,     /* write side shut, discarding input until EOF */
    CS_DEAD       /* to be freed by the main loop */
};

enum smtp_phase {
    PH_CMD,
    PH_DATA,
    PH_BDAT, /* reading the octets of a BDAT chunk */
    PH_AUTH_PLAIN,
    PH_AUTH_LOGIN_USER,
    PH_AUTH_LOGIN_PASS,
    PH_AUTH_XOAUTH2,
    PH_AUTH_ENDLESS /* --reply AUTH:334...: every line, "*" included, gets that 334 again */
};

/* reply_wait - replies held back by --delay, due together at one time */
struct reply_wait {
    struct reply_wait *next;
    long long due;
    sbuf text;
};

struct conn {
    int fd;
    unsigned long id;
    char addr[64];
    enum conn_state state;
    int close_logged;
    int eof;
    long long hs_deadline;
    long long close_deadline;
    long long stall_until; /* 0 = not stalled */
    int stall_noread;      /* the stall also stops reading (--stall BODY) */
    long long last_activity;
    /* TLS */
    gnutls_session_t tls;
    int tls_active;
    size_t tls_send_pending;
    int starttls_pending;
    sbuf in;
    sbuf out;
    /* --delay: replies not yet in c->out, oldest first, and their octets */
    struct reply_wait *wait_head, *wait_tail;
    size_t held;
    /*
     * Reads that returned data (conn.c): their number, the input octets so
     * far, and where each read whose data is still in c->in ends (absolute
     * input offsets, live from read_first to read_n), so that the read
     * that carried a given octet is known exactly.
     */
    unsigned long reads;
    unsigned long long in_total;
    unsigned long long *read_ends;
    size_t read_first, read_n, read_cap;
    /* SMTP */
    enum smtp_phase phase;
    int greet_pending;
    int greet_rejected;
    int stall_done;
    int discard_line;
    int helo;
    int authed;
    int in_tx;
    char *from;
    char **rcpts;
    size_t nrcpt;
    unsigned long msgs;
    sbuf msg;
    size_t msg_size;
    int msg_too_big;
    int data_bol;
    unsigned long line_read;     /* read index of the current command line's first octet */
    unsigned long line_end_read; /* ... and of its line end */
    unsigned long tx_read;       /* read index of the MAIL command's first octet */
    unsigned long msg_end_read;  /* read index of the message's last octet */
    /* BDAT (RFC 3030) */
    unsigned long long bdat_size; /* octets of the current chunk */
    unsigned long long bdat_left; /* ... still to read */
    int bdat_last;                /* it is the LAST chunk */
    const char *bdat_error;       /* its reply once read, the octets discarded; NULL: taken */
    unsigned long bdat_chunks;    /* chunks of the transaction so far */
    char *login_user;
    char line[SINK_MAX_LINE + 1];
};

extern struct sink_config cfg;
extern struct sink_stats stats;
extern long long sink_now; /* monotonic milliseconds, refreshed by the main loop */
extern int sink_tls_enabled;

/* util.c */
void sink_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *sink_alloc(size_t size);
char *sink_strndup(const char *s, size_t n);
void sbuf_reserve(sbuf *b, size_t extra);
void sbuf_append(sbuf *b, const void *data, size_t n);
void sbuf_appendf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_append_clean(sbuf *b, const char *s, size_t n);
void sbuf_consume(sbuf *b, size_t n);
void sbuf_reset(sbuf *b);
void sbuf_free(sbuf *b);
long long sink_clock(void);
void sink_log_open(const char *path);
void sink_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sink_log_raw(const char *line, size_t len);
ssize_t sink_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap);

/* sbuf_avail - bytes not yet consumed */
static inline size_t sbuf_avail(const sbuf *b)
{
    return b->len - b->pos;
}

/* conn.c */
void sink_tls_setup(const char *cert, const char *key, const char *priority);
struct conn *conn_create(int fd, const char *addr, int over_limit);
void conn_destroy(struct conn *c);
short conn_poll_events(struct conn *c);
int conn_tls_pending(struct conn *c);
void conn_service(struct conn *c, short revents);
void conn_timers(struct conn *c);
long long conn_deadline(struct conn *c);
void conn_flush(struct conn *c);
void conn_begin_close(struct conn *c, const char *reason);
void conn_abort(struct conn *c, const char *reason, int try_flush);
void conn_log_close(struct conn *c, const char *reason);
void conn_hold(struct conn *c, size_t mark);
size_t conn_backlog(const struct conn *c);
unsigned long conn_read_index(struct conn *c, size_t off);

/* smtp.c */
int sink_cmd_lookup(const char *name, size_t len);
const char *sink_cmd_name(int cmd);
int sink_fault_take(struct fault_limit *limit);
int sink_stall_starts(struct conn *c, int cmd);
void smtp_start(struct conn *c);
void smtp_process(struct conn *c);
void smtp_tls_done(struct conn *c);
void smtp_free(struct conn *c);
void smtp_reply(struct conn *c, const char *cmdname, const char *text);
void smtp_load_users(const char *path);
void smtp_rate_init(unsigned long limit);

#endif
