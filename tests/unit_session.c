/*
 * unit_session - the SMTP client's state machine against a scripted relay
 *
 * Each case hands a SESSION (smtpout/session.c with chat.c, proto.c,
 * sasl_proto.c and trouble.c) a job for the relay 127.0.0.1. The session's
 * `connect` hook gives it one end of a socketpair(2), opened as a CONN with
 * the plain operations (conn_open_fd()); the test plays the relay on the
 * other end, in the same event loop, from the case's table: the EHLO
 * keywords, the reply to each command, or a close. The real event loop
 * runs until the job comes back through the `done` hook; then each
 * recipient's outcome (status and DSN), the commands the relay received
 * (and whether the transaction came in one write) and the connection's
 * events are checked. Last, the TLS policy each job's identity asks for
 * is parsed once per relay and port and then kept (tls.c). No process is
 * started; nothing is written but a small configuration file in a
 * temporary directory.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "iostuff.h"
#include "ipc.h"
#include "msg.h"
#include "params.h"
#include "smtpout.h"
#include "tap.h"
#include "vstr.h"

#define MAX_RCPT 4
#define BODY "Subject: unit\r\n\r\n.a line that starts with a dot\r\nbody\r\n"

/* One case: the relay's script and what must come of it. */
typedef struct CASE {
    const char *name;
    const char *ehlo;           /* the EHLO reply's keyword lines after the first */
    const char *mail;           /* reply to MAIL FROM; NULL: 250 */
    const char *rcpt[MAX_RCPT]; /* reply to each RCPT TO; NULL: 250 */
    const char *data;           /* reply to DATA; NULL: 354 */
    const char *dot;            /* reply to the final dot; NULL: 250 */
    const char *bdat;           /* reply to BDAT; NULL: 250 */
    int close_in_body;          /* the relay closes once body bytes arrive */
    size_t nrcpt;
    const char *expect[MAX_RCPT]; /* "status dsn" of each recipient */
    const char *has;              /* a command line the relay must have received */
    const char *lacks;            /* one it must not have received */
    int bdat_last;                /* "BDAT <body length> LAST" must be there */
    int one_write;                /* MAIL FROM to DATA or BDAT came in one read */
    const char *event;            /* a connection event that must have occurred */
} CASE;

#define PIPE_ONLY "250-PIPELINING\r\n250 8BITMIME"
#define PIPE_CHUNK "250-PIPELINING\r\n250 CHUNKING"
static const CASE cases[] = {
    {.name = "PIPELINING: all sent",
     .ehlo = PIPE_ONLY,
     .dot = "250 2.0.0 queued",
     .nrcpt = 3,
     .expect = {"sent 2.0.0", "sent 2.0.0", "sent 2.0.0"},
     .has = "DATA",
     .lacks = "BDAT",
     .one_write = 1,
     .event = "open"},
    {.name = "one RCPT 550 bounced, the others sent",
     .ehlo = PIPE_ONLY,
     .rcpt = {NULL, "550 5.1.1 no such user"},
     .nrcpt = 3,
     .expect = {"sent 2.0.0", "bounced 5.1.1", "sent 2.0.0"},
     .has = "DATA",
     .one_write = 1},
    {.name = "452 limits the recipients, the rest deferred 4.5.3",
     .ehlo = "250 8BITMIME",
     .rcpt = {NULL, "452 4.5.3 too many recipients"},
     .nrcpt = 3,
     .expect = {"sent 2.0.0", "deferred 4.5.3", "deferred 4.5.3"},
     .has = "DATA",
     .lacks = "RCPT TO:<c@example.org>"},
    {.name = "5xx to DATA bounces",
     .ehlo = PIPE_ONLY,
     .data = "554 5.5.1 no thanks",
     .nrcpt = 2,
     .expect = {"bounced 5.5.1", "bounced 5.5.1"},
     .has = "RSET",
     .one_write = 1},
    {.name = "4xx to the dot defers",
     .ehlo = PIPE_ONLY,
     .dot = "451 4.3.0 try later",
     .nrcpt = 2,
     .expect = {"deferred 4.3.0", "deferred 4.3.0"},
     .has = "DATA",
     .one_write = 1},
    {.name = "CHUNKING: MAIL, RCPT and BDAT LAST in one write",
     .ehlo = PIPE_CHUNK,
     .bdat = "250 2.0.0 queued",
     .nrcpt = 2,
     .expect = {"sent 2.0.0", "sent 2.0.0"},
     .lacks = "DATA",
     .bdat_last = 1,
     .one_write = 1},
    {.name = "554 to BDAT bounces",
     .ehlo = PIPE_CHUNK,
     .bdat = "554 5.6.0 content refused",
     .nrcpt = 2,
     .expect = {"bounced 5.6.0", "bounced 5.6.0"},
     .has = "RSET",
     .lacks = "DATA",
     .bdat_last = 1,
     .one_write = 1},
    {.name = "421 to MAIL FROM defers",
     .ehlo = PIPE_ONLY,
     .mail = "421 4.3.2 going down",
     .nrcpt = 2,
     .expect = {"deferred 4.3.2", "deferred 4.3.2"},
     .lacks = "RSET",
     .event = "close server_421"},
    {.name = "a close during the body defers",
     .ehlo = "250 8BITMIME",
     .close_in_body = 1,
     .nrcpt = 2,
     .expect = {"deferred 4.4.2", "deferred 4.4.2"},
     .has = "DATA",
     .event = "close server_close"},
};

