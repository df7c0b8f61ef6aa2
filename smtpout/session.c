/*
 * session - the SMTP client: one persistent connection, many transactions
 *
 * session_init()
 *	set up the worker's one session; `done` is called with each job the
 *	session finishes (every recipient decided, delivery lines logged).
 * session_deliver()
 *	hand the session a job. It runs on the open connection when that
 *	goes to the same relay and port and is young enough; otherwise the
 *	connection is retired (QUIT) and a new one opened. The job's outcome
 *	comes back through `done`, always from an event-loop callback, never
 *	from inside session_deliver().
 * session_busy()
 *	whether a job is in the session.
 * session_is_open()
 *	whether the connection stays open for the next job (the result's
 *	conn=open|closed).
 * session_shutdown()
 *	stop: when no job is in flight, QUIT, close, then call fn.
 * session_reload()
 *	after a configuration reload: a connection whose identity (relay,
 *	port, TLS policy, credential) changed is retired -- at once when
 *	idle, else before the next job (close reason "reload").
 * session_held_dest()
 *	"relay:port" of the open connection, for the "held" event that
 *	follows the worker's introduction to a restarted qmgr.
 *
 * The client is non-blocking and driven by the event loop. Every wait
 * has the timeout of its stage (Postfix's smtp_*_timeout parameters; the
 * body's timer restarts whenever a write makes progress). With
 * PIPELINING, MAIL FROM, the RCPT TO commands (at most SESSION_RCPT_WINDOW
 * unanswered at a time) and DATA after the last of them go out without
 * waiting, and the replies are matched in order; without it, one command
 * per reply. A RCPT TO answered with 452 or 4.5.3 ("too many recipients")
 * ends the list: no further RCPT TO is sent (those already in flight are
 * answered as they come), the recipients not tried are deferred with
 * 4.5.3 for qmgr to send in another transaction, and the accepted ones
 * get DATA. The sender's DSN requests (RFC 3461 RET, ENVID, NOTIFY,
 * ORCPT) go upstream only when the relay's EHLO offered DSN; the job then
 * notes that the relay took over the notices (upstream_dsn in the result).
 *
 * A connection that was used before and dies before the server accepted
 * anything of the current job (end of file, reset, or 421 in reply to
 * MAIL FROM) is not a delivery failure: the job is retried once, at once,
 * on a fresh connection. While idle the connection is kept alive with
 * NOOP every smtp_keepalive_interval and retired after
 * smtp_connection_idle_timeout, after smtp_connection_reuse_count_limit
 * messages, (checked before a job) after smtp_connection_reuse_time_limit
 * seconds, or after SESSION_DEFERRED_ROW transactions in a row in which
 * the relay deferred every recipient (reason "deferrals": qmgr slows the
 * destination down, as for a throttling reply).
 *
 * Connection setup is: TCP, (implicit TLS,) greeting, EHLO, STARTTLS and
 * the TLS handshake and EHLO again (smtp_tls_security_level), AUTH once
 * (smtp_sasl_auth_enable; never without TLS), then job after job. A job
 * runs on the open connection only when its identity -- relay, port, TLS
 * policy and credential -- is the connection's; otherwise the connection
 * is retired ("switch"). At level may a failed handshake costs nothing:
 * the job is retried at once on one plaintext connection. Every change
 * of the connection is reported to qmgr (smtpout_conn_event(): open,
 * tls, auth_ok, auth_fail, timeout, close with its reason). Output that
 * carried a secret (AUTH) is wiped from the buffer once written.
 *
 * Upstream faults (doc/relayq.conf.5, UPSTREAM FAULTS): a 5xx to MAIL
 * FROM, RCPT TO, DATA or the final dot bounces; a 4xx, a 421, a reply
 * out of place, a malformed reply, a lost connection, a stage timeout or
 * any failure of the setup (greeting, EHLO/HELO, STARTTLS, TLS, AUTH)
 * defers. The AUTH dialogue as a whole has one smtp_helo_timeout, and a
 * 334 after the client's "*" ends it, so a server that never stops
 * challenging cannot hold the worker. A job that arrives while NOOP or
 * RSET waits for its reply gives it SESSION_HURRY_WAIT at most. A reply's
 * text is quoted in a recipient's reason up to SESSION_QUOTE_MAX bytes.
 *
 * Ownership: the session owns its connection and buffers; it borrows
 * the job from session_deliver() until it passes it to `done`.
 * Failures of the relay or the network become recipient outcomes, never
 * fatal; a state that should not occur is a panic.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "fault.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtp_reply.h"
#include "smtpout.h"

#define SESSION_READ_CHUNK 16384
#define SESSION_HURRY_WAIT 5000 /* ms for the reply to QUIT, NOOP or RSET when a job waits */
#define SESSION_QUOTE_MAX 800   /* bytes of a reply's text quoted in a reason */
#define SESSION_RCPT_WINDOW 100 /* RCPT TO commands in flight with PIPELINING */
#define SESSION_DEFERRED_ROW 3  /* transactions all deferred in a row that retire a connection */

/* What to do with the connection once a job is finished. */
typedef enum {
    AFTER_IDLE,  /* keep it for the next job */
    AFTER_RSET,  /* reset the aborted transaction, then keep it */
    AFTER_QUIT,  /* say goodbye and close */
    AFTER_CLOSE, /* close at once (421, timeout, lost) */
    AFTER_NONE   /* there is no connection */
} SESS_AFTER;

/* Per state: what we were doing (for "while ..."), the command a reply
 * answers (for "in reply to ..."), and the timeout parameter. */
static const struct {
    const char *doing;
    const char *command;
    const char *timeout;
} session_stage[SESS_STATE_COUNT] = {
    [SESS_CLOSED] = {"doing nothing", "", NULL},
    [SESS_CONNECTING] = {"connecting", "", "smtp_connect_timeout"},
    [SESS_GREETING] = {"receiving the initial server greeting", "", "smtp_helo_timeout"},
    [SESS_EHLO] = {"performing the EHLO handshake", "EHLO", "smtp_helo_timeout"},
    [SESS_HELO] = {"performing the HELO handshake", "HELO", "smtp_helo_timeout"},
    [SESS_STARTTLS] = {"sending STARTTLS", "STARTTLS", "smtp_helo_timeout"},
    [SESS_TLS] = {"performing the TLS handshake", "", "smtp_starttls_timeout"},
    [SESS_AUTH] = {"performing SASL authentication", "AUTH", "smtp_helo_timeout"},
    [SESS_IDLE] = {"idle", "", NULL},
    [SESS_NOOP] = {"sending NOOP", "NOOP", "smtp_mail_timeout"},
    [SESS_MAIL] = {"sending MAIL FROM", "MAIL FROM", "smtp_mail_timeout"},
    [SESS_RCPT] = {"sending RCPT TO", "RCPT TO", "smtp_rcpt_timeout"},
    [SESS_DATA] = {"sending DATA command", "DATA", "smtp_data_init_timeout"},
    [SESS_BODY] = {"sending message body", "end of DATA", "smtp_data_xfer_timeout"},
    [SESS_DOT] = {"sending end of data -- message may be sent more than once", "end of DATA",
                  "smtp_data_done_timeout"},
    [SESS_RSET] = {"sending RSET", "RSET", "smtp_mail_timeout"},
    [SESS_QUIT] = {"sending QUIT", "QUIT", "smtp_quit_timeout"},
};

static SESSION sess;

/* The RCPT TO commands of the transaction in flight. */
static struct {
    size_t sent;   /* RCPT TO commands written */
    int data_sent; /* DATA was written after the last of them (PIPELINING) */
    int limited;   /* the relay takes no more recipients in this transaction */
} rcpt_batch;

