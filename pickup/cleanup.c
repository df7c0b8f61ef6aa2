/*
 * cleanup - normalise a submitted message before it is queued
 *
 * cleanup_message()
 *	turn the content of a maildrop file (after its envelope) into the
 *	form the queue stores and smtpout sends: every line ends in CRLF
 *	(a bare LF or a bare CR becomes CRLF, an unterminated last line is
 *	terminated), a Received: header is prepended, and Date:, Message-ID:
 *	and From: are appended to the header section when it lacks them, in
 *	Postfix's style. Returns 0 with the result in `out`, or -1 with a
 *	reason when the message must be rejected (a NUL byte in the header
 *	section).
 *
 * The header section is the run of header lines ("name:" or a
 * continuation starting with a space or tab) at the start of the
 * message; it ends at the first empty line. When the first line is not a
 * header line there is no header section and everything is body. A line
 * that is neither a header nor empty ends the header section too; an
 * empty line is then inserted before it, so that it is not read as a
 * header by the next MTA. Body lines over 998 octets are kept as they are.
 *
 * The input is untrusted; nothing here exits except on allocation
 * failure (mymalloc). The caller owns `out`.
 */
#include "config.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "msg.h"
#include "pickup.h"

#define CLEANUP_FULLNAME_MAX 256 /* octets of the display name we copy */

/* Which of the headers we add when missing the message already has. */
#define SEEN_DATE 1
#define SEEN_MESSAGE_ID 2
#define SEEN_FROM 4

/* cleanup_crlf - copy the content with every line ending in CRLF */
static void cleanup_crlf(const char *data, size_t len, VSTR *out)
{
    size_t run = 0; /* start of the bytes not yet copied */

    vstr_reserve(out, len + len / 32 + 64);
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\r' && data[i] != '\n')
            continue;
        vstr_append(out, data + run, i - run);
        vstr_append(out, "\r\n", 2);
        if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
            i++;
        run = i + 1;
    }
    if (run < len) {
        vstr_append(out, data + run, len - run);
        vstr_append(out, "\r\n", 2);
    }
}

/* cleanup_header_name - length of "name" when the line is "name:...", else 0 */
static size_t cleanup_header_name(const char *line, size_t len)
{
    size_t n = 0, i;

    while (n < len && line[n] > 32 && line[n] < 127 && line[n] != ':')
        n++;
    if (n == 0)
        return 0;
    /* RFC 822 allowed white space before the colon; Postfix accepts it too. */
    for (i = n; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
        /* skip */;
    return i < len && line[i] == ':' ? n : 0;
}

/* cleanup_is_name - does the header name match, ignoring case */
static int cleanup_is_name(const char *line, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(line, name, n) == 0;
}

/* cleanup_phrase - append the full name as an RFC 5322 display name */
static void cleanup_phrase(VSTR *out, const char *fullname)
{
    static const char atext[] = "!#$%&'*+-/=?^_`{|}~ ";
    size_t len = strnlen(fullname, CLEANUP_FULLNAME_MAX);
    int quote = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)fullname[i];

        if (!(ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || strchr(atext, ch) != NULL))
            quote = 1;
    }
    if (len == 0 || fullname[0] == ' ' || fullname[len - 1] == ' ')
        quote = 1;
    if (quote)
        vstr_addch(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)fullname[i];

        /* Control characters would break the header (CR, LF) or the terminal. */
        if (ch < 32 || ch == 127)
            ch = ' ';
        if (ch == '"' || ch == '\\')
            vstr_addch(out, '\\');
        vstr_addch(out, ch);
    }
    if (quote)
        vstr_addch(out, '"');
}

/* cleanup_added_headers - append the headers the message is missing */
static void cleanup_added_headers(VSTR *out, int seen, const CLEANUP_INFO *info)
{
    struct tm tm;
    char buf[64];

    if (!(seen & SEEN_DATE)) {
        localtime_r(&info->now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z", &tm);
        vstr_sprintf_append(out, "Date: %s\r\n", buf);
    }
    if (!(seen & SEEN_MESSAGE_ID)) {
        gmtime_r(&info->now, &tm);
        strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &tm);
        vstr_sprintf_append(out, "Message-ID: <%s.%s@%s>\r\n", buf, info->qid, info->myhostname);
    }
    if (!(seen & SEEN_FROM)) {
        vstr_strcat(out, "From: ");
        if (*info->sender == '\0') {
            /* An unqualified name is not an address: qualify it like Postfix's myorigin. */
            vstr_sprintf_append(out, "MAILER-DAEMON@%s", info->myhostname);
        } else if (*info->fullname) {
            cleanup_phrase(out, info->fullname);
            vstr_sprintf_append(out, " <%s>", info->sender);
        } else {
            vstr_strcat(out, info->sender);
        }
        vstr_strcat(out, "\r\n");
    }
}

/* cleanup_message - normalise a message and complete its headers */
int cleanup_message(const char *data, size_t len, const CLEANUP_INFO *info, VSTR *out, VSTR *why)
{
    VSTR *norm = vstr_alloc(len + 64);
    const char *text;
    size_t pos = 0, hdr_end = 0, total;
    int seen = 0, need_sep = 1, in_headers = 1;
    struct tm tm;
    char date[64];

    cleanup_crlf(data, len, norm);
    text = vstr_str(norm);
    total = vstr_len(norm);

    /* Find the end of the header section; every line now ends in CRLF. */
    while (in_headers && pos < total) {
        const char *eol = memmem(text + pos, total - pos, "\r\n", 2);
        size_t line_len = (size_t)(eol - (text + pos));
        size_t name_len;

        if (eol == NULL)
            msg_panic("cleanup_message: line without CRLF after normalisation");
        if (line_len == 0) {
            /* The empty line: it stays at the head of the body part. */
            need_sep = 0;
            in_headers = 0;
        } else if (pos > 0 && (text[pos] == ' ' || text[pos] == '\t')) {
            pos += line_len + 2; /* a folded continuation of the header before */
        } else if ((name_len = cleanup_header_name(text + pos, line_len)) > 0) {
            if (cleanup_is_name(text + pos, name_len, "Date"))
                seen |= SEEN_DATE;
            else if (cleanup_is_name(text + pos, name_len, "Message-ID"))
                seen |= SEEN_MESSAGE_ID;
            else if (cleanup_is_name(text + pos, name_len, "From"))
                seen |= SEEN_FROM;
            pos += line_len + 2;
        } else {
            in_headers = 0; /* not a header: the body starts here, without its empty line */
        }
    }
    hdr_end = pos;
    if (hdr_end == total && hdr_end > 0)
        need_sep = 0; /* headers only: a message without a body needs no empty line */
    if (memchr(text, '\0', hdr_end) != NULL) {
        vstr_strcpy(why, "NUL byte in the message header section");
        vstr_free(norm);
        return -1;
    }

    vstr_reset(out);
    vstr_reserve(out, total + 512);
    localtime_r(&info->now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
    vstr_sprintf(out, "Received: by %s (relayq) id %s; %s\r\n", info->myhostname, info->qid, date);
    vstr_append(out, text, hdr_end);
    cleanup_added_headers(out, seen, info);
    if (need_sep)
        vstr_append(out, "\r\n", 2);
    vstr_append(out, text + hdr_end, total - hdr_end);
    vstr_free(norm);
    return 0;
}
