/*
 * dsn - RFC 3464 delivery status notifications
 *
 * dsn_build()
 *	write a complete notice (header and body, CRLF lines) to the
 *	original sender: a multipart/report; report-type=delivery-status
 *	with a human-readable part, the machine-readable message/delivery-
 *	status part (per-message fields, then one group per recipient with
 *	Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 *	Last-Attempt-Date), and the original message (message/rfc822) — or
 *	only its header section (text/rfc822-headers) when RET=HDRS was
 *	asked or the message is larger than bounce_size_limit.
 * dsn_split_reason()
 *	take a reason as smtpout stores it apart: "host H[A] said: REPLY (in
 *	reply to X command)" gives the Remote-MTA H and the diagnostic
 *	"smtp; REPLY"; any other text (connection failures, expiry) is an
 *	X-Relayq diagnostic without a remote MTA.
 * dsn_date()
 *	an RFC 5322 date in local time.
 *
 * Every field value that comes from outside (addresses, replies) has CR,
 * LF and other control characters replaced, so a hostile reply cannot
 * inject header lines into the notice, and is cut to DSN_VALUE_MAX bytes.
 * Nothing here fails.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dsn.h"

#define DSN_VALUE_MAX 900 /* bytes of one value: lines stay under RFC 5322's 998 */

/* dsn_clean - append text with control characters made blanks, cut to DSN_VALUE_MAX */
static void dsn_clean(VSTR *out, const char *text)
{
    size_t n = 0;

    for (const unsigned char *cp = (const unsigned char *)text; *cp; cp++, n++) {
        if (n == DSN_VALUE_MAX) {
            vstr_strcat(out, "...");
            break;
        }
        vstr_addch(out, *cp < 0x20 || *cp == 0x7f ? ' ' : *cp);
    }
}

/* dsn_field - append "Name: value" with a cleaned value, and CRLF */
static void dsn_field(VSTR *out, const char *name, const char *prefix, const char *value)
{
    vstr_sprintf_append(out, "%s: %s", name, prefix);
    dsn_clean(out, value);
    vstr_strcat(out, "\r\n");
}

/* dsn_date - RFC 5322 date */
void dsn_date(long long when, VSTR *out)
{
    time_t t = (time_t)when;
    struct tm tm;
    char buf[64];

    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z", &tm);
    vstr_strcat(out, buf);
}

/* dsn_split_reason - Remote-MTA and Diagnostic-Code from a stored reason */
void dsn_split_reason(const char *reason, VSTR *remote_mta, VSTR *diagnostic)
{
    const char *said, *tail, *bracket;

    vstr_reset(remote_mta);
    vstr_reset(diagnostic);
    if (strncmp(reason, "host ", 5) == 0 && (said = strstr(reason, " said: ")) != NULL &&
        (bracket = memchr(reason + 5, '[', (size_t)(said - reason - 5))) != NULL) {
        vstr_append(remote_mta, reason + 5, (size_t)(bracket - reason - 5));
        tail = strstr(said, " (in reply to ");
        vstr_strcat(diagnostic, "smtp; ");
        vstr_append(diagnostic, said + 7, tail ? (size_t)(tail - said - 7) : strlen(said + 7));
        return;
    }
    vstr_strcat(diagnostic, "X-Relayq; ");
    vstr_strcat(diagnostic, reason);
}

/* dsn_human - the part a person reads */
static void dsn_human(const DSN_INFO *info, const DSN_RCPT *rcpts, size_t count, VSTR *out)
{
    vstr_sprintf_append(out,
                        "Content-Description: Notification\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                        "This is the relayq mail system at %s.\r\n\r\n",
                        info->hostname);
    switch (info->kind) {
    case DSN_FAILED:
        vstr_strcat(out,
                    info->expired
                        ? "Your message stayed in the queue longer than the mail system\r\n"
                          "keeps undeliverable mail, and it was not delivered to the\r\n"
                          "recipients below. The last reason for the delay is given for\r\n"
                          "each of them.\r\n"
                        : "Your message could not be delivered to the recipients below.\r\n"
                          "The mail system that refused it gave the reason shown for each.\r\n");
        break;
    case DSN_DELAYED:
        vstr_strcat(out, "Your message has not been delivered yet to the recipients below.\r\n"
                         "The mail system keeps trying; you need not send it again. This is\r\n"
                         "a warning only.\r\n");
        break;
    case DSN_RELAYED:
        vstr_strcat(out, "Your message was handed on to the next mail system for the\r\n"
                         "recipients below. That system does not report delivery, so\r\n"
                         "this is the last notice you will receive about them.\r\n");
        break;
    }
    vstr_strcat(out, "\r\n");
    for (size_t i = 0; i < count; i++) {
        vstr_strcat(out, "<");
        dsn_clean(out, rcpts[i].addr);
        vstr_strcat(out, ">: ");
        dsn_clean(out, *rcpts[i].reason ? rcpts[i].reason : "no reason recorded");
        vstr_strcat(out, "\r\n");
    }
    vstr_strcat(out, "\r\n");
}

