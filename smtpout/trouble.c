/*
 * trouble - what a failure means for the job: reasons, status codes, outcomes
 *
 * trouble_reply_text()
 *	a reply on one line as the server spoke it, quoted up to
 *	TROUBLE_QUOTE_MAX bytes.
 * trouble_reply_dsn()
 *	a reply's enhanced status code, forced into the class of the outcome.
 * trouble_reply_status()
 *	the recipient outcome a final reply means (2xx sent, 5xx bounced,
 *	else deferred).
 * trouble_reply_explain()
 *	Postfix's reason for a reply: "host X said: ... (in reply to ...
 *	command)", or "host X refused to talk to me: ..." for the greeting.
 * trouble_reply_fail()
 *	decide the undecided recipients (all, or the accepted ones) by a reply.
 * trouble_lost()
 *	end of file, reset or write failure.
 * trouble_write_failed()
 *	a zero-delay timer: report a write that failed earlier in the pass.
 * trouble_connect_failed()
 *	no address of the relay answered, or its name has none: defer the job.
 * trouble_timeout()
 *	the stage timer: the current stage took too long.
 * trouble_setup_fail()
 *	the connection cannot serve the job (TLS required but not offered,
 *	AUTH refused): defer it and say goodbye.
 * trouble_protocol_error()
 *	a malformed or out-of-place reply: the conversation cannot go on.
 * trouble_reply_421()
 *	the server is going away, whatever the stage.
 *
 * Upstream faults (doc/relayq.conf.5, UPSTREAM FAULTS): a 5xx to MAIL
 * FROM, RCPT TO, DATA, the final dot or BDAT bounces (proto.c); a 4xx, a
 * 421, a reply out of place, a malformed reply, a lost connection, a
 * stage timeout or any failure of the setup (greeting, EHLO/HELO,
 * STARTTLS, TLS, AUTH) defers. The reasons are Postfix's, so that the
 * log and the DSN read the same: "lost connection with host[addr] while
 * ...", "conversation with host[addr] timed out while ...", with what the
 * session was doing from its stage table (session_stage_doing()).
 *
 * A connection that was used before and dies before the server accepted
 * anything of the current job (end of file, reset, or 421 in reply to
 * MAIL FROM) is not a delivery failure: the job is retried once, at once,
 * on a fresh connection (session_retry()).
 *
 * Ownership: nothing is kept here; the outcomes go into the session's
 * job, which session_job_done() hands to the owner. Failures of the relay
 * or the network are never fatal; a stage timer in a state without one,
 * or a job stage without a job, is a panic.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "event.h"
#include "msg.h"
#include "smtp_reply.h"
#include "smtpout.h"

#define TROUBLE_QUOTE_MAX 800 /* bytes of a reply's text quoted in a reason */

/*
 * trouble_reply_text - the reply on one line as the server spoke it: "CODE
 * X.Y.Z text" when it gave an enhanced status code, "CODE text" when not (the
 * code relayq derives for it goes into dsn=, never into the quote)
 */
void trouble_reply_text(const SMTP_REPLY *reply, VSTR *out)
{
    size_t len = vstr_len(reply->text);

    vstr_sprintf(out, "%d", reply->code);
    if (reply->dsn[0] != '\0')
        vstr_sprintf_append(out, " %s", reply->dsn);
    if (len > 0) {
        vstr_addch(out, ' ');
        /* A reply may run to megabytes; the reason around it must stay readable. */
        for (size_t i = 0; i < len && i < TROUBLE_QUOTE_MAX; i++) {
            char ch = vstr_str(reply->text)[i];

            vstr_addch(out, ch == '\n' ? ' ' : ch);
        }
        if (len > TROUBLE_QUOTE_MAX)
            vstr_strcat(out, "...");
    }
}

/* trouble_reply_dsn - the reply's status code, forced into the class of the outcome */
void trouble_reply_dsn(const SMTP_REPLY *reply, int status, char *dsn, size_t size)
{
    char want = status == JOB_SENT ? '2' : status == JOB_BOUNCED ? '5' : '4';

    smtp_reply_default_dsn(reply, dsn, size);
    if (dsn[0] != want)
        snprintf(dsn, size, "%c.0.0", want);
}

/* trouble_reply_status - the recipient outcome a final reply means */
int trouble_reply_status(const SMTP_REPLY *reply)
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

/* trouble_reply_explain - Postfix's reason text for a reply to the current stage */
void trouble_reply_explain(SESSION *s, const SMTP_REPLY *reply, VSTR *text)
{
    VSTR *quoted = vstr_alloc(128);

    trouble_reply_text(reply, quoted);
    if (s->state == SESS_GREETING)
        vstr_sprintf(text, "host %s refused to talk to me: %s", vstr_str(s->label),
                     vstr_str(quoted));
    else
        vstr_sprintf(text, "host %s said: %s (in reply to %s command)", vstr_str(s->label),
                     vstr_str(quoted), session_stage_command(s->state));
    vstr_free(quoted);
}