/* The relay's side of the current case. */
static struct {
    const CASE *c;
    int fd;              /* -1: closed */
    VSTR *in;            /* bytes received, not yet consumed */
    VSTR *log;           /* command lines received, one per line */
    int mode;            /* RELAY_CMD, RELAY_BODY, RELAY_BDAT */
    size_t bdat_left;    /* BDAT bytes still to come */
    size_t rcpts;        /* RCPT TO commands answered */
    unsigned reads;      /* reads so far */
    unsigned mail_read;  /* the read that brought MAIL FROM */
    unsigned final_read; /* the read that brought DATA or BDAT */
} relay;

#define RELAY_CMD 0
#define RELAY_BODY 1
#define RELAY_BDAT 2

/* What the session told its owner. */
static JOB *done_job;
static int job_back;
static int stopped;
static VSTR *events;

/* relay_close - the relay hangs up */
static void relay_close(void)
{
    if (relay.fd < 0)
        return;
    event_disable_readwrite(relay.fd);
    (void)close(relay.fd);
    relay.fd = -1;
}

/* relay_say - one reply, CRLF added; "close" hangs up instead */
static void relay_say(const char *reply)
{
    size_t len = strlen(reply);

    if (strcmp(reply, "close") == 0) {
        relay_close();
        return;
    }
    /* A few hundred bytes always fit in an empty socket buffer. */
    if (write(relay.fd, reply, len) != (ssize_t)len || write(relay.fd, "\r\n", 2) != 2)
        msg_fatal("relay write: %m");
}

/* relay_command - answer one command line from the table */
static void relay_command(const char *line)
{
    const CASE *c = relay.c;
    unsigned long n;
    char *end;

    vstr_sprintf_append(relay.log, "%s\n", line);
    if (strncasecmp(line, "EHLO", 4) == 0) {
        relay_say("250-relay.example");
        relay_say(c->ehlo);
    } else if (strncasecmp(line, "MAIL", 4) == 0) {
        relay.mail_read = relay.reads;
        relay_say(c->mail ? c->mail : "250 2.1.0 ok");
    } else if (strncasecmp(line, "RCPT", 4) == 0) {
        const char *r = relay.rcpts < MAX_RCPT ? c->rcpt[relay.rcpts] : NULL;

        relay.rcpts++;
        relay_say(r ? r : "250 2.1.5 ok");
    } else if (strcasecmp(line, "DATA") == 0) {
        relay.final_read = relay.reads;
        relay_say(c->data ? c->data : "354 go ahead");
        if (c->data == NULL)
            relay.mode = RELAY_BODY;
    } else if (strncasecmp(line, "BDAT ", 5) == 0) {
        relay.final_read = relay.reads;
        n = strtoul(line + 5, &end, 10);
        relay.bdat_left = n;
        relay.mode = RELAY_BDAT;
    } else if (strcasecmp(line, "QUIT") == 0) {
        relay_say("221 2.0.0 bye");
        relay_close();
    } else {
        relay_say("250 2.0.0 ok"); /* RSET, NOOP */
    }
}

