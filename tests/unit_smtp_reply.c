/*
 * unit_smtp_reply - table tests of the SMTP reply parser
 *
 * Each case is a reply as the server sent it, lines separated by "\n"
 * (the parser itself never sees line endings), and what the parser must
 * make of it: the result of the last line fed, the code, the enhanced
 * status code, the text and the line count, or the error reason. Hostile
 * replies that are too large to write inline are generated.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"
#include "tap.h"
#include "vstr.h"

/* One reply and the expected outcome. */
struct reply_case {
    const char *name;
    const char *input; /* lines separated by "\n" */
    size_t len;        /* 0: strlen(input) */
    int result;        /* of the last line fed */
    int code;
    const char *dsn;
    const char *text;
    int lines;
    const char *why; /* expected reason when result is SMTP_REPLY_ERROR */
};

static const struct reply_case cases[] = {
    {"single line", "250 OK", 0, SMTP_REPLY_DONE, 250, "", "OK", 1, NULL},
    {"code only", "250", 0, SMTP_REPLY_DONE, 250, "", "", 1, NULL},
    {"code and space", "354 ", 0, SMTP_REPLY_DONE, 354, "", "", 1, NULL},
    {"enhanced code", "250 2.0.0 Ok: queued as 12345", 0, SMTP_REPLY_DONE, 250, "2.0.0",
     "Ok: queued as 12345", 1, NULL},
    {"enhanced code alone", "250 2.1.5", 0, SMTP_REPLY_DONE, 250, "2.1.5", "", 1, NULL},
    {"enhanced code three digits", "550 5.123.456 nope", 0, SMTP_REPLY_DONE, 550, "5.123.456",
     "nope", 1, NULL},
    {"enhanced code four digits is text", "550 5.1234.1 nope", 0, SMTP_REPLY_DONE, 550, "",
     "5.1234.1 nope", 1, NULL},
    {"enhanced code class mismatch is text", "550 4.1.1 odd", 0, SMTP_REPLY_DONE, 550, "",
     "4.1.1 odd", 1, NULL},
    {"enhanced code class 3 is text", "354 3.0.0 go", 0, SMTP_REPLY_DONE, 354, "", "3.0.0 go", 1,
     NULL},
    {"enhanced code glued to text", "250 2.0.0Ok", 0, SMTP_REPLY_DONE, 250, "", "2.0.0Ok", 1, NULL},
    {"enhanced code missing part", "250 2.0 Ok", 0, SMTP_REPLY_DONE, 250, "", "2.0 Ok", 1, NULL},
    {"enhanced code empty part", "250 2..0 Ok", 0, SMTP_REPLY_DONE, 250, "", "2..0 Ok", 1, NULL},
    {"multi-line EHLO",
     "250-mx.example.com Hello\n250-PIPELINING\n250-SIZE 10240000\n"
     "250-STARTTLS\n250 AUTH PLAIN LOGIN",
     0, SMTP_REPLY_DONE, 250, "",
     "mx.example.com Hello\nPIPELINING\nSIZE 10240000\nSTARTTLS\nAUTH PLAIN LOGIN", 5, NULL},
    {"multi-line with dsn on every line",
     "550-5.7.1 Message rejected\n550-5.7.1 see https://example.com\n550 5.7.1 policy", 0,
     SMTP_REPLY_DONE, 550, "5.7.1", "Message rejected\nsee https://example.com\npolicy", 3, NULL},
    {"dsn only on first line", "451-4.3.0 try later\n451 please", 0, SMTP_REPLY_DONE, 451, "4.3.0",
     "try later\nplease", 2, NULL},
    {"different dsn on later line kept", "550-5.1.1 no\n550 5.7.1 other", 0, SMTP_REPLY_DONE, 550,
     "5.1.1", "no\n5.7.1 other", 2, NULL},
    {"dsn only on later line is text", "250-hello\n250 2.0.0 ok", 0, SMTP_REPLY_DONE, 250, "",
     "hello\n2.0.0 ok", 2, NULL},
    {"empty continuation lines", "250-\n250-\n250", 0, SMTP_REPLY_DONE, 250, "", "\n\n", 3, NULL},
    {"control bytes sanitized", "250 a\tb\rc\x1b[31md\x7f", 0, SMTP_REPLY_DONE, 250, "",
     "a?b?c?[31md?", 1, NULL},
    {"8-bit bytes sanitized", "250 caf\xc3\xa9", 0, SMTP_REPLY_DONE, 250, "", "caf??", 1, NULL},
    {"NUL byte sanitized", "250 a\0b", 7, SMTP_REPLY_DONE, 250, "", "a?b", 1, NULL},
    {"421 shutdown", "421 4.3.2 Service shutting down", 0, SMTP_REPLY_DONE, 421, "4.3.2",
     "Service shutting down", 1, NULL},
    {"599 max code", "599 odd", 0, SMTP_REPLY_DONE, 599, "", "odd", 1, NULL},
    {"continuation only", "250-first", 0, SMTP_REPLY_MORE, 0, "", "", 0, NULL},

    {"empty line", "", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"\""},
    {"two digits", "25", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"25\""},
    {"letters", "xyz", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"xyz\""},
    {"first digit 1", "150 x", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"150 x\""},
    {"first digit 6", "600 x", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"600 x\""},
    {"first digit 0", "050 x", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"050 x\""},
    {"four digits", "2500 x", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"2500 x\""},
    {"no separator", "250x", 0, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"250x\""},
    {"tab separator", "250\tok", 0, SMTP_REPLY_ERROR, 0, "", "", 0,
     "malformed reply line \"250?ok\""},
    {"leading space", " 250 ok", 0, SMTP_REPLY_ERROR, 0, "", "", 0,
     "malformed reply line \" 250 ok\""},
    {"NUL in code",
     "2\x00"
     "0 ok",
     6, SMTP_REPLY_ERROR, 0, "", "", 0, "malformed reply line \"2?0 ok\""},
    {"mixed codes", "250-first\n550 second", 0, SMTP_REPLY_ERROR, 0, "", "", 0,
     "reply code 550 after 250 in \"550 second\""},
    {"mixed codes on continuation", "250-a\n250-b\n251-c\n250 d", 0, SMTP_REPLY_ERROR, 0, "", "", 0,
     "reply code 251 after 250 in \"251-c\""},
    {"malformed continuation", "250-a\nfoo", 0, SMTP_REPLY_ERROR, 0, "", "", 0,
     "malformed reply line \"foo\""},
    {"long bad line quoted at 60 bytes",
     "garbage garbage garbage garbage garbage garbage garbage garbage garbage", 0, SMTP_REPLY_ERROR,
     0, "", "", 0,
     "malformed reply line \"garbage garbage garbage garbage garbage garbage garbage garb...\""},
    {"escape sequences in bad line", "\x1b]0;pwned\x07", 0, SMTP_REPLY_ERROR, 0, "", "", 0,
     "malformed reply line \"?]0;pwned?\""},
};

