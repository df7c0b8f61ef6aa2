/*
 * cleanup - normalise a submitted message before it is queued
 *
 * cleanup_message_limited()
 *	turn the content of a maildrop file (after its envelope) into the
 *	form the queue stores and smtpout sends: every line ends in CRLF
 *	(a bare LF or a bare CR becomes CRLF, an unterminated last line is
 *	terminated), no line is longer than CLEANUP_LINE_MAX octets, a
 *	Received: header is prepended, and Date:, Message-ID: and From: are
 *	appended to the header section when it lacks them, in Postfix's
 *	style. Returns 0 with the result in `out` and what was changed in
 *	`stats`, or -1 with a reason when the message must be rejected (a
 *	NUL byte in the header section).
 * cleanup_message()
 *	the same with header_size_limit's default and no report, for callers
 *	without a configuration (the fuzz target).
 * cleanup_log()
 *	one log line for each change in `stats` that the sender did not ask
 *	for, naming the queue id and the maildrop file.
 *
 * The header section is the run of header lines ("name:" or a
 * continuation starting with a space or tab) at the start of the
 * message; it ends at the first empty line. When the first line is not a
 * header line there is no header section and everything is body. A line
 * that is neither a header nor empty ends the header section too; an
 * empty line is then inserted before it, so that it is not read as a
 * header by the next MTA.
 *
 * Hostile input (doc/relayq.1, INPUT): a header section longer than
 * header_limit ends before the header that crosses the limit, and the
 * rest follows an inserted empty line as body, so that nothing the
 * sender wrote is dropped. A longer line is broken: a header line is
 * folded before a blank where one allows it (unfolding gives the line
 * back), else with CRLF and a space; a body line is split with CRLF,
 * never inside a UTF-8 sequence. A NUL byte in the body and invalid
 * UTF-8 anywhere are passed on unchanged: the relay decides.
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
    /* "name:" must fit in one line, or no folding could keep it a header. */
    return i < len && i < CLEANUP_LINE_MAX && line[i] == ':' ? n : 0;
}

/* cleanup_colon - the offset just after a header line's colon */
static size_t cleanup_colon(const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);

    if (colon == NULL)
        msg_panic("cleanup_colon: header line without a colon");
    return (size_t)(colon - line) + 1;
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

/*
 * cleanup_boundary - where to break text before `at` without splitting a
 * UTF-8 sequence: before its lead byte when one is at most 3 octets
 * back, else at `at` (the text is not UTF-8 there anyway); never before
 * `lowest`.
 */
static size_t cleanup_boundary(const char *text, size_t lowest, size_t at)
{
    size_t b = at;

    while (b > lowest && at - b < 3 && ((unsigned char)text[b] & 0xc0) == 0x80)
        b--;
    return (unsigned char)text[b] >= 0xc0 ? b : at;
}

/* cleanup_is_blank - a space or a tab */
static int cleanup_is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/*
 * cleanup_header_line - append one header line (without its CRLF), folded
 * into lines of at most CLEANUP_LINE_MAX octets; the first fold comes
 * after `keep` octets (the "name:" of a first line)
 */
static void cleanup_header_line(VSTR *out, const char *line, size_t len, size_t keep,
                                CLEANUP_STATS *stats)
{
    size_t start = 0, lead = 0; /* lead: the piece starts with an inserted space */

    if (len > CLEANUP_LINE_MAX)
        stats->long_lines++;
    while (lead + len - start > CLEANUP_LINE_MAX) {
        size_t limit = start + CLEANUP_LINE_MAX - lead;
        size_t lowest = start + keep > start + 1 ? start + keep : start + 1;
        size_t text_at = start, at = limit;

        /* A fold before a blank that precedes text changes nothing when unfolded.
         * The line before a fold must not be blank only: it could pass for the end
         * of the header section. */
        while (text_at < limit && cleanup_is_blank(line[text_at]))
            text_at++;
        while (at >= lowest && at > text_at &&
               !(cleanup_is_blank(line[at]) && at + 1 < len && !cleanup_is_blank(line[at + 1])))
            at--;
        if (at >= lowest && at > text_at) {
            vstr_append(out, line + start, at - start);
            vstr_append(out, "\r\n", 2);
            lead = 0;
        } else {
            at = cleanup_boundary(line, lowest, limit);
            vstr_append(out, line + start, at - start);
            vstr_append(out, "\r\n ", 3);
            lead = 1;
        }
        start = at;
        keep = 0;
    }
    vstr_append(out, line + start, len - start);
    vstr_append(out, "\r\n", 2);
}

/* cleanup_body_line - append one body line (without its CRLF), split into short enough lines */
static void cleanup_body_line(VSTR *out, const char *line, size_t len, CLEANUP_STATS *stats)
{
    size_t start = 0;

    if (len > CLEANUP_LINE_MAX)
        stats->long_lines++;
    while (len - start > CLEANUP_LINE_MAX) {
        size_t at = cleanup_boundary(line, start + 1, start + CLEANUP_LINE_MAX);

        vstr_append(out, line + start, at - start);
        vstr_append(out, "\r\n", 2);
        start = at;
    }
    vstr_append(out, line + start, len - start);
    vstr_append(out, "\r\n", 2);
}