static void session_event(int fd, int events, void *ctx);
static void session_kick(void *ctx);
static void session_timeout(void *ctx);
static void session_keepalive(void *ctx);
static void session_idle_expire(void *ctx);
static void session_write_failed(void *ctx);
static void session_quit(const char *reason);
static void session_setup_next(void);
static void session_tls_step(void);
static void session_read_again(void *ctx);
static void session_protocol_error(const char *why);
static void session_rcpt_refill(void);

/* session_init - the worker's one session, closed */
void session_init(SESSION_DONE_FN done)
{
    memset(&sess, 0, sizeof(sess));
    sess.state = SESS_CLOSED;
    sess.label = vstr_alloc(64);
    sess.relay_text = vstr_alloc(64);
    sess.in = vstr_alloc(SESSION_READ_CHUNK);
    sess.out = vstr_alloc(SESSION_READ_CHUNK);
    sess.parser = smtp_reply_parser_create();
    sess.reply = smtp_reply_alloc();
    sess.done = done;
}

/* session_busy - is a job in the session */
int session_busy(void)
{
    return sess.job != NULL;
}

/* session_is_open - will the connection carry another job */
int session_is_open(void)
{
    return sess.conn != NULL && sess.state != SESS_QUIT;
}

/* session_request_kick - look for work on the next pass, outside any callback chain */
static void session_request_kick(void)
{
    event_request_timer(session_kick, NULL, 0);
}

/* session_arm - enter a state and start its timer */
static void session_arm(SESS_STATE state)
{
    const char *param = session_stage[state].timeout;

    sess.state = state;
    if (param != NULL)
        event_request_timer(session_timeout, NULL, config_int(var_config, param) * 1000LL);
    else
        event_cancel_timer(session_timeout, NULL);
}

/* session_out_reset - forget unwritten output; wipe it when it held a secret */
static void session_out_reset(void)
{
    if (sess.out_secret) {
        sodium_memzero(sess.out->data, sess.out->cap);
        sess.out_secret = 0;
    }
    sess.out_off = 0;
    vstr_reset(sess.out);
}

/* session_close - drop the connection without a goodbye; `reason` (or the one set before) for qmgr
 */
static void session_close(const char *reason)
{
    if (sess.conn != NULL) {
        event_disable_readwrite(sess.conn->fd);
        conn_close(sess.conn);
        sess.conn = NULL;
    }
    if (sess.announced)
        smtpout_conn_event("close", sess.dest,
                           reason              ? reason
                           : sess.close_reason ? sess.close_reason
                                               : "error",
                           sess.msgs, 0);
    sess.announced = 0;
    sess.close_reason = NULL;
    myfree(sess.dest);
    sess.dest = NULL;
    myfree(sess.tls_cache_key);
    sess.tls_cache_key = NULL;
    sess.tls_on = 0;
    sess.tls_declined = 0;
    sess.auth_mechs = 0;
    sess.authed = 0;
    auth_end(&sess.auth);
    sess.stale = 0;
    memset(sess.ident, 0, sizeof(sess.ident));
    event_cancel_timer(session_timeout, NULL);
    event_cancel_timer(session_keepalive, NULL);
    event_cancel_timer(session_idle_expire, NULL);
    event_cancel_timer(session_write_failed, NULL);
    event_cancel_timer(session_read_again, NULL);
    myfree(sess.host);
    sess.host = NULL;
    sess.gen++;
    sess.state = SESS_CLOSED;
    sess.job_active = 0;
    sess.features = 0;
    sess.size_limit = 0;
    sess.msgs = 0;
    sess.deferred_row = 0;
    sess.out_error = 0;
    session_out_reset();
    vstr_reset(sess.in);
    smtp_reply_parser_reset(sess.parser);
    session_request_kick();
}

/* session_flush - write what the transport takes; watch for room when it takes less */
static void session_flush(void)
{
    int progress = 0;

    while (sess.conn != NULL && sess.out_off < vstr_len(sess.out)) {
        ssize_t n = conn_write(sess.conn, vstr_str(sess.out) + sess.out_off,
                               vstr_len(sess.out) - sess.out_off);

        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            /* Report from a timer: callers are in the middle of a reply or a job. */
            sess.out_error = n < 0 ? errno : EPIPE;
            session_out_reset();
            event_disable_write(sess.conn->fd);
            event_request_timer(session_write_failed, NULL, 0);
            return;
        }
        sess.out_off += (size_t)n;
        progress = 1;
    }
    if (sess.conn == NULL)
        return;
    if (sess.out_off < vstr_len(sess.out)) {
        event_enable_write(sess.conn->fd, session_event, NULL);
        /* No progress for smtp_data_xfer_timeout is what times out a body. */
        if (progress && sess.state == SESS_BODY)
            session_arm(SESS_BODY);
        return;
    }
    session_out_reset();
    event_disable_write(sess.conn->fd);
    if (sess.state == SESS_BODY)
        session_arm(SESS_DOT);
}

/* session_send - queue one command line (CRLF added) and start writing */
static void __attribute__((format(printf, 1, 2))) session_send(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vstr_vsprintf_append(sess.out, fmt, ap);
    va_end(ap);
    vstr_strcat(sess.out, "\r\n");
    session_flush();
}

/*
 * session_reply_text - the reply on one line as the server spoke it: "CODE
 * X.Y.Z text" when it gave an enhanced status code, "CODE text" when not (the
 * code relayq derives for it goes into dsn=, never into the quote)
 */
static void session_reply_text(const SMTP_REPLY *reply, VSTR *out)
{
    size_t len = vstr_len(reply->text);

    vstr_sprintf(out, "%d", reply->code);
    if (reply->dsn[0] != '\0')
        vstr_sprintf_append(out, " %s", reply->dsn);
    if (len > 0) {
        vstr_addch(out, ' ');
        /* A reply may run to megabytes; the reason around it must stay readable. */
        for (size_t i = 0; i < len && i < SESSION_QUOTE_MAX; i++) {
            char ch = vstr_str(reply->text)[i];

            vstr_addch(out, ch == '\n' ? ' ' : ch);
        }
        if (len > SESSION_QUOTE_MAX)
            vstr_strcat(out, "...");
    }
}

/* session_reply_dsn - the reply's status code, forced into the class of the outcome */
static void session_reply_dsn(const SMTP_REPLY *reply, int status, char *dsn, size_t size)
{
    char want = status == JOB_SENT ? '2' : status == JOB_BOUNCED ? '5' : '4';

    smtp_reply_default_dsn(reply, dsn, size);
    if (dsn[0] != want)
        snprintf(dsn, size, "%c.0.0", want);
}

/* session_reply_status - the recipient outcome a final reply means */
static int session_reply_status(const SMTP_REPLY *reply)
{
    switch (reply->code / 100) {
    case 2:
        return JOB_SENT;
    case 5:
        return JOB_BOUNCED;
    default:
        return JOB_DEFERRED;
    }
}

/* session_reply_explain - Postfix's reason text for a reply to the current stage */
static void session_reply_explain(const SMTP_REPLY *reply, VSTR *text)
{
    VSTR *quoted = vstr_alloc(128);

    session_reply_text(reply, quoted);
    if (sess.state == SESS_GREETING)
        vstr_sprintf(text, "host %s refused to talk to me: %s", vstr_str(sess.label),
                     vstr_str(quoted));
    else
        vstr_sprintf(text, "host %s said: %s (in reply to %s command)", vstr_str(sess.label),
                     vstr_str(quoted), session_stage[sess.state].command);
    vstr_free(quoted);
}

/* session_reply_fail - decide undecided recipients (all, or the accepted ones) by a reply */
static void session_reply_fail(const SMTP_REPLY *reply, int status, int only_accepted)
{
    VSTR *text = vstr_alloc(128);
    char dsn[16];

    session_reply_explain(reply, text);
    session_reply_dsn(reply, status, dsn, sizeof(dsn));
    for (size_t i = 0; i < sess.job->nrcpt; i++)
        if (!only_accepted || sess.job->rcpts[i].accepted)
            job_set(sess.job, i, status, dsn, vstr_str(text));
    vstr_free(text);
}

