/*
 * fuzz_smtpd_proto - fuzz target for the SMTP server protocol object
 *
 * LLVMFuzzerTestOneInput()
 *	run one session over the input as a client's bytes: the first byte
 *	picks how the rest is cut into reads (all at once, or pieces of 1 to
 *	63 bytes) and what the fake queue answers; the second picks the
 *	session's kind (STARTTLS offered, TLS from the start, an AUTH check
 *	that knows user "alice" with password "secret", a client denied
 *	relaying) and whether the queue's verdicts are pending, given after
 *	each read (then which). A
 *	session that answers STARTTLS gets its handshake at once. The
 *	session must write only whole CRLF-terminated reply lines, each a
 *	code of 2xx..5xx followed by a space or hyphen, the last one "220
 *	2.0.0" when it asks for the handshake; every message handed over must
 *	have 1 to rcpt_limit recipients, content within the size limit that
 *	ends in CRLF with no bare LF, and an authenticated user only in TLS
 *	(and one, when relaying is denied); the AUTH check is asked only in
 *	TLS, about a user of at most SMTPD_USER_MAX bytes without control
 *	characters.
 *
 * fuzz-sources: common/mail/smtpd_proto.c common/mail/addr.c common/util/vstr.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c
 * fuzz-libs: -lsodium
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

/* The second byte: the session's kind, and the verdict on a pending message. */
#define FUZZ_TLS_OFFER 0x01
#define FUZZ_TLS_ACTIVE 0x02
#define FUZZ_AUTH 0x04
#define FUZZ_RELAY_DENIED 0x08
#define FUZZ_VERDICT(mode) ((SMTPD_RESULT)(((mode) >> 4) & 3))
#define FUZZ_PENDING 0x40 /* the queue answers SMTPD_PENDING, then FUZZ_VERDICT */

/* The fake client and queue of one run. */
typedef struct FUZZ_CONN {
    VSTR *out;
    SMTPD_RESULT result;
    int tls;          /* the session is in TLS */
    int relay_denied; /* only an authenticated client may send */
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
    FUZZ_CHECK((msg->tls != NULL) == conn->tls);
    FUZZ_CHECK(msg->auth_user == NULL || (conn->tls && strcmp(msg->auth_user, "alice") == 0 &&
                                          (strcmp(msg->auth_method, "PLAIN") == 0 ||
                                           strcmp(msg->auth_method, "LOGIN") == 0)));
    FUZZ_CHECK(!conn->relay_denied || msg->auth_user != NULL);
    return conn->result;
}

/* fuzz_auth - only in TLS, about a user fit to log; alice's password is "secret" */
static SMTPD_AUTH_RESULT fuzz_auth(void *ctx, const char *user, const char *password, size_t len)
{
    FUZZ_CONN *conn = ctx;
    size_t user_len = strlen(user);

    FUZZ_CHECK(conn->tls);
    FUZZ_CHECK(user_len >= 1 && user_len <= SMTPD_USER_MAX);
    for (size_t i = 0; i < user_len; i++)
        FUZZ_CHECK((unsigned char)user[i] >= 0x20 && user[i] != 0x7f);
    FUZZ_CHECK(password[len] == '\0');
    if (strcmp(user, "temp") == 0)
        return SMTPD_AUTH_TEMPFAIL;
    return strcmp(user, "alice") == 0 && len == 6 && memcmp(password, "secret", 6) == 0
               ? SMTPD_AUTH_OK
               : SMTPD_AUTH_FAILED;
}

static const SMTPD_OPS fuzz_ops = {fuzz_write, fuzz_message, NULL};
static const SMTPD_OPS fuzz_auth_ops = {fuzz_write, fuzz_message, fuzz_auth};

static const SMTPD_LIMITS fuzz_limits = {
    "fuzz.test", "fuzz", "origin.test", FUZZ_SIZE_LIMIT, FUZZ_RCPT_LIMIT, 10, 0, 0, 0,
};

/* fuzz_handshake - a session that asked for TLS gets it, after its 220 */
static int fuzz_handshake(SMTPD_PROTO *sp, FUZZ_CONN *conn, int state)
{
    static const char ready[] = "220 2.0.0 Ready to start TLS\r\n";

    if (state != SMTPD_STARTTLS)
        return state;
    FUZZ_CHECK(!conn->tls && vstr_len(conn->out) >= sizeof(ready) - 1 &&
               strcmp(vstr_str(conn->out) + vstr_len(conn->out) - (sizeof(ready) - 1), ready) == 0);
    FUZZ_CHECK(smtpd_proto_input(sp, "NOOP\r\n", 6) == SMTPD_STARTTLS);
    conn->tls = 1;
    state = smtpd_proto_tls_started(sp, "TLSv1.3 fuzz");
    FUZZ_CHECK(state == SMTPD_MORE);
    return state;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialized;
    FUZZ_CONN conn;
    SMTPD_LIMITS limits = fuzz_limits;
    SMTPD_PROTO *sp;
    size_t step;
    size_t pos = 2;
    int mode;
    int state;

    if (!initialized) {
        /* The session logs a line per connection; keep the fuzzer's output readable. */
        msg_init("fuzz_smtpd_proto", MSG_TO_FILE);
        (void)msg_set_log("relayq", "/dev/null");
        initialized = 1;
    }
    if (size < 2)
        return 0;
    step = data[0] & 0x3f ? data[0] & 0x3f : size;
    mode = data[1];
    conn.out = vstr_alloc(256);
    conn.result = mode & FUZZ_PENDING ? SMTPD_PENDING : (SMTPD_RESULT)((data[0] >> 6) & 3);
    conn.tls = (mode & FUZZ_TLS_ACTIVE) != 0;
    conn.relay_denied = (mode & FUZZ_RELAY_DENIED) != 0;
    limits.tls_offer = (mode & FUZZ_TLS_OFFER) != 0;
    limits.tls_active = conn.tls;
    limits.relay_denied = conn.relay_denied;
    sp = smtpd_proto_create(&limits, mode & FUZZ_AUTH ? &fuzz_auth_ops : &fuzz_ops, &conn);
    state = smtpd_proto_start(sp);
    while (state != SMTPD_DONE && pos < size) {
        size_t take = size - pos < step ? size - pos : step;

        state = fuzz_handshake(sp, &conn, smtpd_proto_input(sp, (const char *)data + pos, take));
        pos += take;
        /* A pending verdict comes after each read; it may answer held STARTTLS too. */
        while (state == SMTPD_MORE && smtpd_proto_waiting(sp)) {
            SMTPD_RESULT verdict = FUZZ_VERDICT(mode);

            state = fuzz_handshake(sp, &conn, smtpd_proto_resume(sp, verdict, "fuzz"));
        }
    }
    if (state != SMTPD_DONE)
        smtpd_proto_eof(sp);
    smtpd_proto_free(sp);
    vstr_free(conn.out);
    return 0;
}
