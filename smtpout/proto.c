/*
 * proto - the SMTP dialogue: connection setup and the mail transaction
 *
 * proto_connected()
 *	the TCP handshake is over: the greeting, or first the TLS handshake
 *	(implicit TLS, smtp_tls_wrappermode).
 * proto_tls_step()
 *	advance the TLS handshake; once it is done, EHLO again (STARTTLS) or
 *	wait for the greeting (implicit TLS).
 * proto_begin()
 *	start the waiting job's transaction on the idle connection: MAIL
 *	FROM, and with PIPELINING the RCPT TO window and DATA or BDAT.
 * proto_reply()
 *	act on one complete reply by what the session waits for.
 *
 * Connection setup is: TCP, (implicit TLS,) greeting, EHLO (HELO after a
 * 5xx), STARTTLS and the TLS handshake and EHLO again
 * (smtp_tls_security_level), AUTH once (sasl_proto.c), then job after
 * job. At level may a failed handshake costs nothing: the job is retried
 * at once on one plaintext connection, and a refused STARTTLS carries on
 * in plaintext.
 *
 * With PIPELINING, MAIL FROM, the RCPT TO commands (at most
 * PROTO_RCPT_WINDOW unanswered at a time) and DATA after the last of
 * them go out without waiting, and the replies are matched in order;
 * without it, one command per reply. A RCPT TO answered with 452 or
 * 4.5.3 ("too many recipients") ends the list: no further RCPT TO is sent
 * (those already in flight are answered as they come), the recipients
 * not tried are deferred with 4.5.3 for qmgr to send in another
 * transaction, and the accepted ones get DATA. The sender's DSN requests
 * (RFC 3461 RET, ENVID, NOTIFY, ORCPT) go upstream only when the relay's
 * EHLO offered DSN; the job then notes that the relay took over the
 * notices (upstream_dsn in the result).
 *
 * CHUNKING (RFC 3030; smtp_use_chunking): when the relay offers it with
 * PIPELINING, "BDAT n LAST" and the whole content, as queued and without
 * dot-stuffing, take the place of DATA right after the last RCPT TO, so
 * a message costs one round trip. The RCPT TO replies decide the refused
 * recipients and the BDAT reply the accepted ones, as DATA's and the
 * dot's would. A relay that limits the recipients before the list is
 * written gets DATA for that transaction.
 *
 * Ownership: the session's buffers and job; every reply decides
 * recipients through job_set() or trouble.c and ends the job through
 * session_job_done(). Refusals are recipient outcomes, never fatal; a
 * reply in a state that waits for none is a panic.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "fault.h"
#include "iostuff.h"
#include "msg.h"
#include "params.h"
#include "smtp_reply.h"
#include "smtpout.h"

#define PROTO_RCPT_WINDOW 100 /* RCPT TO commands in flight with PIPELINING */

/* proto_tls_failed - the handshake failed: defer, or at level may retry without TLS */
static void proto_tls_failed(SESSION *s, int ret, const char *why)
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

/* proto_tls_step - advance the handshake; go on with SMTP when it is done */
void proto_tls_step(SESSION *s)
{
    VSTR *why = vstr_alloc(128);
    VSTR *desc;
    int ret = tls_handshake(s->conn, why);

    if (ret == TLS_HS_AGAIN) {
        if (tls_want_write(s->conn))
            event_enable_write(s->conn->fd, chat_event, s);
        else
            event_disable_write(s->conn->fd);
        vstr_free(why);
        return;
    }
    if (ret != TLS_HS_DONE) {
        proto_tls_failed(s, ret, vstr_str(why));
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
        event_request_timer(chat_read_again, s, 0);
        return;
    }
    /* RFC 3207: forget what the server said before TLS, and ask again. */
    s->features = 0;
    s->size_limit = 0;
    s->auth_mechs = 0;
    session_arm(s, SESS_EHLO);
    chat_send(s, "EHLO %s", var_str(smtp_helo_name));
}