/* session_enter_idle - the connection waits for the next job */
static void session_enter_idle(int fresh)
{
    long long limit = var_int(smtp_connection_reuse_count_limit);
    long long keepalive = var_int(smtp_keepalive_interval);
    long long idle = var_int(smtp_connection_idle_timeout);

    session_arm(SESS_IDLE);
    sess.job_active = 0; /* a waiting job starts its transaction from session_kick() */
    if (fresh)
        sess.idle_since = now_ms();
    if (limit > 0 && sess.msgs >= limit && sess.job == NULL) {
        if (msg_verbose)
            msg_info("connection to %s: %u messages, reuse count limit reached",
                     vstr_str(sess.relay_text), sess.msgs);
        session_quit("reuse_count");
        return;
    }
    if (sess.job != NULL || sess.stop_fn != NULL) {
        session_request_kick();
        return;
    }
    if (keepalive > 0)
        event_request_timer(session_keepalive, NULL, keepalive * 1000);
    event_request_timer(session_idle_expire, NULL, sess.idle_since + idle * 1000 - now_ms());
}

/*
 * session_hurry - a job or a stopping worker waits for the reply to QUIT,
 * NOOP or RSET: a relay that stalls there must not hold it for the whole
 * stage timeout (up to smtp_mail_timeout or smtp_quit_timeout, minutes);
 * the timeout closes the connection and the job goes on a new one
 */
static void session_hurry(void)
{
    const char *param = session_stage[sess.state].timeout;

    if ((sess.state != SESS_QUIT && sess.state != SESS_NOOP && sess.state != SESS_RSET) ||
        (sess.job == NULL && sess.stop_fn == NULL))
        return;
    if (config_int(var_config, param) * 1000LL > SESSION_HURRY_WAIT)
        event_request_timer(session_timeout, NULL, SESSION_HURRY_WAIT);
}

/* session_quit - say goodbye; the connection closes on the reply */
static void session_quit(const char *reason)
{
    if (reason != NULL)
        sess.close_reason = reason;
    event_cancel_timer(session_keepalive, NULL);
    event_cancel_timer(session_idle_expire, NULL);
    session_arm(SESS_QUIT);
    session_hurry();
    session_send("QUIT");
}

/* session_job_done - settle the connection, log and report the job */
static void session_job_done(SESS_AFTER after)
{
    JOB *job = sess.job;

    if (job == NULL)
        msg_panic("session_job_done: no job");
    if (job_pending(job) > 0) /* every path decides every recipient before it ends */
        msg_panic("session_job_done: %s: %zu recipients undecided", job->queue_id,
                  job_pending(job));
    sess.job = NULL;
    sess.job_active = 0;
    if (after == AFTER_IDLE || after == AFTER_RSET) {
        size_t sent = 0, deferred = 0;

        for (size_t i = 0; i < job->nrcpt; i++) {
            sent += job->rcpts[i].status == JOB_SENT;
            deferred += job->rcpts[i].status == JOB_DEFERRED;
        }
        sess.deferred_row = sent == 0 && deferred > 0 ? sess.deferred_row + 1 : 0;
        if (sess.deferred_row >= SESSION_DEFERRED_ROW) {
            /* A connection that only gets "later" is worth a fresh one. */
            msg_info("connection to %s: %u transactions in a row deferred: closing it",
                     vstr_str(sess.relay_text), sess.deferred_row);
            sess.close_reason = "deferrals";
            after = AFTER_QUIT;
        }
    }
    switch (after) {
    case AFTER_IDLE:
        session_enter_idle(1);
        break;
    case AFTER_RSET:
        session_arm(SESS_RSET);
        session_send("RSET");
        break;
    case AFTER_QUIT:
        session_quit(NULL);
        break;
    case AFTER_CLOSE:
        session_close(NULL);
        break;
    case AFTER_NONE:
        break;
    }
    job_log(job);
    sess.done(job);
}

/* session_retry - the reused connection was dead: run the job again on a new one */
static void session_retry(const char *why, const char *reason)
{
    JOB *job = sess.job;

    msg_info("%s: connection to %s was closed by the server (%s) before the transaction "
             "started; retrying on a new connection",
             job->queue_id, vstr_str(sess.relay_text), why);
    job->retried = 1;
    job->setup_start = wall_ms();
    job->setup_ms = 0;
    job->xfer_start = 0;
    job->conn_use = 0;
    vstr_strcpy(job->relay_text, "none");
    for (size_t i = 0; i < job->nrcpt; i++)
        job->rcpts[i].accepted = 0;
    sess.msgs--; /* the connection did not carry this one */
    session_close(reason);
}

/* session_can_retry - is this failure the "stale reused connection" case */
static int session_can_retry(void)
{
    return sess.job != NULL && sess.job_active && sess.state == SESS_MAIL && sess.reused &&
           !sess.mail_ok && !sess.job->retried;
}

/* session_lost - end of file, reset or write failure */
static void session_lost(const char *detail)
{
    VSTR *text;

    if (sess.state == SESS_IDLE || sess.state == SESS_NOOP) {
        msg_info("connection to %s closed by server while idle", vstr_str(sess.relay_text));
        session_close("server_close");
        return;
    }
    if (sess.job == NULL || !sess.job_active) {
        session_close(sess.state == SESS_QUIT ? NULL : "server_close");
        return;
    }
    if (session_can_retry()) {
        session_retry(detail, "server_close");
        return;
    }
    text = vstr_alloc(128);
    vstr_sprintf(text, "lost connection with %s while %s", vstr_str(sess.label),
                 session_stage[sess.state].doing);
    job_fail_pending(sess.job, JOB_DEFERRED, "4.4.2", vstr_str(text));
    vstr_free(text);
    sess.close_reason = "server_close";
    session_job_done(AFTER_CLOSE);
}

/* session_write_failed - a write failed earlier in this pass */
static void session_write_failed(void *ctx)
{
    (void)ctx;
    if (sess.conn != NULL)
        session_lost(strerror(sess.out_error));
}

/* session_connect_failed - decide the job after a failed TCP connection */
static void session_connect_failed(const char *addr, const char *why)
{
    VSTR *text = vstr_alloc(128);
    JOB *job = sess.job;

    if (addr[0] != '\0') {
        vstr_sprintf(text, "connect to %s[%s]:%u: %s", job->relay, addr, job->port, why);
        job_fail_pending(job, JOB_DEFERRED, "4.4.1", vstr_str(text));
    } else {
        job_fail_pending(job, JOB_DEFERRED, "4.4.3", why);
    }
    vstr_free(text);
    vstr_strcpy(job->relay_text, "none");
    session_close(NULL);
    session_job_done(AFTER_NONE);
}

/* session_timeout - the current stage took too long */
static void session_timeout(void *ctx)
{
    VSTR *text;

    (void)ctx;
    if (sess.state != SESS_CLOSED && sess.state != SESS_IDLE && sess.dest != NULL)
        smtpout_conn_event("timeout", sess.dest, NULL, 0, 0);
    switch (sess.state) {
    case SESS_CONNECTING:
        session_connect_failed(sess.conn->addr, "Connection timed out");
        return;
    case SESS_NOOP:
        msg_info("connection to %s: no reply to NOOP while idle; closing",
                 vstr_str(sess.relay_text));
        session_close("error");
        return;
    case SESS_QUIT:
        session_close(NULL);
        return;
    case SESS_RSET:
        session_close("error");
        return;
    case SESS_CLOSED:
    case SESS_IDLE:
    case SESS_STATE_COUNT:
        msg_panic("session_timeout: in state %d", (int)sess.state);
    default:
        break;
    }
    if (sess.job == NULL || !sess.job_active)
        msg_panic("session_timeout: state %d without a job", (int)sess.state);
    text = vstr_alloc(128);
    vstr_sprintf(text, "conversation with %s timed out while %s", vstr_str(sess.label),
                 session_stage[sess.state].doing);
    job_fail_pending(sess.job, JOB_DEFERRED, "4.4.2", vstr_str(text));
    vstr_free(text);
    sess.close_reason = "error";
    session_job_done(AFTER_CLOSE);
}