/* show - text for a TAP description: line breaks made visible, one line */
static const char *show(const char *text)
{
    static VSTR *buf;

    if (buf == NULL)
        buf = vstr_alloc(256);
    vstr_reset(buf);
    for (; *text && vstr_len(buf) < 200; text++) {
        if (*text == '\n')
            vstr_strcat(buf, "\\n");
        else
            vstr_addch(buf, *text);
    }
    return vstr_str(buf);
}

/* feed - give the parser every line of input; the last result */
static int feed(SMTP_REPLY_PARSER *parser, const char *input, size_t len, SMTP_REPLY *reply,
                VSTR *why)
{
    const char *cp = input;
    const char *end = input + len;
    const char *nl;
    int ret = SMTP_REPLY_MORE;

    for (;;) {
        nl = memchr(cp, '\n', (size_t)(end - cp));
        ret = smtp_reply_feed_line(parser, cp, nl ? (size_t)(nl - cp) : (size_t)(end - cp), reply,
                                   why);
        if (nl == NULL || ret != SMTP_REPLY_MORE)
            return ret;
        cp = nl + 1;
    }
}

/* run_cases - the table */
static void run_cases(void)
{
    SMTP_REPLY_PARSER *parser = smtp_reply_parser_create();
    SMTP_REPLY *reply = smtp_reply_alloc();
    VSTR *why = vstr_alloc(64);
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct reply_case *c = cases + i;
        size_t len = c->len ? c->len : strlen(c->input);
        int ret;

        smtp_reply_parser_reset(parser);
        reply->code = 0;
        reply->dsn[0] = '\0';
        vstr_reset(reply->text);
        reply->lines = 0;
        vstr_reset(why);
        ret = feed(parser, c->input, len, reply, why);
        if (c->result == SMTP_REPLY_DONE) {
            tap_ok(ret == SMTP_REPLY_DONE && reply->code == c->code &&
                       strcmp(reply->dsn, c->dsn) == 0 &&
                       strcmp(vstr_str(reply->text), c->text) == 0 && reply->lines == c->lines,
                   "%s (ret %d code %d dsn \"%s\" lines %d text \"%s\" why \"%s\")", c->name, ret,
                   reply->code, reply->dsn, reply->lines, show(vstr_str(reply->text)),
                   vstr_str(why));
        } else if (c->result == SMTP_REPLY_ERROR) {
            tap_ok(ret == SMTP_REPLY_ERROR && strcmp(vstr_str(why), c->why) == 0,
                   "%s (ret %d why \"%s\")", c->name, ret, vstr_str(why));
        } else {
            tap_ok(ret == c->result, "%s (ret %d)", c->name, ret);
        }
    }
    vstr_free(why);
    smtp_reply_free(reply);
    smtp_reply_parser_free(parser);
}

