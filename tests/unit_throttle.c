/*
 * unit_throttle - which deferrals are a relay asking relayq to slow down
 *
 * A table of real replies (as the big providers and the common MTAs word
 * them), each with the command it answered and what throttle_classify()
 * must make of the reason smtpout stores for it. The reason and the
 * enhanced status code are built as smtpout builds them: the reply
 * through the real parser, quoted after "host H said:" (or "refused to
 * talk to me:" at the greeting), the code forced into class 4 of a
 * deferral.
 *
 * "unit_throttle --slow-down" prints the slowing replies instead, one
 * "COMMAND<TAB>REPLY" line each, so that tests/t_throttle.sh puts the same
 * table through the whole system.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"
#include "tap.h"
#include "throttle.h"
#include "vstr.h"

/* One reply and what it asks of the destination. */
struct throttle_case {
    const char *source;  /* who says it */
    const char *command; /* what it answers: GREETING, MAIL, RCPT, DOT ... */
    const char *reply;   /* one line, as sent */
    int want;            /* THROTTLE_* */
};

static const struct throttle_case cases[] = {
    /* Providers asking for less traffic. */
    {"Gmail", "MAIL", "421 4.7.0 Try again later, closing connection.", THROTTLE_SLOW_DOWN},
    {"Gmail", "RCPT",
     "450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents "
     "additional messages from being delivered.",
     THROTTLE_SLOW_DOWN},
    {"Gmail", "DOT",
     "421 4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your "
     "IP address.",
     THROTTLE_SLOW_DOWN},
    {"Office 365", "MAIL", "451 4.7.500 Server busy. Please try again later from [192.0.2.1].",
     THROTTLE_SLOW_DOWN},
    {"Office 365", "MAIL", "421 4.3.2 Service not available, closing transmission channel",
     THROTTLE_SLOW_DOWN},
    {"Office 365", "RCPT", "450 4.7.3 Organization queue quota exceeded.", THROTTLE_SLOW_DOWN},
    {"SES", "MAIL", "454 Throttling failure: Maximum sending rate exceeded.", THROTTLE_SLOW_DOWN},
    {"SES", "MAIL", "454 Throttling failure: Daily message quota exceeded.", THROTTLE_SLOW_DOWN},
    {"Postfix", "MAIL", "450 4.7.1 Error: too much mail from 192.0.2.1", THROTTLE_SLOW_DOWN},
    {"Postfix", "GREETING", "421 4.7.0 relay.example Error: too many connections from 192.0.2.1",
     THROTTLE_SLOW_DOWN},
    {"Exim", "MAIL", "421 too many messages in one connection", THROTTLE_SLOW_DOWN},
    {"Exim", "MAIL", "451 Temporary local problem - please try later", THROTTLE_SLOW_DOWN},
    {"Haraka", "MAIL", "450 4.7.1 rate limit exceeded", THROTTLE_SLOW_DOWN},
    {"Haraka", "GREETING", "421 4.7.0 Too many concurrent connections", THROTTLE_SLOW_DOWN},
    {"Yahoo", "MAIL",
     "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume "
     "or user complaints",
     THROTTLE_SLOW_DOWN},
    {"Outlook.com", "MAIL",
     "421 RP-001 Unfortunately, some messages from 192.0.2.1 weren't sent. Please try again. We "
     "have limits for how many messages can be sent per hour and per day.",
     THROTTLE_SLOW_DOWN},
    {"Mailgun", "GREETING", "421 4.7.0 Too many connections, slow down", THROTTLE_SLOW_DOWN},
    /* Recipient limits: the transaction was big, the relay is fine. */
    {"Postfix", "RCPT", "452 4.5.3 Error: too many recipients", THROTTLE_RCPT_LIMIT},
    {"Exim", "RCPT", "452 too many recipients", THROTTLE_RCPT_LIMIT},
    /* Ordinary deferrals: they wait out the message's backoff. */
    {"Postfix", "RCPT", "450 4.7.1 <a@example.com>: Recipient address rejected: Greylisted",
     THROTTLE_NONE},
    {"Postfix", "MAIL", "450 4.7.1 Client host rejected: cannot find your hostname", THROTTLE_NONE},
    {"Postfix", "DOT", "451 4.3.0 Error: queue file write error", THROTTLE_NONE},
    {"Postfix", "RCPT", "450 4.1.1 <a@example.com>: Recipient address rejected: unverified address",
     THROTTLE_NONE},
    {"Gmail", "RCPT", "452 4.2.2 The email account that you tried to reach is over quota.",
     THROTTLE_NONE},
    {"Postfix", "STARTTLS", "454 4.7.0 TLS not available due to local problem", THROTTLE_NONE},
    {"Exim", "DOT", "451 message generated an error in a filter", THROTTLE_NONE},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* reason_of - the reason and code smtpout stores for a deferral by this reply */
static void reason_of(const struct throttle_case *tc, VSTR *reason, char *dsn, size_t size)
{
    SMTP_REPLY_PARSER *parser = smtp_reply_parser_create();
    SMTP_REPLY *reply = smtp_reply_alloc();
    VSTR *why = vstr_alloc(64);

    if (smtp_reply_feed_line(parser, tc->reply, strlen(tc->reply), reply, why) != SMTP_REPLY_DONE)
        tap_diag("%s: does not parse: %s", tc->reply, vstr_str(why));
    /* A deferral's code is of class 4, whatever the reply said. */
    if (reply->dsn[0] != '\0')
        snprintf(dsn, size, "4%s", reply->dsn + 1);
    else
        snprintf(dsn, size, "4.0.0");
    if (strcmp(tc->command, "GREETING") == 0)
        vstr_sprintf(reason, "host relay.example[192.0.2.7]:587 refused to talk to me: %s",
                     tc->reply);
    else
        vstr_sprintf(reason, "host relay.example[192.0.2.7]:587 said: %s (in reply to %s command)",
                     tc->reply, tc->command);
    vstr_free(why);
    smtp_reply_free(reply);
    smtp_reply_parser_free(parser);
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"none", "slow down", "recipient limit"};
    VSTR *reason = vstr_alloc(256);
    char dsn[16];
    int have;

    if (argc == 2 && strcmp(argv[1], "--slow-down") == 0) {
        for (size_t i = 0; i < NCASES; i++)
            if (cases[i].want == THROTTLE_SLOW_DOWN)
                printf("%s\t%s\n", cases[i].command, cases[i].reply);
        vstr_free(reason);
        return 0;
    }
    tap_plan((int)NCASES + 3);
    for (size_t i = 0; i < NCASES; i++) {
        reason_of(&cases[i], reason, dsn, sizeof(dsn));
        have = throttle_classify(dsn, vstr_str(reason));
        tap_ok(have == cases[i].want, "%s, %s: \"%.60s\": %s (got %s)", cases[i].source,
               cases[i].command, cases[i].reply, names[cases[i].want], names[have]);
    }
    tap_ok(throttle_classify("4.4.1", "connect to relay.example[192.0.2.7]:587: Connection "
                                      "refused") == THROTTLE_NONE,
           "a refused connection is no request to slow down");
    tap_ok(throttle_classify("4.7.0", "SASL authentication failed; server "
                                      "relay.example[192.0.2.7] said: 454 4.7.0 Temporary "
                                      "authentication failure") == THROTTLE_NONE,
           "a failed AUTH is no request to slow down");
    tap_ok(throttle_classify("4.0.0", "lost connection with relay.example[192.0.2.7] while "
                                      "sending MAIL FROM") == THROTTLE_NONE,
           "a lost connection is no request to slow down");
    vstr_free(reason);
    return tap_done();
}