/* session_keepalive - a NOOP so that middleboxes and the relay keep the connection */
static void session_keepalive(void *ctx)
{
    (void)ctx;
    if (sess.state != SESS_IDLE || sess.job != NULL)
        return;
    event_cancel_timer(session_idle_expire, NULL);
    session_arm(SESS_NOOP);
    session_send("NOOP");
}

/* session_idle_expire - idle too long: retire the connection */
static void session_idle_expire(void *ctx)
{
    (void)ctx;
    if (sess.state != SESS_IDLE || sess.job != NULL)
        return;
    if (msg_verbose)
        msg_info("connection to %s: idle timeout", vstr_str(sess.relay_text));
    event_cancel_timer(session_keepalive, NULL);
    session_quit("idle");
}

/* session_tls_level - smtp_tls_security_level as a number */
static int session_tls_level(void)
{
    const char *level = var_str(smtp_tls_security_level);

    if (strcmp(level, "none") == 0)
        return SESS_TLS_NONE;
    if (strcmp(level, "encrypt") == 0)
        return SESS_TLS_ENCRYPT;
    if (strcmp(level, "verify") == 0)
        return SESS_TLS_VERIFY;
    return SESS_TLS_MAY;
}

/*
 * session_identity - what a connection for this relay would be: relay,
 * port, TLS policy (level, wrappermode, CA file) and credential (user and
 * secret, as the keyed hash). -1 with the reason when AUTH is on and there
 * is no credential, or its last AUTH failed moments ago.
 */
static int session_identity(const char *relay, unsigned port, unsigned char *ident, VSTR *why)
{
    crypto_generichash_state state;
    SASL_CRED *cred = NULL;
    VSTR *text = vstr_alloc(128);
    const char *failed;

    vstr_sprintf(text, "%s:%u:%d:%d:", relay, port, session_tls_level(),
                 var_bool(smtp_tls_wrappermode));
    /* Lower case for the relay; the CA file name (a path) is added as written. */
    for (size_t i = 0; i < vstr_len(text); i++)
        text->data[i] = (char)tolower((unsigned char)text->data[i]);
    vstr_addch(text, '\0');
    crypto_generichash_init(&state, NULL, 0, SASL_ID_LEN);
    vstr_strcat(text, var_str(smtp_tls_CAfile));
    crypto_generichash_update(&state, (const unsigned char *)vstr_str(text), vstr_len(text));
    vstr_free(text);
    if (var_bool(smtp_sasl_auth_enable)) {
        if (auth_lookup(relay, port, &cred, why) < 0)
            return -1;
        crypto_generichash_update(&state, cred->id, sizeof(cred->id));
    }
    crypto_generichash_final(&state, ident, SASL_ID_LEN);
    if (cred != NULL && (failed = auth_fail_cached(ident, cred)) != NULL) {
        vstr_strcpy(why, failed);
        return -1;
    }
    return 0;
}

/* session_open - start a connection for the job */
static void session_open(const unsigned char *ident)
{
    JOB *job = sess.job;
    VSTR *why = vstr_alloc(128);
    char addr[64];
    CONN *conn;

    conn = conn_connect(job->relay, job->port, addr, sizeof(addr), why);
    if (conn == NULL) {
        sess.job_active = 1;
        session_connect_failed(addr, vstr_str(why));
        vstr_free(why);
        return;
    }
    vstr_free(why);
    sess.conn = conn;
    sess.host = mystrdup(job->relay);
    sess.port = job->port;
    vstr_sprintf(sess.label, "%s[%s]", job->relay, conn->addr);
    vstr_sprintf(sess.relay_text, "%s[%s]:%u", job->relay, conn->addr, job->port);
    sess.opened_ms = now_ms();
    sess.msgs = 0;
    sess.job_active = 1;
    memcpy(sess.ident, ident, SASL_ID_LEN);
    sess.dest = mymalloc(strlen(job->relay) + 16);
    sprintf(sess.dest, "%s:%u", job->relay, job->port);
    sess.tls_level = session_tls_level();
    sess.wrapper = var_bool(smtp_tls_wrappermode);
    /* A session verified under other trust anchors must not be resumed under these. */
    sess.tls_cache_key = mymalloc(strlen(sess.dest) + strlen(var_str(smtp_tls_CAfile)) + 32);
    sprintf(sess.tls_cache_key, "%s:%d:%d:%s", sess.dest, sess.tls_level, sess.wrapper,
            var_str(smtp_tls_CAfile));
    /* Level may after a failed handshake: this one connection goes without TLS. */
    if (sess.plain_once && !sess.wrapper && memcmp(sess.plain_ident, ident, SASL_ID_LEN) == 0)
        sess.tls_declined = 1;
    sess.plain_once = 0;
    event_enable_write(conn->fd, session_event, NULL);
    session_arm(SESS_CONNECTING);
}

/* session_tls_begin - start the handshake on the connected socket */
static void session_tls_begin(void)
{
    VSTR *why = vstr_alloc(128);
    VSTR *text;

    /* Whatever came in plaintext after "220 ready to start TLS" must not be believed. */
    vstr_reset(sess.in);
    smtp_reply_parser_reset(sess.parser);
    if (tls_start(sess.conn, sess.host, sess.tls_cache_key, sess.tls_level == SESS_TLS_VERIFY,
                  why) < 0) {
        text = vstr_alloc(128);
        vstr_sprintf(text, "Cannot start TLS: %s", vstr_str(why));
        job_fail_pending(sess.job, JOB_DEFERRED, "4.7.5", vstr_str(text));
        vstr_free(text);
        vstr_free(why);
        sess.close_reason = "error";
        session_job_done(AFTER_CLOSE);
        return;
    }
    vstr_free(why);
    session_arm(SESS_TLS);
    event_enable_read(sess.conn->fd, session_event, NULL);
    session_tls_step();
}

/* session_tls_failed - the handshake failed: defer, or at level may retry without TLS */
static void session_tls_failed(int ret, const char *why)
{
    JOB *job = sess.job;
    VSTR *text = vstr_alloc(128);

    tls_forget_session(sess.tls_cache_key);
    if (ret == TLS_HS_UNTRUSTED || ret == TLS_HS_UNVERIFIED) {
        vstr_sprintf(text, "Server certificate not %s: host %s: %s",
                     ret == TLS_HS_UNTRUSTED ? "trusted" : "verified", vstr_str(sess.label), why);
    } else if (sess.tls_level == SESS_TLS_MAY && !sess.wrapper && !job->retried) {
        /* Opportunistic TLS must not cost the mail: once more, in plaintext. */
        msg_info("%s: TLS handshake with %s failed: %s; retrying on a new connection without "
                 "TLS",
                 job->queue_id, vstr_str(sess.relay_text), why);
        sess.plain_once = 1;
        memcpy(sess.plain_ident, sess.ident, SASL_ID_LEN);
        job->retried = 1;
        job->setup_ms = 0;
        job->xfer_start = 0;
        job->conn_use = 0;
        vstr_strcpy(job->relay_text, "none");
        vstr_free(text);
        session_close("error");
        return;
    } else {
        vstr_sprintf(text, "Cannot start TLS: handshake failure with host %s: %s",
                     vstr_str(sess.label), why);
    }
    job_fail_pending(job, JOB_DEFERRED, "4.7.5", vstr_str(text));
    vstr_free(text);
    sess.close_reason = "error";
    session_job_done(AFTER_CLOSE);
}

