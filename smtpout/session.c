/*
 * session - the SMTP client: one persistent connection, many transactions
 *
 * session_create()
 *	a closed session. It reports to its owner through hooks (smtpout.h):
 *	each job it finishes (every recipient decided, delivery lines
 *	logged), each change of its connection for qmgr, and the end of a
 *	shutdown. A process runs many sessions side by side; each owns its
 *	own state and timers (every callback's context is its SESSION).
 * session_deliver()
 *	hand the session a job. It runs on the open connection when that
 *	goes to the same relay and port and is young enough; otherwise the
 *	connection is retired (QUIT) and a new one opened. The job's outcome
 *	comes back through the `done` hook, always from an event-loop
 *	callback, never from inside session_deliver().
 * session_busy()
 *	whether a job is in the session.
 * session_is_open()
 *	whether the connection stays open for the next job (the result's
 *	conn=open|closed).
 * session_shutdown()
 *	stop: when no job is in flight, QUIT, close, then the `stopped` hook.
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
 * CHUNKING (RFC 3030; smtp_use_chunking): when the relay offers it with
 * PIPELINING, "BDAT n LAST" and the whole content, as queued and without
 * dot-stuffing, take the place of DATA right after the last RCPT TO, so
 * a message costs one round trip. The RCPT TO replies decide the refused
 * recipients and the BDAT reply the accepted ones, as DATA's and the
 * dot's would. A relay that limits the recipients before the list is
 * written gets DATA for that transaction.
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
 * The relay's addresses: a name is looked up through the process's
 * resolver (resolve.c; SESS_RESOLVING, under smtp_connect_timeout), an
 * address literal is taken as it is; inet_protocols picks the families
 * and smtp_mx_address_limit bounds the list, which the process's
 * ADDR_CACHE reorders so that addresses that failed lately come last.
 * A connection that is refused, unreachable or times out
 * (smtp_connect_timeout per address) goes to the next address, and the
 * failure is noted in the cache and logged; when none is left the job is
 * deferred with the last address's reason, "connect to host[addr]:port:
 * Connection refused". Nothing of this blocks: the process's other
 * sessions run on while one waits.
 *
 * Connection setup is: TCP, (implicit TLS,) greeting, EHLO, STARTTLS and
 * the TLS handshake and EHLO again (smtp_tls_security_level), AUTH once
 * (smtp_sasl_auth_enable; never without TLS), then job after job. A job
 * runs on the open connection only when its identity -- relay, port, TLS
 * policy and credential -- is the connection's; otherwise the connection
 * is retired ("switch"). At level may a failed handshake costs nothing:
 * the job is retried at once on one plaintext connection. Every change
 * of the connection is reported to qmgr (s->hooks->conn_event(s->owner, ): open,
 * tls, auth_ok, auth_fail, timeout, close with its reason). Output that
 * carried a secret (AUTH) is wiped from the buffer once written.
 *
 * Upstream faults (doc/relayq.conf.5, UPSTREAM FAULTS): a 5xx to MAIL
 * FROM, RCPT TO, DATA, the final dot or BDAT bounces; a 4xx, a 421, a reply
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
#include "sock.h"

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
    [SESS_RESOLVING] = {"looking up the relay's address", "", "smtp_connect_timeout"},
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
    [SESS_BDAT] = {"sending message body -- message may be sent more than once", "BDAT",
                   "smtp_data_done_timeout"},
    [SESS_RSET] = {"sending RSET", "RSET", "smtp_mail_timeout"},
    [SESS_QUIT] = {"sending QUIT", "QUIT", "smtp_quit_timeout"},
};

static void session_event(int fd, int events, void *ctx);
static void session_kick(void *ctx);
static void session_timeout(void *ctx);
static void session_keepalive(void *ctx);
static void session_idle_expire(void *ctx);
static void session_write_failed(void *ctx);
static void session_quit(SESSION *s, const char *reason);
static void session_setup_next(SESSION *s);
static void session_tls_step(SESSION *s);
static void session_read_again(void *ctx);
static void session_protocol_error(SESSION *s, const char *why);
static void session_rcpt_refill(SESSION *s);
static void session_lookup_failed(SESSION *s, const char *why);
static void session_connect_retry(SESSION *s, const char *why);

/* session_create - a session, closed, that reports to its owner through hooks */
SESSION *session_create(const SESSION_HOOKS *hooks, void *owner, RESOLVER *resolver,
                        ADDR_CACHE *addr_cache)
{
    SESSION *s = mymalloc(sizeof(*s));

    memset(s, 0, sizeof(*s));
    s->state = SESS_CLOSED;
    s->label = vstr_alloc(64);
    s->relay_text = vstr_alloc(64);
    s->in = vstr_alloc(SESSION_READ_CHUNK);
    s->out = vstr_alloc(SESSION_READ_CHUNK);
    s->parser = smtp_reply_parser_create();
    s->reply = smtp_reply_alloc();
    s->hooks = hooks;
    s->owner = owner;
    s->resolver = resolver;
    s->addr_cache = addr_cache;
    s->fail_why = vstr_alloc(64);
    return s;
}

/* session_busy - is a job in the session */
int session_busy(const SESSION *s)
{
    return s->job != NULL;
}

/* session_is_open - will the connection carry another job */
int session_is_open(const SESSION *s)
{
    return s->conn != NULL && s->state != SESS_QUIT;
}

/* session_request_kick - look for work on the next pass, outside any callback chain */
static void session_request_kick(SESSION *s)
{
    event_request_timer(session_kick, s, 0);
}

/* session_arm - enter a state and start its timer */
static void session_arm(SESSION *s, SESS_STATE state)
{
    const char *param = session_stage[state].timeout;

    s->state = state;
    if (param != NULL)
        event_request_timer(session_timeout, s, config_int(var_config, param) * 1000LL);
    else
        event_cancel_timer(session_timeout, s);
}

/* session_out_reset - forget unwritten output; wipe it when it held a secret */
static void session_out_reset(SESSION *s)
{
    if (s->out_secret) {
        sodium_memzero(s->out->data, s->out->cap);
        s->out_secret = 0;
    }
    s->out_off = 0;
    vstr_reset(s->out);
}

/* session_close - drop the connection without a goodbye; `reason` (or the one set before) for qmgr
 */
static void session_close(SESSION *s, const char *reason)
{
    if (s->conn != NULL) {
        event_disable_readwrite(s->conn->fd);
        conn_close(s->conn);
        s->conn = NULL;
    }
    if (s->lookup != NULL) { /* its answer, when it comes, goes nowhere */
        resolve_cancel(s->lookup);
        s->lookup = NULL;
    }
    myfree(s->addrs);
    s->addrs = NULL;
    s->naddr = s->addr_next = 0;
    if (s->announced)
        s->hooks->conn_event(s->owner, "close", s->dest,
                             reason            ? reason
                             : s->close_reason ? s->close_reason
                                               : "error",
                             s->msgs, 0);
    s->announced = 0;
    s->close_reason = NULL;
    myfree(s->dest);
    s->dest = NULL;
    myfree(s->tls_cache_key);
    s->tls_cache_key = NULL;
    tls_policy_free(&s->policy);
    s->tls_on = 0;
    s->tls_declined = 0;
    s->auth_mechs = 0;
    s->authed = 0;
    auth_end(&s->auth);
    s->stale = 0;
    memset(s->ident, 0, sizeof(s->ident));
    event_cancel_timer(session_timeout, s);
    event_cancel_timer(session_keepalive, s);
    event_cancel_timer(session_idle_expire, s);
    event_cancel_timer(session_write_failed, s);
    event_cancel_timer(session_read_again, s);
    myfree(s->host);
    s->host = NULL;
    s->gen++;
    s->state = SESS_CLOSED;
    s->job_active = 0;
    s->features = 0;
    s->size_limit = 0;
    s->msgs = 0;
    s->deferred_row = 0;
    s->out_error = 0;
    session_out_reset(s);
    vstr_reset(s->in);
    smtp_reply_parser_reset(s->parser);
    session_request_kick(s);
}

