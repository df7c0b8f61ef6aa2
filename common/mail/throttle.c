/*
 * throttle - is a deferral the relay asking relayq to slow down
 *
 * throttle_classify()
 *	classify a deferred recipient's reason, as smtpout words it ("host H
 *	said: CODE [X.Y.Z] text (in reply to C command)", "host H refused to
 *	talk to me: CODE ...", "SASL authentication failed; server H said:
 *	..."), with its enhanced status code:
 *	THROTTLE_RCPT_LIMIT	the transaction had too many recipients
 *				(X.5.3, "too many recipients"): the relay
 *				is not overloaded, the transaction was big;
 *	THROTTLE_SLOW_DOWN	the relay asks for less traffic: 421 at the
 *				greeting or on any command (the server is
 *				closing the channel); a 4.7.x code that is
 *				not a policy rejection, greylisting or an
 *				AUTH/STARTTLS problem; 450, 451, 452 or 454
 *				whose text speaks of rate, throttling, too
 *				many, too much mail, try (again) later,
 *				slow down or busy;
 *	THROTTLE_NONE		anything else: an ordinary deferral, which
 *				waits out the message's backoff.
 *
 * The words are those real relays use (the table of replies in
 * tests/unit_throttle.c: Gmail, Office 365, SES, Postfix, Exim, Haraka,
 * Yahoo, Outlook.com). Policy rejections and greylisting say 4.7.x too,
 * but retrying them soon would not help: they keep their backoff.
 *
 * Pure: no state, no I/O; the reason text is untrusted and only read.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "throttle.h"

/* Texts that mean "less traffic, please" in a 450/451/452/454. */
static const char *const throttle_words[] = {
    "rate",      "throttl", "too many", "too much mail", "try again later", "try later",
    "slow down", "busy",    NULL,
};

/* Texts that mean "not you, this message or this client": keep the backoff. */
static const char *const throttle_not_words[] = {
    "greylist", "graylist", "rejected", "authentication", NULL,
};

/*
 * throttle_has_word - does the text hold a word starting with one of these,
 * ignoring case ("rate" in "rate limited" and "ratelimit", not in
 * "generated")
 */
static int throttle_has_word(const char *text, const char *const *words)
{
    const char *at;

    for (const char *const *word = words; *word; word++)
        for (at = text; (at = strcasestr(at, *word)) != NULL; at++)
            if (at == text || !isalpha((unsigned char)at[-1]))
                return 1;
    return 0;
}

/* throttle_reply - the server's reply inside a reason, or NULL */
static const char *throttle_reply(const char *reason)
{
    static const char *const leads[] = {" said: ", " refused to talk to me: ", NULL};
    const char *found;

    for (const char *const *lead = leads; *lead; lead++)
        if ((found = strstr(reason, *lead)) != NULL)
            return found + strlen(*lead);
    return NULL;
}

/* throttle_classify - what a deferral asks of the destination */
int throttle_classify(const char *dsn, const char *reason)
{
    const char *reply = throttle_reply(reason);
    int code;

    if (strcmp(dsn + 1, ".5.3") == 0 || strcasestr(reason, "too many recipients") != NULL)
        return THROTTLE_RCPT_LIMIT;
    if (reply == NULL || strlen(reply) < 3 || reply[0] != '4' || reply[1] < '0' || reply[1] > '9' ||
        reply[2] < '0' || reply[2] > '9')
        return THROTTLE_NONE;
    code = atoi(reply);
    if (code == 421)
        return THROTTLE_SLOW_DOWN;
    /* A relay that refuses the credentials or TLS is not overloaded. */
    if (strncmp(reason, "SASL authentication failed", 26) == 0 ||
        strstr(reason, "(in reply to STARTTLS command)") != NULL ||
        throttle_has_word(reply, throttle_not_words))
        return THROTTLE_NONE;
    if (strncmp(dsn, "4.7.", 4) == 0)
        return THROTTLE_SLOW_DOWN;
    if ((code == 450 || code == 451 || code == 452 || code == 454) &&
        throttle_has_word(reply, throttle_words))
        return THROTTLE_SLOW_DOWN;
    return THROTTLE_NONE;
}