/* session_tls_step - advance the handshake; go on with SMTP when it is done */
static void session_tls_step(void)
{
    VSTR *why = vstr_alloc(128);
    VSTR *desc;
    int ret = tls_handshake(sess.conn, why);

    if (ret == TLS_HS_AGAIN) {
        if (tls_want_write(sess.conn))
            event_enable_write(sess.conn->fd, session_event, NULL);
        else
            event_disable_write(sess.conn->fd);
        vstr_free(why);
        return;
    }
    if (ret != TLS_HS_DONE) {
        session_tls_failed(ret, vstr_str(why));
        vstr_free(why);
        return;
    }
    vstr_free(why);
    event_disable_write(sess.conn->fd);
    sess.tls_on = 1;
    desc = vstr_alloc(128);
    tls_describe(sess.conn, desc);
    msg_info("%s TLS connection established to %s: %s%s", tls_trust(sess.conn),
             vstr_str(sess.relay_text), vstr_str(desc),
             tls_resumed(sess.conn) ? " (session resumed)" : "");
    vstr_free(desc);
    smtpout_conn_event("tls", sess.dest, NULL, 0, tls_resumed(sess.conn));
    if (sess.wrapper) {
        session_arm(SESS_GREETING);
        /* The greeting may have come with the handshake and wait inside GnuTLS. */
        event_request_timer(session_read_again, NULL, 0);
        return;
    }
    /* RFC 3207: forget what the server said before TLS, and ask again. */
    sess.features = 0;
    sess.size_limit = 0;
    sess.auth_mechs = 0;
    session_arm(SESS_EHLO);
    session_send("EHLO %s", var_str(smtp_helo_name));
}

/* session_setup_fail - the connection cannot serve the job: decide it, say goodbye */
static void session_setup_fail(const char *dsn, const char *text)
{
    if (sess.job == NULL || !sess.job_active) {
        msg_warn("connection to %s: %s", vstr_str(sess.relay_text), text);
        session_quit("error");
        return;
    }
    job_fail_pending(sess.job, JOB_DEFERRED, dsn, text);
    sess.close_reason = "error";
    session_job_done(AFTER_QUIT);
}

/* session_setup_next - after EHLO: STARTTLS, then AUTH, then ready for jobs */
static void session_setup_next(void)
{
    VSTR *text;
    SASL_CRED *cred;

    if (!sess.tls_on && !sess.tls_declined && sess.tls_level != SESS_TLS_NONE) {
        if (sess.features & SESS_FEAT_STARTTLS) {
            session_arm(SESS_STARTTLS);
            session_send("STARTTLS");
            return;
        }
        if (sess.tls_level >= SESS_TLS_ENCRYPT) {
            text = vstr_alloc(128);
            vstr_sprintf(text, "TLS is required, but was not offered by host %s",
                         vstr_str(sess.label));
            session_setup_fail("4.7.4", vstr_str(text));
            vstr_free(text);
            return;
        }
    }
    if (var_bool(smtp_sasl_auth_enable) && !sess.authed) {
        text = vstr_alloc(128);
        /* Whatever the TLS level says: no secret crosses an unencrypted connection. */
        if (!sess.tls_on) {
            vstr_sprintf(text,
                         "SASL authentication refused: TLS is not active on the connection "
                         "to %s",
                         vstr_str(sess.label));
            session_setup_fail("4.7.0", vstr_str(text));
            vstr_free(text);
            return;
        }
        if (sess.features & SESS_FEAT_AUTH) {
            if (auth_lookup(sess.host, sess.port, &cred, text) < 0) {
                session_setup_fail("4.7.0", vstr_str(text));
                vstr_free(text);
                return;
            }
            if (auth_start(&sess.auth, cred, sess.auth_mechs, sess.out, text) < 0) {
                VSTR *reason = vstr_alloc(128);

                vstr_sprintf(reason,
                             "SASL authentication failed; cannot authenticate to server "
                             "%s: %s",
                             vstr_str(sess.label), vstr_str(text));
                session_setup_fail("4.7.0", vstr_str(reason));
                vstr_free(reason);
                vstr_free(text);
                return;
            }
            vstr_free(text);
            if (msg_verbose)
                msg_info("> %s: AUTH %s (credentials not shown)", vstr_str(sess.label),
                         auth_mech_name(sess.auth.mech));
            sess.out_secret = 1;
            session_arm(SESS_AUTH);
            session_flush();
            return;
        }
        vstr_free(text);
        if (msg_verbose)
            msg_info("%s offers no AUTH: sending without authentication",
                     vstr_str(sess.relay_text));
    }
    session_enter_idle(1);
}

/* session_auth_reply - the server's answer in the AUTH dialogue */
static void session_auth_reply(const SMTP_REPLY *reply)
{
    VSTR *text, *quoted;
    char dsn[16];

    if (reply->code == 334) {
        size_t before = vstr_len(sess.out);

        /* The stage timer keeps running: the whole dialogue has smtp_helo_timeout. */
        auth_continue(&sess.auth, sess.out);
        if (vstr_len(sess.out) == before) {
            session_protocol_error("334 challenge after the client cancelled the AUTH exchange");
            return;
        }
        sess.out_secret = 1;
        session_flush();
        return;
    }
    if (reply->code / 100 == 2) {
        if (msg_verbose)
            msg_info("%s: authenticated with %s", vstr_str(sess.relay_text),
                     auth_mech_name(sess.auth.mech));
        auth_end(&sess.auth);
        sess.authed = 1;
        smtpout_conn_event("auth_ok", sess.dest, NULL, 0, 0);
        session_enter_idle(1);
        return;
    }
    smtpout_conn_event("auth_fail", sess.dest, NULL, 0, 0);
    text = vstr_alloc(128);
    quoted = vstr_alloc(128);
    session_reply_text(reply, quoted);
    vstr_sprintf(text, "SASL authentication failed; server %s said: %s", vstr_str(sess.label),
                 vstr_str(quoted));
    vstr_free(quoted);
    /* A credentials problem is the operator's, never the message's: defer, class 4. */
    if (reply->dsn[0] != '\0')
        snprintf(dsn, sizeof(dsn), "4%s", reply->dsn + 1);
    else
        snprintf(dsn, sizeof(dsn), "4.7.0");
    msg_warn("%s", vstr_str(text));
    /* Only a rejected credential fails again at once; a 4xx (backend down) may pass next time. */
    if (reply->code / 100 == 5)
        auth_fail_remember(sess.ident, &sess.auth, vstr_str(text));
    auth_end(&sess.auth);
    session_setup_fail(dsn, vstr_str(text));
    vstr_free(text);
}

/* session_connected - the TCP handshake is over */
static void session_connected(void)
{
    VSTR *why = vstr_alloc(64);

    if (conn_connect_finish(sess.conn, why) < 0) {
        session_connect_failed(sess.conn->addr, vstr_str(why));
        vstr_free(why);
        return;
    }
    vstr_free(why);
    if (msg_verbose)
        msg_info("connected to %s", vstr_str(sess.relay_text));
    vstr_strcpy(sess.job->relay_text, vstr_str(sess.relay_text));
    event_disable_write(sess.conn->fd);
    event_enable_read(sess.conn->fd, session_event, NULL);
    if (sess.wrapper) { /* implicit TLS: the handshake comes before the greeting */
        session_tls_begin();
        return;
    }
    session_arm(SESS_GREETING);
}