/* proto_tls_begin - start the handshake on the connected socket */
static void proto_tls_begin(SESSION *s)
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
    event_enable_read(s->conn->fd, chat_event, s);
    proto_tls_step(s);
}

/* proto_connected - the TCP handshake is over */
void proto_connected(SESSION *s)
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
    event_enable_read(s->conn->fd, chat_event, s);
    if (s->wrapper) { /* implicit TLS: the handshake comes before the greeting */
        proto_tls_begin(s);
        return;
    }
    session_arm(s, SESS_GREETING);
}

/* proto_setup_next - after EHLO: STARTTLS, then AUTH, then ready for jobs */
static void proto_setup_next(SESSION *s)
{
    VSTR *text;

    if (!s->tls_on && !s->tls_declined && s->tls_level != TLS_POLICY_NONE) {
        if (s->features & SESS_FEAT_STARTTLS) {
            session_arm(s, SESS_STARTTLS);
            chat_send(s, "STARTTLS");
            return;
        }
        if (s->tls_level >= TLS_POLICY_ENCRYPT) {
            text = vstr_alloc(128);
            vstr_sprintf(text, "TLS is required, but was not offered by host %s",
                         vstr_str(s->label));
            trouble_setup_fail(s, "4.7.4", vstr_str(text));
            vstr_free(text);
            return;
        }
    }
    if (var_bool(smtp_sasl_auth_enable) && !s->authed && sasl_proto_start(s))
        return;
    session_enter_idle(s, 1);
}

/* proto_ehlo_features - remember the EHLO keywords that change what we send */
static void proto_ehlo_features(SESSION *s, const SMTP_REPLY *reply)
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

/* proto_rcpt_append - queue the RCPT TO of the next recipient */
static void proto_rcpt_append(SESSION *s)
{
    JOB *job = s->job;
    size_t i = s->txn.rcpt_sent++;

    vstr_sprintf_append(s->out, "RCPT TO:<%s>", job->rcpts[i].addr);
    if (job->upstream_dsn)
        job_rcpt_dsn(job, i, s->out);
    vstr_strcat(s->out, "\r\n");
}

/*
 * proto_rcpt_refill - with PIPELINING: keep up to PROTO_RCPT_WINDOW
 * RCPT TO commands in flight, and DATA right after the last one. A bounded
 * window, not every recipient at once, is what lets the client stop soon
 * after a relay says it takes no more recipients. Refilled by halves, so a
 * long list costs one write per half window, not one per reply.
 */
static void proto_rcpt_refill(SESSION *s)
{
    JOB *job = s->job;

    if (s->txn.rcpt_limited || s->txn.data_sent ||
        s->txn.rcpt_sent - s->txn.rcpt_replies > PROTO_RCPT_WINDOW / 2)
        return;
    while (s->txn.rcpt_sent < job->nrcpt &&
           s->txn.rcpt_sent - s->txn.rcpt_replies < PROTO_RCPT_WINDOW)
        proto_rcpt_append(s);
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
    chat_flush(s);
}

/* proto_begin - start the job's transaction on the idle connection */
void proto_begin(SESSION *s)
{
    JOB *job = s->job;
    long long now = wall_ms();
    size_t len = vstr_len(job->body);
    VSTR *text;

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
        proto_rcpt_refill(s);
    chat_flush(s);
}

/* proto_send_body - the content with dot-stuffing, then the final dot */
static void proto_send_body(SESSION *s)
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
    chat_flush(s);
}

/* proto_rcpt_limit_reply - does a RCPT TO reply mean "no more recipients in this transaction" */
static int proto_rcpt_limit_reply(const SMTP_REPLY *reply)
{
    /* RFC 5321 section 4.5.3.1.10: 452 (or 4.5.3) for too many recipients. */
    return reply->code == 452 || (reply->code / 100 == 4 && strcmp(reply->dsn, "4.5.3") == 0);
}

