/*
 * unit_smtpd_proto - table tests of the SMTP server protocol object
 *
 * Each case is a client's script (the bytes it sends, commands pipelined
 * or not, good and bad), what the fake queue answers for a message, the
 * codes of the replies the session must write (one per reply, the
 * greeting first), how many messages it must hand over, and a piece of
 * the last message as the fake queue recorded it ("from=... |rcpt=...|"
 * and the content). Every script is fed twice, all at once and one byte
 * at a time, and both runs must give the same replies. A few checks that
 * do not fit the table follow it: a client denied relaying, a client that
 * leaves while its verdict is pending, the EHLO keywords, a failed write,
 * a timeout, and the NOTIFY checker. A case whose queue answers
 * SMTPD_PENDING gets its verdict (queued) after each piece of input, as a
 * server that answers after its commit would.
 *
 * A case's flags give the session STARTTLS, implicit TLS, an AUTH check
 * (user "alice", password "secret"; user "temp" cannot be checked now)
 * or a relay-denied client. HANDSHAKE in a script is where the client's
 * TLS handshake ends: when the session asked for it (SMTPD_STARTTLS), the
 * runner calls smtpd_proto_tls_started() there. What comes before it
 * after STARTTLS is plaintext the session must discard, whether it came
 * in the STARTTLS line's read (all at once) or in reads of its own (one
 * byte at a time).
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "mymalloc.h"
#include "smtpd_proto.h"
#include "tap.h"
#include "vstr.h"

#define T_SIZE_LIMIT 10000
#define T_RCPT_LIMIT 3
#define T_ERROR_LIMIT 5

#define T_TLS_OFFER 1    /* limits.tls_offer */
#define T_TLS_ACTIVE 2   /* limits.tls_active */
#define T_AUTH 4         /* ops->auth */
#define T_RELAY_DENIED 8 /* limits.relay_denied */
#define T_SUBMIT (T_TLS_ACTIVE | T_AUTH)

#define HANDSHAKE "{handshake}"
#define T_TLS_DESC "TLSv1.3 fake"

/* The fake connection and queue. */
typedef struct FAKE {
    VSTR *out;           /* everything the session wrote */
    int messages;        /* handed over */
    VSTR *last;          /* the last message, as a string */
    SMTPD_RESULT result; /* what the queue says */
    int fail_write;      /* the client is gone */
    VSTR *password;      /* the last password the AUTH check saw */
} FAKE;

/* One script and what must come of it. */
struct smtpd_case {
    const char *name;
    const char *input;   /* NULL: generated, see case_input() */
    const char *codes;   /* reply codes in order, blank-separated */
    int messages;        /* handed to the queue */
    const char *expect;  /* in the last message's record, or NULL */
    SMTPD_RESULT result; /* the queue's verdict */
    int flags;           /* T_* */
};

#define HELLO "EHLO client.test\r\n"
#define TXN "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n"
#define BODY "DATA\r\nSubject: t\r\n\r\nhello\r\n.\r\n"
#define PLAIN_OK "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n" /* "", "alice", "secret" */
#define PLAIN_WRONG "AUTH PLAIN AGFsaWNlAHdyb25n\r\n"  /* "", "alice", "wrong" */
#define B64_ALICE "YWxpY2U="
#define B64_SECRET "c2VjcmV0"