/* session_flush - write what the transport takes; watch for room when it takes less */
static void session_flush(SESSION *s)
{
    int progress = 0;

    while (s->conn != NULL && s->out_off < vstr_len(s->out)) {
        ssize_t n =
            conn_write(s->conn, vstr_str(s->out) + s->out_off, vstr_len(s->out) - s->out_off);

        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            /* Report from a timer: callers are in the middle of a reply or a job. */
            s->out_error = n < 0 ? errno : EPIPE;
            session_out_reset(s);
            event_disable_write(s->conn->fd);
            event_request_timer(session_write_failed, s, 0);
            return;
        }
        s->out_off += (size_t)n;
        progress = 1;
    }
    if (s->conn == NULL)
        return;
    if (s->out_off < vstr_len(s->out)) {
        event_enable_write(s->conn->fd, session_event, s);
        /* No progress for smtp_data_xfer_timeout is what times out a body. */
        if (progress && s->state == SESS_BODY)
            session_arm(s, SESS_BODY);
        return;
    }
    session_out_reset(s);
    event_disable_write(s->conn->fd);
    if (s->state == SESS_BODY)
        session_arm(s, SESS_DOT);
}

/* session_send - queue one command line (CRLF added) and start writing */
static void __attribute__((format(printf, 2, 3))) session_send(SESSION *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vstr_vsprintf_append(s->out, fmt, ap);
    va_end(ap);
    vstr_strcat(s->out, "\r\n");
    session_flush(s);
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
static void session_reply_explain(SESSION *s, const SMTP_REPLY *reply, VSTR *text)
{
    VSTR *quoted = vstr_alloc(128);

    session_reply_text(reply, quoted);
    if (s->state == SESS_GREETING)
        vstr_sprintf(text, "host %s refused to talk to me: %s", vstr_str(s->label),
                     vstr_str(quoted));
    else
        vstr_sprintf(text, "host %s said: %s (in reply to %s command)", vstr_str(s->label),
                     vstr_str(quoted), session_stage[s->state].command);
    vstr_free(quoted);
}

/* session_reply_fail - decide undecided recipients (all, or the accepted ones) by a reply */
static void session_reply_fail(SESSION *s, const SMTP_REPLY *reply, int status, int only_accepted)
{
    VSTR *text = vstr_alloc(128);
    char dsn[16];

    session_reply_explain(s, reply, text);
    session_reply_dsn(reply, status, dsn, sizeof(dsn));
    for (size_t i = 0; i < s->job->nrcpt; i++)
        if (!only_accepted || s->job->rcpts[i].accepted)
            job_set(s->job, i, status, dsn, vstr_str(text));
    vstr_free(text);
}

/* session_enter_idle - the connection waits for the next job */
static void session_enter_idle(SESSION *s, int fresh)
{
    long long limit = var_int(smtp_connection_reuse_count_limit);
    long long keepalive = var_int(smtp_keepalive_interval);
    long long idle = var_int(smtp_connection_idle_timeout);

    session_arm(s, SESS_IDLE);
    s->job_active = 0; /* a waiting job starts its transaction from session_kick() */
    if (fresh)
        s->idle_since = now_ms();
    if (limit > 0 && s->msgs >= limit && s->job == NULL) {
        if (msg_verbose)
            msg_info("connection to %s: %u messages, reuse count limit reached",
                     vstr_str(s->relay_text), s->msgs);
        session_quit(s, "reuse_count");
        return;
    }
    if (s->job != NULL || s->stopping) {
        session_request_kick(s);
        return;
    }
    if (keepalive > 0)
        event_request_timer(session_keepalive, s, keepalive * 1000);
    event_request_timer(session_idle_expire, s, s->idle_since + idle * 1000 - now_ms());
}

/*
 * session_hurry - a job or a stopping worker waits for the reply to QUIT,
 * NOOP or RSET: a relay that stalls there must not hold it for the whole
 * stage timeout (up to smtp_mail_timeout or smtp_quit_timeout, minutes);
 * the timeout closes the connection and the job goes on a new one
 */
static void session_hurry(SESSION *s)
{
    const char *param = session_stage[s->state].timeout;

    if ((s->state != SESS_QUIT && s->state != SESS_NOOP && s->state != SESS_RSET) ||
        (s->job == NULL && !s->stopping))
        return;
    if (config_int(var_config, param) * 1000LL > SESSION_HURRY_WAIT)
        event_request_timer(session_timeout, s, SESSION_HURRY_WAIT);
}

/* session_quit - say goodbye; the connection closes on the reply */
static void session_quit(SESSION *s, const char *reason)
{
    if (reason != NULL)
        s->close_reason = reason;
    event_cancel_timer(session_keepalive, s);
    event_cancel_timer(session_idle_expire, s);
    session_arm(s, SESS_QUIT);
    session_hurry(s);
    session_send(s, "QUIT");
}

/* session_job_done - settle the connection, log and report the job */
static void session_job_done(SESSION *s, SESS_AFTER after)
{
    JOB *job = s->job;

    if (job == NULL)
        msg_panic("session_job_done: no job");
    if (job_pending(job) > 0) /* every path decides every recipient before it ends */
        msg_panic("session_job_done: %s: %zu recipients undecided", job->queue_id,
                  job_pending(job));
    s->job = NULL;
    s->job_active = 0;
    if (after == AFTER_IDLE || after == AFTER_RSET) {
        size_t sent = 0, deferred = 0;

        for (size_t i = 0; i < job->nrcpt; i++) {
            sent += job->rcpts[i].status == JOB_SENT;
            deferred += job->rcpts[i].status == JOB_DEFERRED;
        }
        s->deferred_row = sent == 0 && deferred > 0 ? s->deferred_row + 1 : 0;
        if (s->deferred_row >= SESSION_DEFERRED_ROW) {
            /* A connection that only gets "later" is worth a fresh one. */
            msg_info("connection to %s: %u transactions in a row deferred: closing it",
                     vstr_str(s->relay_text), s->deferred_row);
            s->close_reason = "deferrals";
            after = AFTER_QUIT;
        }
    }
    switch (after) {
    case AFTER_IDLE:
        session_enter_idle(s, 1);
        break;
    case AFTER_RSET:
        session_arm(s, SESS_RSET);
        session_send(s, "RSET");
        break;
    case AFTER_QUIT:
        session_quit(s, NULL);
        break;
    case AFTER_CLOSE:
        session_close(s, NULL);
        break;
    case AFTER_NONE:
        break;
    }
    job_log(job);
    s->hooks->done(s->owner, job);
}

/* session_retry - the reused connection was dead: run the job again on a new one */
static void session_retry(SESSION *s, const char *why, const char *reason)
{
    JOB *job = s->job;

    msg_info("%s: connection to %s was closed by the server (%s) before the transaction "
             "started; retrying on a new connection",
             job->queue_id, vstr_str(s->relay_text), why);
    job->retried = 1;
    job->setup_start = wall_ms();
    job->setup_ms = 0;
    job->xfer_start = 0;
    job->conn_use = 0;
    vstr_strcpy(job->relay_text, "none");
    for (size_t i = 0; i < job->nrcpt; i++)
        job->rcpts[i].accepted = 0;
    s->msgs--; /* the connection did not carry this one */
    session_close(s, reason);
}

/* session_can_retry - is this failure the "stale reused connection" case */
static int session_can_retry(SESSION *s)
{
    return s->job != NULL && s->job_active && s->state == SESS_MAIL && s->txn.reused &&
           !s->txn.mail_ok && !s->job->retried;
}

/* session_lost - end of file, reset or write failure */
static void session_lost(SESSION *s, const char *detail)
{
    VSTR *text;

    if (s->state == SESS_IDLE || s->state == SESS_NOOP) {
        msg_info("connection to %s closed by server while idle", vstr_str(s->relay_text));
        session_close(s, "server_close");
        return;
    }
    if (s->job == NULL || !s->job_active) {
        session_close(s, s->state == SESS_QUIT ? NULL : "server_close");
        return;
    }
    if (session_can_retry(s)) {
        session_retry(s, detail, "server_close");
        return;
    }
    text = vstr_alloc(128);
    vstr_sprintf(text, "lost connection with %s while %s", vstr_str(s->label),
                 session_stage[s->state].doing);
    job_fail_pending(s->job, JOB_DEFERRED, "4.4.2", vstr_str(text));
    vstr_free(text);
    s->close_reason = "server_close";
    session_job_done(s, AFTER_CLOSE);
}

/* session_write_failed - a write failed earlier in this pass */
static void session_write_failed(void *ctx)
{
    SESSION *s = ctx;

    if (s->conn != NULL)
        session_lost(s, strerror(s->out_error));
}

/* session_connect_failed - decide the job after a failed TCP connection */
static void session_connect_failed(SESSION *s, const char *addr, const char *why)
{
    VSTR *text = vstr_alloc(128);
    JOB *job = s->job;

    if (addr[0] != '\0') {
        vstr_sprintf(text, "connect to %s[%s]:%u: %s", job->relay, addr, job->port, why);
        job_fail_pending(job, JOB_DEFERRED, "4.4.1", vstr_str(text));
    } else {
        job_fail_pending(job, JOB_DEFERRED, "4.4.3", why);
    }
    vstr_free(text);
    vstr_strcpy(job->relay_text, "none");
    session_close(s, NULL);
    session_job_done(s, AFTER_NONE);
}

/* session_timeout - the current stage took too long */
static void session_timeout(void *ctx)
{
    SESSION *s = ctx;
    VSTR *text;

    if (s->state != SESS_CLOSED && s->state != SESS_IDLE && s->dest != NULL)
        s->hooks->conn_event(s->owner, "timeout", s->dest, NULL, 0, 0);
    switch (s->state) {
    case SESS_RESOLVING:
        resolve_cancel(s->lookup);
        s->lookup = NULL;
        session_lookup_failed(s, "lookup timed out");
        return;
    case SESS_CONNECTING:
        session_connect_retry(s, "Connection timed out");
        return;
    case SESS_NOOP:
        msg_info("connection to %s: no reply to NOOP while idle; closing", vstr_str(s->relay_text));
        session_close(s, "error");
        return;
    case SESS_QUIT:
        session_close(s, NULL);
        return;
    case SESS_RSET:
        session_close(s, "error");
        return;
    case SESS_CLOSED:
    case SESS_IDLE:
    case SESS_STATE_COUNT:
        msg_panic("session_timeout: in state %d", (int)s->state);
    default:
        break;
    }
    if (s->job == NULL || !s->job_active)
        msg_panic("session_timeout: state %d without a job", (int)s->state);
    text = vstr_alloc(128);
    vstr_sprintf(text, "conversation with %s timed out while %s", vstr_str(s->label),
                 session_stage[s->state].doing);
    job_fail_pending(s->job, JOB_DEFERRED, "4.4.2", vstr_str(text));
    vstr_free(text);
    s->close_reason = "error";
    session_job_done(s, AFTER_CLOSE);
}

/* session_keepalive - a NOOP so that middleboxes and the relay keep the connection */
static void session_keepalive(void *ctx)
{
    SESSION *s = ctx;

    if (s->state != SESS_IDLE || s->job != NULL)
        return;
    event_cancel_timer(session_idle_expire, s);
    session_arm(s, SESS_NOOP);
    session_send(s, "NOOP");
}

/* session_idle_expire - idle too long: retire the connection */
static void session_idle_expire(void *ctx)
{
    SESSION *s = ctx;

    if (s->state != SESS_IDLE || s->job != NULL)
        return;
    if (msg_verbose)
        msg_info("connection to %s: idle timeout", vstr_str(s->relay_text));
    event_cancel_timer(session_keepalive, s);
    session_quit(s, "idle");
}

/*
 * session_identity - what a connection for this relay would be: relay,
 * port, TLS policy (wrappermode, and the relay's smtp_tls_policy_maps
 * entry or the global level and CA file) and credential (user and
 * secret, as the keyed hash). -1 with the reason when AUTH is on and there
 * is no credential, or its last AUTH failed moments ago.
 */
static int session_identity(const char *relay, unsigned port, unsigned char *ident, VSTR *why)
{
    crypto_generichash_state state;
    SASL_CRED *cred = NULL;
    VSTR *text = vstr_alloc(128);
    TLS_POLICY policy;
    const char *failed;

    if (tls_policy(relay, port, &policy, why) < 0) {
        vstr_free(text);
        return -1;
    }
    vstr_sprintf(text, "%s:%u:%d:", relay, port, var_bool(smtp_tls_wrappermode));
    /* Lower case for the relay; the policy (paths, names) is added as written. */
    for (size_t i = 0; i < vstr_len(text); i++)
        text->data[i] = (char)tolower((unsigned char)text->data[i]);
    vstr_addch(text, '\0');
    crypto_generichash_init(&state, NULL, 0, SASL_ID_LEN);
    vstr_strcat(text, policy.canonical);
    crypto_generichash_update(&state, (const unsigned char *)vstr_str(text), vstr_len(text));
    tls_policy_free(&policy);
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

/* session_family - the address family inet_protocols allows; AF_UNSPEC: both */
static int session_family(void)
{
    const char *protocols = var_str(inet_protocols);

    if (strcmp(protocols, "ipv4") == 0)
        return AF_INET;
    if (strcmp(protocols, "ipv6") == 0)
        return AF_INET6;
    return AF_UNSPEC;
}

/* session_lookup_failed - the relay's name gave no address: defer the job */
static void session_lookup_failed(SESSION *s, const char *why)
{
    VSTR *text = vstr_alloc(128);

    vstr_sprintf(text, "Host or domain name not found. Name service error for name=%s: %s",
                 s->job->relay, why);
    session_connect_failed(s, "", vstr_str(text));
    vstr_free(text);
}

/* session_addr_failed - one address did not answer: remember it, log it when others remain */
static void session_addr_failed(SESSION *s, const char *addr, const char *why)
{
    snprintf(s->fail_addr, sizeof(s->fail_addr), "%s", addr);
    vstr_strcpy(s->fail_why, why);
    addr_cache_fail(s->addr_cache, addr, s->port);
    /* The last failure is the job's deferral reason; the ones before only show here. */
    if (s->addr_next < s->naddr)
        msg_info("%s: connect to %s[%s]:%u: %s", s->job->queue_id, s->host, addr, s->port, why);
}

/* session_connect_next - connect to the next address; defer the job when none is left */
static void session_connect_next(SESSION *s)
{
    VSTR *why = vstr_alloc(64);
    SESS_ADDR *a;
    CONN *conn;

    while (s->addr_next < s->naddr) {
        a = &s->addrs[s->addr_next++];
        if ((conn = conn_connect((struct sockaddr *)&a->sa, a->len, why)) == NULL) {
            session_addr_failed(s, a->text, vstr_str(why));
            continue;
        }
        vstr_free(why);
        s->conn = conn;
        vstr_sprintf(s->label, "%s[%s]", s->host, conn->addr);
        vstr_sprintf(s->relay_text, "%s[%s]:%u", s->host, conn->addr, s->port);
        s->opened_ms = now_ms();
        event_enable_write(conn->fd, session_event, s);
        session_arm(s, SESS_CONNECTING);
        return;
    }
    vstr_free(why);
    if (s->naddr == 0)
        session_lookup_failed(s, "no address of the protocols in inet_protocols");
    else
        session_connect_failed(s, s->fail_addr, vstr_str(s->fail_why));
}

/* session_connect_retry - the connection to this address failed: on to the next */
static void session_connect_retry(SESSION *s, const char *why)
{
    char addr[sizeof(s->conn->addr)];

    memcpy(addr, s->conn->addr, sizeof(addr));
    event_cancel_timer(session_timeout, s);
    event_disable_readwrite(s->conn->fd);
    conn_close(s->conn);
    s->conn = NULL;
    session_addr_failed(s, addr, why);
    session_connect_next(s);
}

/* session_take_addrs - the relay's addresses to try: inet_protocols, the limit, the cache */
static void session_take_addrs(SESSION *s, const struct addrinfo *res)
{
    size_t limit = (size_t)var_int(smtp_mx_address_limit);
    const struct addrinfo *ai;
    SESS_ADDR *a;

    myfree(s->addrs);
    s->addrs = mymalloc(sizeof(*s->addrs) * limit);
    s->naddr = s->addr_next = 0;
    for (ai = res; ai != NULL && s->naddr < limit; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(a->sa))
            continue;
        a = &s->addrs[s->naddr++];
        memset(a, 0, sizeof(*a));
        memcpy(&a->sa, ai->ai_addr, ai->ai_addrlen);
        a->len = ai->ai_addrlen;
        sock_addr_text(ai->ai_addr, a->text, sizeof(a->text));
    }
    addr_cache_order(s->addr_cache, s->addrs, s->naddr, s->port);
}

/* session_resolved - the relay's addresses are known (resolve.c callback) */
static void session_resolved(void *ctx, const struct addrinfo *res, const char *error)
{
    SESSION *s = ctx;

    s->lookup = NULL;
    if (res == NULL) {
        session_lookup_failed(s, error);
        return;
    }
    session_take_addrs(s, res);
    session_connect_next(s);
}

/* session_open - set up the connection's identity, then find the relay's addresses */
static void session_open(SESSION *s, const unsigned char *ident)
{
    JOB *job = s->job;
    VSTR *why = vstr_alloc(64);
    struct addrinfo *res;

    s->job_active = 1;
    s->host = mystrdup(job->relay);
    s->port = job->port;
    s->msgs = 0;
    memcpy(s->ident, ident, SASL_ID_LEN);
    s->dest = mymalloc(strlen(job->relay) + 16);
    sprintf(s->dest, "%s:%u", job->relay, job->port);
    /* session_kick() just found the policy in the identity: it is there. */
    if (tls_policy(job->relay, job->port, &s->policy, why) < 0)
        msg_panic("session_open: %s", vstr_str(why));
    s->tls_level = s->policy.level;
    s->wrapper = var_bool(smtp_tls_wrappermode);
    /* A session verified under other trust anchors must not be resumed under these. */
    s->tls_cache_key = mymalloc(strlen(s->dest) + strlen(s->policy.canonical) + 32);
    sprintf(s->tls_cache_key, "%s:%d:%s", s->dest, s->wrapper, s->policy.canonical);
    /* Level may after a failed handshake: this one connection goes without TLS. */
    if (s->plain_once && !s->wrapper && memcmp(s->plain_ident, ident, SASL_ID_LEN) == 0)
        s->tls_declined = 1;
    s->plain_once = 0;
    s->fail_addr[0] = '\0';
    vstr_reset(s->fail_why);
    /* An address literal ("[127.0.0.1]" in relayhost) needs no lookup. */
    if (resolve_numeric(job->relay, job->port, session_family(), &res) == 0) {
        session_take_addrs(s, res);
        freeaddrinfo(res);
        vstr_free(why);
        session_connect_next(s);
        return;
    }
    s->lookup = resolve_start(s->resolver, job->relay, job->port, session_family(),
                              session_resolved, s, why);
    if (s->lookup == NULL)
        session_lookup_failed(s, vstr_str(why));
    else
        session_arm(s, SESS_RESOLVING);
    vstr_free(why);
}

/* session_tls_begin - start the handshake on the connected socket */
static void session_tls_begin(SESSION *s)
{
    VSTR *why = vstr_alloc(128);
    VSTR *text;

    /* Whatever came in plaintext after "220 ready to start TLS" must not be believed. */
    vstr_reset(s->in);
    smtp_reply_parser_reset(s->parser);
    if (tls_start(s->conn, s->host, &s->policy, s->tls_cache_key, why) < 0) {
        text = vstr_alloc(128);
        vstr_sprintf(text, "Cannot start TLS: %s", vstr_str(why));
        job_fail_pending(s->job, JOB_DEFERRED, "4.7.5", vstr_str(text));
        vstr_free(text);
        vstr_free(why);
        s->close_reason = "error";
        session_job_done(s, AFTER_CLOSE);
        return;
    }
    vstr_free(why);
    session_arm(s, SESS_TLS);
    event_enable_read(s->conn->fd, session_event, s);
    session_tls_step(s);
}

/* session_tls_failed - the handshake failed: defer, or at level may retry without TLS */
static void session_tls_failed(SESSION *s, int ret, const char *why)
{
    JOB *job = s->job;
    VSTR *text = vstr_alloc(128);

    tls_forget_session(s->tls_cache_key);
    if (ret == TLS_HS_UNTRUSTED || ret == TLS_HS_UNVERIFIED) {
        vstr_sprintf(text, "Server certificate not %s: host %s: %s",
                     ret == TLS_HS_UNTRUSTED ? "trusted" : "verified", vstr_str(s->label), why);
    } else if (s->tls_level == TLS_POLICY_MAY && !s->wrapper && !job->retried) {
        /* Opportunistic TLS must not cost the mail: once more, in plaintext. */
        msg_info("%s: TLS handshake with %s failed: %s; retrying on a new connection without "
                 "TLS",
                 job->queue_id, vstr_str(s->relay_text), why);
        s->plain_once = 1;
        memcpy(s->plain_ident, s->ident, SASL_ID_LEN);
        job->retried = 1;
        job->setup_ms = 0;
        job->xfer_start = 0;
        job->conn_use = 0;
        vstr_strcpy(job->relay_text, "none");
        vstr_free(text);
        session_close(s, "error");
        return;
    } else {
        vstr_sprintf(text, "Cannot start TLS: handshake failure with host %s: %s",
                     vstr_str(s->label), why);
    }
    job_fail_pending(job, JOB_DEFERRED, "4.7.5", vstr_str(text));
    vstr_free(text);
    s->close_reason = "error";
    session_job_done(s, AFTER_CLOSE);
}

/* session_tls_step - advance the handshake; go on with SMTP when it is done */
static void session_tls_step(SESSION *s)
{
    VSTR *why = vstr_alloc(128);
    VSTR *desc;
    int ret = tls_handshake(s->conn, why);

    if (ret == TLS_HS_AGAIN) {
        if (tls_want_write(s->conn))
            event_enable_write(s->conn->fd, session_event, s);
        else
            event_disable_write(s->conn->fd);
        vstr_free(why);
        return;
    }
    if (ret != TLS_HS_DONE) {
        session_tls_failed(s, ret, vstr_str(why));
        vstr_free(why);
        return;
    }
    vstr_free(why);
    event_disable_write(s->conn->fd);
    s->tls_on = 1;
    desc = vstr_alloc(128);
    tls_describe(s->conn, desc);
    msg_info("%s TLS connection established to %s: %s%s", tls_trust(s->conn),
             vstr_str(s->relay_text), vstr_str(desc),
             tls_resumed(s->conn) ? " (session resumed)" : "");
    vstr_free(desc);
    s->hooks->conn_event(s->owner, "tls", s->dest, NULL, 0, tls_resumed(s->conn));
    if (s->wrapper) {
        session_arm(s, SESS_GREETING);
        /* The greeting may have come with the handshake and wait inside GnuTLS. */
        event_request_timer(session_read_again, s, 0);
        return;
    }
    /* RFC 3207: forget what the server said before TLS, and ask again. */
    s->features = 0;
    s->size_limit = 0;
    s->auth_mechs = 0;
    session_arm(s, SESS_EHLO);
    session_send(s, "EHLO %s", var_str(smtp_helo_name));
}

/* session_setup_fail - the connection cannot serve the job: decide it, say goodbye */
static void session_setup_fail(SESSION *s, const char *dsn, const char *text)
{
    if (s->job == NULL || !s->job_active) {
        msg_warn("connection to %s: %s", vstr_str(s->relay_text), text);
        session_quit(s, "error");
        return;
    }
    job_fail_pending(s->job, JOB_DEFERRED, dsn, text);
    s->close_reason = "error";
    session_job_done(s, AFTER_QUIT);
}

/* session_setup_next - after EHLO: STARTTLS, then AUTH, then ready for jobs */
static void session_setup_next(SESSION *s)
{
    VSTR *text;
    SASL_CRED *cred;

    if (!s->tls_on && !s->tls_declined && s->tls_level != TLS_POLICY_NONE) {
        if (s->features & SESS_FEAT_STARTTLS) {
            session_arm(s, SESS_STARTTLS);
            session_send(s, "STARTTLS");
            return;
        }
        if (s->tls_level >= TLS_POLICY_ENCRYPT) {
            text = vstr_alloc(128);
            vstr_sprintf(text, "TLS is required, but was not offered by host %s",
                         vstr_str(s->label));
            session_setup_fail(s, "4.7.4", vstr_str(text));
            vstr_free(text);
            return;
        }
    }
    if (var_bool(smtp_sasl_auth_enable) && !s->authed) {
        text = vstr_alloc(128);
        /* Whatever the TLS level says: no secret crosses an unencrypted connection. */
        if (!s->tls_on) {
            vstr_sprintf(text,
                         "SASL authentication refused: TLS is not active on the connection "
                         "to %s",
                         vstr_str(s->label));
            session_setup_fail(s, "4.7.0", vstr_str(text));
            vstr_free(text);
            return;
        }
        if (s->features & SESS_FEAT_AUTH) {
            if (auth_lookup(s->host, s->port, &cred, text) < 0) {
                session_setup_fail(s, "4.7.0", vstr_str(text));
                vstr_free(text);
                return;
            }
            if (auth_start(&s->auth, cred, s->auth_mechs, s->out, text) < 0) {
                VSTR *reason = vstr_alloc(128);

                vstr_sprintf(reason,
                             "SASL authentication failed; cannot authenticate to server "
                             "%s: %s",
                             vstr_str(s->label), vstr_str(text));
                session_setup_fail(s, "4.7.0", vstr_str(reason));
                vstr_free(reason);
                vstr_free(text);
                return;
            }
            vstr_free(text);
            if (msg_verbose)
                msg_info("> %s: AUTH %s (credentials not shown)", vstr_str(s->label),
                         auth_mech_name(s->auth.mech));
            s->out_secret = 1;
            session_arm(s, SESS_AUTH);
            session_flush(s);
            return;
        }
        vstr_free(text);
        if (msg_verbose)
            msg_info("%s offers no AUTH: sending without authentication", vstr_str(s->relay_text));
    }
    session_enter_idle(s, 1);
}

/* session_auth_reply - the server's answer in the AUTH dialogue */
static void session_auth_reply(SESSION *s, const SMTP_REPLY *reply)
{
    VSTR *text, *quoted;
    char dsn[16];

    if (reply->code == 334) {
        size_t before = vstr_len(s->out);

        /* The stage timer keeps running: the whole dialogue has smtp_helo_timeout. */
        auth_continue(&s->auth, s->out);
        if (vstr_len(s->out) == before) {
            session_protocol_error(s, "334 challenge after the client cancelled the AUTH exchange");
            return;
        }
        s->out_secret = 1;
        session_flush(s);
        return;
    }
    if (reply->code / 100 == 2) {
        if (msg_verbose)
            msg_info("%s: authenticated with %s", vstr_str(s->relay_text),
                     auth_mech_name(s->auth.mech));
        auth_end(&s->auth);
        s->authed = 1;
        s->hooks->conn_event(s->owner, "auth_ok", s->dest, NULL, 0, 0);
        session_enter_idle(s, 1);
        return;
    }
    s->hooks->conn_event(s->owner, "auth_fail", s->dest, NULL, 0, 0);
    text = vstr_alloc(128);
    quoted = vstr_alloc(128);
    session_reply_text(reply, quoted);
    vstr_sprintf(text, "SASL authentication failed; server %s said: %s", vstr_str(s->label),
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
        auth_fail_remember(s->ident, &s->auth, vstr_str(text));
    auth_end(&s->auth);
    session_setup_fail(s, dsn, vstr_str(text));
    vstr_free(text);
}

/* session_connected - the TCP handshake is over */
static void session_connected(SESSION *s)
{
    VSTR *why = vstr_alloc(64);

    if (conn_connect_finish(s->conn, why) < 0) {
        session_connect_retry(s, vstr_str(why));
        vstr_free(why);
        return;
    }
    vstr_free(why);
    addr_cache_ok(s->addr_cache, s->conn->addr, s->port);
    if (msg_verbose)
        msg_info("connected to %s", vstr_str(s->relay_text));
    vstr_strcpy(s->job->relay_text, vstr_str(s->relay_text));
    event_disable_write(s->conn->fd);
    event_enable_read(s->conn->fd, session_event, s);
    if (s->wrapper) { /* implicit TLS: the handshake comes before the greeting */
        session_tls_begin(s);
        return;
    }
    session_arm(s, SESS_GREETING);
}

/* session_begin - start the job's transaction on the idle connection */
static void session_begin(SESSION *s)
{
    JOB *job = s->job;
    long long now = wall_ms();
    size_t len = vstr_len(job->body);
    VSTR *text;

    event_cancel_timer(session_keepalive, s);
    event_cancel_timer(session_idle_expire, s);
    s->job_active = 1;
    vstr_strcpy(job->relay_text, vstr_str(s->relay_text));
    if (job->setup_start) {
        job->setup_ms = now - job->setup_start;
        job->xfer_start = now;
    }
    if ((s->features & SESS_FEAT_SIZE) && s->size_limit > 0 && (long long)len > s->size_limit) {
        text = vstr_alloc(128);
        vstr_sprintf(text, "message size %zu exceeds size limit %lld of server %s", len,
                     s->size_limit, vstr_str(s->label));
        job_fail_pending(job, JOB_BOUNCED, "5.3.4", vstr_str(text));
        vstr_free(text);
        session_job_done(s, AFTER_IDLE);
        return;
    }
    if (job->utf8 && !(s->features & SESS_FEAT_SMTPUTF8)) {
        text = vstr_alloc(128);
        vstr_sprintf(text, "SMTPUTF8 is required, but was not offered by host %s",
                     vstr_str(s->label));
        job_fail_pending(job, JOB_BOUNCED, "5.6.7", vstr_str(text));
        vstr_free(text);
        session_job_done(s, AFTER_IDLE);
        return;
    }
    job->conn_use = ++s->msgs;
    memset(&s->txn, 0, sizeof(s->txn));
    s->txn.reused = job->conn_use > 1;
    /* RFC 3030: BDAT may follow the RCPT TOs unanswered only with PIPELINING. */
    s->txn.bdat = var_bool(smtp_use_chunking) && (s->features & SESS_FEAT_CHUNKING) &&
                  (s->features & SESS_FEAT_PIPELINING);
    session_arm(s, SESS_MAIL);
    /* The relay takes over success notices only if it speaks DSN (qmgr's "relayed"). */
    job->upstream_dsn = (s->features & SESS_FEAT_DSN) != 0;
    vstr_sprintf_append(s->out, "MAIL FROM:<%s>", job->sender);
    if (s->features & SESS_FEAT_SIZE)
        vstr_sprintf_append(s->out, " SIZE=%zu", len);
    if (job->eightbit && (s->features & SESS_FEAT_8BITMIME))
        vstr_strcat(s->out, " BODY=8BITMIME");
    if (job->utf8)
        vstr_strcat(s->out, " SMTPUTF8");
    if (job->upstream_dsn)
        job_mail_dsn(job, s->out);
    vstr_strcat(s->out, "\r\n");
    if (s->features & SESS_FEAT_PIPELINING)
        session_rcpt_refill(s);
    session_flush(s);
}

/* session_kick - start the waiting job, or finish a shutdown, once the connection is free */
static void session_kick(void *ctx)
{
    SESSION *s = ctx;
    JOB *job = s->job;
    long long now = now_ms();
    long long wall = wall_ms();
    long long age_limit = var_int(smtp_connection_reuse_time_limit) * 1000LL;
    long long count_limit = var_int(smtp_connection_reuse_count_limit);
    unsigned char ident[SASL_ID_LEN];
    const char *reason = NULL;
    VSTR *why;

    if (s->state != SESS_CLOSED && s->state != SESS_IDLE)
        return;
    if (job == NULL) {
        if (s->stopping) {
            if (s->state == SESS_IDLE) {
                session_quit(s, "stop");
            } else {
                s->stopping = 0;
                s->hooks->stopped(s->owner);
            }
        }
        return;
    }
    why = vstr_alloc(128);
    if (session_identity(job->relay, job->port, ident, why) < 0) {
        /* No credential, or it just failed: no connection can help this job now. */
        job->setup_start = 0;
        s->job_active = 1;
        job_fail_pending(job, JOB_DEFERRED, "4.7.0", vstr_str(why));
        vstr_free(why);
        session_job_done(s, AFTER_NONE);
        return;
    }
    vstr_free(why);
    if (s->state == SESS_CLOSED) {
        if (job->setup_start == 0)
            job->setup_start = wall;
        session_open(s, ident);
        return;
    }
    if (s->stale)
        reason = "reload";
    else if (memcmp(s->ident, ident, SASL_ID_LEN) != 0 || strcasecmp(s->host, job->relay) != 0 ||
             s->port != job->port)
        reason = "switch";
    else if (age_limit > 0 && now - s->opened_ms >= age_limit)
        reason = "reuse_time";
    else if (count_limit > 0 && s->msgs >= count_limit)
        reason = "reuse_count";
    if (reason != NULL) {
        if (msg_verbose)
            msg_info("retiring connection to %s (%u messages, %llds old, %s) for a job to %s:%u",
                     vstr_str(s->relay_text), s->msgs, (now - s->opened_ms) / 1000, reason,
                     job->relay, job->port);
        if (job->setup_start == 0)
            job->setup_start = wall;
        session_quit(s, reason);
        return;
    }
    session_begin(s);
}

/* session_deliver - take a job */
void session_deliver(SESSION *s, JOB *job)
{
    if (s->job != NULL)
        msg_panic("session_deliver: a job is in flight");
    if (job->body == NULL)
        msg_panic("session_deliver: %s: no content", job->queue_id);
    s->job = job;
    s->job_active = 0;
    if (s->state == SESS_QUIT) /* retiring anyway: do not make the job wait for the 221 */
        session_close(s, NULL);
    else
        session_hurry(s);
    session_request_kick(s);
}

/* session_shutdown - QUIT when the job in flight is done, then tell the owner */
void session_shutdown(SESSION *s)
{
    s->stopping = 1;
    session_hurry(s);
    session_request_kick(s);
}

/* session_ehlo_features - remember the EHLO keywords that change what we send */
static void session_ehlo_features(SESSION *s, const SMTP_REPLY *reply)
{
    const char *cp = vstr_str(reply->text);
    const char *end = cp + vstr_len(reply->text);
    const char *line, *eol;

    s->features = 0;
    s->size_limit = 0;
    s->auth_mechs = 0;
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
            s->features |= SESS_FEAT_PIPELINING;
        else if (KEYWORD("8BITMIME"))
            s->features |= SESS_FEAT_8BITMIME;
        else if (KEYWORD("ENHANCEDSTATUSCODES"))
            s->features |= SESS_FEAT_ENHANCEDSTATUSCODES;
        else if (KEYWORD("SMTPUTF8"))
            s->features |= SESS_FEAT_SMTPUTF8;
        else if (KEYWORD("DSN"))
            s->features |= SESS_FEAT_DSN;
        else if (KEYWORD("STARTTLS"))
            s->features |= SESS_FEAT_STARTTLS;
        else if (KEYWORD("CHUNKING"))
            s->features |= SESS_FEAT_CHUNKING;
        else if (KEYWORD("AUTH") || (len > 5 && strncasecmp(line, "AUTH=", 5) == 0)) {
            s->features |= SESS_FEAT_AUTH;
            s->auth_mechs |= auth_mechs(line + 4, (size_t)(eol - line - 4));
        } else if (KEYWORD("SIZE")) {
            s->features |= SESS_FEAT_SIZE;
            if (line + len < eol) {
                char *stop;
                long long limit = strtoll(line + len + 1, &stop, 10);

                if (stop > line + len + 1 && stop <= eol && limit > 0)
                    s->size_limit = limit;
            }
        }
#undef KEYWORD
    }
}

/* session_send_body - the content with dot-stuffing, then the final dot */
static void session_send_body(SESSION *s)
{
    const char *data = vstr_str(s->job->body);
    size_t len = vstr_len(s->job->body);
    size_t pos = 0;

    vstr_reserve(s->out, len + len / 64 + 8);
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) + 1 : len;

        /* A line that starts with a dot would otherwise end the data early. */
        if (data[pos] == '.')
            vstr_addch(s->out, '.');
        vstr_append(s->out, data + pos, end - pos);
        pos = end;
    }
    vstr_strcat(s->out, ".\r\n");
    session_arm(s, SESS_BODY);
    session_flush(s);
}