/* session_begin - start the job's transaction on the idle connection */
static void session_begin(void)
{
    JOB *job = sess.job;
    long long now = wall_ms();
    size_t len = vstr_len(job->body);
    VSTR *text;

    event_cancel_timer(session_keepalive, NULL);
    event_cancel_timer(session_idle_expire, NULL);
    sess.job_active = 1;
    vstr_strcpy(job->relay_text, vstr_str(sess.relay_text));
    if (job->setup_start) {
        job->setup_ms = now - job->setup_start;
        job->xfer_start = now;
    }
    if ((sess.features & SESS_FEAT_SIZE) && sess.size_limit > 0 &&
        (long long)len > sess.size_limit) {
        text = vstr_alloc(128);
        vstr_sprintf(text, "message size %zu exceeds size limit %lld of server %s", len,
                     sess.size_limit, vstr_str(sess.label));
        job_fail_pending(job, JOB_BOUNCED, "5.3.4", vstr_str(text));
        vstr_free(text);
        session_job_done(AFTER_IDLE);
        return;
    }
    if (job->utf8 && !(sess.features & SESS_FEAT_SMTPUTF8)) {
        text = vstr_alloc(128);
        vstr_sprintf(text, "SMTPUTF8 is required, but was not offered by host %s",
                     vstr_str(sess.label));
        job_fail_pending(job, JOB_BOUNCED, "5.6.7", vstr_str(text));
        vstr_free(text);
        session_job_done(AFTER_IDLE);
        return;
    }
    job->conn_use = ++sess.msgs;
    sess.reused = job->conn_use > 1;
    sess.mail_ok = 0;
    sess.rcpt_replies = 0;
    sess.accepted = 0;
    sess.empty_data = 0;
    memset(&rcpt_batch, 0, sizeof(rcpt_batch));
    session_arm(SESS_MAIL);
    /* The relay takes over success notices only if it speaks DSN (qmgr's "relayed"). */
    job->upstream_dsn = (sess.features & SESS_FEAT_DSN) != 0;
    vstr_sprintf_append(sess.out, "MAIL FROM:<%s>", job->sender);
    if (sess.features & SESS_FEAT_SIZE)
        vstr_sprintf_append(sess.out, " SIZE=%zu", len);
    if (job->eightbit && (sess.features & SESS_FEAT_8BITMIME))
        vstr_strcat(sess.out, " BODY=8BITMIME");
    if (job->utf8)
        vstr_strcat(sess.out, " SMTPUTF8");
    if (job->upstream_dsn)
        job_mail_dsn(job, sess.out);
    vstr_strcat(sess.out, "\r\n");
    if (sess.features & SESS_FEAT_PIPELINING)
        session_rcpt_refill();
    session_flush();
}

/* session_kick - start the waiting job, or finish a shutdown, once the connection is free */
static void session_kick(void *ctx)
{
    JOB *job = sess.job;
    long long now = now_ms();
    long long wall = wall_ms();
    long long age_limit = var_int(smtp_connection_reuse_time_limit) * 1000LL;
    long long count_limit = var_int(smtp_connection_reuse_count_limit);
    unsigned char ident[SASL_ID_LEN];
    const char *reason = NULL;
    VSTR *why;

    (void)ctx;
    if (sess.state != SESS_CLOSED && sess.state != SESS_IDLE)
        return;
    if (job == NULL) {
        if (sess.stop_fn != NULL) {
            if (sess.state == SESS_IDLE) {
                session_quit("stop");
            } else {
                void (*fn)(void) = sess.stop_fn;

                sess.stop_fn = NULL;
                fn();
            }
        }
        return;
    }
    why = vstr_alloc(128);
    if (session_identity(job->relay, job->port, ident, why) < 0) {
        /* No credential, or it just failed: no connection can help this job now. */
        job->setup_start = 0;
        sess.job_active = 1;
        job_fail_pending(job, JOB_DEFERRED, "4.7.0", vstr_str(why));
        vstr_free(why);
        session_job_done(AFTER_NONE);
        return;
    }
    vstr_free(why);
    if (sess.state == SESS_CLOSED) {
        if (job->setup_start == 0)
            job->setup_start = wall;
        session_open(ident);
        return;
    }
    if (sess.stale)
        reason = "reload";
    else if (memcmp(sess.ident, ident, SASL_ID_LEN) != 0 ||
             strcasecmp(sess.host, job->relay) != 0 || sess.port != job->port)
        reason = "switch";
    else if (age_limit > 0 && now - sess.opened_ms >= age_limit)
        reason = "reuse_time";
    else if (count_limit > 0 && sess.msgs >= count_limit)
        reason = "reuse_count";
    if (reason != NULL) {
        if (msg_verbose)
            msg_info("retiring connection to %s (%u messages, %llds old, %s) for a job to %s:%u",
                     vstr_str(sess.relay_text), sess.msgs, (now - sess.opened_ms) / 1000, reason,
                     job->relay, job->port);
        if (job->setup_start == 0)
            job->setup_start = wall;
        session_quit(reason);
        return;
    }
    session_begin();
}

/* session_deliver - take a job */
void session_deliver(JOB *job)
{
    if (sess.job != NULL)
        msg_panic("session_deliver: a job is in flight");
    if (job->body == NULL)
        msg_panic("session_deliver: %s: no content", job->queue_id);
    sess.job = job;
    sess.job_active = 0;
    if (sess.state == SESS_QUIT) /* retiring anyway: do not make the job wait for the 221 */
        session_close(NULL);
    else
        session_hurry();
    session_request_kick();
}

/* session_shutdown - QUIT when the job in flight is done, then call fn */
void session_shutdown(void (*fn)(void))
{
    sess.stop_fn = fn;
    session_hurry();
    session_request_kick();
}

/* session_ehlo_features - remember the EHLO keywords that change what we send */
static void session_ehlo_features(const SMTP_REPLY *reply)
{
    const char *cp = vstr_str(reply->text);
    const char *end = cp + vstr_len(reply->text);
    const char *line, *eol;

    sess.features = 0;
    sess.size_limit = 0;
    sess.auth_mechs = 0;
    /* The first line is the server's name; each later line is one keyword. */
    if ((eol = memchr(cp, '\n', (size_t)(end - cp))) == NULL)
        return;
    for (line = eol + 1; line < end; line = eol + 1) {
        size_t len;

        if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
            eol = end;
        len = strcspn(line, " \n");
        if (line + len > eol)
            len = (size_t)(eol - line);
#define KEYWORD(word) (len == sizeof(word) - 1 && strncasecmp(line, word, len) == 0)
        if (KEYWORD("PIPELINING"))
            sess.features |= SESS_FEAT_PIPELINING;
        else if (KEYWORD("8BITMIME"))
            sess.features |= SESS_FEAT_8BITMIME;
        else if (KEYWORD("ENHANCEDSTATUSCODES"))
            sess.features |= SESS_FEAT_ENHANCEDSTATUSCODES;
        else if (KEYWORD("SMTPUTF8"))
            sess.features |= SESS_FEAT_SMTPUTF8;
        else if (KEYWORD("DSN"))
            sess.features |= SESS_FEAT_DSN;
        else if (KEYWORD("STARTTLS"))
            sess.features |= SESS_FEAT_STARTTLS;
        else if (KEYWORD("AUTH") || (len > 5 && strncasecmp(line, "AUTH=", 5) == 0)) {
            sess.features |= SESS_FEAT_AUTH;
            sess.auth_mechs |= auth_mechs(line + 4, (size_t)(eol - line - 4));
        } else if (KEYWORD("SIZE")) {
            sess.features |= SESS_FEAT_SIZE;
            if (line + len < eol) {
                char *stop;
                long long limit = strtoll(line + len + 1, &stop, 10);

                if (stop > line + len + 1 && stop <= eol && limit > 0)
                    sess.size_limit = limit;
            }
        }
#undef KEYWORD
    }
}

/* session_send_body - the content with dot-stuffing, then the final dot */
static void session_send_body(void)
{
    const char *data = vstr_str(sess.job->body);
    size_t len = vstr_len(sess.job->body);
    size_t pos = 0;

    vstr_reserve(sess.out, len + len / 64 + 8);
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) + 1 : len;

        /* A line that starts with a dot would otherwise end the data early. */
        if (data[pos] == '.')
            vstr_addch(sess.out, '.');
        vstr_append(sess.out, data + pos, end - pos);
        pos = end;
    }
    vstr_strcat(sess.out, ".\r\n");
    session_arm(SESS_BODY);
    session_flush();
}