static const struct smtpd_case cases[] = {
    {"one message", HELLO TXN BODY "QUIT\r\n", "220 250 250 250 354 250 221", 1,
     "from=a@b.test ret= envid= utf8=0|rcpt=c@d.test notify= orcpt=|Subject: t\r\n\r\nhello\r\n",
     SMTPD_QUEUED, 0},
    {"two messages in one session", HELLO TXN BODY TXN BODY "QUIT\r\n",
     "220 250 250 250 354 250 250 250 354 250 221", 2, NULL, SMTPD_QUEUED, 0},
    {"two messages, each verdict given later: commands after the dot wait for it",
     HELLO TXN BODY TXN BODY "QUIT\r\n", "220 250 250 250 354 250 250 250 354 250 221", 2, NULL,
     SMTPD_PENDING, 0},
    {"a verdict given later, then RSET and NOOP pipelined",
     HELLO TXN BODY "RSET\r\nNOOP\r\nQUIT\r\n", "220 250 250 250 354 250 250 250 221", 1, NULL,
     SMTPD_PENDING, 0},
    {"HELO, then a message", "HELO client.test\r\n" TXN BODY "QUIT\r\n",
     "220 250 250 250 354 250 221", 1, NULL, SMTPD_QUEUED, 0},
    {"MAIL without EHLO is fine", TXN BODY "QUIT\r\n", "220 250 250 354 250 221", 1, NULL,
     SMTPD_QUEUED, 0},
    {"lower case commands",
     "ehlo x\r\nmail from:<a@b.test>\r\nrcpt to:<c@d.test>\r\ndata\r\n"
     "x\r\n.\r\nquit\r\n",
     "220 250 250 250 354 250 221", 1, "|x\r\n", SMTPD_QUEUED, 0},
    {"dot-unstuffing", HELLO TXN "DATA\r\n..leading dot\r\n...\r\n.x\r\n.\r\n",
     "220 250 250 250 354 250", 1, "|.leading dot\r\n..\r\nx\r\n", SMTPD_QUEUED, 0},
    {"bare LF lines, content gets CRLF",
     "EHLO x\nMAIL FROM:<a@b.test>\nRCPT TO:<c@d.test>\nDATA\none\ntwo\r\n.\nQUIT\n",
     "220 250 250 250 354 250 221", 1, "|one\r\ntwo\r\n", SMTPD_QUEUED, 0},
    {"bare CR inside a content line is kept", HELLO TXN "DATA\r\na\rb\r\n.\r\n",
     "220 250 250 250 354 250", 1, "|a\rb\r\n", SMTPD_QUEUED, 0},
    {"a dot line inside a line is content", HELLO TXN "DATA\r\nx.\r\n .\r\n.\r\n",
     "220 250 250 250 354 250", 1, "|x.\r\n .\r\n", SMTPD_QUEUED, 0},
    {"DSN and SIZE parameters",
     HELLO "MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=id+2B1\r\n"
           "RCPT TO:<c@d.test> NOTIFY=success,FAILURE ORCPT=rfc822;x+2Bo@d.test\r\n"
           "RCPT TO:<e@d.test> NOTIFY=NEVER\r\n" BODY,
     "220 250 250 250 250 354 250", 1,
     "from=a@b.test ret=hdrs envid=id+1 utf8=0|rcpt=c@d.test notify=success,failure "
     "orcpt=rfc822;x+o@d.test|rcpt=e@d.test notify=never orcpt=|",
     SMTPD_QUEUED, 0},
    {"null sender", HELLO "MAIL FROM:<>\r\nRCPT TO:<c@d.test>\r\n" BODY, "220 250 250 250 354 250",
     1, "from= ret=", SMTPD_QUEUED, 0},
    {"bare local parts are qualified", HELLO "MAIL FROM:<me>\r\nRCPT TO:<postmaster>\r\n" BODY,
     "220 250 250 250 354 250", 1,
     "from=me@origin.test ret= envid= utf8=0|rcpt=postmaster@origin.test", SMTPD_QUEUED, 0},
    {"no angle brackets, blank after colon, source route",
     HELLO "MAIL FROM: a@b.test\r\nRCPT TO: <@relay.test,@r2.test:c@d.test>\r\n" BODY,
     "220 250 250 250 354 250", 1, "from=a@b.test ret= envid= utf8=0|rcpt=c@d.test notify",
     SMTPD_QUEUED, 0},
    {"quoted local part with blanks and brackets",
     HELLO "MAIL FROM:<a@b.test>\r\nRCPT TO:<\"x >y\"@d.test>\r\n" BODY, "220 250 250 250 354 250",
     1, "|rcpt=\"x >y\"@d.test ", SMTPD_QUEUED, 0},
    {"a repeated recipient is kept once", HELLO TXN "RCPT TO:<c@d.test>\r\n" BODY,
     "220 250 250 250 250 354 250", 1, "|rcpt=c@d.test notify= orcpt=|Subject", SMTPD_QUEUED, 0},
    {"UTF-8 addresses with SMTPUTF8",
     HELLO "MAIL FROM:<j\xc3\xb6rg@b.test> SMTPUTF8\r\nRCPT TO:<\xc3\xa5@d.test>\r\n" BODY,
     "220 250 250 250 354 250", 1, "utf8=1|rcpt=\xc3\xa5@d.test", SMTPD_QUEUED, 0},
    {"RSET ends the transaction", HELLO TXN "RSET\r\nRCPT TO:<c@d.test>\r\nQUIT\r\n",
     "220 250 250 250 250 503 221", 0, NULL, SMTPD_QUEUED, 0},
    {"EHLO ends the transaction", HELLO TXN HELLO "DATA\r\nQUIT\r\n", "220 250 250 250 250 503 221",
     0, NULL, SMTPD_QUEUED, 0},
    {"NOOP, VRFY, HELP", HELLO "NOOP\r\nVRFY someone\r\nVRFY\r\nHELP\r\nQUIT\r\n",
     "220 250 250 252 501 214 221", 0, NULL, SMTPD_QUEUED, 0},
    {"queue says try later", HELLO TXN BODY "QUIT\r\n", "220 250 250 250 354 451 221", 1, NULL,
     SMTPD_TEMPFAIL, 0},
    {"queue is out of space", HELLO TXN BODY, "220 250 250 250 354 452", 1, NULL, SMTPD_NOSPACE, 0},
    {"queue refuses the message", HELLO TXN BODY, "220 250 250 250 354 554", 1, NULL,
     SMTPD_REJECTED, 0},
    {"queue failures are not the client's errors",
     HELLO TXN BODY TXN BODY TXN BODY TXN BODY TXN BODY TXN BODY "NOOP\r\n",
     "220 250 250 250 354 451 250 250 354 451 250 250 354 451 250 250 354 451 250 250 354 451 "
     "250 250 354 451 250",
     6, NULL, SMTPD_TEMPFAIL, 0},
    /* Bad input. */
    {"RCPT before MAIL", HELLO "RCPT TO:<c@d.test>\r\nQUIT\r\n", "220 250 503 221", 0, NULL,
     SMTPD_QUEUED, 0},
    {"DATA without MAIL", HELLO "DATA\r\nQUIT\r\n", "220 250 503 221", 0, NULL, SMTPD_QUEUED, 0},
    {"DATA without RCPT", HELLO "MAIL FROM:<a@b.test>\r\nDATA\r\nQUIT\r\n", "220 250 250 503 221",
     0, NULL, SMTPD_QUEUED, 0},
    {"DATA with an argument", HELLO TXN "DATA now\r\nQUIT\r\n", "220 250 250 250 501 221", 0, NULL,
     SMTPD_QUEUED, 0},
    {"nested MAIL", HELLO TXN "MAIL FROM:<x@b.test>\r\n" BODY, "220 250 250 250 503 354 250", 1,
     "from=a@b.test", SMTPD_QUEUED, 0},
    {"MAIL syntax", HELLO "MAIL <a@b.test>\r\nMAIL FROM:<a@b.test\r\nMAIL FROM:<a@b.test>x\r\n",
     "220 250 501 501 501", 0, NULL, SMTPD_QUEUED, 0},
    {"bad sender address", HELLO "MAIL FROM:<a b@c.test>\r\nMAIL FROM:<a@@c>\r\nQUIT\r\n",
     "220 250 501 501 221", 0, NULL, SMTPD_QUEUED, 0},
    {"bad recipient addresses",
     HELLO "MAIL FROM:<a@b.test>\r\nRCPT TO:<>\r\nRCPT TO:<x@-bad-.test>\r\nRCPT TO:x@\r\n"
           "DATA\r\nQUIT\r\n",
     "220 250 250 501 501 501 503 221", 0, NULL, SMTPD_QUEUED, 0},
    {"a failed MAIL leaves no transaction",
     HELLO "MAIL FROM:<a@b.test> RET=HDRS FOO=1\r\nRCPT TO:<c@d.test>\r\n", "220 250 555 503", 0,
     NULL, SMTPD_QUEUED, 0},
    {"bad DSN parameters on MAIL",
     HELLO "MAIL FROM:<a@b.test> RET=ALL\r\nMAIL FROM:<a@b.test> ENVID=a+zz\r\n"
           "MAIL FROM:<a@b.test> ENVID=\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\nQUIT\r\n",
     "220 250 501 501 501 501 221", 0, NULL, SMTPD_QUEUED, 0},
    {"bad DSN parameters on RCPT",
     HELLO TXN "RCPT TO:<e@d.test> NOTIFY=NEVER,SUCCESS\r\nRCPT TO:<e@d.test> NOTIFY=sometimes\r\n"
               "RCPT TO:<e@d.test> ORCPT=rfc822\r\nRCPT TO:<e@d.test> ORCPT=rfc822;a+3Cb\r\n"
               "QUIT\r\n",
     "220 250 250 250 501 501 501 501 221", 0, NULL, SMTPD_QUEUED, 0},
    {"unknown parameters",
     HELLO "MAIL FROM:<a@b.test> AUTH=<>\r\n" TXN "RCPT TO:<e@d.test> FOO\r\nQUIT\r\n",
     "220 250 555 250 250 555 221", 0, NULL, SMTPD_QUEUED, 0},
    {"SIZE over the limit",
     HELLO "MAIL FROM:<a@b.test> SIZE=10001\r\nMAIL FROM:<a@b.test> "
           "SIZE=1x\r\nMAIL FROM:<a@b.test> SIZE=10000\r\n",
     "220 250 552 501 250", 0, NULL, SMTPD_QUEUED, 0},
    {"too many recipients",
     HELLO "MAIL FROM:<a@b.test>\r\nRCPT TO:<1@d.test>\r\nRCPT TO:<2@d.test>\r\n"
           "RCPT TO:<3@d.test>\r\nRCPT TO:<4@d.test>\r\n" BODY,
     "220 250 250 250 250 250 452 354 250", 1, "|rcpt=3@d.test notify= orcpt=|Subject",
     SMTPD_QUEUED, 0},
    {"unknown, empty and unimplemented commands", HELLO "EXPN list\r\nSTARTTLS\r\n\r\nQUIT\r\n",
     "220 250 502 502 500 221", 0, NULL, SMTPD_QUEUED, 0},
    {"EHLO and HELO need a host name", "EHLO\r\nHELO\r\nEHLO a b\r\nQUIT\r\n",
     "220 501 501 501 221", 0, NULL, SMTPD_QUEUED, 0},
    {"8-bit in a command",
     "EHLO h\xc3\xa9.test\r\nMAIL FROM:<j\xc3\xb6rg@b.test>\r\n"
     "MAIL FROM:<a@b.test>\r\nRCPT TO:<\xc3\xa5@d.test>\r\nQUIT\r\n",
     "220 500 500 250 500 221", 0, NULL, SMTPD_QUEUED, 0},
    {"control characters in a command", "EHLO a\rb\r\nNOOP\x01\r\nNOOP\r\nQUIT\r\n",
     "220 500 500 250 221", 0, NULL, SMTPD_QUEUED, 0},
    {"too many errors end the session", "FOO\r\nBAR\r\nBAZ\r\nQUX\r\nQUUX\r\nNOOP\r\nQUIT\r\n",
     "220 502 502 502 502 502 421", 0, NULL, SMTPD_QUEUED, 0},
    {"nothing after QUIT", "QUIT\r\nNOOP\r\n" TXN, "220 221", 0, NULL, SMTPD_QUEUED, 0},
    {"end of input inside DATA hands nothing over", HELLO TXN "DATA\r\nSubject: cut\r\n",
     "220 250 250 250 354", 0, NULL, SMTPD_QUEUED, 0},
    {"end of data with bare LF", HELLO TXN "DATA\nbody\n.\nNOOP\n", "220 250 250 250 354 250 250",
     1, "|body\r\n", SMTPD_QUEUED, 0},
    /* STARTTLS. */
    {"STARTTLS, then a new EHLO in TLS", HELLO "STARTTLS\r\n" HANDSHAKE HELLO TXN BODY "QUIT\r\n",
     "220 250 220 250 250 250 354 250 221", 1, "tls=" T_TLS_DESC " from=a@b.test", SMTPD_QUEUED,
     T_TLS_OFFER},
    {"STARTTLS in TLS already", HELLO "STARTTLS\r\nQUIT\r\n", "220 250 554 221", 0, NULL,
     SMTPD_QUEUED, T_TLS_ACTIVE | T_TLS_OFFER},
    {"STARTTLS with an argument, or in a transaction",
     HELLO "STARTTLS now\r\n" TXN "STARTTLS\r\nQUIT\r\n", "220 250 501 250 250 503 221", 0, NULL,
     SMTPD_QUEUED, T_TLS_OFFER},
    {"commands pipelined after STARTTLS are discarded",
     HELLO "STARTTLS\r\n" TXN "DATA\r\n" HANDSHAKE "RCPT TO:<c@d.test>\r\nQUIT\r\n",
     "220 250 220 503 221", 0, NULL, SMTPD_QUEUED, T_TLS_OFFER},
    {"after STARTTLS the session starts over from EHLO",
     HELLO "STARTTLS\r\n" HANDSHAKE PLAIN_OK HELLO PLAIN_OK TXN BODY,
     "220 250 220 503 250 235 250 250 354 250", 1,
     "auth=alice/PLAIN tls=" T_TLS_DESC " from=", SMTPD_QUEUED, T_TLS_OFFER | T_AUTH},
    {"STARTTLS twice", HELLO "STARTTLS\r\n" HANDSHAKE HELLO "STARTTLS\r\nQUIT\r\n",
     "220 250 220 250 554 221", 0, NULL, SMTPD_QUEUED, T_TLS_OFFER},
    {"STARTTLS held during a pending verdict, what follows it discarded",
     HELLO TXN BODY "STARTTLS\r\nNOOP\r\n" HANDSHAKE HELLO "QUIT\r\n",
     "220 250 250 250 354 250 220 250 221", 1, NULL, SMTPD_PENDING, T_TLS_OFFER},
    /* AUTH. */
    {"AUTH PLAIN with an initial response, in implicit TLS", HELLO PLAIN_OK TXN BODY,
     "220 250 235 250 250 354 250", 1, "auth=alice/PLAIN tls= from=a@b.test", SMTPD_QUEUED,
     T_SUBMIT},
    {"AUTH PLAIN after a 334", HELLO "AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nQUIT\r\n",
     "220 250 334 235 221", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"AUTH PLAIN acting for oneself", HELLO "AUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0\r\n",
     "220 250 235", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"AUTH PLAIN acting for another user is refused",
     HELLO "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n" PLAIN_OK, "220 250 535 235", 0, NULL,
     SMTPD_QUEUED, T_SUBMIT},
    {"AUTH LOGIN", HELLO "AUTH LOGIN\r\n" B64_ALICE "\r\n" B64_SECRET "\r\n" TXN BODY,
     "220 250 334 334 235 250 250 354 250", 1, "auth=alice/LOGIN tls= from=", SMTPD_QUEUED,
     T_SUBMIT},
    {"AUTH LOGIN with the user on the AUTH line",
     HELLO "auth login " B64_ALICE "\r\n" B64_SECRET "\r\n", "220 250 334 235", 0, NULL,
     SMTPD_QUEUED, T_SUBMIT},
    {"wrong passwords, then the right one",
     HELLO PLAIN_WRONG "AUTH LOGIN " B64_ALICE "\r\nd3Jvbmc=\r\n" PLAIN_OK,
     "220 250 535 334 535 235", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"failed AUTH counts toward the error limit",
     HELLO PLAIN_WRONG PLAIN_WRONG PLAIN_WRONG PLAIN_WRONG PLAIN_WRONG PLAIN_OK,
     "220 250 535 535 535 535 535 421", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"AUTH check failing for now", HELLO "AUTH PLAIN AHRlbXAAc2VjcmV0\r\n" PLAIN_OK,
     "220 250 454 235", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"AUTH cancelled", HELLO "AUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n" B64_ALICE "\r\n*\r\nNOOP\r\n",
     "220 250 334 501 334 334 501 250", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"AUTH with bad base64", HELLO "AUTH PLAIN %%%%\r\nAUTH PLAIN\r\nAGFsaWNl=\r\nNOOP\r\n",
     "220 250 501 334 501 250", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"AUTH PLAIN malformed, empty, or a user with a control character",
     HELLO "AUTH PLAIN AGFsaWNl\r\nAUTH PLAIN =\r\nAUTH PLAIN AGFsAWNlAHNlY3JldA==\r\n",
     "220 250 535 535 535", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"AUTH before STARTTLS", HELLO PLAIN_OK "QUIT\r\n", "220 250 538 221", 0, NULL, SMTPD_QUEUED,
     T_TLS_OFFER | T_AUTH},
    {"AUTH not enabled", HELLO PLAIN_OK "MAIL FROM:<a@b.test> AUTH=<>\r\n", "220 250 503 555", 0,
     NULL, SMTPD_QUEUED, T_TLS_ACTIVE},
    {"AUTH not enabled without a way to TLS", HELLO PLAIN_OK, "220 250 503", 0, NULL, SMTPD_QUEUED,
     T_AUTH},
    {"AUTH twice", HELLO PLAIN_OK "AUTH LOGIN\r\n", "220 250 235 503", 0, NULL, SMTPD_QUEUED,
     T_SUBMIT},
    {"AUTH in a transaction", HELLO TXN PLAIN_OK, "220 250 250 250 503", 0, NULL, SMTPD_QUEUED,
     T_SUBMIT},
    {"AUTH before EHLO", PLAIN_OK HELLO PLAIN_OK, "220 503 250 235", 0, NULL, SMTPD_QUEUED,
     T_SUBMIT},
    {"AUTH mechanism unknown or missing, extra argument",
     HELLO "AUTH CRAM-MD5\r\nAUTH\r\nAUTH PLAIN a b\r\n", "220 250 504 501 501", 0, NULL,
     SMTPD_QUEUED, T_SUBMIT},
    {"relay denied, but not once authenticated", HELLO TXN "RSET\r\n" PLAIN_OK TXN BODY,
     "220 250 250 554 250 235 250 250 354 250", 1, "auth=alice/PLAIN tls= from=a@b.test",
     SMTPD_QUEUED, T_SUBMIT | T_RELAY_DENIED},
    {"the AUTH parameter of MAIL FROM",
     HELLO "MAIL FROM:<a@b.test> AUTH=<>\r\nRSET\r\nMAIL FROM:<a@b.test> AUTH=al+2Bi@b.test\r\n"
           "RSET\r\nMAIL FROM:<a@b.test> AUTH=a+zz\r\nMAIL FROM:<a@b.test> AUTH=<> AUTH=<>\r\n",
     "220 250 250 250 250 250 501 555", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    /* BDAT. */
    {"BDAT, one chunk", HELLO TXN "BDAT 21 LAST\r\nSubject: t\r\n\r\nhello\r\nQUIT\r\n",
     "220 250 250 250 250 221", 1, "|Subject: t\r\n\r\nhello\r\n", SMTPD_QUEUED, 0},
    {"BDAT in chunks, one empty",
     HELLO TXN "BDAT 10\r\nSubject: xBDAT 0\r\nBDAT 9 LAST\r\n\r\n\r\nhello",
     "220 250 250 250 250 250 250", 1,
     "utf8=0|rcpt=c@d.test notify= orcpt=|Subject: x\r\n\r\nhello\r\n", SMTPD_QUEUED, 0},
    {"BDAT, another transaction pipelined after it",
     HELLO TXN "BDAT 3 LAST\r\nab\n" TXN "BDAT 5 LAST\r\n.\r\n\r\nQUIT\r\n",
     "220 250 250 250 250 250 250 250 221", 2, "orcpt=|.\r\n\r\n", SMTPD_QUEUED, 0},
    {"BDAT bare LF to CRLF across chunks",
     HELLO TXN "BDAT 2\r\na\rBDAT 3\r\n\nb\nBDAT 2 LAST\r\n\n\r", "220 250 250 250 250 250 250", 1,
     "orcpt=|a\r\nb\r\n\r\n\r\n", SMTPD_QUEUED, 0},
    {"BDAT keeps a bare CR inside a line", HELLO TXN "BDAT 5 LAST\r\na\rb\r\n",
     "220 250 250 250 250", 1, "orcpt=|a\rb\r\n", SMTPD_QUEUED, 0},
    {"BDAT 0 LAST: an empty message", HELLO TXN "BDAT 0 LAST\r\n", "220 250 250 250 250", 1,
     "orcpt=|", SMTPD_QUEUED, 0},
    {"BDAT without RCPT: its octets are read",
     HELLO "BDAT 5 LAST\r\nhelloMAIL FROM:<a@b.test>\r\nBDAT 3\r\nabcNOOP\r\n",
     "220 250 503 250 503 250", 0, NULL, SMTPD_QUEUED, 0},
    {"BDAT, then DATA", HELLO TXN "BDAT 3\r\nabcDATA\r\nBDAT 0 LAST\r\n",
     "220 250 250 250 250 503 250", 1, "orcpt=|abc\r\n", SMTPD_QUEUED, 0},
    {"BDAT, then RCPT", HELLO TXN "BDAT 3\r\nabcRCPT TO:<e@d.test>\r\nBDAT 1 LAST\r\n\n",
     "220 250 250 250 250 503 250", 1, "|rcpt=c@d.test notify= orcpt=|abc\r\n", SMTPD_QUEUED, 0},
    {"BDAT with verdicts given later, the next chunks held",
     HELLO TXN "BDAT 6 LAST\r\nhello\n" TXN "BDAT 6 LAST\r\nworld\nQUIT\r\n",
     "220 250 250 250 250 250 250 250 221", 2, "orcpt=|world\r\n", SMTPD_PENDING, 0},
    {"BDAT size not a number ends the session", HELLO TXN "BDAT 1x\r\nNOOP\r\n",
     "220 250 250 250 501 421", 0, NULL, SMTPD_QUEUED, 0},
    {"BDAT size over the content bound ends the session", HELLO TXN "BDAT 2000000000 LAST\r\n",
     "220 250 250 250 501 421", 0, NULL, SMTPD_QUEUED, 0},
    {"BDAT without a size ends the session", HELLO "BDAT\r\nNOOP\r\n", "220 250 501 421", 0, NULL,
     SMTPD_QUEUED, 0},
    {"BDAT with junk after the size: read, refused", HELLO TXN "BDAT 3 NOW\r\nabcNOOP\r\n",
     "220 250 250 250 501 250", 0, NULL, SMTPD_QUEUED, 0},
    {"a bad BDAT spoils its message", HELLO TXN "BDAT 2\r\nabBDAT 3 NOW\r\nabcBDAT 1 LAST\r\nx",
     "220 250 250 250 250 501 503", 0, NULL, SMTPD_QUEUED, 0},
    /* Generated: see case_input(). */
    {"overlong command line", NULL, "220 250 500 250 221", 0, NULL, SMTPD_QUEUED, 0},
    {"overlong AUTH response", NULL, "220 250 334 500 250", 0, NULL, SMTPD_QUEUED, T_SUBMIT},
    {"BDAT over the size limit, by chunks, at once, by bare LFs; then one under", NULL,
     "220 250 250 250 250 552 552 250 250 552 250 250 250", 1, "orcpt=|small\r\n", SMTPD_QUEUED, 0},
    {"overlong content line is kept whole", NULL, "220 250 250 250 354 250 221", 1, NULL,
     SMTPD_QUEUED, 0},
    {"message over the size limit, then one under", NULL, "220 250 250 250 354 552 250 250 354 250",
     1, "|small\r\n", SMTPD_QUEUED, 0},
};

/* case_input - the script of a case; generated ones are built here */
static void case_input(const struct smtpd_case *c, VSTR *in)
{
    vstr_reset(in);
    if (c->input != NULL) {
        vstr_strcat(in, c->input);
        return;
    }
    if (strcmp(c->name, "overlong command line") == 0) {
        vstr_strcat(in, HELLO "NOOP ");
        for (int i = 0; i < SMTPD_LINE_MAX; i++)
            vstr_addch(in, 'x');
        vstr_strcat(in, "\r\nNOOP\r\nQUIT\r\n");
    } else if (strcmp(c->name, "overlong AUTH response") == 0) {
        vstr_strcat(in, HELLO "AUTH PLAIN\r\n");
        for (int i = 0; i < SMTPD_LINE_MAX; i++)
            vstr_addch(in, 'A');
        vstr_strcat(in, "\r\nNOOP\r\n");
    } else if (strncmp(c->name, "BDAT over the size limit", 24) == 0) {
        vstr_sprintf_append(in, HELLO TXN "BDAT %d\r\n", T_SIZE_LIMIT * 6 / 10);
        for (int i = 0; i < T_SIZE_LIMIT * 6 / 10; i++)
            vstr_addch(in, 'x');
        vstr_sprintf_append(in, "BDAT %d\r\n", T_SIZE_LIMIT * 6 / 10);
        for (int i = 0; i < T_SIZE_LIMIT * 6 / 10; i++)
            vstr_addch(in, 'x');
        vstr_strcat(in, "BDAT 3 LAST\r\nabc" TXN);
        vstr_sprintf_append(in, "BDAT %d LAST\r\n", T_SIZE_LIMIT * 6 / 10);
        for (int i = 0; i < T_SIZE_LIMIT * 6 / 10; i++)
            vstr_addch(in, '\n');
        vstr_strcat(in, TXN "BDAT 7 LAST\r\nsmall\r\n");
    } else if (strcmp(c->name, "overlong content line is kept whole") == 0) {
        vstr_strcat(in, HELLO TXN "DATA\r\n.");
        for (int i = 0; i < 3 * SMTPD_LINE_MAX; i++)
            vstr_addch(in, i == SMTPD_LINE_MAX - 1 ? '.' : 'y');
        vstr_strcat(in, "\r\n.\r\nQUIT\r\n");
    } else {
        vstr_strcat(in, HELLO TXN "DATA\r\n");
        for (int i = 0; i < T_SIZE_LIMIT / 10; i++)
            vstr_strcat(in, "123456789\r\n");
        vstr_strcat(in, ".\r\n" TXN "DATA\r\nsmall\r\n.\r\n");
    }
}

/* fake_write - the client reads the replies */
static int fake_write(void *ctx, const char *data, size_t len)
{
    FAKE *fake = ctx;

    if (fake->fail_write)
        return -1;
    vstr_append(fake->out, data, len);
    return 0;
}

/* fake_message - the queue records the message and answers as told */
static SMTPD_RESULT fake_message(void *ctx, const SMTPD_MSG *msg, VSTR *text)
{
    FAKE *fake = ctx;

    fake->messages++;
    vstr_reset(fake->last);
    if (msg->auth_user != NULL)
        vstr_sprintf_append(fake->last, "auth=%s/%s ", msg->auth_user, msg->auth_method);
    if (msg->tls != NULL)
        vstr_sprintf_append(fake->last, "tls=%s ", msg->tls);
    vstr_sprintf_append(fake->last, "from=%s ret=%s envid=%s utf8=%d|", msg->sender, msg->ret,
                        msg->envid, msg->smtputf8);
    for (size_t i = 0; i < msg->nrcpt; i++)
        vstr_sprintf_append(fake->last, "rcpt=%s notify=%s orcpt=%s|", msg->rcpts[i].addr,
                            msg->rcpts[i].notify, msg->rcpts[i].orcpt);
    vstr_append(fake->last, msg->content, msg->content_len);
    if (fake->result != SMTPD_QUEUED)
        vstr_strcpy(text, "fake");
    return fake->result;
}

/* fake_auth - alice's password is "secret"; temp cannot be checked now */
static SMTPD_AUTH_RESULT fake_auth(void *ctx, const char *user, const char *password, size_t len)
{
    FAKE *fake = ctx;

    vstr_reset(fake->password);
    vstr_append(fake->password, password, len);
    if (strcmp(user, "temp") == 0)
        return SMTPD_AUTH_TEMPFAIL;
    return strcmp(user, "alice") == 0 && len == 6 && memcmp(password, "secret", 6) == 0
               ? SMTPD_AUTH_OK
               : SMTPD_AUTH_FAILED;
}

static const SMTPD_OPS fake_ops = {fake_write, fake_message, NULL};
static const SMTPD_OPS fake_auth_ops = {fake_write, fake_message, fake_auth};

static const SMTPD_LIMITS limits = {
    "mx.test", "unit", "origin.test", T_SIZE_LIMIT, T_RCPT_LIMIT, T_ERROR_LIMIT, 0, 0, 0,
};

/* case_session - a session with a case's flags */
static SMTPD_PROTO *case_session(FAKE *fake, int flags)
{
    SMTPD_LIMITS lim = limits;

    lim.tls_offer = (flags & T_TLS_OFFER) != 0;
    lim.tls_active = (flags & T_TLS_ACTIVE) != 0;
    lim.relay_denied = (flags & T_RELAY_DENIED) != 0;
    return smtpd_proto_create(&lim, flags & T_AUTH ? &fake_auth_ops : &fake_ops, fake);
}

/* reply_codes - the code of each complete reply (its last line), blank-separated */
static void reply_codes(const VSTR *out, VSTR *codes)
{
    const char *line = vstr_str(out);
    const char *end;

    vstr_reset(codes);
    while ((end = strstr(line, "\r\n")) != NULL) {
        if (end - line >= 3 && (end - line == 3 || line[3] == ' ')) {
            if (vstr_len(codes))
                vstr_addch(codes, ' ');
            vstr_append(codes, line, 3);
        }
        line = end + 2;
    }
}

/*
 * run - a session over a script, fed in pieces of `step` bytes (0: all at once)
 *
 * A piece never crosses a HANDSHAKE mark; at the mark, a session that
 * answered STARTTLS is told the handshake is done.
 */
static void run(FAKE *fake, const VSTR *in, size_t step, SMTPD_RESULT result, int flags)
{
    SMTPD_PROTO *sp;
    const char *data = vstr_str(in);
    const char *end = data + vstr_len(in);
    const char *mark;
    size_t take;
    int state;

    vstr_reset(fake->out);
    vstr_reset(fake->last);
    fake->messages = 0;
    fake->result = result;
    sp = case_session(fake, flags);
    state = smtpd_proto_start(sp);
    while (state != SMTPD_DONE && data < end) {
        mark = strstr(data, HANDSHAKE);
        if (mark == data) {
            if (state == SMTPD_STARTTLS)
                state = smtpd_proto_tls_started(sp, T_TLS_DESC);
            data += strlen(HANDSHAKE);
            continue;
        }
        take = mark ? (size_t)(mark - data) : (size_t)(end - data);
        if (step && step < take)
            take = step;
        state = smtpd_proto_input(sp, data, take);
        data += take;
        /* A pending verdict comes after the input read so far: queued. */
        while (state == SMTPD_MORE && smtpd_proto_waiting(sp))
            state = smtpd_proto_resume(sp, SMTPD_QUEUED, "");
    }
    smtpd_proto_eof(sp);
    smtpd_proto_free(sp);
}

int main(void)
{
    FAKE fake;
    VSTR *in = vstr_alloc(1024);
    VSTR *codes = vstr_alloc(64);
    VSTR *codes_bytes = vstr_alloc(64);
    VSTR *notify = vstr_alloc(32);
    SMTPD_PROTO *sp;
    int messages;
    int state;

    msg_init("unit_smtpd_proto", MSG_TO_STDERR);
    fake.out = vstr_alloc(1024);
    fake.last = vstr_alloc(1024);
    fake.password = vstr_alloc(64);
    fake.fail_write = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct smtpd_case *c = cases + i;

        case_input(c, in);
        run(&fake, in, 0, c->result, c->flags);
        reply_codes(fake.out, codes);
        messages = fake.messages;
        tap_ok(strcmp(vstr_str(codes), c->codes) == 0 && messages == c->messages &&
                   (c->expect == NULL || strstr(vstr_str(fake.last), c->expect) != NULL),
               "%s: replies %s, %d message(s)", c->name, vstr_str(codes), messages);
        if (c->expect != NULL && strstr(vstr_str(fake.last), c->expect) == NULL)
            tap_diag("last message: %.300s", vstr_str(fake.last));
        run(&fake, in, 1, c->result, c->flags);
        reply_codes(fake.out, codes_bytes);
        tap_ok(strcmp(vstr_str(codes_bytes), vstr_str(codes)) == 0 && fake.messages == messages,
               "%s, fed one byte at a time: the same (%s)", c->name, vstr_str(codes_bytes));
    }

    /* The overlong content line arrives whole, dot-unstuffed, no dot lost inside. */
    case_input(cases + sizeof(cases) / sizeof(cases[0]) - 2, in);
    run(&fake, in, 7, SMTPD_QUEUED, 0);
    {
        const char *content = strchr(strrchr(vstr_str(fake.last), '|'), 'y');

        tap_ok(content != NULL && strlen(content) == 3 * SMTPD_LINE_MAX + 2 &&
                   content[SMTPD_LINE_MAX - 1] == '.' &&
                   strcmp(content + 3 * SMTPD_LINE_MAX, "\r\n") == 0,
               "a content line of %d bytes is handed over whole", 3 * SMTPD_LINE_MAX);
    }

    /* A client that may not submit: every recipient refused, nothing handed over. */
    {
        SMTPD_LIMITS denied = limits;

        denied.relay_denied = 1;
        vstr_reset(fake.out);
        fake.messages = 0;
        sp = smtpd_proto_create(&denied, &fake_ops, &fake);
        smtpd_proto_start(sp);
        vstr_strcpy(in, HELLO TXN BODY "QUIT\r\n");
        smtpd_proto_input(sp, vstr_str(in), vstr_len(in));
        smtpd_proto_free(sp);
        reply_codes(fake.out, codes);
        /* DATA without a recipient is 503; the content lines that follow are bad commands. */
        tap_ok(strncmp(vstr_str(codes), "220 250 250 554 503 ", 20) == 0 &&
                   strstr(vstr_str(fake.out), "554 5.7.1 <c@d.test>: Relay access denied") &&
                   fake.messages == 0,
               "relay denied: RCPT answered 554 5.7.1 Relay access denied (%s)", vstr_str(codes));
    }

    /* The client leaves while its verdict is pending: the verdict writes nothing. */
    vstr_reset(fake.out);
    fake.result = SMTPD_PENDING;
    sp = smtpd_proto_create(&limits, &fake_ops, &fake);
    smtpd_proto_start(sp);
    vstr_strcpy(in, HELLO TXN BODY);
    smtpd_proto_input(sp, vstr_str(in), vstr_len(in));
    tap_ok(smtpd_proto_waiting(sp), "after the final dot the session waits for the verdict");
    smtpd_proto_eof(sp);
    reply_codes(fake.out, codes);
    tap_ok(smtpd_proto_resume(sp, SMTPD_QUEUED, "") == SMTPD_DONE &&
               strcmp(vstr_str(codes), "220 250 250 250 354") == 0,
           "a verdict after the client left is not written (%s)", vstr_str(codes));
    smtpd_proto_free(sp);

    /* The EHLO reply offers what a local submission needs. */
    vstr_strcpy(in, "EHLO x\r\n");
    run(&fake, in, 0, SMTPD_QUEUED, T_AUTH);
    tap_ok(strstr(vstr_str(fake.out), "220 mx.test ESMTP") == vstr_str(fake.out) &&
               strstr(vstr_str(fake.out), "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n"
                                          "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
                                          "250-SMTPUTF8\r\n250 CHUNKING\r\n") != NULL,
           "greeting, then EHLO offers PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, DSN, "
           "SMTPUTF8, CHUNKING; no STARTTLS or AUTH without TLS");

    /* STARTTLS is offered until TLS starts, AUTH only once it has. */
    vstr_strcpy(in, "EHLO x\r\nSTARTTLS\r\n" HANDSHAKE "EHLO x\r\n");
    run(&fake, in, 0, SMTPD_QUEUED, T_TLS_OFFER | T_AUTH);
    {
        const char *tls = strstr(vstr_str(fake.out), "220 2.0.0 Ready to start TLS\r\n");

        tap_ok(tls != NULL &&
                   strstr(vstr_str(fake.out), "250-SIZE 10000\r\n250-STARTTLS\r\n250-8BITMIME") <
                       tls &&
                   strstr(vstr_str(fake.out), "AUTH") > tls &&
                   strstr(tls, "250-SIZE 10000\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME") != NULL &&
                   strstr(tls, "STARTTLS") == NULL,
               "EHLO offers STARTTLS before TLS, then AUTH PLAIN LOGIN and no STARTTLS");
    }

    /* Until the handshake is done, input is ignored and the session still waits for it. */
    vstr_reset(fake.out);
    sp = case_session(&fake, T_TLS_OFFER);
    (void)smtpd_proto_start(sp);
    vstr_strcpy(in, "EHLO x\r\nSTARTTLS\r\nNOOP\r\n");
    state = smtpd_proto_input(sp, vstr_str(in), vstr_len(in));
    tap_ok(state == SMTPD_STARTTLS && smtpd_proto_input(sp, "NOOP\r\n", 6) == SMTPD_STARTTLS &&
               strstr(vstr_str(fake.out), "NOOP") == NULL &&
               strcmp(strstr(vstr_str(fake.out), "\r\n250 CHUNKING\r\n"),
                      "\r\n250 CHUNKING\r\n220 2.0.0 Ready to start TLS\r\n") == 0,
           "STARTTLS: 220 written, SMTPD_STARTTLS returned, input until the handshake ignored");
    smtpd_proto_timeout(sp);
    tap_ok(strstr(vstr_str(fake.out), "421") == NULL &&
               smtpd_proto_tls_started(sp, T_TLS_DESC) == SMTPD_DONE,
           "a timeout during the handshake writes no plaintext 421; the session is over");
    smtpd_proto_free(sp);

    /* The AUTH check gets the password whole, with its length. */
    vstr_strcpy(in, HELLO PLAIN_OK);
    run(&fake, in, 0, SMTPD_QUEUED, T_SUBMIT);
    tap_ok(vstr_len(fake.password) == 6 && memcmp(vstr_str(fake.password), "secret", 6) == 0,
           "AUTH PLAIN: the check sees the password and its length");

    /* The log counts the new commands and holds no password and no AUTH response. */
    {
        const char *tmpdir = getenv("TMPDIR");
        VSTR *path = vstr_alloc(64);
        VSTR *log = vstr_alloc(1024);
        char buf[512];
        size_t got;
        FILE *fp;
        int fd;

        vstr_sprintf(path, "%s/unit_smtpd_proto.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
        if ((fd = mkstemp(vstr_str(path))) < 0 || close(fd) < 0 ||
            msg_set_log("relayq", vstr_str(path)) < 0)
            msg_fatal("cannot log to %s", vstr_str(path));
        vstr_strcpy(in, HELLO "STARTTLS\r\n" HANDSHAKE HELLO PLAIN_WRONG "AUTH LOGIN\r\n" B64_ALICE
                              "\r\n" B64_SECRET "\r\n" TXN "BDAT 3\r\nabcBDAT 2 LAST\r\nde"
                              "QUIT\r\n");
        run(&fake, in, 0, SMTPD_QUEUED, T_TLS_OFFER | T_AUTH);
        (void)msg_set_log("relayq", "/dev/stderr");
        if ((fp = fopen(vstr_str(path), "r")) == NULL)
            msg_fatal("cannot read %s", vstr_str(path));
        while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
            vstr_append(log, buf, got);
        fclose(fp);
        unlink(vstr_str(path));
        tap_ok(strstr(vstr_str(log), " ehlo=2 mail=1 rcpt=1 bdat=2 quit=1 starttls=1 auth=1/2 "
                                     "commands=9/10") != NULL &&
                   strstr(vstr_str(log), "PLAIN authentication failed from unit") != NULL,
               "disconnect line counts bdat, starttls and auth; a failed AUTH is logged");
        tap_ok(strstr(vstr_str(log), "secret") == NULL && strstr(vstr_str(log), "wrong") == NULL &&
                   strstr(vstr_str(log), "AGFsaWNl") == NULL &&
                   strstr(vstr_str(log), B64_ALICE) == NULL &&
                   strstr(vstr_str(log), B64_SECRET) == NULL,
               "no password and no AUTH response is logged");
        vstr_free(path);
        vstr_free(log);
    }

    /* Every reply has an enhanced status code but the greeting, EHLO/HELO and 354. */
    vstr_strcpy(in,
                HELLO "HELO x\r\nFOO\r\nMAIL FROM:<x\r\n" TXN BODY "VRFY a\r\nHELP\r\nQUIT\r\n");
    run(&fake, in, 0, SMTPD_QUEUED, 0);
    {
        const char *line = strstr(vstr_str(fake.out), "\r\n250 CHUNKING\r\n") + 16;
        const char *end;
        int all = 1;

        line = strstr(line, "\r\n") + 2; /* the HELO reply */
        for (; (end = strstr(line, "\r\n")) != NULL; line = end + 2)
            if (strncmp(line, "354 ", 4) != 0 &&
                !(line[4] >= '2' && line[4] <= '5' && line[5] == '.' && line[4] == line[0]))
                all = 0;
        tap_ok(all, "enhanced status codes in every other reply");
    }

    /* A client that is gone ends the session at once; nothing after is handed over. */
    vstr_strcpy(in, HELLO TXN BODY);
    fake.fail_write = 1;
    vstr_reset(fake.out);
    fake.messages = 0;
    fake.result = SMTPD_QUEUED;
    sp = smtpd_proto_create(&limits, &fake_ops, &fake);
    tap_ok(smtpd_proto_start(sp) == SMTPD_DONE, "a greeting that cannot be written ends it");
    tap_ok(smtpd_proto_input(sp, vstr_str(in), vstr_len(in)) == SMTPD_DONE && fake.messages == 0,
           "and later input is ignored");
    smtpd_proto_free(sp);
    fake.fail_write = 0;

    /* A timeout says 421 and ends the session; a message in progress is dropped. */
    vstr_reset(fake.out);
    fake.messages = 0;
    sp = smtpd_proto_create(&limits, &fake_ops, &fake);
    (void)smtpd_proto_start(sp);
    vstr_strcpy(in, HELLO TXN "DATA\r\npart\r\n");
    (void)smtpd_proto_input(sp, vstr_str(in), vstr_len(in));
    smtpd_proto_timeout(sp);
    reply_codes(fake.out, codes);
    tap_ok(strcmp(vstr_str(codes), "220 250 250 250 354 421") == 0 && fake.messages == 0 &&
               strstr(vstr_str(fake.out), "421 4.4.2 mx.test Error: timeout exceeded") != NULL,
           "timeout: 421 4.4.2, nothing handed over (%s)", vstr_str(codes));
    tap_ok(smtpd_proto_input(sp, ".\r\n", 3) == SMTPD_DONE && fake.messages == 0,
           "timeout: the rest of the message is ignored");
    smtpd_proto_free(sp);

    /* The NOTIFY checker the sendmail command's -N shares. */
    tap_ok(smtpd_proto_notify("Delay,SUCCESS", 13, notify) == 0 &&
               strcmp(vstr_str(notify), "delay,success") == 0,
           "NOTIFY: any case, order kept, lower case out");
    tap_ok(smtpd_proto_notify("never", 5, notify) == 0 && strcmp(vstr_str(notify), "never") == 0,
           "NOTIFY: never alone");
    tap_ok(smtpd_proto_notify("success,success", 15, notify) < 0 &&
               smtpd_proto_notify("failure,never", 13, notify) < 0 &&
               smtpd_proto_notify("", 0, notify) < 0 &&
               smtpd_proto_notify("success,", 8, notify) < 0,
           "NOTIFY: repeated keyword, never with another, empty, trailing comma refused");

    vstr_free(in);
    vstr_free(codes);
    vstr_free(codes_bytes);
    vstr_free(notify);
    vstr_free(fake.out);
    vstr_free(fake.last);
    vstr_free(fake.password);
    return tap_done();
}