/* trouble_reply_fail - decide undecided recipients (all, or the accepted ones) by a reply */
void trouble_reply_fail(SESSION *s, const SMTP_REPLY *reply, int status, int only_accepted)
{
    VSTR *text = vstr_alloc(128);
    char dsn[16];

    trouble_reply_explain(s, reply, text);
    trouble_reply_dsn(reply, status, dsn, sizeof(dsn));
    for (size_t i = 0; i < s->job->nrcpt; i++)
        if (!only_accepted || s->job->rcpts[i].accepted)
            job_set(s->job, i, status, dsn, vstr_str(text));
    vstr_free(text);
}

/* trouble_can_retry - is this failure the "stale reused connection" case */
static int trouble_can_retry(SESSION *s)
{
    return s->job != NULL && s->job_active && s->state == SESS_MAIL && s->txn.reused &&
           !s->txn.mail_ok && !s->job->retried;
}

/* trouble_defer_close - the connection broke under the job: defer the rest, close at once */
static void trouble_defer_close(SESSION *s, const char *text, const char *reason)
{
    job_fail_pending(s->job, JOB_DEFERRED, "4.4.2", text);
    s->close_reason = reason;
    session_job_done(s, AFTER_CLOSE);
}

/* trouble_lost - end of file, reset or write failure */
void trouble_lost(SESSION *s, const char *detail)
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
    if (trouble_can_retry(s)) {
        session_retry(s, detail, "server_close");
        return;
    }
    text = vstr_alloc(128);
    vstr_sprintf(text, "lost connection with %s while %s", vstr_str(s->label),
                 session_stage_doing(s->state));
    trouble_defer_close(s, vstr_str(text), "server_close");
    vstr_free(text);
}

/* trouble_write_failed - a write failed earlier in this pass */
void trouble_write_failed(void *ctx)
{
    SESSION *s = ctx;

    if (s->conn != NULL)
        trouble_lost(s, strerror(s->out_error));
}

/* trouble_connect_failed - decide the job after a failed TCP connection */
void trouble_connect_failed(SESSION *s, const char *addr, const char *why)
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

/* trouble_timeout - the current stage took too long */
void trouble_timeout(void *ctx)
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
        msg_panic("trouble_timeout: in state %d", (int)s->state);
    default:
        break;
    }
    if (s->job == NULL || !s->job_active)
        msg_panic("trouble_timeout: state %d without a job", (int)s->state);
    text = vstr_alloc(128);
    vstr_sprintf(text, "conversation with %s timed out while %s", vstr_str(s->label),
                 session_stage_doing(s->state));
    trouble_defer_close(s, vstr_str(text), "error");
    vstr_free(text);
}

/* trouble_setup_fail - the connection cannot serve the job: decide it, say goodbye */
void trouble_setup_fail(SESSION *s, const char *dsn, const char *text)
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

/* trouble_protocol_error - a malformed reply: the conversation cannot continue */
void trouble_protocol_error(SESSION *s, const char *why)
{
    VSTR *text;

    if (s->job == NULL || !s->job_active) {
        msg_warn("connection to %s: %s", vstr_str(s->relay_text), why);
        session_close(s, "error");
        return;
    }
    text = vstr_alloc(128);
    vstr_sprintf(text, "protocol error with %s while %s: %s", vstr_str(s->label),
                 session_stage_doing(s->state), why);
    job_fail_pending(s->job, JOB_DEFERRED, "4.5.0", vstr_str(text));
    vstr_free(text);
    s->close_reason = "error";
    session_job_done(s, AFTER_CLOSE);
}

/* trouble_reply_421 - the server is going away */
void trouble_reply_421(SESSION *s, const SMTP_REPLY *reply)
{
    VSTR *text;

    if (s->job == NULL || !s->job_active) {
        if (s->state == SESS_IDLE || s->state == SESS_NOOP)
            msg_info("connection to %s closed by server while idle", vstr_str(s->relay_text));
        session_close(s, "server_421");
        return;
    }
    if (trouble_can_retry(s)) {
        text = vstr_alloc(128);
        trouble_reply_text(reply, text);
        session_retry(s, vstr_str(text), "server_421");
        vstr_free(text);
        return;
    }
    /* Whatever the stage, the server will not finish this transaction. */
    trouble_reply_fail(s, reply, JOB_DEFERRED, 0);
    s->close_reason = "server_421";
    session_job_done(s, AFTER_CLOSE);
}