/* session_rcpt_append - queue the RCPT TO of the next recipient */
static void session_rcpt_append(void)
{
    JOB *job = sess.job;
    size_t i = rcpt_batch.sent++;

    vstr_sprintf_append(sess.out, "RCPT TO:<%s>", job->rcpts[i].addr);
    if (job->upstream_dsn)
        job_rcpt_dsn(job, i, sess.out);
    vstr_strcat(sess.out, "\r\n");
}

/*
 * session_rcpt_refill - with PIPELINING: keep up to SESSION_RCPT_WINDOW
 * RCPT TO commands in flight, and DATA right after the last one. A bounded
 * window, not every recipient at once, is what lets the client stop soon
 * after a relay says it takes no more recipients. Refilled by halves, so a
 * long list costs one write per half window, not one per reply.
 */
static void session_rcpt_refill(void)
{
    JOB *job = sess.job;

    if (rcpt_batch.limited || rcpt_batch.data_sent ||
        rcpt_batch.sent - sess.rcpt_replies > SESSION_RCPT_WINDOW / 2)
        return;
    while (rcpt_batch.sent < job->nrcpt &&
           rcpt_batch.sent - sess.rcpt_replies < SESSION_RCPT_WINDOW)
        session_rcpt_append();
    if (rcpt_batch.sent == job->nrcpt) {
        vstr_strcat(sess.out, "DATA\r\n");
        rcpt_batch.data_sent = 1;
    }
    session_flush();
}

/* session_rcpt_limit_reply - does a RCPT TO reply mean "no more recipients in this transaction" */
static int session_rcpt_limit_reply(const SMTP_REPLY *reply)
{
    /* RFC 5321 section 4.5.3.1.10: 452 (or 4.5.3) for too many recipients. */
    return reply->code == 452 || (reply->code / 100 == 4 && strcmp(reply->dsn, "4.5.3") == 0);
}

/*
 * session_rcpt_limited - the relay takes no more recipients in this
 * transaction: send it no more RCPT TO, and defer the recipients not yet
 * tried with 4.5.3, which tells qmgr to send them again soon in another
 * transaction; the accepted ones still get DATA
 */
static void session_rcpt_limited(const SMTP_REPLY *reply)
{
    JOB *job = sess.job;
    VSTR *quoted, *text;

    rcpt_batch.limited = 1;
    if (rcpt_batch.sent == job->nrcpt)
        return;
    quoted = vstr_alloc(128);
    text = vstr_alloc(128);
    session_reply_text(reply, quoted);
    vstr_sprintf(text,
                 "not tried: host %s limited the number of recipients per transaction (%s); "
                 "left for another transaction",
                 vstr_str(sess.label), vstr_str(quoted));
    for (size_t i = rcpt_batch.sent; i < job->nrcpt; i++)
        job_set(job, i, JOB_DEFERRED, "4.5.3", vstr_str(text));
    if (msg_verbose)
        msg_info("%s: %s refused recipients after %zu accepted: %zu not tried", job->queue_id,
                 vstr_str(sess.relay_text), sess.accepted, job->nrcpt - rcpt_batch.sent);
    vstr_free(text);
    vstr_free(quoted);
}

/*
 * session_next_command - once every RCPT TO sent is answered: the next
 * RCPT TO (without PIPELINING), else DATA for the accepted recipients,
 * or give up on the transaction
 */
static void session_next_command(void)
{
    JOB *job = sess.job;

    if (rcpt_batch.sent < job->nrcpt && !rcpt_batch.limited && sess.mail_ok) {
        session_arm(SESS_RCPT);
        session_rcpt_append();
        session_flush();
    } else if (sess.accepted > 0) {
        session_arm(SESS_DATA);
        session_send("DATA");
    } else {
        session_job_done(AFTER_RSET);
    }
}

/* session_transaction_reply - a reply to MAIL FROM, RCPT TO, DATA or the final dot */
static void session_transaction_reply(const SMTP_REPLY *reply)
{
    JOB *job = sess.job;
    int pipelining = (sess.features & SESS_FEAT_PIPELINING) != 0;
    int ok = reply->code / 100 == 2;
    VSTR *text;
    char dsn[16];

    switch (sess.state) {
    case SESS_MAIL:
        if (ok)
            sess.mail_ok = 1;
        else
            session_reply_fail(reply, session_reply_status(reply), 0);
        if (pipelining)
            session_arm(SESS_RCPT);
        else if (ok)
            session_next_command();
        else
            session_job_done(AFTER_RSET);
        return;
    case SESS_RCPT: {
        JOB_RCPT *rcpt = job->rcpts + sess.rcpt_replies++;

        if (rcpt->status == JOB_PENDING) {
            if (ok) {
                rcpt->accepted = 1;
                sess.accepted++;
            } else {
                int status = session_reply_status(reply);

                text = vstr_alloc(128);
                session_reply_explain(reply, text);
                session_reply_dsn(reply, status, dsn, sizeof(dsn));
                job_set(job, (size_t)(rcpt - job->rcpts), status, dsn, vstr_str(text));
                vstr_free(text);
            }
        }
        if (!rcpt_batch.limited && session_rcpt_limit_reply(reply))
            session_rcpt_limited(reply);
        if (pipelining && sess.mail_ok)
            session_rcpt_refill();
        if (sess.rcpt_replies < rcpt_batch.sent)
            session_arm(SESS_RCPT); /* more replies to come (PIPELINING) */
        else if (rcpt_batch.data_sent)
            session_arm(SESS_DATA);
        else
            session_next_command();
        return;
    }
    case SESS_DATA:
        if (reply->code == 354) {
            if (sess.accepted > 0) {
                session_send_body();
            } else {
                /* Nobody to deliver to: end the data at once and forget the transaction. */
                sess.empty_data = 1;
                session_arm(SESS_DOT);
                session_send(".");
            }
            return;
        }
        if (sess.accepted > 0)
            session_reply_fail(reply, reply->code / 100 == 5 ? JOB_BOUNCED : JOB_DEFERRED, 1);
        session_job_done(AFTER_RSET);
        return;
    case SESS_BODY:
        /* The server answered before the dot: the dialogue is out of step; close after. */
        session_reply_fail(reply, ok ? JOB_DEFERRED : session_reply_status(reply), 1);
        sess.close_reason = "error";
        session_job_done(AFTER_CLOSE);
        return;
    case SESS_DOT:
        if (sess.empty_data) {
            session_job_done(AFTER_RSET);
            return;
        }
        if (ok) {
            text = vstr_alloc(128);
            session_reply_text(reply, text);
            session_reply_dsn(reply, JOB_SENT, dsn, sizeof(dsn));
            for (size_t i = 0; i < job->nrcpt; i++)
                if (job->rcpts[i].accepted)
                    job_set(job, i, JOB_SENT, dsn, vstr_str(text));
            vstr_free(text);
            FAULT_POINT("smtpout-after-250");
        } else {
            session_reply_fail(reply, session_reply_status(reply), 1);
        }
        session_job_done(AFTER_IDLE);
        return;
    default:
        msg_panic("session_transaction_reply: state %d", (int)sess.state);
    }
}

/* session_reply_421 - the server is going away */
static void session_reply_421(const SMTP_REPLY *reply)
{
    VSTR *text;

    if (sess.job == NULL || !sess.job_active) {
        if (sess.state == SESS_IDLE || sess.state == SESS_NOOP)
            msg_info("connection to %s closed by server while idle", vstr_str(sess.relay_text));
        session_close("server_421");
        return;
    }
    if (session_can_retry()) {
        text = vstr_alloc(128);
        session_reply_text(reply, text);
        session_retry(vstr_str(text), "server_421");
        vstr_free(text);
        return;
    }
    /* Whatever the stage, the server will not finish this transaction. */
    session_reply_fail(reply, JOB_DEFERRED, 0);
    sess.close_reason = "server_421";
    session_job_done(AFTER_CLOSE);
}