/* session_rcpt_append - queue the RCPT TO of the next recipient */
static void session_rcpt_append(SESSION *s)
{
    JOB *job = s->job;
    size_t i = s->txn.rcpt_sent++;

    vstr_sprintf_append(s->out, "RCPT TO:<%s>", job->rcpts[i].addr);
    if (job->upstream_dsn)
        job_rcpt_dsn(job, i, s->out);
    vstr_strcat(s->out, "\r\n");
}

/*
 * session_rcpt_refill - with PIPELINING: keep up to SESSION_RCPT_WINDOW
 * RCPT TO commands in flight, and DATA right after the last one. A bounded
 * window, not every recipient at once, is what lets the client stop soon
 * after a relay says it takes no more recipients. Refilled by halves, so a
 * long list costs one write per half window, not one per reply.
 */
static void session_rcpt_refill(SESSION *s)
{
    JOB *job = s->job;

    if (s->txn.rcpt_limited || s->txn.data_sent ||
        s->txn.rcpt_sent - s->txn.rcpt_replies > SESSION_RCPT_WINDOW / 2)
        return;
    while (s->txn.rcpt_sent < job->nrcpt &&
           s->txn.rcpt_sent - s->txn.rcpt_replies < SESSION_RCPT_WINDOW)
        session_rcpt_append(s);
    if (s->txn.rcpt_sent == job->nrcpt) {
        /* The content as it is queued (CRLF lines): BDAT takes it without dot-stuffing. */
        if (s->txn.bdat) {
            vstr_sprintf_append(s->out, "BDAT %zu LAST\r\n", vstr_len(job->body));
            vstr_append(s->out, vstr_str(job->body), vstr_len(job->body));
        } else {
            vstr_strcat(s->out, "DATA\r\n");
        }
        s->txn.data_sent = 1;
    }
    session_flush(s);
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
static void session_rcpt_limited(SESSION *s, const SMTP_REPLY *reply)
{
    JOB *job = s->job;
    VSTR *quoted, *text;

    s->txn.rcpt_limited = 1;
    if (s->txn.rcpt_sent == job->nrcpt)
        return;
    quoted = vstr_alloc(128);
    text = vstr_alloc(128);
    session_reply_text(reply, quoted);
    vstr_sprintf(text,
                 "not tried: host %s limited the number of recipients per transaction (%s); "
                 "left for another transaction",
                 vstr_str(s->label), vstr_str(quoted));
    for (size_t i = s->txn.rcpt_sent; i < job->nrcpt; i++)
        job_set(job, i, JOB_DEFERRED, "4.5.3", vstr_str(text));
    if (msg_verbose)
        msg_info("%s: %s refused recipients after %zu accepted: %zu not tried", job->queue_id,
                 vstr_str(s->relay_text), s->txn.accepted, job->nrcpt - s->txn.rcpt_sent);
    vstr_free(text);
    vstr_free(quoted);
}

/*
 * session_next_command - once every RCPT TO sent is answered: the next
 * RCPT TO (without PIPELINING), else DATA for the accepted recipients,
 * or give up on the transaction
 */
static void session_next_command(SESSION *s)
{
    JOB *job = s->job;

    if (s->txn.rcpt_sent < job->nrcpt && !s->txn.rcpt_limited && s->txn.mail_ok) {
        session_arm(s, SESS_RCPT);
        session_rcpt_append(s);
        session_flush(s);
    } else if (s->txn.accepted > 0) {
        session_arm(s, SESS_DATA);
        session_send(s, "DATA");
    } else {
        session_job_done(s, AFTER_RSET);
    }
}

/* session_content_reply - the reply to the whole content decides the accepted recipients */
static void session_content_reply(SESSION *s, const SMTP_REPLY *reply)
{
    JOB *job = s->job;
    VSTR *text;
    char dsn[16];

    if (reply->code / 100 != 2) {
        session_reply_fail(s, reply, session_reply_status(reply), 1);
        return;
    }
    text = vstr_alloc(128);
    session_reply_text(reply, text);
    session_reply_dsn(reply, JOB_SENT, dsn, sizeof(dsn));
    for (size_t i = 0; i < job->nrcpt; i++)
        if (job->rcpts[i].accepted)
            job_set(job, i, JOB_SENT, dsn, vstr_str(text));
    vstr_free(text);
    FAULT_POINT("smtpout-after-250");
}

/* session_transaction_reply - a reply to MAIL FROM, RCPT TO, DATA, the final dot or BDAT */
static void session_transaction_reply(SESSION *s, const SMTP_REPLY *reply)
{
    JOB *job = s->job;
    int pipelining = (s->features & SESS_FEAT_PIPELINING) != 0;
    int ok = reply->code / 100 == 2;
    VSTR *text;
    char dsn[16];

    switch (s->state) {
    case SESS_MAIL:
        if (ok)
            s->txn.mail_ok = 1;
        else
            session_reply_fail(s, reply, session_reply_status(reply), 0);
        if (pipelining)
            session_arm(s, SESS_RCPT);
        else if (ok)
            session_next_command(s);
        else
            session_job_done(s, AFTER_RSET);
        return;
    case SESS_RCPT: {
        JOB_RCPT *rcpt = job->rcpts + s->txn.rcpt_replies++;

        if (rcpt->status == JOB_PENDING) {
            if (ok) {
                rcpt->accepted = 1;
                s->txn.accepted++;
            } else {
                int status = session_reply_status(reply);

                text = vstr_alloc(128);
                session_reply_explain(s, reply, text);
                session_reply_dsn(reply, status, dsn, sizeof(dsn));
                job_set(job, (size_t)(rcpt - job->rcpts), status, dsn, vstr_str(text));
                vstr_free(text);
            }
        }
        if (!s->txn.rcpt_limited && session_rcpt_limit_reply(reply))
            session_rcpt_limited(s, reply);
        if (pipelining && s->txn.mail_ok)
            session_rcpt_refill(s);
        if (s->txn.rcpt_replies < s->txn.rcpt_sent)
            session_arm(s, SESS_RCPT); /* more replies to come (PIPELINING) */
        else if (s->txn.data_sent)
            session_arm(s, s->txn.bdat ? SESS_BDAT : SESS_DATA);
        else
            session_next_command(s);
        return;
    }
    case SESS_DATA:
        if (reply->code == 354) {
            if (s->txn.accepted > 0) {
                session_send_body(s);
            } else {
                /* Nobody to deliver to: end the data at once and forget the transaction. */
                s->txn.empty_data = 1;
                session_arm(s, SESS_DOT);
                session_send(s, ".");
            }
            return;
        }
        if (s->txn.accepted > 0)
            session_reply_fail(s, reply, reply->code / 100 == 5 ? JOB_BOUNCED : JOB_DEFERRED, 1);
        session_job_done(s, AFTER_RSET);
        return;
    case SESS_BODY:
        /* The server answered before the dot: the dialogue is out of step; close after. */
        session_reply_fail(s, reply, ok ? JOB_DEFERRED : session_reply_status(reply), 1);
        s->close_reason = "error";
        session_job_done(s, AFTER_CLOSE);
        return;
    case SESS_DOT:
        if (s->txn.empty_data) {
            session_job_done(s, AFTER_RSET);
            return;
        }
        session_content_reply(s, reply);
        session_job_done(s, AFTER_IDLE);
        return;
    case SESS_BDAT:
        /* With no recipient accepted the relay refused the content (503): nothing to decide. */
        if (s->txn.accepted == 0) {
            session_job_done(s, AFTER_RSET);
            return;
        }
        session_content_reply(s, reply);
        /* After a refused BDAT the transaction may linger on the relay's side. */
        session_job_done(s, ok ? AFTER_IDLE : AFTER_RSET);
        return;
    default:
        msg_panic("session_transaction_reply: state %d", (int)s->state);
    }
}

/* session_reply_421 - the server is going away */
static void session_reply_421(SESSION *s, const SMTP_REPLY *reply)
{
    VSTR *text;

    if (s->job == NULL || !s->job_active) {
        if (s->state == SESS_IDLE || s->state == SESS_NOOP)
            msg_info("connection to %s closed by server while idle", vstr_str(s->relay_text));
        session_close(s, "server_421");
        return;
    }
    if (session_can_retry(s)) {
        text = vstr_alloc(128);
        session_reply_text(reply, text);
        session_retry(s, vstr_str(text), "server_421");
        vstr_free(text);
        return;
    }
    /* Whatever the stage, the server will not finish this transaction. */
    session_reply_fail(s, reply, JOB_DEFERRED, 0);
    s->close_reason = "server_421";
    session_job_done(s, AFTER_CLOSE);
}

/* session_reply - dispatch one complete reply by what we wait for */
static void session_reply(SESSION *s, const SMTP_REPLY *reply)
{
    int ok = reply->code / 100 == 2;

    if (reply->code == 421 && s->state != SESS_QUIT) {
        session_reply_421(s, reply);
        return;
    }
    switch (s->state) {
    case SESS_GREETING:
        if (ok) {
            s->announced = 1;
            s->hooks->conn_event(s->owner, "open", s->dest, NULL, 0, 0);
            session_arm(s, SESS_EHLO);
            session_send(s, "EHLO %s", var_str(smtp_helo_name));
            return;
        }
        session_reply_fail(s, reply, JOB_DEFERRED, 0);
        session_job_done(s, AFTER_QUIT);
        return;
    case SESS_EHLO:
        if (ok) {
            session_ehlo_features(s, reply);
            /* A TLS 1.3 ticket comes after the handshake: by now it is here to be saved. */
            if (s->tls_on)
                tls_save_session(s->conn);
            session_setup_next(s);
            return;
        }
        if (reply->code / 100 == 5) {
            session_arm(s, SESS_HELO);
            session_send(s, "HELO %s", var_str(smtp_helo_name));
            return;
        }
        session_reply_fail(s, reply, JOB_DEFERRED, 0);
        session_job_done(s, AFTER_QUIT);
        return;
    case SESS_HELO:
        if (ok) {
            s->features = 0;
            s->auth_mechs = 0;
            session_setup_next(s);
            return;
        }
        session_reply_fail(s, reply, JOB_DEFERRED, 0);
        session_job_done(s, AFTER_QUIT);
        return;
    case SESS_STARTTLS:
        if (reply->code == 220) {
            session_tls_begin(s);
            return;
        }
        if (s->tls_level == TLS_POLICY_MAY) { /* opportunistic: carry on in plaintext */
            msg_info("%s refused STARTTLS (%d); continuing without TLS", vstr_str(s->relay_text),
                     reply->code);
            s->tls_declined = 1;
            session_setup_next(s);
            return;
        }
        session_reply_fail(s, reply, JOB_DEFERRED, 0);
        session_job_done(s, AFTER_QUIT);
        return;
    case SESS_AUTH:
        session_auth_reply(s, reply);
        return;
    case SESS_MAIL:
    case SESS_RCPT:
    case SESS_DATA:
    case SESS_BODY:
    case SESS_DOT:
    case SESS_BDAT:
        session_transaction_reply(s, reply);
        return;
    case SESS_NOOP:
        if (ok) {
            session_enter_idle(s, 0);
            return;
        }
        msg_info("connection to %s closed: NOOP while idle got %d", vstr_str(s->relay_text),
                 reply->code);
        session_close(s, "error");
        return;
    case SESS_RSET:
        if (ok)
            session_enter_idle(s, 1);
        else
            session_quit(s, "error");
        return;
    case SESS_QUIT:
        session_close(s, NULL);
        return;
    case SESS_IDLE:
        msg_info("connection to %s closed by server while idle (unexpected reply %d)",
                 vstr_str(s->relay_text), reply->code);
        session_close(s, "error");
        return;
    default:
        msg_panic("session_reply: state %d", (int)s->state);
    }
}

/* session_protocol_error - a malformed reply: the conversation cannot continue */
static void session_protocol_error(SESSION *s, const char *why)
{
    VSTR *text;

    if (s->job == NULL || !s->job_active) {
        msg_warn("connection to %s: %s", vstr_str(s->relay_text), why);
        session_close(s, "error");
        return;
    }
    text = vstr_alloc(128);
    vstr_sprintf(text, "protocol error with %s while %s: %s", vstr_str(s->label),
                 session_stage[s->state].doing, why);
    job_fail_pending(s->job, JOB_DEFERRED, "4.5.0", vstr_str(text));
    vstr_free(text);
    s->close_reason = "error";
    session_job_done(s, AFTER_CLOSE);
}

/* session_input - read what arrived and act on every complete reply */
static void session_input(SESSION *s)
{
    char buf[SESSION_READ_CHUNK];
    unsigned gen = s->gen;
    int eof = 0, err = 0;
    VSTR *why;

    for (;;) {
        ssize_t n = conn_read(s->conn, buf, sizeof(buf));

        if (n > 0) {
            vstr_append(s->in, buf, (size_t)n);
            if (vstr_len(s->in) > 4 * SMTP_REPLY_LINE_MAX)
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
    while (s->gen == gen && s->state != SESS_TLS && vstr_len(s->in) > 0) {
        char *data = vstr_str(s->in);
        char *nl = memchr(data, '\n', vstr_len(s->in));
        size_t len;
        int ret;

        if (nl == NULL) {
            if (vstr_len(s->in) > SMTP_REPLY_LINE_MAX + 2) {
                vstr_sprintf(why, "reply line longer than %d bytes", SMTP_REPLY_LINE_MAX);
                session_protocol_error(s, vstr_str(why));
            }
            break;
        }
        len = (size_t)(nl - data);
        if (len > 0 && data[len - 1] == '\r')
            len--;
        ret = smtp_reply_feed_line(s->parser, data, len, s->reply, why);
        vstr_consume(s->in, (size_t)(nl - data) + 1);
        if (ret == SMTP_REPLY_ERROR) {
            session_protocol_error(s, vstr_str(why));
            break;
        }
        if (ret == SMTP_REPLY_DONE) {
            if (msg_verbose)
                msg_info("< %s: %d %s", vstr_str(s->label), s->reply->code,
                         vstr_str(s->reply->text));
            session_reply(s, s->reply);
        }
    }
    vstr_free(why);
    if (s->gen != gen || s->conn == NULL)
        return;
    if (s->state == SESS_TLS) /* bytes after "220" sent in plaintext are discarded */
        vstr_reset(s->in);
    else if (!eof && !err && conn_pending(s->conn))
        event_request_timer(session_read_again, s, 0); /* poll(2) cannot see TLS's buffer */
    if (eof || err)
        session_lost(s, err ? strerror(err) : "end of file");
}

/* session_read_again - read what the transport holds without the descriptor being ready */
static void session_read_again(void *ctx)
{
    SESSION *s = ctx;

    if (s->conn != NULL && s->state != SESS_CONNECTING && s->state != SESS_TLS)
        session_input(s);
}

/* session_event - readiness of the relay connection */
static void session_event(int fd, int events, void *ctx)
{
    SESSION *s = ctx;

    (void)fd;
    if (s->conn == NULL)
        return;
    if (s->state == SESS_CONNECTING) {
        if (events & EVENT_WRITE)
            session_connected(s);
        return;
    }
    if (s->state == SESS_TLS) {
        session_tls_step(s);
        return;
    }
    if (events & EVENT_WRITE)
        session_flush(s);
    if ((events & EVENT_READ) && s->conn != NULL)
        session_input(s);
}

/* session_reload - the configuration was re-read: retire a connection it changed */
void session_reload(SESSION *s)
{
    unsigned char ident[SASL_ID_LEN];
    VSTR *why;

    if (s->conn == NULL || s->state == SESS_QUIT || s->host == NULL)
        return;
    why = vstr_alloc(128);
    /* A changed credential or TLS policy: this connection must not carry another job. */
    if (session_identity(s->host, s->port, ident, why) < 0 ||
        memcmp(ident, s->ident, SASL_ID_LEN) != 0) {
        s->stale = 1;
        if (s->state == SESS_IDLE && s->job == NULL) {
            msg_info("connection to %s: configuration changed; closing", vstr_str(s->relay_text));
            event_cancel_timer(session_keepalive, s);
            event_cancel_timer(session_idle_expire, s);
            session_quit(s, "reload");
        }
    }
    vstr_free(why);
}

/* session_held_dest - the destination of an announced open connection, or NULL */
const char *session_held_dest(const SESSION *s)
{
    return s->conn != NULL && s->announced && s->state != SESS_QUIT ? s->dest : NULL;
}
