/*
 * smtp_reply - incremental parser of SMTP server replies
 *
 * smtp_reply_parser_create(), smtp_reply_parser_free()
 *	a parser holds the lines of one reply until its last line arrives.
 * smtp_reply_parser_reset()
 *	forget a partial reply (after the connection was reset).
 * smtp_reply_feed_line()
 *	give the parser one line without its line ending (the caller strips
 *	CRLF or a bare LF). Returns SMTP_REPLY_MORE after a continuation line
 *	("250-..."), SMTP_REPLY_DONE when the last line ("250 ..." or "250")
 *	completed *reply, SMTP_REPLY_ERROR with a short reason in `why` on a
 *	malformed line, a line longer than SMTP_REPLY_LINE_MAX, more than
 *	SMTP_REPLY_LINES_MAX lines, or lines with different codes. The parser
 *	is ready for a new reply after DONE and after ERROR.
 * smtp_reply_alloc(), smtp_reply_free()
 *	a reply with its text buffer.
 * smtp_reply_default_dsn()
 *	the reply's enhanced status code, or X.0.0 from its class.
 *
 * An enhanced status code (RFC 3463) that starts the first line and whose
 * class matches the reply code goes into reply->dsn and is removed from
 * the text, and so is the same code at the start of later lines. The text
 * keeps only printable ASCII ('?' for any other byte) so that it can go
 * into logs and bounces as is, and is cut at SMTP_REPLY_TEXT_MAX.
 *
 * Ownership: the caller owns the parser and the reply. A reply whose
 * text is NULL gets a buffer, which smtp_reply_free() releases.
 *
 * Failures: protocol errors are returned, never fatal; allocation failure
 * is fatal (mymalloc).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mymalloc.h"
#include "smtp_reply.h"
#include "vstr.h"

#define SMTP_REPLY_QUOTE_MAX 60 /* bytes of a bad line quoted in a reason */

struct SMTP_REPLY_PARSER {
    int code;      /* of the first line; 0: no line yet */
    int lines;     /* lines so far */
    char dsn[16];  /* from the first line, or "" */
    VSTR *text;    /* joined, sanitized, capped */
    int truncated; /* text reached SMTP_REPLY_TEXT_MAX */
};

/* smtp_reply_parser_create - a parser waiting for the first line of a reply */
SMTP_REPLY_PARSER *smtp_reply_parser_create(void)
{
    SMTP_REPLY_PARSER *parser = mymalloc(sizeof(*parser));

    parser->text = vstr_alloc(128);
    smtp_reply_parser_reset(parser);
    return parser;
}

/* smtp_reply_parser_free - destroy a parser */
void smtp_reply_parser_free(SMTP_REPLY_PARSER *parser)
{
    if (parser == NULL)
        return;
    vstr_free(parser->text);
    myfree(parser);
}

/* smtp_reply_parser_reset - drop a partial reply */
void smtp_reply_parser_reset(SMTP_REPLY_PARSER *parser)
{
    parser->code = 0;
    parser->lines = 0;
    parser->dsn[0] = '\0';
    parser->truncated = 0;
    vstr_reset(parser->text);
}

/* smtp_reply_error - quote the offending line in a short reason and reset */
static int smtp_reply_error(SMTP_REPLY_PARSER *parser, VSTR *why, const char *reason,
                            const char *line, size_t len)
{
    size_t n = len > SMTP_REPLY_QUOTE_MAX ? SMTP_REPLY_QUOTE_MAX : len;
    size_t i;

    vstr_sprintf(why, "%s \"", reason);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)line[i];

        vstr_addch(why, ch >= 0x20 && ch < 0x7f ? ch : '?');
    }
    vstr_strcat(why, n < len ? "...\"" : "\"");
    smtp_reply_parser_reset(parser);
    return SMTP_REPLY_ERROR;
}

/* smtp_reply_digits - count 1..max decimal digits at text */
static size_t smtp_reply_digits(const char *text, size_t len, size_t max)
{
    size_t n = 0;

    while (n < len && n <= max && text[n] >= '0' && text[n] <= '9')
        n++;
    return n >= 1 && n <= max ? n : 0;
}