/* relay_event - the session wrote to the relay */
static void relay_event(int fd, int events_, void *ctx)
{
    char buf[65536];
    ssize_t n;

    (void)events_;
    (void)ctx;
    if ((n = read(fd, buf, sizeof(buf))) <= 0) {
        relay_close();
        return;
    }
    relay.reads++;
    vstr_append(relay.in, buf, (size_t)n);
    while (relay.fd >= 0 && vstr_len(relay.in) > 0) {
        char *data = vstr_str(relay.in);
        char *nl;

        if (relay.mode == RELAY_BDAT) {
            size_t take =
                vstr_len(relay.in) < relay.bdat_left ? vstr_len(relay.in) : relay.bdat_left;

            vstr_consume(relay.in, take);
            if ((relay.bdat_left -= take) > 0)
                break;
            relay.mode = RELAY_CMD;
            relay_say(relay.c->bdat ? relay.c->bdat : "250 2.0.0 ok");
            continue;
        }
        if (relay.mode == RELAY_BODY && relay.c->close_in_body) {
            relay_close();
            break;
        }
        if ((nl = memchr(data, '\n', vstr_len(relay.in))) == NULL)
            break;
        *nl = '\0';
        if (nl > data && nl[-1] == '\r')
            nl[-1] = '\0';
        if (relay.mode == RELAY_BODY) {
            if (strcmp(data, ".") == 0) {
                relay.mode = RELAY_CMD;
                relay_say(relay.c->dot ? relay.c->dot : "250 2.0.0 ok");
            }
        } else {
            relay_command(data);
        }
        vstr_consume(relay.in, (size_t)(nl - data) + 1);
    }
}

/* test_connect - the session's connection: one end of a socketpair, the relay on the other */
static CONN *test_connect(void *owner, const struct sockaddr *sa, socklen_t len, VSTR *why)
{
    int sv[2];

    (void)owner;
    (void)len;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        vstr_sprintf(why, "socketpair: %s", strerror(errno));
        return NULL;
    }
    relay.fd = sv[1];
    relay_say("220 relay.example ESMTP");
    event_enable_read(relay.fd, relay_event, NULL);
    return conn_open_fd(sv[0], sa);
}

/* test_done - the session finished the job */
static void test_done(void *owner, JOB *job)
{
    (void)owner;
    done_job = job;
    job_back = 1;
}

/* test_conn_event - note "event reason" for the checks */
static void test_conn_event(void *owner, const char *event, const char *dest, const char *reason,
                            unsigned messages, int resumed)
{
    (void)owner;
    (void)dest;
    (void)messages;
    (void)resumed;
    vstr_sprintf_append(events, "%s%s %s", vstr_len(events) ? "; " : "", event,
                        reason ? reason : "-");
}

/* test_stopped - the session closed for a shutdown */
static void test_stopped(void *owner)
{
    (void)owner;
    stopped = 1;
}

static const SESSION_HOOKS hooks = {
    .done = test_done,
    .conn_event = test_conn_event,
    .stopped = test_stopped,
    .connect = test_connect,
};

/* make_job - a deliver request for the case, decoded as smtpout decodes qmgr's */
static JOB *make_job(size_t nrcpt)
{
    IPC_REC *rec = ipc_rec_create("deliver");
    VSTR *why = vstr_alloc(64);
    VSTR *body = vstr_alloc(64);
    JOB *job;

    ipc_rec_add_long(rec, "id", 1);
    ipc_rec_add(rec, "queue_id", "BCDFGHJKLMNP");
    ipc_rec_add(rec, "relay", "127.0.0.1");
    ipc_rec_add_long(rec, "port", 25);
    ipc_rec_add(rec, "sender", "s@example.org");
    ipc_rec_add_long(rec, "size", (long long)strlen(BODY));
    ipc_rec_add_long(rec, "arrival_ms", wall_ms());
    ipc_rec_add_long(rec, "active_ms", wall_ms());
    for (size_t i = 0; i < nrcpt; i++)
        ipc_rec_addf(rec, "rcpt", "%zu %c@example.org", i, (char)('a' + i));
    if ((job = job_create(rec, why)) == NULL)
        msg_fatal("job_create: %s", vstr_str(why));
    vstr_strcpy(body, BODY);
    job_set_body(job, body);
    ipc_rec_free(rec);
    vstr_free(why);
    return job;
}

/* run_until - run the event loop until the flag is set; 0: it never was */
static int run_until(const int *flag)
{
    for (int pass = 0; pass < 2000 && !*flag; pass++)
        event_loop(10);
    return *flag;
}