/* session_reply - dispatch one complete reply by what we wait for */
static void session_reply(const SMTP_REPLY *reply)
{
    int ok = reply->code / 100 == 2;

    if (reply->code == 421 && sess.state != SESS_QUIT) {
        session_reply_421(reply);
        return;
    }
    switch (sess.state) {
    case SESS_GREETING:
        if (ok) {
            sess.announced = 1;
            smtpout_conn_event("open", sess.dest, NULL, 0, 0);
            session_arm(SESS_EHLO);
            session_send("EHLO %s", var_str(smtp_helo_name));
            return;
        }
        session_reply_fail(reply, JOB_DEFERRED, 0);
        session_job_done(AFTER_QUIT);
        return;
    case SESS_EHLO:
        if (ok) {
            session_ehlo_features(reply);
            /* A TLS 1.3 ticket comes after the handshake: by now it is here to be saved. */
            if (sess.tls_on)
                tls_save_session(sess.conn);
            session_setup_next();
            return;
        }
        if (reply->code / 100 == 5) {
            session_arm(SESS_HELO);
            session_send("HELO %s", var_str(smtp_helo_name));
            return;
        }
        session_reply_fail(reply, JOB_DEFERRED, 0);
        session_job_done(AFTER_QUIT);
        return;
    case SESS_HELO:
        if (ok) {
            sess.features = 0;
            sess.auth_mechs = 0;
            session_setup_next();
            return;
        }
        session_reply_fail(reply, JOB_DEFERRED, 0);
        session_job_done(AFTER_QUIT);
        return;
    case SESS_STARTTLS:
        if (reply->code == 220) {
            session_tls_begin();
            return;
        }
        if (sess.tls_level == SESS_TLS_MAY) { /* opportunistic: carry on in plaintext */
            msg_info("%s refused STARTTLS (%d); continuing without TLS", vstr_str(sess.relay_text),
                     reply->code);
            sess.tls_declined = 1;
            session_setup_next();
            return;
        }
        session_reply_fail(reply, JOB_DEFERRED, 0);
        session_job_done(AFTER_QUIT);
        return;
    case SESS_AUTH:
        session_auth_reply(reply);
        return;
    case SESS_MAIL:
    case SESS_RCPT:
    case SESS_DATA:
    case SESS_BODY:
    case SESS_DOT:
        session_transaction_reply(reply);
        return;
    case SESS_NOOP:
        if (ok) {
            session_enter_idle(0);
            return;
        }
        msg_info("connection to %s closed: NOOP while idle got %d", vstr_str(sess.relay_text),
                 reply->code);
        session_close("error");
        return;
    case SESS_RSET:
        if (ok)
            session_enter_idle(1);
        else
            session_quit("error");
        return;
    case SESS_QUIT:
        session_close(NULL);
        return;
    case SESS_IDLE:
        msg_info("connection to %s closed by server while idle (unexpected reply %d)",
                 vstr_str(sess.relay_text), reply->code);
        session_close("error");
        return;
    default:
        msg_panic("session_reply: state %d", (int)sess.state);
    }
}

/* session_protocol_error - a malformed reply: the conversation cannot continue */
static void session_protocol_error(const char *why)
{
    VSTR *text;

    if (sess.job == NULL || !sess.job_active) {
        msg_warn("connection to %s: %s", vstr_str(sess.relay_text), why);
        session_close("error");
        return;
    }
    text = vstr_alloc(128);
    vstr_sprintf(text, "protocol error with %s while %s: %s", vstr_str(sess.label),
                 session_stage[sess.state].doing, why);
    job_fail_pending(sess.job, JOB_DEFERRED, "4.5.0", vstr_str(text));
    vstr_free(text);
    sess.close_reason = "error";
    session_job_done(AFTER_CLOSE);
}

/* session_input - read what arrived and act on every complete reply */
static void session_input(void)
{
    char buf[SESSION_READ_CHUNK];
    unsigned gen = sess.gen;
    int eof = 0, err = 0;
    VSTR *why;

    for (;;) {
        ssize_t n = conn_read(sess.conn, buf, sizeof(buf));

        if (n > 0) {
            vstr_append(sess.in, buf, (size_t)n);
            if (vstr_len(sess.in) > 4 * SMTP_REPLY_LINE_MAX)
                break; /* parse what we have before reading more */
            continue;
        }
        if (n == 0)
            eof = 1;
        else if (errno != EAGAIN)
            err = errno;
        break;
    }
    why = vstr_alloc(64);
    while (sess.gen == gen && sess.state != SESS_TLS && vstr_len(sess.in) > 0) {
        char *data = vstr_str(sess.in);
        char *nl = memchr(data, '\n', vstr_len(sess.in));
        size_t len;
        int ret;

        if (nl == NULL) {
            if (vstr_len(sess.in) > SMTP_REPLY_LINE_MAX + 2) {
                vstr_sprintf(why, "reply line longer than %d bytes", SMTP_REPLY_LINE_MAX);
                session_protocol_error(vstr_str(why));
            }
            break;
        }
        len = (size_t)(nl - data);
        if (len > 0 && data[len - 1] == '\r')
            len--;
        ret = smtp_reply_feed_line(sess.parser, data, len, sess.reply, why);
        vstr_consume(sess.in, (size_t)(nl - data) + 1);
        if (ret == SMTP_REPLY_ERROR) {
            session_protocol_error(vstr_str(why));
            break;
        }
        if (ret == SMTP_REPLY_DONE) {
            if (msg_verbose)
                msg_info("< %s: %d %s", vstr_str(sess.label), sess.reply->code,
                         vstr_str(sess.reply->text));
            session_reply(sess.reply);
        }
    }
    vstr_free(why);
    if (sess.gen != gen || sess.conn == NULL)
        return;
    if (sess.state == SESS_TLS) /* bytes after "220" sent in plaintext are discarded */
        vstr_reset(sess.in);
    else if (!eof && !err && conn_pending(sess.conn))
        event_request_timer(session_read_again, NULL, 0); /* poll(2) cannot see TLS's buffer */
    if (eof || err)
        session_lost(err ? strerror(err) : "end of file");
}

/* session_read_again - read what the transport holds without the descriptor being ready */
static void session_read_again(void *ctx)
{
    (void)ctx;
    if (sess.conn != NULL && sess.state != SESS_CONNECTING && sess.state != SESS_TLS)
        session_input();
}

/* session_event - readiness of the relay connection */
static void session_event(int fd, int events, void *ctx)
{
    (void)fd;
    (void)ctx;
    if (sess.conn == NULL)
        return;
    if (sess.state == SESS_CONNECTING) {
        if (events & EVENT_WRITE)
            session_connected();
        return;
    }
    if (sess.state == SESS_TLS) {
        session_tls_step();
        return;
    }
    if (events & EVENT_WRITE)
        session_flush();
    if ((events & EVENT_READ) && sess.conn != NULL)
        session_input();
}

/* session_reload - the configuration was re-read: retire a connection it changed */
void session_reload(void)
{
    unsigned char ident[SASL_ID_LEN];
    VSTR *why;

    if (sess.conn == NULL || sess.state == SESS_QUIT || sess.host == NULL)
        return;
    why = vstr_alloc(128);
    /* A changed credential or TLS policy: this connection must not carry another job. */
    if (session_identity(sess.host, sess.port, ident, why) < 0 ||
        memcmp(ident, sess.ident, SASL_ID_LEN) != 0) {
        sess.stale = 1;
        if (sess.state == SESS_IDLE && sess.job == NULL) {
            msg_info("connection to %s: configuration changed; closing", vstr_str(sess.relay_text));
            event_cancel_timer(session_keepalive, NULL);
            event_cancel_timer(session_idle_expire, NULL);
            session_quit("reload");
        }
    }
    vstr_free(why);
}

/* session_held_dest - the destination of an announced open connection, or NULL */
const char *session_held_dest(void)
{
    return sess.conn != NULL && sess.announced && sess.state != SESS_QUIT ? sess.dest : NULL;
}
