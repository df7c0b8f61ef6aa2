/*
 * fuzz_smtp_reply - fuzz target for the SMTP reply parser
 *
 * LLVMFuzzerTestOneInput()
 *	split the input into lines as smtpout does (at LF, one CR before it
 *	stripped, the unterminated tail given too) and feed every line to two
 *	parsers: one that relies on its own reset after DONE and ERROR, one
 *	that the caller resets explicitly. Both must return the same results
 *	and the same replies, and every completed reply must hold: a code of
 *	200..599, 1..SMTP_REPLY_LINES_MAX lines, a NUL-terminated dsn that is
 *	empty or "C.x.y" of the code's class, printable text (and "\n") of at
 *	most SMTP_REPLY_TEXT_MAX bytes, and a default dsn "C.x.y". An error
 *	must come with a reason.
 *
 * fuzz-sources: common/mail/smtp_reply.c common/util/vstr.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c
 *
 * A broken invariant aborts (a crash for libFuzzer and for the driver);
 * the parsers live for the whole process.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_reply.h"
#include "vstr.h"

/* fuzz_check_reply - the invariants of a completed reply */
static void fuzz_check_reply(const SMTP_REPLY *reply)
{
    char dsn[16];
    size_t len;

    FUZZ_CHECK(reply->code >= 200 && reply->code <= 599);
    FUZZ_CHECK(reply->lines >= 1 && reply->lines <= SMTP_REPLY_LINES_MAX);
    FUZZ_CHECK(memchr(reply->dsn, '\0', sizeof(reply->dsn)) != NULL);
    len = strlen(reply->dsn);
    FUZZ_CHECK(len == 0 || (len >= 5 && len <= 9 && reply->dsn[0] == '0' + reply->code / 100 &&
                            reply->dsn[1] == '.'));
    FUZZ_CHECK(reply->text != NULL);
    FUZZ_CHECK(vstr_len(reply->text) <= SMTP_REPLY_TEXT_MAX);
    FUZZ_CHECK(vstr_str(reply->text)[vstr_len(reply->text)] == '\0');
    for (size_t i = 0; i < vstr_len(reply->text); i++) {
        unsigned char ch = (unsigned char)vstr_str(reply->text)[i];

        FUZZ_CHECK(ch == '\n' || (ch >= 0x20 && ch < 0x7f));
    }
    smtp_reply_default_dsn(reply, dsn, sizeof(dsn));
    FUZZ_CHECK(strlen(dsn) >= 5 && dsn[1] == '.' && strchr("245", dsn[0]) != NULL);
}

/* LLVMFuzzerTestOneInput - one server's worth of reply lines */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static SMTP_REPLY_PARSER *self_reset, *explicit_reset;
    static SMTP_REPLY *reply_a, *reply_b;
    static VSTR *why_a, *why_b;
    const char *text = (const char *)data;
    const char *end = text + size;

    if (self_reset == NULL) {
        self_reset = smtp_reply_parser_create();
        explicit_reset = smtp_reply_parser_create();
        reply_a = smtp_reply_alloc();
        reply_b = smtp_reply_alloc();
        why_a = vstr_alloc(64);
        why_b = vstr_alloc(64);
    }
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *next = nl ? nl + 1 : end;
        size_t len = (size_t)((nl ? nl : end) - line);
        int ret_a, ret_b;

        if (nl && len > 0 && line[len - 1] == '\r')
            len--;
        vstr_reset(why_a);
        vstr_reset(why_b);
        ret_a = smtp_reply_feed_line(self_reset, line, len, reply_a, why_a);
        ret_b = smtp_reply_feed_line(explicit_reset, line, len, reply_b, why_b);
        FUZZ_CHECK(ret_a == ret_b);
        FUZZ_CHECK(ret_a == SMTP_REPLY_MORE || ret_a == SMTP_REPLY_DONE ||
                   ret_a == SMTP_REPLY_ERROR);
        if (ret_a == SMTP_REPLY_DONE) {
            fuzz_check_reply(reply_a);
            FUZZ_CHECK(reply_a->code == reply_b->code && reply_a->lines == reply_b->lines);
            FUZZ_CHECK(strcmp(reply_a->dsn, reply_b->dsn) == 0);
            FUZZ_CHECK(vstr_len(reply_a->text) == vstr_len(reply_b->text) &&
                       memcmp(vstr_str(reply_a->text), vstr_str(reply_b->text),
                              vstr_len(reply_a->text)) == 0);
            FUZZ_CHECK(reply_a->code / 100 == line[0] - '0');
            smtp_reply_parser_reset(explicit_reset);
        } else if (ret_a == SMTP_REPLY_ERROR) {
            FUZZ_CHECK(vstr_len(why_a) > 0 && strcmp(vstr_str(why_a), vstr_str(why_b)) == 0);
            smtp_reply_parser_reset(explicit_reset);
        }
        line = next;
    }
    /* The connection ends here: a partial reply is dropped, as smtpout does. */
    smtp_reply_parser_reset(self_reset);
    smtp_reply_parser_reset(explicit_reset);
    return 0;
}