/* run_case - deliver one job to the scripted relay and check what came of it */
static void run_case(SESSION *s, const CASE *c)
{
    JOB *job = make_job(c->nrcpt);
    VSTR *got = vstr_alloc(64);
    VSTR *want = vstr_alloc(64);
    int finished;

    memset(&relay, 0, sizeof(relay));
    relay.c = c;
    relay.fd = -1;
    relay.in = vstr_alloc(1024);
    relay.log = vstr_alloc(1024);
    vstr_reset(events);
    done_job = NULL;
    job_back = 0;
    stopped = 0;

    session_deliver(s, job);
    finished = run_until(&job_back);
    tap_ok(finished && done_job == job, "%s: the job comes back", c->name);
    for (size_t i = 0; i < c->nrcpt; i++) {
        vstr_sprintf_append(got, "%s%s %s", i ? ", " : "", job_status_name(job->rcpts[i].status),
                            job->rcpts[i].dsn);
        vstr_sprintf_append(want, "%s%s", i ? ", " : "", c->expect[i]);
    }
    tap_ok(strcmp(vstr_str(got), vstr_str(want)) == 0, "%s: outcomes %s (want %s)", c->name,
           vstr_str(got), vstr_str(want));
    /* Stop the session (QUIT or nothing) so that the next case opens a new connection. */
    session_shutdown(s);
    tap_ok(run_until(&stopped) && !session_busy(s), "%s: the session stops", c->name);
    relay_close();
    /* The relay's log is complete now: an RSET goes out after the job is done. */
    if (c->has)
        tap_ok(strstr(vstr_str(relay.log), c->has) != NULL, "%s: the relay got %s", c->name,
               c->has);
    if (c->lacks)
        tap_ok(strstr(vstr_str(relay.log), c->lacks) == NULL, "%s: the relay did not get %s",
               c->name, c->lacks);
    if (c->bdat_last) {
        char line[64];

        snprintf(line, sizeof(line), "BDAT %zu LAST\n", strlen(BODY));
        tap_ok(strstr(vstr_str(relay.log), line) != NULL, "%s: the relay got BDAT %zu LAST",
               c->name, strlen(BODY));
    }
    if (c->one_write)
        tap_ok(relay.mail_read > 0 && relay.mail_read == relay.final_read,
               "%s: MAIL FROM to %s in one write", c->name, c->bdat_last ? "BDAT" : "DATA");
    if (c->event)
        tap_ok(strstr(vstr_str(events), c->event) != NULL, "%s: event \"%s\" (%s)", c->name,
               c->event, vstr_str(events));

    if (!finished)
        tap_diag("relay log:\n%s", vstr_str(relay.log));
    job_free(job);
    vstr_free(relay.in);
    vstr_free(relay.log);
    vstr_free(got);
    vstr_free(want);
}

/* load_config - a small configuration: no TLS, no AUTH, a fixed HELO name */
static void load_config(void)
{
    char dir[] = "/tmp/unit_session.XXXXXX";
    char path[sizeof(dir) + 16];
    VSTR *why = vstr_alloc(64);
    FILE *fp;

    if (mkdtemp(dir) == NULL)
        msg_fatal("mkdtemp: %m");
    snprintf(path, sizeof(path), "%s/relayq.cf", dir);
    if ((fp = fopen(path, "w")) == NULL ||
        fputs("myhostname = client.example\n"
              "smtp_tls_security_level = none\n"
              "smtp_sasl_auth_enable = no\n",
              fp) == EOF ||
        fclose(fp) != 0)
        msg_fatal("%s: %m", path);
    if (params_load(path, why) == NULL)
        msg_fatal("%s", vstr_str(why));
    (void)unlink(path);
    (void)rmdir(dir);
    vstr_free(why);
}

/* policy_kept - a relay's TLS policy is parsed at the first lookup, then kept */
static void policy_kept(void)
{
    VSTR *why = vstr_alloc(64);
    const TLS_POLICY *first = tls_policy("relay.example", 25, why);
    const TLS_POLICY *again = tls_policy("relay.example", 25, why);
    const TLS_POLICY *other = tls_policy("relay.example", 587, why);

    tap_ok(first != NULL && first->level == TLS_POLICY_NONE, "TLS policy: the global level none");
    tap_ok(again == first, "TLS policy: the second lookup for the relay finds the parsed one");
    tap_ok(other != NULL && other != first, "TLS policy: another port is another entry");
    vstr_free(why);
}

int main(void)
{
    static SESSION *s; /* for the life of the program */
    ADDR_CACHE *cache;

    if (sodium_init() < 0)
        msg_fatal("sodium_init failed");
    load_config();
    events = vstr_alloc(128);
    cache = addr_cache_create(60000);
    s = session_create(&hooks, NULL, NULL, cache);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(s, &cases[i]);
    policy_kept();
    vstr_free(events);
    return tap_done();
}