/* smtp_reply_dsn_len - length of "C.D.E" at text when class matches, else 0 */
static size_t smtp_reply_dsn_len(const char *text, size_t len, int code)
{
    size_t pos;
    size_t n;

    if (len < 5 || text[0] != '0' + code / 100 ||
        (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
        return 0;
    pos = 2;
    if ((n = smtp_reply_digits(text + pos, len - pos, 3)) == 0)
        return 0;
    pos += n;
    if (pos >= len || text[pos] != '.')
        return 0;
    pos++;
    if ((n = smtp_reply_digits(text + pos, len - pos, 3)) == 0)
        return 0;
    pos += n;
    return pos == len || text[pos] == ' ' ? pos : 0;
}

/* smtp_reply_add_text - append one line's text, sanitized, within the cap */
static void smtp_reply_add_text(SMTP_REPLY_PARSER *parser, const char *text, size_t len)
{
    size_t room;
    size_t i;

    if (parser->truncated)
        return;
    if (parser->lines > 1)
        vstr_addch(parser->text, '\n');
    room = vstr_len(parser->text) < SMTP_REPLY_TEXT_MAX
               ? SMTP_REPLY_TEXT_MAX - vstr_len(parser->text)
               : 0;
    if (len > room) {
        len = room;
        parser->truncated = 1;
    }
    vstr_reserve(parser->text, len);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];

        vstr_addch(parser->text, ch >= 0x20 && ch < 0x7f ? ch : '?');
    }
    if (vstr_len(parser->text) >= SMTP_REPLY_TEXT_MAX) {
        vstr_truncate(parser->text, SMTP_REPLY_TEXT_MAX);
        parser->truncated = 1;
    }
}

/* smtp_reply_feed_line - take one line of a reply */
int smtp_reply_feed_line(SMTP_REPLY_PARSER *parser, const char *line, size_t len, SMTP_REPLY *reply,
                         VSTR *why)
{
    const char *text;
    size_t text_len;
    size_t dsn_len;
    char reason[64]; /* two reply codes and fixed text */
    int code;
    int last;

    if (len > SMTP_REPLY_LINE_MAX) {
        smtp_reply_parser_reset(parser);
        vstr_sprintf(why, "reply line longer than %d bytes", SMTP_REPLY_LINE_MAX);
        return SMTP_REPLY_ERROR;
    }
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
        return smtp_reply_error(parser, why, "malformed reply line", line, len);
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    last = len == 3 || line[3] == ' ';
    if (parser->code != 0 && code != parser->code) {
        snprintf(reason, sizeof(reason), "reply code %d after %d in", code, parser->code);
        return smtp_reply_error(parser, why, reason, line, len);
    }
    if (parser->lines >= SMTP_REPLY_LINES_MAX) {
        smtp_reply_parser_reset(parser);
        vstr_sprintf(why, "reply longer than %d lines", SMTP_REPLY_LINES_MAX);
        return SMTP_REPLY_ERROR;
    }
    text = len > 3 ? line + 4 : line + 3;
    text_len = len > 3 ? len - 4 : 0;
    if (parser->lines == 0) {
        parser->code = code;
        if ((dsn_len = smtp_reply_dsn_len(text, text_len, code)) > 0) {
            memcpy(parser->dsn, text, dsn_len); /* at most 9 bytes: 1 + 1 + 3 + 1 + 3 */
            parser->dsn[dsn_len] = '\0';
        }
    }
    /* Servers repeat the code on every line; the text is the same without it. */
    dsn_len = strlen(parser->dsn);
    if (dsn_len > 0 && text_len >= dsn_len && memcmp(text, parser->dsn, dsn_len) == 0 &&
        (text_len == dsn_len || text[dsn_len] == ' ')) {
        text += dsn_len;
        text_len -= dsn_len;
        while (text_len > 0 && *text == ' ')
            text++, text_len--;
    }
    parser->lines++;
    smtp_reply_add_text(parser, text, text_len);
    if (!last)
        return SMTP_REPLY_MORE;

    if (reply->text == NULL)
        reply->text = vstr_alloc(vstr_len(parser->text));
    reply->code = parser->code;
    reply->lines = parser->lines;
    memcpy(reply->dsn, parser->dsn, sizeof(reply->dsn));
    vstr_reset(reply->text);
    vstr_append(reply->text, vstr_str(parser->text), vstr_len(parser->text));
    smtp_reply_parser_reset(parser);
    return SMTP_REPLY_DONE;
}

/* smtp_reply_alloc - an empty reply */
SMTP_REPLY *smtp_reply_alloc(void)
{
    SMTP_REPLY *reply = mycalloc(1, sizeof(*reply));

    reply->text = vstr_alloc(128);
    return reply;
}

/* smtp_reply_free - destroy a reply */
void smtp_reply_free(SMTP_REPLY *reply)
{
    if (reply == NULL)
        return;
    vstr_free(reply->text);
    myfree(reply);
}

/* smtp_reply_default_dsn - the enhanced status code to record for a reply */
void smtp_reply_default_dsn(const SMTP_REPLY *reply, char *dsn, size_t size)
{
    const char *def;

    if (size == 0)
        return;
    if (reply->dsn[0] != '\0') {
        snprintf(dsn, size, "%s", reply->dsn);
        return;
    }
    /* 2xx and 3xx went well so far; anything unexpected is a temporary failure. */
    switch (reply->code / 100) {
    case 2:
    case 3:
        def = "2.0.0";
        break;
    case 5:
        def = "5.0.0";
        break;
    default:
        def = "4.0.0";
        break;
    }
    snprintf(dsn, size, "%s", def);
}