/* cleanup_headers - append the header section, folded; returns which added headers it has */
static int cleanup_headers(VSTR *out, const char *text, size_t len, CLEANUP_STATS *stats)
{
    size_t pos = 0, name_len;
    int seen = 0;

    while (pos < len) {
        const char *eol = memmem(text + pos, len - pos, "\r\n", 2);
        size_t line_len = (size_t)(eol - (text + pos));

        if (eol == NULL)
            msg_panic("cleanup_headers: line without CRLF after normalisation");
        if (cleanup_is_blank(text[pos])) {
            cleanup_header_line(out, text + pos, line_len, 0, stats);
        } else {
            name_len = cleanup_header_name(text + pos, line_len);
            if (cleanup_is_name(text + pos, name_len, "Date"))
                seen |= SEEN_DATE;
            else if (cleanup_is_name(text + pos, name_len, "Message-ID"))
                seen |= SEEN_MESSAGE_ID;
            else if (cleanup_is_name(text + pos, name_len, "From"))
                seen |= SEEN_FROM;
            cleanup_header_line(out, text + pos, line_len, cleanup_colon(text + pos, line_len),
                                stats);
        }
        pos += line_len + 2;
    }
    return seen;
}

/* cleanup_body - append the body, long lines split; counts its NUL bytes */
static void cleanup_body(VSTR *out, const char *text, size_t len, CLEANUP_STATS *stats)
{
    size_t pos = 0, run = 0; /* run: start of the short lines not yet copied */
    const char *nul = text;

    while ((nul = memchr(nul, '\0', len - (size_t)(nul - text))) != NULL) {
        stats->body_nuls++;
        nul++;
    }
    while (pos < len) {
        const char *eol = memmem(text + pos, len - pos, "\r\n", 2);
        size_t line_len = (size_t)(eol - (text + pos));

        if (eol == NULL)
            msg_panic("cleanup_body: line without CRLF after normalisation");
        if (line_len > CLEANUP_LINE_MAX) {
            vstr_append(out, text + run, pos - run);
            cleanup_body_line(out, text + pos, line_len, stats);
            run = pos + line_len + 2;
        }
        pos += line_len + 2;
    }
    vstr_append(out, text + run, len - run);
}

/* cleanup_message_limited - normalise a message and complete its headers */
int cleanup_message_limited(const char *data, size_t len, const CLEANUP_INFO *info,
                            size_t header_limit, VSTR *out, CLEANUP_STATS *stats, VSTR *why)
{
    VSTR *norm = vstr_alloc(len + 64);
    const char *text;
    size_t pos = 0, hdr_end = 0, total, header_start = 0;
    int seen, need_sep = 1, in_headers = 1;
    struct tm tm;
    char date[64];

    memset(stats, 0, sizeof(*stats));
    cleanup_crlf(data, len, norm);
    text = vstr_str(norm);
    total = vstr_len(norm);

    /* Find the end of the header section; every line now ends in CRLF. */
    while (in_headers && pos < total) {
        const char *eol = memmem(text + pos, total - pos, "\r\n", 2);
        size_t line_len = (size_t)(eol - (text + pos));

        if (eol == NULL)
            msg_panic("cleanup_message: line without CRLF after normalisation");
        if (line_len == 0) {
            /* The empty line: it stays at the head of the body part. */
            need_sep = 0;
            in_headers = 0;
        } else if (pos > 0 && cleanup_is_blank(text[pos])) {
            pos += line_len + 2; /* a folded continuation of the header before */
        } else if (cleanup_header_name(text + pos, line_len) > 0) {
            header_start = pos;
            pos += line_len + 2;
        } else {
            in_headers = 0; /* not a header: the body starts here, without its empty line */
        }
        if (in_headers && pos > header_limit) {
            /* The header that crosses the limit starts the body, whole. */
            pos = header_start;
            stats->header_cut = 1;
            in_headers = 0;
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
    vstr_reserve(out, total + total / 256 + 512);
    localtime_r(&info->now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
    if (info->client_addr != NULL) {
        vstr_sprintf(out, "Received: from %s (unknown [%s])\r\n",
                     *info->helo ? info->helo : "unknown", info->client_addr);
        if (info->tls != NULL)
            vstr_sprintf_append(out, "\t(using %s)\r\n", info->tls);
        vstr_sprintf_append(out, "\tby %s (relayq) with %s id %s; %s\r\n", info->myhostname,
                            info->protocol != NULL ? info->protocol : "ESMTP", info->qid, date);
    } else
        vstr_sprintf(out, "Received: by %s (relayq) id %s; %s\r\n", info->myhostname, info->qid,
                     date);
    seen = cleanup_headers(out, text, hdr_end, stats);
    cleanup_added_headers(out, seen, info);
    if (need_sep)
        vstr_append(out, "\r\n", 2);
    cleanup_body(out, text + hdr_end, total - hdr_end, stats);
    vstr_free(norm);
    return 0;
}

/* cleanup_message - cleanup_message_limited with the default limit, unreported */
int cleanup_message(const char *data, size_t len, const CLEANUP_INFO *info, VSTR *out, VSTR *why)
{
    CLEANUP_STATS stats;

    return cleanup_message_limited(data, len, info, CLEANUP_HEADER_LIMIT_DEF, out, &stats, why);
}

/* cleanup_log - say what cleanup changed in a queued message */
void cleanup_log(const char *qid, const char *source, size_t header_limit,
                 const CLEANUP_STATS *stats)
{
    if (stats->header_cut)
        msg_warn("%s: %s: header section longer than header_size_limit (%zu bytes): "
                 "the rest of it is kept as message body",
                 qid, source, header_limit);
    if (stats->long_lines > 0)
        msg_info("%s: %s: %zu line%s longer than %d octets broken up", qid, source,
                 stats->long_lines, stats->long_lines == 1 ? "" : "s", CLEANUP_LINE_MAX);
    if (stats->body_nuls > 0)
        msg_info("%s: %s: %zu NUL byte%s in the message body passed on unchanged", qid, source,
                 stats->body_nuls, stats->body_nuls == 1 ? "" : "s");
}