/* repeat_lines - "CODE-text\n" count-1 times, then "CODE text" */
static char *repeat_lines(const char *code, const char *text, int count)
{
    VSTR *vp = vstr_alloc(64);
    char *out;
    int i;

    for (i = 0; i < count; i++)
        vstr_sprintf_append(vp, "%s%c%s%s", code, i + 1 < count ? '-' : ' ', text,
                            i + 1 < count ? "\n" : "");
    out = strdup(vstr_str(vp));
    vstr_free(vp);
    return out;
}

/* run_generated - limits: line length, line count, text cap */
static void run_generated(void)
{
    SMTP_REPLY_PARSER *parser = smtp_reply_parser_create();
    SMTP_REPLY *reply = smtp_reply_alloc();
    VSTR *why = vstr_alloc(64);
    VSTR *line = vstr_alloc(8192);
    char *input;
    char *filler;
    int ret;

    /* A 5000-byte line. */
    vstr_strcpy(line, "250 ");
    while (vstr_len(line) < 5000)
        vstr_addch(line, 'x');
    ret = smtp_reply_feed_line(parser, vstr_str(line), vstr_len(line), reply, why);
    tap_ok(ret == SMTP_REPLY_ERROR &&
               strcmp(vstr_str(why), "reply line longer than 4096 bytes") == 0,
           "5000-byte line rejected (%s)", vstr_str(why));

    /* Exactly SMTP_REPLY_LINE_MAX bytes is allowed, one more is not. */
    vstr_truncate(line, SMTP_REPLY_LINE_MAX);
    ret = smtp_reply_feed_line(parser, vstr_str(line), vstr_len(line), reply, why);
    tap_ok(ret == SMTP_REPLY_DONE && vstr_len(reply->text) == SMTP_REPLY_LINE_MAX - 4,
           "4096-byte line accepted");
    vstr_addch(line, 'x');
    ret = smtp_reply_feed_line(parser, vstr_str(line), vstr_len(line), reply, why);
    tap_ok(ret == SMTP_REPLY_ERROR, "4097-byte line rejected");

    /* A long line in the middle of a reply, then the parser starts afresh. */
    smtp_reply_feed_line(parser, "250-a", 5, reply, why);
    vstr_strcpy(line, "250-");
    while (vstr_len(line) < 5000)
        vstr_addch(line, 'y');
    ret = smtp_reply_feed_line(parser, vstr_str(line), vstr_len(line), reply, why);
    tap_ok(ret == SMTP_REPLY_ERROR, "5000-byte continuation line rejected");
    ret = smtp_reply_feed_line(parser, "220 fresh", 9, reply, why);
    tap_ok(ret == SMTP_REPLY_DONE && reply->code == 220 && reply->lines == 1 &&
               strcmp(vstr_str(reply->text), "fresh") == 0,
           "parser starts afresh after an error");

    /* 1000 lines are allowed. */
    input = repeat_lines("250", "line", SMTP_REPLY_LINES_MAX);
    smtp_reply_parser_reset(parser);
    ret = feed(parser, input, strlen(input), reply, why);
    tap_ok(ret == SMTP_REPLY_DONE && reply->lines == SMTP_REPLY_LINES_MAX &&
               vstr_len(reply->text) == (size_t)SMTP_REPLY_LINES_MAX * 5 - 1,
           "1000 lines accepted (lines %d)", reply->lines);
    free(input);

    /* 1001 continuation lines are not. */
    input = repeat_lines("250", "line", SMTP_REPLY_LINES_MAX + 1);
    ret = feed(parser, input, strlen(input), reply, why);
    tap_ok(ret == SMTP_REPLY_ERROR && strcmp(vstr_str(why), "reply longer than 1000 lines") == 0,
           "1001 lines rejected (%s)", vstr_str(why));
    free(input);

    /* 1001 continuation lines that never end: the error comes on line 1001. */
    {
        int i;

        ret = SMTP_REPLY_MORE;
        for (i = 0; i < 5000 && ret == SMTP_REPLY_MORE; i++)
            ret = smtp_reply_feed_line(parser, "250-more", 8, reply, why);
        tap_ok(ret == SMTP_REPLY_ERROR && i == SMTP_REPLY_LINES_MAX + 1,
               "endless continuation stopped at line %d", i);
    }

    /* The joined text is capped, not refused: 1000 lines of 4000 bytes. */
    filler = malloc(4001);
    memset(filler, 'z', 4000);
    filler[4000] = '\0';
    input = repeat_lines("250", filler, SMTP_REPLY_LINES_MAX);
    ret = feed(parser, input, strlen(input), reply, why);
    tap_ok(ret == SMTP_REPLY_DONE && vstr_len(reply->text) == SMTP_REPLY_TEXT_MAX &&
               reply->lines == SMTP_REPLY_LINES_MAX &&
               strlen(vstr_str(reply->text)) == SMTP_REPLY_TEXT_MAX,
           "4 MB reply truncated to %d bytes (got %zu)", SMTP_REPLY_TEXT_MAX,
           vstr_len(reply->text));
    free(input);
    free(filler);

    vstr_free(line);
    vstr_free(why);
    smtp_reply_free(reply);
    smtp_reply_parser_free(parser);
}

