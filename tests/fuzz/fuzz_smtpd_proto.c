/*
 * fuzz_smtpd_proto - fuzz target for the SMTP server protocol object
 *
 * LLVMFuzzerTestOneInput()
 *	run one session over the input as a client's bytes: the first byte
 *	picks how the rest is cut into reads (all at once, or pieces of 1 to
 *	255 bytes) and what the fake queue answers. The session must write
 *	only whole CRLF-terminated reply lines, each a code of 2xx..5xx
 *	followed by a space or hyphen; every message handed over must have
 *	1 to rcpt_limit recipients, content within the size limit that ends
 *	in CRLF with no bare LF, and a 250 must follow a queued message only.
 *
 * fuzz-sources: common/mail/smtpd_proto.c common/mail/addr.c common/util/vstr.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c
 *
 * A broken invariant aborts (a crash for libFuzzer and for the driver).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "msg.h"
#include "smtpd_proto.h"
#include "vstr.h"

#define FUZZ_SIZE_LIMIT 4096
#define FUZZ_RCPT_LIMIT 5

/* The fake client and queue of one run. */
typedef struct FUZZ_CONN {
    VSTR *out;
    SMTPD_RESULT result;
} FUZZ_CONN;

/* fuzz_write - every write is whole reply lines */
static int fuzz_write(void *ctx, const char *data, size_t len)
{
    FUZZ_CONN *conn = ctx;
    const char *line = data;
    const char *end = data + len;
    const char *crlf;

    FUZZ_CHECK(len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n');
    while (line < end) {
        crlf = memmem(line, (size_t)(end - line), "\r\n", 2);
        FUZZ_CHECK(crlf != NULL && crlf - line >= 3);
        FUZZ_CHECK(line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
                   line[2] >= '0' && line[2] <= '9');
        FUZZ_CHECK(crlf - line == 3 || line[3] == ' ' || line[3] == '-');
        FUZZ_CHECK(memchr(line, '\n', (size_t)(crlf - line)) == NULL);
        line = crlf + 2;
    }
    vstr_append(conn->out, data, len);
    return 0;
}

/* fuzz_message - check what is handed over, answer as chosen */
static SMTPD_RESULT fuzz_message(void *ctx, const SMTPD_MSG *msg, VSTR *text)
{
    FUZZ_CONN *conn = ctx;

    (void)text;
    FUZZ_CHECK(msg->nrcpt >= 1 && msg->nrcpt <= FUZZ_RCPT_LIMIT);
    FUZZ_CHECK(msg->content_len <= FUZZ_SIZE_LIMIT);
    FUZZ_CHECK(msg->content_len == 0 ||
               (msg->content_len >= 2 && msg->content[msg->content_len - 1] == '\n' &&
                msg->content[msg->content_len - 2] == '\r'));
    for (size_t i = 0; i < msg->content_len; i++)
        FUZZ_CHECK(msg->content[i] != '\n' || (i > 0 && msg->content[i - 1] == '\r'));
    for (size_t i = 0; i < msg->nrcpt; i++)
        FUZZ_CHECK(strchr(msg->rcpts[i].addr, '@') != NULL);
    return conn->result;
}

static const SMTPD_OPS fuzz_ops = {fuzz_write, fuzz_message};

static const SMTPD_LIMITS fuzz_limits = {
    "fuzz.test", "fuzz", "origin.test", FUZZ_SIZE_LIMIT, FUZZ_RCPT_LIMIT, 10, 0,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialized;
    FUZZ_CONN conn;
    SMTPD_PROTO *sp;
    size_t step;
    size_t pos = 1;
    int state;

    if (!initialized) {
        /* The session logs a line per connection; keep the fuzzer's output readable. */
        msg_init("fuzz_smtpd_proto", MSG_TO_FILE);
        (void)msg_set_log("relayq", "/dev/null");
        initialized = 1;
    }
    if (size == 0)
        return 0;
    step = data[0] & 0x3f ? data[0] & 0x3f : size;
    conn.out = vstr_alloc(256);
    conn.result = (SMTPD_RESULT)((data[0] >> 6) & 3);
    sp = smtpd_proto_create(&fuzz_limits, &fuzz_ops, &conn);
    state = smtpd_proto_start(sp);
    while (state == SMTPD_MORE && pos < size) {
        size_t take = size - pos < step ? size - pos : step;

        state = smtpd_proto_input(sp, (const char *)data + pos, take);
        pos += take;
    }
    if (state == SMTPD_MORE)
        smtpd_proto_eof(sp);
    smtpd_proto_free(sp);
    vstr_free(conn.out);
    return 0;
}
