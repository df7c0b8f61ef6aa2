/*
 * unit_cleanup - tests of pickup's message normalisation on hostile input
 *
 * Each case gives cleanup_message_limited() a message as a user could
 * submit it (lines of 100,000 octets, a header section over the limit,
 * NUL bytes, invalid UTF-8, no header/body separator, bare CR and LF)
 * and checks what the next MTA would get: CRLF lines of at most 998
 * octets, the text intact once the inserted line breaks are taken out,
 * and the report pickup logs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pickup.h"
#include "tap.h"

/* A string literal as pointer and length: NUL bytes and all. */
#define LIT(s) (s), sizeof(s) - 1

static CLEANUP_INFO info = {
    "1ABCDEFGHJK2", "relayq.test", "alice@example.org", "", 1700000000, NULL, NULL, NULL, NULL};

/* well_formed - every line ends in CRLF, no bare CR or LF, none over 998 octets */
static int well_formed(const VSTR *out)
{
    const char *text = vstr_str(out);
    size_t len = vstr_len(out), start = 0;

    if (len < 2 || text[len - 2] != '\r' || text[len - 1] != '\n')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r' && (i + 1 == len || text[i + 1] != '\n'))
            return 0;
        if (text[i] == '\n') {
            if (i == 0 || text[i - 1] != '\r' || i - 1 - start > CLEANUP_LINE_MAX)
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

/* body_offset - the offset of the body (after the first empty line), or 0 */
static size_t body_offset(const VSTR *out)
{
    const char *sep = memmem(vstr_str(out), vstr_len(out), "\r\n\r\n", 4);

    return sep ? (size_t)(sep - vstr_str(out)) + 4 : 0;
}

/* removed - a copy of text without every occurrence of a string (the caller frees it) */
static char *removed(const char *text, size_t len, const char *what, size_t *out_len)
{
    char *copy = malloc(len + 1);
    size_t n = 0, wlen = strlen(what);

    for (size_t i = 0; i < len;) {
        if (i + wlen <= len && memcmp(text + i, what, wlen) == 0) {
            i += wlen;
            continue;
        }
        copy[n++] = text[i++];
    }
    copy[n] = '\0';
    *out_len = n;
    return copy;
}

/* repeat - a string of count copies of unit (the caller frees it) */
static char *repeat(const char *prefix, const char *unit, size_t count, const char *suffix)
{
    size_t plen = strlen(prefix), ulen = strlen(unit), slen = strlen(suffix);
    char *text = malloc(plen + ulen * count + slen + 1);

    memcpy(text, prefix, plen);
    for (size_t i = 0; i < count; i++)
        memcpy(text + plen + i * ulen, unit, ulen);
    memcpy(text + plen + ulen * count, suffix, slen + 1);
    return text;
}

/* contains - whether out holds the bytes */
static int contains(const VSTR *out, const char *bytes, size_t len)
{
    return memmem(vstr_str(out), vstr_len(out), bytes, len) != NULL;
}

int main(void)
{
    VSTR *out = vstr_alloc(1024), *why = vstr_alloc(100);
    CLEANUP_STATS stats;
    char *in, *joined, *header;
    size_t body, n;
    int ret;

    /* A body line of 100,000 octets: split with CRLF, nothing else changed. */
    in = repeat("Subject: long\n\n", "0123456789", 10000, "\n");
    ret = cleanup_message_limited(in, strlen(in), &info, 102400, out, &stats, why);
    body = body_offset(out);
    joined = removed(vstr_str(out) + body, vstr_len(out) - body, "\r\n", &n);
    tap_ok(ret == 0 && well_formed(out), "a 100,000-octet body line becomes CRLF lines of <= 998");
    tap_ok(n == 100000 && memcmp(joined, in + 15, n) == 0,
           "... which give the line back when joined (%zu octets)", n);
    tap_ok(stats.long_lines == 1 && !stats.header_cut && stats.body_nuls == 0,
           "... and the report counts one long line (%zu)", stats.long_lines);
    free(joined);
    free(in);

    /* UTF-8 text: no line starts inside a sequence. */
    in = repeat("Subject: utf8\n\na", "\xc3\xa9", 1500, "\n");
    ret = cleanup_message_limited(in, strlen(in), &info, 102400, out, &stats, why);
    tap_ok(ret == 0 && well_formed(out) && !contains(out, LIT("\n\xa9")) &&
               !contains(out, LIT("\xc3\r")),
           "a long UTF-8 line is split between characters, not inside one");
    free(in);

    /* A long header with blanks: folded before blanks, so unfolding gives it back. */
    in = repeat("X-Words:", " word", 5000, "\n\nbody\n");
    ret = cleanup_message_limited(in, strlen(in), &info, 102400, out, &stats, why);
    header = removed(vstr_str(out), vstr_len(out), "\r\n", &n);
    tap_ok(ret == 0 && well_formed(out) && stats.long_lines == 1 && contains(out, LIT("\r\n word")),
           "a 25,000-octet header line with blanks is folded into lines of <= 998");
    tap_ok(memmem(header, n, in, strlen(in) - 7) != NULL,
           "... before a blank: unfolded, it is the header as written");
    free(header);
    free(in);

    /* A long header without blanks: CRLF and a space inserted. */
    in = repeat("X-Token:", "a", 5000, "\n\nbody\n");
    ret = cleanup_message_limited(in, strlen(in), &info, 102400, out, &stats, why);
    header = removed(vstr_str(out), vstr_len(out), "\r\n ", &n);
    tap_ok(ret == 0 && well_formed(out) && contains(out, LIT("\r\n aaaa")),
           "a header line without blanks is folded with CRLF and a space");
    tap_ok(memmem(header, n, in, strlen(in) - 7) != NULL,
           "... and taking out the inserted CRLF-space gives it back");
    free(header);
    free(in);

    /* A header section over the limit: the rest, from the header that crosses it, is body. */
    in = repeat("Subject: big\n", "X-Filler: 0123456789012345678901234567890123456789\n", 40,
                "From: bob@example.com\n\nthe body\n");
    ret = cleanup_message_limited(in, strlen(in), &info, 1024, out, &stats, why);
    body = body_offset(out);
    tap_ok(ret == 0 && well_formed(out) && stats.header_cut == 1,
           "a header section over header_size_limit is reported");
    tap_ok(body > 0 && body < 1024 + 400 && strncmp(vstr_str(out) + body, "X-Filler: ", 10) == 0 &&
               contains(out, LIT("From: bob@example.com\r\n\r\nthe body\r\n")),
           "... ends near the limit; the rest follows an empty line, all kept");
    tap_ok(memmem(vstr_str(out), body, LIT("From: alice@example.org\r\n")) != NULL,
           "... a From: past the limit is body, so one is added to the headers");
    free(in);

    /* A folded header that crosses the limit goes to the body whole. */
    in = repeat("", "X-Filler: 0123456789012345678901234567890123456789\n", 19,
                "X-Folded: one\n two\n three and enough to cross\n\nbody\n");
    ret = cleanup_message_limited(in, strlen(in), &info, 1024, out, &stats, why);
    body = body_offset(out);
    tap_ok(ret == 0 && stats.header_cut &&
               strncmp(vstr_str(out) + body,
                       "X-Folded: one\r\n two\r\n three and enough to cross\r\n\r\nbody\r\n",
                       57) == 0,
           "a folded header across the limit starts the body, with its continuations");
    free(in);

    /* NUL bytes. */
    ret = cleanup_message_limited(LIT("Subject: n\n\na\0b\0c\n"), &info, 102400, out, &stats, why);
    tap_ok(ret == 0 && stats.body_nuls == 2 && contains(out, LIT("\r\n\r\na\0b\0c\r\n")),
           "NUL bytes in the body are passed on and counted (%zu)", stats.body_nuls);
    ret = cleanup_message_limited(LIT("Subject: a\0b\n\nbody\n"), &info, 102400, out, &stats, why);
    tap_ok(ret < 0 && strstr(vstr_str(why), "NUL byte in the message header section") != NULL,
           "a NUL byte in the header section is refused: %s", vstr_str(why));
    in = repeat("", "X-Filler: 0123456789012345678901234567890123456789\n", 25, "");
    {
        size_t len = strlen(in);
        char *with_nul = malloc(len + 20);

        memcpy(with_nul, in, len);
        memcpy(with_nul + len, "X-Nul: a\0b\n\nbody\n", 17);
        ret = cleanup_message_limited(with_nul, len + 17, &info, 1024, out, &stats, why);
        tap_ok(ret == 0 && stats.header_cut && stats.body_nuls == 1,
               "a NUL byte past header_size_limit is in the body: passed on");
        free(with_nul);
    }
    free(in);

    /* Invalid UTF-8 is nobody's business here. */
    ret = cleanup_message_limited(LIT("Subject: \xff\xfe\xc3(\n\n\xc0\xaf \xed\xa0\x80\n"), &info,
                                  102400, out, &stats, why);
    tap_ok(ret == 0 && contains(out, LIT("Subject: \xff\xfe\xc3(\r\n")) &&
               contains(out, LIT("\r\n\r\n\xc0\xaf \xed\xa0\x80\r\n")),
           "invalid UTF-8 in header and body is passed on unchanged");

    /* No separator between header and body. */
    ret = cleanup_message_limited(LIT("Subject: only\nTo: x@y"), &info, 102400, out, &stats, why);
    tap_ok(ret == 0 && well_formed(out) && body_offset(out) == 0 &&
               contains(out, LIT("Subject: only\r\nTo: x@y\r\nDate: ")),
           "headers only, no empty line: a message without a body");
    ret = cleanup_message_limited(LIT("just text\nmore\n"), &info, 102400, out, &stats, why);
    tap_ok(ret == 0 && contains(out, LIT("From: alice@example.org\r\n\r\njust text\r\nmore\r\n")),
           "no header at all: headers added, an empty line, then the text as body");
    ret =
        cleanup_message_limited(LIT("Subject: s\nnot a header\n"), &info, 102400, out, &stats, why);
    tap_ok(ret == 0 && contains(out, LIT("\r\n\r\nnot a header\r\n")),
           "a non-header line ends the header section: an empty line is inserted before it");

    /* Bare CR and LF. */
    ret = cleanup_message_limited(LIT("Subject: s\r\rone\rtwo\nthree\r\n\rfour"), &info, 102400,
                                  out, &stats, why);
    tap_ok(ret == 0 && well_formed(out) && contains(out, LIT("Subject: s\r\n")) &&
               contains(out, LIT("\r\n\r\none\r\ntwo\r\nthree\r\n\r\nfour\r\n")),
           "bare CR and bare LF become CRLF");

    /* A field name too long for a line is not a header. */
    in = repeat("", "N", 1000, ": value\n\nbody\n");
    ret = cleanup_message_limited(in, strlen(in), &info, 102400, out, &stats, why);
    body = body_offset(out);
    tap_ok(ret == 0 && well_formed(out) && strncmp(vstr_str(out) + body, "NNN", 3) == 0,
           "a 1000-octet field name is body text, not a header");
    free(in);

    /* The fixed-limit form agrees. */
    in = repeat("Subject: x\n\n", "y", 3000, "\n");
    cleanup_message_limited(in, strlen(in), &info, CLEANUP_HEADER_LIMIT_DEF, out, &stats, why);
    {
        VSTR *other = vstr_alloc(100);

        ret = cleanup_message(in, strlen(in), &info, other, why);
        tap_ok(ret == 0 && vstr_len(other) == vstr_len(out) &&
                   memcmp(vstr_str(other), vstr_str(out), vstr_len(out)) == 0,
               "cleanup_message() is cleanup_message_limited() with the default limit");
        vstr_free(other);
    }
    free(in);

    vstr_free(out);
    vstr_free(why);
    return tap_done();
}