/* run_misc - reuse, a reply without a buffer, default DSN codes */
static void run_misc(void)
{
    static const struct {
        int code;
        const char *dsn;
        const char *expect;
    } dsn_cases[] = {
        {250, "", "2.0.0"}, {354, "", "2.0.0"},      {421, "", "4.0.0"},      {452, "", "4.0.0"},
        {550, "", "5.0.0"}, {554, "5.7.1", "5.7.1"}, {250, "2.1.5", "2.1.5"}, {0, "", "4.0.0"},
    };
    SMTP_REPLY_PARSER *parser = smtp_reply_parser_create();
    SMTP_REPLY reply;
    VSTR *why = vstr_alloc(64);
    char dsn[16];
    char tiny[4];
    size_t i;
    int ret;

    memset(&reply, 0, sizeof(reply));
    ret = smtp_reply_feed_line(parser, "220-hello", 9, &reply, why);
    tap_ok(ret == SMTP_REPLY_MORE && reply.text == NULL, "continuation leaves the reply alone");
    ret = smtp_reply_feed_line(parser, "220 2.0.0 ready", 15, &reply, why);
    tap_ok(ret == SMTP_REPLY_DONE && reply.text != NULL &&
               strcmp(vstr_str(reply.text), "hello\n2.0.0 ready") == 0 && reply.dsn[0] == '\0',
           "reply without a buffer gets one; dsn only from the first line");
    ret = smtp_reply_feed_line(parser, "250 2.1.0 sender ok", 19, &reply, why);
    tap_ok(ret == SMTP_REPLY_DONE && reply.code == 250 && strcmp(reply.dsn, "2.1.0") == 0 &&
               strcmp(vstr_str(reply.text), "sender ok") == 0 && reply.lines == 1,
           "parser reused after a complete reply");
    smtp_reply_feed_line(parser, "250-half", 8, &reply, why);
    smtp_reply_parser_reset(parser);
    ret = smtp_reply_feed_line(parser, "550 5.1.1 gone", 14, &reply, why);
    tap_ok(ret == SMTP_REPLY_DONE && reply.code == 550 && reply.lines == 1,
           "reset drops a partial reply");
    vstr_free(reply.text);

    for (i = 0; i < sizeof(dsn_cases) / sizeof(dsn_cases[0]); i++) {
        memset(&reply, 0, sizeof(reply));
        reply.code = dsn_cases[i].code;
        snprintf(reply.dsn, sizeof(reply.dsn), "%s", dsn_cases[i].dsn);
        smtp_reply_default_dsn(&reply, dsn, sizeof(dsn));
        tap_ok(strcmp(dsn, dsn_cases[i].expect) == 0, "default dsn for %d \"%s\" is %s (%s)",
               dsn_cases[i].code, dsn_cases[i].dsn, dsn_cases[i].expect, dsn);
    }
    reply.code = 550;
    reply.dsn[0] = '\0';
    smtp_reply_default_dsn(&reply, tiny, sizeof(tiny));
    tap_ok(strcmp(tiny, "5.0") == 0, "default dsn truncated to the buffer");

    smtp_reply_parser_free(NULL);
    smtp_reply_free(NULL);
    tap_ok(1, "free(NULL) is harmless");
    vstr_free(why);
    smtp_reply_parser_free(parser);
}

int main(void)
{
    run_cases();
    run_generated();
    run_misc();
    return tap_done();
}