/* dsn_machine - the message/delivery-status part */
static void dsn_machine(const DSN_INFO *info, const DSN_RCPT *rcpts, size_t count, VSTR *out)
{
    static const char *const actions[] = {"failed", "delayed", "relayed"};
    VSTR *date = vstr_alloc(64), *mta = vstr_alloc(64), *diag = vstr_alloc(128);

    vstr_strcat(out, "Content-Description: Delivery report\r\n"
                     "Content-Type: message/delivery-status\r\n\r\n");
    dsn_field(out, "Reporting-MTA", "dns; ", info->hostname);
    dsn_field(out, "X-Relayq-Queue-ID", "", info->queue_id);
    if (*info->envid)
        dsn_field(out, "Original-Envelope-Id", "", info->envid);
    dsn_field(out, "X-Relayq-Sender", "rfc822; ", info->sender);
    dsn_date(info->arrival, date);
    dsn_field(out, "Arrival-Date", "", vstr_str(date));
    for (size_t i = 0; i < count; i++) {
        const DSN_RCPT *rcpt = rcpts + i;

        vstr_strcat(out, "\r\n");
        dsn_field(out, "Final-Recipient", "rfc822; ", rcpt->addr);
        if (*rcpt->orcpt)
            dsn_field(out, "Original-Recipient", "", rcpt->orcpt);
        dsn_field(out, "Action", "", actions[info->kind]);
        dsn_field(out, "Status", "", rcpt->status);
        dsn_split_reason(rcpt->reason, mta, diag);
        if (vstr_len(mta))
            dsn_field(out, "Remote-MTA", "dns; ", vstr_str(mta));
        if (*rcpt->reason)
            dsn_field(out, "Diagnostic-Code", "", vstr_str(diag));
        if (rcpt->last_attempt > 0) {
            vstr_reset(date);
            dsn_date(rcpt->last_attempt, date);
            dsn_field(out, "Last-Attempt-Date", "", vstr_str(date));
        }
        if (info->kind == DSN_DELAYED && info->retry_until > 0) {
            vstr_reset(date);
            dsn_date(info->retry_until, date);
            dsn_field(out, "Will-Retry-Until", "", vstr_str(date));
        }
    }
    vstr_strcat(out, "\r\n");
    vstr_free(date);
    vstr_free(mta);
    vstr_free(diag);
}

/* dsn_header_end - length of the original's header section, with its empty line */
static size_t dsn_header_end(const char *content, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(content + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return len;
}

/* dsn_original - the returned message or its header section */
static void dsn_original(const DSN_INFO *info, VSTR *out)
{
    int headers_only = info->return_headers || info->content_len > info->size_limit;
    size_t len =
        headers_only ? dsn_header_end(info->content, info->content_len) : info->content_len;

    vstr_sprintf_append(out, "Content-Description: %s\r\nContent-Type: %s\r\n\r\n",
                        headers_only ? "Undelivered Message Headers" : "Undelivered Message",
                        headers_only ? "text/rfc822-headers" : "message/rfc822");
    vstr_append(out, info->content, len);
    if (len < 2 || memcmp(info->content + len - 2, "\r\n", 2) != 0)
        vstr_strcat(out, "\r\n");
}

/* dsn_build - the whole notice */
void dsn_build(const DSN_INFO *info, const DSN_RCPT *rcpts, size_t count, VSTR *out)
{
    static const char *const subjects[] = {
        "Undelivered Mail Returned to Sender",
        "Delayed Mail (still being retried)",
        "Relayed Mail: no further delivery reports",
    };
    VSTR *date = vstr_alloc(64);

    dsn_date(info->now, date);
    vstr_sprintf_append(out, "Date: %s\r\n", vstr_str(date));
    vstr_sprintf_append(out, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n", info->hostname);
    dsn_field(out, "To", "", info->sender);
    vstr_sprintf_append(out, "Subject: %s\r\n", subjects[info->kind]);
    vstr_sprintf_append(out, "Message-ID: <%s.dsn@%s>\r\n", info->notice_id, info->hostname);
    vstr_strcat(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    vstr_sprintf_append(out,
                        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                        "\tboundary=\"%s\"\r\n\r\n"
                        "This is a MIME-encapsulated delivery status notification.\r\n\r\n",
                        info->boundary);
    vstr_sprintf_append(out, "--%s\r\n", info->boundary);
    dsn_human(info, rcpts, count, out);
    vstr_sprintf_append(out, "--%s\r\n", info->boundary);
    dsn_machine(info, rcpts, count, out);
    vstr_sprintf_append(out, "--%s\r\n", info->boundary);
    dsn_original(info, out);
    vstr_sprintf_append(out, "\r\n--%s--\r\n", info->boundary);
    vstr_free(date);
}