/*
 * proto_rcpt_limited - the relay takes no more recipients in this
 * transaction: send it no more RCPT TO, and defer the recipients not yet
 * tried with 4.5.3, which tells qmgr to send them again soon in another
 * transaction; the accepted ones still get DATA
 */
static void proto_rcpt_limited(SESSION *s, const SMTP_REPLY *reply)
{
    JOB *job = s->job;
    VSTR *quoted, *text;

    s->txn.rcpt_limited = 1;
    if (s->txn.rcpt_sent == job->nrcpt)
        return;
    quoted = vstr_alloc(128);
    text = vstr_alloc(128);
    trouble_reply_text(reply, quoted);
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
 * proto_next_command - once every RCPT TO sent is answered: the next
 * RCPT TO (without PIPELINING), else DATA for the accepted recipients,
 * or give up on the transaction
 */
static void proto_next_command(SESSION *s)
{
    JOB *job = s->job;

    if (s->txn.rcpt_sent < job->nrcpt && !s->txn.rcpt_limited && s->txn.mail_ok) {
        session_arm(s, SESS_RCPT);
        proto_rcpt_append(s);
        chat_flush(s);
    } else if (s->txn.accepted > 0) {
        session_arm(s, SESS_DATA);
        chat_send(s, "DATA");
    } else {
        session_job_done(s, AFTER_RSET);
    }
}

/* proto_content_reply - the reply to the whole content decides the accepted recipients */
static void proto_content_reply(SESSION *s, const SMTP_REPLY *reply)
{
    JOB *job = s->job;
    VSTR *text;
    char dsn[16];

    if (reply->code / 100 != 2) {
        trouble_reply_fail(s, reply, trouble_reply_status(reply), 1);
        return;
    }
    text = vstr_alloc(128);
    trouble_reply_text(reply, text);
    trouble_reply_dsn(reply, JOB_SENT, dsn, sizeof(dsn));
    for (size_t i = 0; i < job->nrcpt; i++)
        if (job->rcpts[i].accepted)
            job_set(job, i, JOB_SENT, dsn, vstr_str(text));
    vstr_free(text);
    FAULT_POINT("smtpout-after-250");
}

/* proto_transaction_reply - a reply to MAIL FROM, RCPT TO, DATA, the final dot or BDAT */
static void proto_transaction_reply(SESSION *s, const SMTP_REPLY *reply)
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
            trouble_reply_fail(s, reply, trouble_reply_status(reply), 0);
        if (pipelining)
            session_arm(s, SESS_RCPT);
        else if (ok)
            proto_next_command(s);
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
                int status = trouble_reply_status(reply);

                text = vstr_alloc(128);
                trouble_reply_explain(s, reply, text);
                trouble_reply_dsn(reply, status, dsn, sizeof(dsn));
                job_set(job, (size_t)(rcpt - job->rcpts), status, dsn, vstr_str(text));
                vstr_free(text);
            }
        }
        if (!s->txn.rcpt_limited && proto_rcpt_limit_reply(reply))
            proto_rcpt_limited(s, reply);
        if (pipelining && s->txn.mail_ok)
            proto_rcpt_refill(s);
        if (s->txn.rcpt_replies < s->txn.rcpt_sent)
            session_arm(s, SESS_RCPT); /* more replies to come (PIPELINING) */
        else if (s->txn.data_sent)
            session_arm(s, s->txn.bdat ? SESS_BDAT : SESS_DATA);
        else
            proto_next_command(s);
        return;
    }
    case SESS_DATA:
        if (reply->code == 354) {
            if (s->txn.accepted > 0) {
                proto_send_body(s);
            } else {
                /* Nobody to deliver to: end the data at once and forget the transaction. */
                s->txn.empty_data = 1;
                session_arm(s, SESS_DOT);
                chat_send(s, ".");
            }
            return;
        }
        if (s->txn.accepted > 0)
            trouble_reply_fail(s, reply, reply->code / 100 == 5 ? JOB_BOUNCED : JOB_DEFERRED, 1);
        session_job_done(s, AFTER_RSET);
        return;
    case SESS_BODY:
        /* The server answered before the dot: the dialogue is out of step; close after. */
        trouble_reply_fail(s, reply, ok ? JOB_DEFERRED : trouble_reply_status(reply), 1);
        s->close_reason = "error";
        session_job_done(s, AFTER_CLOSE);
        return;
    case SESS_DOT:
        if (s->txn.empty_data) {
            session_job_done(s, AFTER_RSET);
            return;
        }
        proto_content_reply(s, reply);
        session_job_done(s, AFTER_IDLE);
        return;
    case SESS_BDAT:
        /* With no recipient accepted the relay refused the content (503): nothing to decide. */
        if (s->txn.accepted == 0) {
            session_job_done(s, AFTER_RSET);
            return;
        }
        proto_content_reply(s, reply);
        /* After a refused BDAT the transaction may linger on the relay's side. */
        session_job_done(s, ok ? AFTER_IDLE : AFTER_RSET);
        return;
    default:
        msg_panic("proto_transaction_reply: state %d", (int)s->state);
    }
}

