/*
 * sasl_proto - the SMTP AUTH dialogue of a session
 *
 * sasl_proto_start()
 *	after EHLO (and TLS): send AUTH with the relay's credential. 1 when
 *	the dialogue began or the setup failed (the job is decided); 0 when
 *	the relay offers no AUTH and the session goes on without it.
 * sasl_proto_reply()
 *	the server's answer in the dialogue: the next response to a 334
 *	challenge, success, or failure.
 *
 * AUTH runs once per connection (smtp_sasl_auth_enable) and never
 * without TLS, whatever the TLS level says. The mechanisms and the
 * responses are auth.c's; the responses go through the session's output
 * buffer marked secret, so they are wiped once written. The dialogue as
 * a whole has one smtp_helo_timeout, and a 334 after the client's "*"
 * ends it, so a server that never stops challenging cannot hold the
 * worker.
 *
 * Ownership: the AUTH_EXCHANGE in the session, ended here or when the
 * connection closes. A refused credential defers the job (class 4: it is
 * the operator's problem, not the message's) and, for a 5xx, is
 * remembered so that the next job does not try it again at once; nothing
 * is fatal.
 */
#include "config.h"

#include <stdio.h>

#include "msg.h"
#include "params.h"
#include "smtp_reply.h"
#include "smtpout.h"

/* sasl_proto_start - AUTH with the relay's credential; 0: it offers none, go on without */
int sasl_proto_start(SESSION *s)
{
    VSTR *text = vstr_alloc(128);
    SASL_CRED *cred;

    /* Whatever the TLS level says: no secret crosses an unencrypted connection. */
    if (!s->tls_on) {
        vstr_sprintf(text,
                     "SASL authentication refused: TLS is not active on the connection "
                     "to %s",
                     vstr_str(s->label));
        trouble_setup_fail(s, "4.7.0", vstr_str(text));
        vstr_free(text);
        return 1;
    }
    if (!(s->features & SESS_FEAT_AUTH)) {
        vstr_free(text);
        if (msg_verbose)
            msg_info("%s offers no AUTH: sending without authentication", vstr_str(s->relay_text));
        return 0;
    }
    if (auth_lookup(s->host, s->port, &cred, text) < 0) {
        trouble_setup_fail(s, "4.7.0", vstr_str(text));
        vstr_free(text);
        return 1;
    }
    if (auth_start(&s->auth, cred, s->auth_mechs, s->out, text) < 0) {
        VSTR *reason = vstr_alloc(128);

        vstr_sprintf(reason,
                     "SASL authentication failed; cannot authenticate to server "
                     "%s: %s",
                     vstr_str(s->label), vstr_str(text));
        trouble_setup_fail(s, "4.7.0", vstr_str(reason));
        vstr_free(reason);
        vstr_free(text);
        return 1;
    }
    vstr_free(text);
    if (msg_verbose)
        msg_info("> %s: AUTH %s (credentials not shown)", vstr_str(s->label),
                 auth_mech_name(s->auth.mech));
    s->out_secret = 1;
    session_arm(s, SESS_AUTH);
    chat_flush(s);
    return 1;
}

/* sasl_proto_reply - the server's answer in the AUTH dialogue */
void sasl_proto_reply(SESSION *s, const SMTP_REPLY *reply)
{
    VSTR *text, *quoted;
    char dsn[16];

    if (reply->code == 334) {
        size_t before = vstr_len(s->out);

        /* The stage timer keeps running: the whole dialogue has smtp_helo_timeout. */
        auth_continue(&s->auth, s->out);
        if (vstr_len(s->out) == before) {
            trouble_protocol_error(s, "334 challenge after the client cancelled the AUTH exchange");
            return;
        }
        s->out_secret = 1;
        chat_flush(s);
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
    /* "rejected": the credential itself (5xx), which qmgr suspends for every instance. */
    s->hooks->conn_event(s->owner, "auth_fail", s->dest, reply->code / 100 == 5 ? "rejected" : NULL,
                         0, 0);
    text = vstr_alloc(128);
    quoted = vstr_alloc(128);
    trouble_reply_text(reply, quoted);
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
    trouble_setup_fail(s, dsn, vstr_str(text));
    vstr_free(text);
}
