/*
 * fuzz_pickup_cleanup - fuzz target for pickup's message normalisation
 *
 * LLVMFuzzerTestOneInput()
 *	cleanup_message() the input as the content of a maildrop file, with
 *	a full name taken from the input's first bytes (sendmail -F text is
 *	untrusted too) and a null or a real sender depending on the input's
 *	length. A rejection must name its reason and only happen for a NUL
 *	in the header section. Accepted output must be what smtpout may send:
 *	"Received:" first, every line ending in CRLF and no bare CR or LF,
 *	no NUL in the header section, a header section of header lines and
 *	their continuations only, holding Date:, Message-ID: and From:.
 *
 * fuzz-sources: pickup/cleanup.c common/util/vstr.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c
 *
 * A broken invariant aborts; nothing is kept between inputs.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "pickup.h"
#include "vstr.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
#define FUZZ_FULLNAME_MAX 300 /* more than cleanup copies, to test its cap */

/* LLVMFuzzerInitialize - a fixed time zone: the Date: header must not vary by host */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "UTC", 1);
    return 0;
}

/* fuzz_header_line - is this a "name:" line by RFC 5322's field-name rule */
static int fuzz_header_line(const char *line, size_t len)
{
    size_t n = 0;

    while (n < len && line[n] > 32 && line[n] < 127 && line[n] != ':')
        n++;
    if (n == 0)
        return 0;
    while (n < len && (line[n] == ' ' || line[n] == '\t'))
        n++;
    return n < len && line[n] == ':';
}

/* fuzz_header_is - is this header line's name the one given, ignoring case */
static int fuzz_header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);

    if (len <= n || strncasecmp(line, name, n) != 0)
        return 0;
    while (n < len && (line[n] == ' ' || line[n] == '\t'))
        n++;
    return n < len && line[n] == ':';
}

/* fuzz_check_output - the invariants of a normalised message */
static void fuzz_check_output(const char *text, size_t len)
{
    int seen_date = 0, seen_id = 0, seen_from = 0;
    size_t pos = 0;

    FUZZ_CHECK(len >= 2 && (strncmp(text, "Received: by ", 13) == 0 ||
                            strncmp(text, "Received: from ", 15) == 0));
    FUZZ_CHECK(text[len - 2] == '\r' && text[len - 1] == '\n');
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r')
            FUZZ_CHECK(i + 1 < len && text[i + 1] == '\n');
        if (text[i] == '\n')
            FUZZ_CHECK(i > 0 && text[i - 1] == '\r');
    }
    /* The header section: up to the first empty line, or all of it. */
    while (pos < len) {
        const char *eol = memmem(text + pos, len - pos, "\r\n", 2);
        size_t line_len = (size_t)(eol - (text + pos));

        FUZZ_CHECK(eol != NULL);
        if (line_len == 0)
            break;
        FUZZ_CHECK(memchr(text + pos, '\0', line_len) == NULL);
        if (text[pos] == ' ' || text[pos] == '\t') {
            FUZZ_CHECK(pos > 0);
        } else {
            FUZZ_CHECK(fuzz_header_line(text + pos, line_len));
            seen_date |= fuzz_header_is(text + pos, line_len, "Date");
            seen_id |= fuzz_header_is(text + pos, line_len, "Message-ID");
            seen_from |= fuzz_header_is(text + pos, line_len, "From");
        }
        pos += line_len + 2;
    }
    FUZZ_CHECK(seen_date && seen_id && seen_from);
}

/* LLVMFuzzerTestOneInput - one submitted message */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char fullname[FUZZ_FULLNAME_MAX + 1];
    size_t name_len = size < FUZZ_FULLNAME_MAX ? size : FUZZ_FULLNAME_MAX;
    CLEANUP_INFO info = {0};
    VSTR *out = vstr_alloc(256);
    VSTR *why = vstr_alloc(64);

    memcpy(fullname, data, name_len);
    fullname[name_len] = '\0';
    info.qid = "4XyZ2m0001abc";
    info.myhostname = "host.example.com";
    info.sender = size % 3 == 0 ? "" : "alice@example.org";
    info.fullname = size % 2 == 0 ? "" : fullname;
    info.now = 1700000000;
    /* Half the inputs as mail of an SMTP client: the other Received: line. */
    info.helo = size % 4 < 2 ? NULL : "client.example";
    info.client_addr = info.helo != NULL ? "192.0.2.1" : NULL;
    /* A quarter of those came over TLS with AUTH. */
    if (size % 8 == 3) {
        info.protocol = "ESMTPSA";
        info.tls = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)";
    }
    if (cleanup_message((const char *)data, size, &info, out, why) < 0) {
        FUZZ_CHECK(vstr_len(why) > 0);
        FUZZ_CHECK(memchr(data, '\0', size) != NULL);
    } else {
        FUZZ_CHECK(vstr_str(out)[vstr_len(out)] == '\0');
        fuzz_check_output(vstr_str(out), vstr_len(out));
    }
    vstr_free(out);
    vstr_free(why);
    return 0;
}