/* proto_setup_refused - the relay refused a step of the setup: defer the job, say goodbye */
static void proto_setup_refused(SESSION *s, const SMTP_REPLY *reply)
{
    trouble_reply_fail(s, reply, JOB_DEFERRED, 0);
    session_job_done(s, AFTER_QUIT);
}

/* proto_reply - dispatch one complete reply by what we wait for */
void proto_reply(SESSION *s, const SMTP_REPLY *reply)
{
    int ok = reply->code / 100 == 2;

    if (reply->code == 421 && s->state != SESS_QUIT) {
        trouble_reply_421(s, reply);
        return;
    }
    switch (s->state) {
    case SESS_GREETING:
        if (ok) {
            s->announced = 1;
            s->hooks->conn_event(s->owner, "open", s->dest, NULL, 0, 0);
            session_arm(s, SESS_EHLO);
            chat_send(s, "EHLO %s", var_str(smtp_helo_name));
            return;
        }
        proto_setup_refused(s, reply);
        return;
    case SESS_EHLO:
        if (ok) {
            proto_ehlo_features(s, reply);
            /* A TLS 1.3 ticket comes after the handshake: by now it is here to be saved. */
            if (s->tls_on)
                tls_save_session(s->conn);
            proto_setup_next(s);
            return;
        }
        if (reply->code / 100 == 5) {
            session_arm(s, SESS_HELO);
            chat_send(s, "HELO %s", var_str(smtp_helo_name));
            return;
        }
        proto_setup_refused(s, reply);
        return;
    case SESS_HELO:
        if (ok) {
            s->features = 0;
            s->auth_mechs = 0;
            proto_setup_next(s);
            return;
        }
        proto_setup_refused(s, reply);
        return;
    case SESS_STARTTLS:
        if (reply->code == 220) {
            proto_tls_begin(s);
            return;
        }
        if (s->tls_level == TLS_POLICY_MAY) { /* opportunistic: carry on in plaintext */
            msg_info("%s refused STARTTLS (%d); continuing without TLS", vstr_str(s->relay_text),
                     reply->code);
            s->tls_declined = 1;
            proto_setup_next(s);
            return;
        }
        proto_setup_refused(s, reply);
        return;
    case SESS_AUTH:
        sasl_proto_reply(s, reply);
        return;
    case SESS_MAIL:
    case SESS_RCPT:
    case SESS_DATA:
    case SESS_BODY:
    case SESS_DOT:
    case SESS_BDAT:
        proto_transaction_reply(s, reply);
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
        msg_panic("proto_reply: state %d", (int)s->state);
    }
}
