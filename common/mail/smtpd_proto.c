/*
 * smtpd_proto - the server side of an ESMTP session, independent of its I/O
 *
 * smtpd_proto_create()
 *	a session with its limits, its I/O operations and their context.
 *	Nothing is written yet.
 * smtpd_proto_start()
 *	log "connect from CLIENT" and write the 220 greeting. SMTPD_MORE, or
 *	SMTPD_DONE when the client is already gone.
 * smtpd_proto_input()
 *	consume bytes from the client: any number of commands at once
 *	(PIPELINING), or part of one, or message content; write the replies
 *	they call for once the bytes are consumed, and hand each complete
 *	message to ops->message(), whose verdict decides the reply to the
 *	final dot or BDAT LAST (250 only for SMTPD_QUEUED). SMTPD_MORE while
 *	the session goes on, SMTPD_STARTTLS once STARTTLS is answered 220
 *	(see below), SMTPD_DONE when it is over (QUIT, too many errors, or
 *	a write that failed); later input is ignored.
 * smtpd_proto_waiting(), smtpd_proto_resume()
 *	a message() callback may answer SMTPD_PENDING: the verdict comes
 *	later (a server that answers 250 only after the commit that holds
 *	the message, shared by many sessions). Until smtpd_proto_resume()
 *	gives it, the session answers nothing and keeps what input comes
 *	(a pipelining client's next commands), which the caller bounds by
 *	not reading while smtpd_proto_waiting(); resume writes the reply
 *	to the final dot and reads the kept input as smtpd_proto_input()
 *	would, with the same result. A session that ended meanwhile (EOF,
 *	timeout) ignores the verdict.
 * smtpd_proto_tls_started()
 *	after smtpd_proto_input() (or smtpd_proto_resume()) returned
 *	SMTPD_STARTTLS, the caller ran the TLS handshake: the session forgets
 *	all it learned from the client (HELO/EHLO name, transaction,
 *	authentication), as RFC 3207 section 4.2 says, keeps the TLS
 *	description for the message's record and waits for a new EHLO.
 *	SMTPD_MORE, or SMTPD_DONE when the session is already over. Called
 *	in any other state, a caller's bug: panic.
 * smtpd_proto_eof(), smtpd_proto_timeout()
 *	the client closed its side, or sent nothing for too long (the caller
 *	keeps the clock): log how the session ended; a message in progress
 *	is dropped, never handed over. A timeout says 421 first, except
 *	while the TLS handshake runs (the socket is not plaintext then).
 * smtpd_proto_free()
 *	release the session; logs the "disconnect from" summary once.
 * smtpd_proto_orcpt_valid()
 *	whether a decoded DSN ORCPT "TYPE;ADDRESS" is one the queue keeps and
 *	smtpout sends: an atom of at most SMTPD_ORCPT_TYPE_MAX letters, digits
 *	and "-", and 1 to ADDR_MAX_PATH bytes without control characters or
 *	angle brackets. Maildrop files are checked with it too.
 * smtpd_proto_notify()
 *	check a DSN NOTIFY value ("NEVER", or SUCCESS, DELAY, FAILURE in any
 *	order, each once, any case) and write it in lower case to `out`;
 *	-1 when it is none of those. The sendmail command's -N uses it too.
 *
 * The protocol is RFC 5321 with the extensions a local submission needs:
 * PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES (every reply carries an
 * X.Y.Z), DSN (RET, ENVID, NOTIFY, ORCPT), SMTPUTF8 and CHUNKING, and,
 * when the caller provides them, STARTTLS and AUTH. Replies follow
 * Postfix's smtpd wording, so logs and client errors look familiar.
 *
 * STARTTLS (RFC 3207) is offered in EHLO when limits.tls_offer is set and
 * the session is not in TLS yet (limits.tls_active: TLS from the start).
 * Not offered: 502 5.5.1; in TLS already: 554 5.5.1; with an argument:
 * 501 5.5.4; inside a transaction: 503 5.5.1. Accepted, it is answered
 * "220 2.0.0 Ready to start TLS" and smtpd_proto_input() returns
 * SMTPD_STARTTLS once that reply is written. Every byte that followed the
 * STARTTLS line in the same input (or in the input held during a pending
 * verdict) is discarded, with a log line (a sign of command injection);
 * input given before smtpd_proto_tls_started() is ignored, and
 * smtpd_proto_input() returns SMTPD_STARTTLS again. So plaintext a
 * client or an attacker pipelined behind STARTTLS never becomes a
 * command of the TLS session. The caller must write the 220 completely,
 * drop what it read past it, run the handshake, then call
 * smtpd_proto_tls_started(); when the handshake fails, it logs why and
 * calls smtpd_proto_eof().
 *
 * AUTH (RFC 4954), mechanisms PLAIN (RFC 4616) and LOGIN, is offered in
 * EHLO only when ops->auth is set and the session is in TLS; passwords
 * never travel in plaintext. Refusals: AUTH not enabled (no ops->auth,
 * or neither TLS nor STARTTLS): 503 5.5.1; before HELO/EHLO: 503 5.5.1;
 * TLS offered but not started: 538 5.7.11; authenticated already or in a
 * transaction: 503 5.5.1; bad syntax: 501 5.5.4; another mechanism: 504
 * 5.5.4. The initial response may come on the AUTH line ("=" for an
 * empty one), otherwise each step is a 334 challenge; a response of "*"
 * aborts (501 5.7.0), one that is not base64 is 501 5.5.2, one longer
 * than SMTPD_LINE_MAX is 500 5.5.6. A PLAIN authorization identity other
 * than the user, a user over SMTPD_USER_MAX bytes or with control
 * characters, and a password ops->auth refuses are all 535 5.7.8 (an
 * error toward error_limit); ops->auth's SMTPD_AUTH_TEMPFAIL is 454
 * 4.7.0; success is 235 2.7.0. Neither the password nor a response line
 * is ever logged; the buffers that held them (the line buffer, sized once
 * so it never moves, and the decoded response) are wiped after use. Once
 * authenticated, a session may relay (relay_denied no longer applies) and
 * each message carries the user and mechanism. MAIL FROM's AUTH=
 * parameter (RFC 4954 section 5) is accepted, checked (xtext or "<>")
 * and ignored when AUTH is enabled; otherwise it is an unknown option.
 *
 * CHUNKING (RFC 3030): "BDAT size [LAST]" is followed by exactly size
 * octets of raw content (no dot-stuffing), split in any way across calls
 * and followed by more commands. Each chunk is answered once read: "250
 * 2.0.0 Ok: N bytes", and BDAT LAST hands the message over as the final
 * dot does (the same verdicts, SMTPD_PENDING and held input included). A
 * bare LF in content becomes CRLF across chunk boundaries, and content
 * that does not end in a line end gets CRLF, so chunks smuggle no end of
 * data either; a CR not before LF is kept, as in DATA. The size limit
 * counts the whole message: past it, the chunks are still read but
 * discarded, each is answered 552 5.3.4 up to and including LAST, and a
 * new transaction may start after that (or after RSET). BDAT without a
 * recipient is read and answered 503 5.5.1; RCPT or DATA after a BDAT of
 * the transaction is 503 5.5.1; a size followed by anything but LAST is
 * read and answered 501 5.5.4. A size that is no number or exceeds
 * SMTPD_CONTENT_MAX leaves no way to find the next command: 501 5.5.4,
 * then 421 4.5.0, and the session ends.
 *
 * Untrusted input and its bounds: a command line is at most SMTPD_LINE_MAX
 * bytes (a longer one is read to its end, dropped and answered 500); a
 * content line may be of any length but is held SMTPD_LINE_MAX bytes at
 * a time; the content is at most size_limit (and SMTPD_CONTENT_MAX) bytes,
 * a larger message is read to its end and answered 552; a BDAT chunk is
 * consumed as it comes, never held whole; a transaction
 * has at most rcpt_limit recipients (452 4.5.3 after); after error_limit
 * replies of 4xx/5xx the session ends with 421. Control characters and
 * bytes over 127 are refused in commands, except UTF-8 addresses in a
 * transaction that declared SMTPUTF8. A line may end in a bare LF as well
 * as CRLF (scripts talking to "sendmail -bs" write either); content is
 * handed over with CRLF line ends whatever the client used, so no end of
 * data can be smuggled past the queue.
 *
 * Ownership: the session owns its copies of the limits' strings and every
 * string of a transaction; the SMTPD_MSG given to ops->message() and its
 * strings live only during that call, even when its verdict is pending.
 * All state is in the SMTPD_PROTO; several sessions may run in one process.
 *
 * Failures: nothing here is fatal; allocation failure is (mymalloc). A
 * call out of order (smtpd_proto_tls_started() without STARTTLS, a pending
 * verdict given to smtpd_proto_resume()) panics.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "addr.h"
#include "msg.h"
#include "mymalloc.h"
#include "smtpd_proto.h"

/* Where the session is. */
typedef enum {
    SMTPD_ST_CMD,  /* reading commands */
    SMTPD_ST_DATA, /* reading message content after 354 */
    SMTPD_ST_BDAT, /* reading the octets of a BDAT chunk */
    SMTPD_ST_AUTH, /* reading a response to a 334 challenge */
    SMTPD_ST_WAIT, /* a message handed over: waiting for smtpd_proto_resume() */
    SMTPD_ST_TLS,  /* STARTTLS answered: waiting for smtpd_proto_tls_started() */
    SMTPD_ST_DONE  /* over */
} SMTPD_STATE;

/* The commands, for the "disconnect from" counters. */
enum {
    SMTPD_C_EHLO,
    SMTPD_C_HELO,
    SMTPD_C_MAIL,
    SMTPD_C_RCPT,
    SMTPD_C_DATA,
    SMTPD_C_BDAT,
    SMTPD_C_RSET,
    SMTPD_C_NOOP,
    SMTPD_C_VRFY,
    SMTPD_C_HELP,
    SMTPD_C_QUIT,
    SMTPD_C_STARTTLS,
    SMTPD_C_AUTH,
    SMTPD_C_UNKNOWN,
    SMTPD_C_COUNT
};

/* Where an AUTH exchange is: which response the 334 asked for. */
typedef enum {
    SMTPD_AUTH_PLAIN,      /* PLAIN: authzid NUL authcid NUL password */
    SMTPD_AUTH_LOGIN_USER, /* LOGIN: the user name */
    SMTPD_AUTH_LOGIN_PASS  /* LOGIN: the password */
} SMTPD_AUTH_STEP;

struct SMTPD_PROTO {
    const SMTPD_OPS *ops;
    void *ctx;
    char *hostname;
    char *client;
    char *qualify; /* or NULL */
    long long size_limit;
    size_t rcpt_limit;
    int error_limit;
    int relay_denied; /* RCPT is refused, unless authenticated: a client that may not submit */
    int tls_offer;    /* STARTTLS may be offered */

    SMTPD_STATE state;
    VSTR *line;       /* the input line being assembled */
    int overflow;     /* dropping the rest of an overlong command line */
    VSTR *out;        /* replies not yet written */
    int errors;       /* 4xx/5xx replies so far */
    const char *last; /* the last command, for "lost connection after X" */
    int logged_end;   /* the "disconnect from" line is written */
    int ok[SMTPD_C_COUNT];
    int total[SMTPD_C_COUNT];
    char *helo;

    /* TLS and authentication: what the client proved, kept across transactions. */
    int tls;         /* the session is in TLS */
    char *tls_desc;  /* the description given to smtpd_proto_tls_started(), or NULL */
    char *auth_user; /* authenticated as, or NULL */
    const char *auth_method;
    SMTPD_AUTH_STEP auth_step; /* in SMTPD_ST_AUTH */
    char *login_user;          /* LOGIN: the user name given before the password, or NULL */
    size_t login_len;          /* its length: it may hold a NUL, refused at the check */

    /* The transaction. */
    int in_mail;
    char *sender;
    char *ret;
    char *envid;
    int smtputf8;
    SMTPD_RCPT *rcpts;
    size_t nrcpt;
    size_t rcpt_cap;
    VSTR *content;
    VSTR *held;               /* input that came while waiting for a verdict */
    int data_bol;             /* the next content byte starts a line */
    int data_toobig;          /* the content passed the size limit: dropped, 552 at the end */
    int in_bdat;              /* the content comes in BDAT chunks */
    long long bdat_size;      /* the current chunk: its size, */
    long long bdat_left;      /* its octets still to read, */
    int bdat_last;            /* whether it is the last, */
    const char *bdat_refusal; /* and the reply that refuses it once read, or NULL */
    int bdat_cr;              /* the last content octet was a CR */
};

/* The command words, in the order above; "disconnect from" logs them in lower case. */
static const char *const smtpd_verbs[SMTPD_C_COUNT] = {
    "EHLO", "HELO", "MAIL", "RCPT", "DATA",     "BDAT", "RSET",
    "NOOP", "VRFY", "HELP", "QUIT", "STARTTLS", "AUTH", "UNKNOWN",
};

/* smtpd_reply - queue one reply line; a 4xx or 5xx counts as an error */
static void smtpd_reply(SMTPD_PROTO *sp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void smtpd_reply(SMTPD_PROTO *sp, const char *fmt, ...)
{
    size_t start = vstr_len(sp->out);
    va_list ap;

    va_start(ap, fmt);
    vstr_vsprintf_append(sp->out, fmt, ap);
    va_end(ap);
    vstr_strcat(sp->out, "\r\n");
    if (vstr_str(sp->out)[start] == '4' || vstr_str(sp->out)[start] == '5')
        sp->errors++;
}

/* smtpd_lower - a command word in lower case, in a buffer of 16 bytes */
static const char *smtpd_lower(char *buf, const char *verb)
{
    size_t i;

    for (i = 0; verb[i] && i < 15; i++)
        buf[i] = (char)(verb[i] | 0x20);
    buf[i] = '\0';
    return buf;
}

/* smtpd_log_end - the "disconnect from" summary, once */
static void smtpd_log_end(SMTPD_PROTO *sp)
{
    char name[16];
    VSTR *line;
    int commands = 0;
    int ok = 0;

    if (sp->logged_end)
        return;
    sp->logged_end = 1;
    line = vstr_alloc(128);
    vstr_sprintf(line, "disconnect from %s", sp->client);
    for (int i = 0; i < SMTPD_C_COUNT; i++) {
        if (sp->total[i] == 0)
            continue;
        commands += sp->total[i];
        ok += sp->ok[i];
        if (sp->ok[i] == sp->total[i])
            vstr_sprintf_append(line, " %s=%d", smtpd_lower(name, smtpd_verbs[i]), sp->total[i]);
        else
            vstr_sprintf_append(line, " %s=%d/%d", smtpd_lower(name, smtpd_verbs[i]), sp->ok[i],
                                sp->total[i]);
    }
    if (ok == commands)
        vstr_sprintf_append(line, " commands=%d", commands);
    else
        vstr_sprintf_append(line, " commands=%d/%d", ok, commands);
    msg_info("%s", vstr_str(line));
    vstr_free(line);
}

/* smtpd_wipe_line - forget the line read: an AUTH line holds a password */
static void smtpd_wipe_line(SMTPD_PROTO *sp)
{
    sodium_memzero(vstr_str(sp->line), vstr_len(sp->line));
    vstr_reset(sp->line);
}

/* smtpd_finish - the session is over */
static void smtpd_finish(SMTPD_PROTO *sp)
{
    sp->state = SMTPD_ST_DONE;
    smtpd_wipe_line(sp);
    vstr_reset(sp->content);
}

/* smtpd_status - what smtpd_proto_input() and its kin return */
static int smtpd_status(const SMTPD_PROTO *sp)
{
    if (sp->state == SMTPD_ST_DONE)
        return SMTPD_DONE;
    return sp->state == SMTPD_ST_TLS ? SMTPD_STARTTLS : SMTPD_MORE;
}

/* smtpd_auth_enabled - whether AUTH is spoken at all: a check and a way to TLS */
static int smtpd_auth_enabled(const SMTPD_PROTO *sp)
{
    return sp->ops->auth != NULL && (sp->tls || sp->tls_offer);
}

/* smtpd_auth_offered - whether EHLO offers AUTH: never outside TLS */
static int smtpd_auth_offered(const SMTPD_PROTO *sp)
{
    return sp->ops->auth != NULL && sp->tls;
}

/* smtpd_flush - write the queued replies; a failed write ends the session */
static void smtpd_flush(SMTPD_PROTO *sp)
{
    if (vstr_len(sp->out) == 0)
        return;
    if (sp->ops->write(sp->ctx, vstr_str(sp->out), vstr_len(sp->out)) < 0) {
        if (sp->state != SMTPD_ST_DONE)
            msg_info("lost connection after %s from %s", sp->last, sp->client);
        smtpd_finish(sp);
    }
    vstr_reset(sp->out);
}

/* smtpd_reset - forget the transaction */
static void smtpd_reset(SMTPD_PROTO *sp)
{
    for (size_t i = 0; i < sp->nrcpt; i++) {
        myfree(sp->rcpts[i].addr);
        myfree(sp->rcpts[i].notify);
        myfree(sp->rcpts[i].orcpt);
    }
    sp->nrcpt = 0;
    myfree(sp->sender);
    myfree(sp->ret);
    myfree(sp->envid);
    sp->sender = sp->ret = sp->envid = NULL;
    sp->in_mail = 0;
    sp->smtputf8 = 0;
    vstr_reset(sp->content);
    sp->data_toobig = 0;
    sp->in_bdat = 0;
    sp->bdat_cr = 0;
}

/* smtpd_auth_forget - the end of an AUTH exchange, whatever its outcome */
static void smtpd_auth_forget(SMTPD_PROTO *sp)
{
    if (sp->login_user != NULL) {
        sodium_memzero(sp->login_user, sp->login_len);
        myfree(sp->login_user);
        sp->login_user = NULL;
    }
    sp->login_len = 0;
}

/* smtpd_proto_create - a session, nothing written yet */
SMTPD_PROTO *smtpd_proto_create(const SMTPD_LIMITS *limits, const SMTPD_OPS *ops, void *ctx)
{
    SMTPD_PROTO *sp = mymalloc(sizeof(*sp));

    memset(sp, 0, sizeof(*sp));
    sp->ops = ops;
    sp->ctx = ctx;
    sp->hostname = mystrdup(limits->hostname);
    sp->client = mystrdup(limits->client);
    sp->qualify = limits->qualify ? mystrdup(limits->qualify) : NULL;
    sp->size_limit = limits->size_limit > 0 && limits->size_limit < SMTPD_CONTENT_MAX
                         ? limits->size_limit
                         : SMTPD_CONTENT_MAX;
    sp->rcpt_limit = limits->rcpt_limit;
    sp->error_limit = limits->error_limit;
    sp->relay_denied = limits->relay_denied;
    sp->tls_offer = limits->tls_offer;
    sp->tls = limits->tls_active;
    sp->state = SMTPD_ST_CMD;
    /* Never reallocated, so no copy of an AUTH line is left behind in freed memory. */
    sp->line = vstr_alloc(SMTPD_LINE_MAX + 1);
    sp->out = vstr_alloc(256);
    sp->content = vstr_alloc(4096);
    sp->held = vstr_alloc(256);
    sp->last = "CONNECT";
    sp->helo = mystrdup("");
    return sp;
}

/* smtpd_proto_start - log the connection and greet */
int smtpd_proto_start(SMTPD_PROTO *sp)
{
    msg_info("connect from %s", sp->client);
    smtpd_reply(sp, "220 %s ESMTP relayq", sp->hostname);
    smtpd_flush(sp);
    return sp->state == SMTPD_ST_DONE ? SMTPD_DONE : SMTPD_MORE;
}

/* smtpd_proto_notify - a DSN NOTIFY value, checked and in lower case */
int smtpd_proto_notify(const char *text, size_t len, VSTR *out)
{
    static const char *const words[] = {"never", "success", "delay", "failure"};
    const size_t nwords = sizeof(words) / sizeof(words[0]);
    const char *end = text + len;
    unsigned seen = 0;
    size_t word;
    size_t i;

    vstr_reset(out);
    for (;;) {
        const char *comma = memchr(text, ',', (size_t)(end - text));

        word = comma ? (size_t)(comma - text) : (size_t)(end - text);
        for (i = 0; i < nwords; i++)
            if (word == strlen(words[i]) && strncasecmp(text, words[i], word) == 0)
                break;
        /* RFC 3461 section 4.1: NEVER stands alone; no keyword twice. */
        if (i == nwords || (seen & (1u << i)) || (seen != 0 && (i == 0 || (seen & 1u))))
            return -1;
        seen |= 1u << i;
        if (vstr_len(out))
            vstr_addch(out, ',');
        vstr_strcat(out, words[i]);
        if (comma == NULL)
            return 0;
        text = comma + 1;
    }
}

/* smtpd_xtext - decode RFC 3461 xtext; -1 when malformed */
static int smtpd_xtext(const char *text, size_t len, VSTR *out)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *hi;
    const char *lo;

    vstr_reset(out);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];

        if (ch == '+') {
            if (i + 2 >= len || text[i + 1] == '\0' || text[i + 2] == '\0' ||
                (hi = strchr(hex, text[i + 1])) == NULL || (lo = strchr(hex, text[i + 2])) == NULL)
                return -1;
            vstr_addch(out, (int)((hi - hex) * 16 + (lo - hex)));
            i += 2;
        } else if (ch < 0x21 || ch > 0x7e || ch == '=') {
            return -1;
        } else {
            vstr_addch(out, ch);
        }
    }
    return 0;
}

/* smtpd_qualify - a bare local part gets "@qualify"; -1 when that is not allowed */
static int smtpd_qualify(SMTPD_PROTO *sp, VSTR *addr)
{
    if (!addr_is_bare(vstr_str(addr)))
        return 0;
    if (sp->qualify == NULL)
        return -1;
    vstr_addch(addr, '@');
    vstr_strcat(addr, sp->qualify);
    return 0;
}

/*
 * smtpd_path - "FROM:<addr> params" or "TO:<addr> params"
 *
 * The keyword is matched in any case, blanks may follow the colon, and
 * the angle brackets may be left out (as Postfix allows); a source route
 * ("@a,@b:user@domain") is dropped. Sets the address and where the
 * parameters start. -1 for bad syntax.
 */
static int smtpd_path(const char *arg, const char *keyword, VSTR *addr, const char **params)
{
    const char *cp = arg;
    const char *start;
    int quoted = 0;

    if (strncasecmp(cp, keyword, strlen(keyword)) != 0)
        return -1;
    cp += strlen(keyword);
    while (*cp == ' ')
        cp++;
    vstr_reset(addr);
    if (*cp == '<') {
        start = ++cp;
        for (; *cp && (quoted || *cp != '>'); cp++) {
            if (*cp == '\\' && quoted && cp[1])
                cp++;
            else if (*cp == '"')
                quoted = !quoted;
        }
        if (*cp != '>')
            return -1;
        vstr_append(addr, start, (size_t)(cp - start));
        cp++;
    } else {
        start = cp;
        cp += strcspn(cp, " ");
        if (cp == start)
            return -1;
        vstr_append(addr, start, (size_t)(cp - start));
    }
    if (*cp != '\0' && *cp != ' ')
        return -1;
    if (vstr_str(addr)[0] == '@') {
        const char *colon = strchr(vstr_str(addr), ':');

        if (colon == NULL)
            return -1;
        vstr_consume(addr, (size_t)(colon + 1 - vstr_str(addr)));
    }
    *params = cp;
    return 0;
}

/* smtpd_next_param - the next "KEYWORD[=VALUE]": 1, or 0 at the end */
static int smtpd_next_param(const char **cp, const char **key, size_t *key_len, const char **value,
                            size_t *value_len)
{
    const char *p = *cp;
    size_t len;
    const char *eq;

    while (*p == ' ')
        p++;
    if (*p == '\0')
        return 0;
    len = strcspn(p, " ");
    *key = p;
    if ((eq = memchr(p, '=', len)) != NULL) {
        *key_len = (size_t)(eq - p);
        *value = eq + 1;
        *value_len = len - *key_len - 1;
    } else {
        *key_len = len;
        *value = "";
        *value_len = 0;
    }
    *cp = p + len;
    return 1;
}

/* smtpd_keyword - whether a parameter is KEYWORD (any case) */
static int smtpd_keyword(const char *key, size_t len, const char *keyword)
{
    return len == strlen(keyword) && strncasecmp(key, keyword, len) == 0;
}

/* smtpd_has_8bit - whether text has a byte over 127 */
static int smtpd_has_8bit(const char *text)
{
    for (; *text; text++)
        if ((unsigned char)*text > 0x7f)
            return 1;
    return 0;
}

/* smtpd_graphic - whether every byte is printable ASCII other than a blank */
static int smtpd_graphic(const VSTR *text)
{
    for (size_t i = 0; i < vstr_len(text); i++)
        if ((unsigned char)vstr_str(text)[i] < 0x21 || (unsigned char)vstr_str(text)[i] > 0x7e)
            return 0;
    return 1;
}

/* smtpd_cmd_helo - EHLO and HELO: a new start */
static int smtpd_cmd_helo(SMTPD_PROTO *sp, const char *arg, int esmtp)
{
    if (*arg == '\0' || strchr(arg, ' ') != NULL) {
        smtpd_reply(sp, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return -1;
    }
    smtpd_reset(sp);
    myfree(sp->helo);
    sp->helo = mystrdup(arg);
    if (!esmtp) {
        smtpd_reply(sp, "250 %s", sp->hostname);
        return 0;
    }
    vstr_sprintf_append(sp->out, "250-%s\r\n250-PIPELINING\r\n", sp->hostname);
    vstr_sprintf_append(sp->out, "250-SIZE %lld\r\n", sp->size_limit);
    if (sp->tls_offer && !sp->tls)
        vstr_strcat(sp->out, "250-STARTTLS\r\n");
    if (smtpd_auth_offered(sp))
        vstr_strcat(sp->out, "250-AUTH PLAIN LOGIN\r\n");
    vstr_strcat(sp->out, "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-SMTPUTF8\r\n");
    smtpd_reply(sp, "250 CHUNKING");
    return 0;
}

/* smtpd_mail_params - SIZE, BODY, RET, ENVID, SMTPUTF8, AUTH of MAIL FROM; -1 after a reply */
static int smtpd_mail_params(SMTPD_PROTO *sp, const char *params, VSTR *scratch)
{
    const char *key;
    const char *value;
    size_t key_len;
    size_t value_len;
    unsigned long long size;
    char *end;
    int seen_auth = 0;

    while (smtpd_next_param(&params, &key, &key_len, &value, &value_len)) {
        if (smtpd_keyword(key, key_len, "SIZE")) {
            size = strtoull(value, &end, 10);
            if (value_len == 0 || value_len > 20 || end != value + value_len || *value < '0' ||
                *value > '9') {
                smtpd_reply(sp, "501 5.5.4 Bad message size syntax");
                return -1;
            }
            if (size > (unsigned long long)sp->size_limit) {
                smtpd_reply(sp, "552 5.3.4 Message size exceeds fixed limit");
                return -1;
            }
        } else if (smtpd_keyword(key, key_len, "BODY")) {
            if (!smtpd_keyword(value, value_len, "7BIT") &&
                !smtpd_keyword(value, value_len, "8BITMIME")) {
                smtpd_reply(sp, "501 5.5.4 Unsupported BODY parameter");
                return -1;
            }
        } else if (smtpd_keyword(key, key_len, "RET") && sp->ret == NULL) {
            if (!smtpd_keyword(value, value_len, "FULL") &&
                !smtpd_keyword(value, value_len, "HDRS")) {
                smtpd_reply(sp, "501 5.5.4 Bad RET parameter syntax");
                return -1;
            }
            sp->ret = mystrdup(smtpd_keyword(value, value_len, "FULL") ? "full" : "hdrs");
        } else if (smtpd_keyword(key, key_len, "ENVID") && sp->envid == NULL) {
            if (smtpd_xtext(value, value_len, scratch) < 0 || vstr_len(scratch) == 0 ||
                vstr_len(scratch) > SMTPD_ENVID_MAX || !smtpd_graphic(scratch)) {
                smtpd_reply(sp, "501 5.5.4 Bad ENVID parameter syntax");
                return -1;
            }
            sp->envid = mystrdup(vstr_str(scratch));
        } else if (smtpd_keyword(key, key_len, "SMTPUTF8") && value_len == 0 && !sp->smtputf8) {
            sp->smtputf8 = 1;
        } else if (smtpd_keyword(key, key_len, "AUTH") && smtpd_auth_enabled(sp) && !seen_auth) {
            /* RFC 4954 section 5: checked, then ignored; the session's own AUTH is what counts. */
            seen_auth = 1;
            if (!smtpd_keyword(value, value_len, "<>") &&
                (smtpd_xtext(value, value_len, scratch) < 0 || vstr_len(scratch) == 0)) {
                smtpd_reply(sp, "501 5.5.4 Bad AUTH parameter syntax");
                return -1;
            }
        } else {
            smtpd_reply(sp, "555 5.5.4 Unsupported option: %.*s",
                        (int)(key_len > 40 ? 40 : key_len), key);
            return -1;
        }
    }
    return 0;
}

/* smtpd_check_addr - qualify and validate an address; -1 with a reason */
static int smtpd_check_addr(SMTPD_PROTO *sp, VSTR *addr, int allow_empty, VSTR *why)
{
    if (vstr_len(addr) == 0) {
        if (allow_empty)
            return 0;
        vstr_strcpy(why, "empty address");
        return -1;
    }
    if (smtpd_qualify(sp, addr) < 0) {
        vstr_strcpy(why, "domain name required");
        return -1;
    }
    if (!sp->smtputf8 && smtpd_has_8bit(vstr_str(addr))) {
        vstr_strcpy(why, "non-ASCII address without SMTPUTF8");
        return -1;
    }
    return addr_check(vstr_str(addr), vstr_len(addr), ADDR_ALLOW_UTF8, why);
}

/* smtpd_cmd_mail - MAIL FROM:<sender> [params] */
static int smtpd_cmd_mail(SMTPD_PROTO *sp, const char *arg)
{
    VSTR *addr;
    VSTR *why;
    const char *params;
    int ret = -1;

    if (sp->in_mail) {
        smtpd_reply(sp, "503 5.5.1 Error: nested MAIL command");
        return -1;
    }
    addr = vstr_alloc(64);
    why = vstr_alloc(64);
    if (smtpd_path(arg, "FROM:", addr, &params) < 0) {
        smtpd_reply(sp, "501 5.5.4 Syntax: MAIL FROM:<address>");
    } else if (smtpd_mail_params(sp, params, why) < 0) {
        /* replied */
    } else if (smtpd_check_addr(sp, addr, 1, why) < 0) {
        smtpd_reply(sp, "501 5.1.7 Bad sender address syntax: %s", vstr_str(why));
    } else {
        sp->sender = mystrdup(vstr_str(addr));
        sp->in_mail = 1;
        smtpd_reply(sp, "250 2.1.0 Ok");
        ret = 0;
    }
    if (ret < 0)
        smtpd_reset(sp);
    vstr_free(addr);
    vstr_free(why);
    return ret;
}

/* smtpd_proto_orcpt_valid - "TYPE;ADDRESS" as the queue and smtpout take it */
int smtpd_proto_orcpt_valid(const char *orcpt)
{
    size_t type_len = strcspn(orcpt, ";");
    const char *addr = orcpt + type_len + 1;
    size_t addr_len;

    if (type_len == 0 || type_len > SMTPD_ORCPT_TYPE_MAX || orcpt[type_len] != ';')
        return 0;
    for (size_t i = 0; i < type_len; i++)
        if (!((orcpt[i] >= 'a' && orcpt[i] <= 'z') || (orcpt[i] >= 'A' && orcpt[i] <= 'Z') ||
              (orcpt[i] >= '0' && orcpt[i] <= '9') || orcpt[i] == '-'))
            return 0;
    addr_len = strlen(addr);
    if (addr_len == 0 || addr_len > ADDR_MAX_PATH)
        return 0;
    for (size_t i = 0; i < addr_len; i++) {
        unsigned char ch = (unsigned char)addr[i];

        if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>')
            return 0;
    }
    return 1;
}

/* smtpd_orcpt - "TYPE;xtext" to "TYPE;ADDRESS"; -1 when malformed */
static int smtpd_orcpt(const char *value, size_t len, VSTR *out, VSTR *scratch)
{
    const char *semi = memchr(value, ';', len);

    if (semi == NULL || smtpd_xtext(semi + 1, len - (size_t)(semi + 1 - value), scratch) < 0)
        return -1;
    vstr_reset(out);
    vstr_append(out, value, (size_t)(semi + 1 - value));
    vstr_append(out, vstr_str(scratch), vstr_len(scratch));
    /* A NUL from "+00" would cut the address short. */
    if (strlen(vstr_str(out)) != vstr_len(out) || !smtpd_proto_orcpt_valid(vstr_str(out)))
        return -1;
    return 0;
}

/* smtpd_rcpt_params - NOTIFY and ORCPT of RCPT TO; -1 after a reply */
static int smtpd_rcpt_params(SMTPD_PROTO *sp, const char *params, VSTR *notify, VSTR *orcpt)
{
    VSTR *scratch = vstr_alloc(64);
    const char *key;
    const char *value;
    size_t key_len;
    size_t value_len;
    int seen_notify = 0;
    int seen_orcpt = 0;
    int ret = 0;

    while (ret == 0 && smtpd_next_param(&params, &key, &key_len, &value, &value_len)) {
        if (smtpd_keyword(key, key_len, "NOTIFY") && !seen_notify) {
            seen_notify = 1;
            if (smtpd_proto_notify(value, value_len, notify) < 0) {
                smtpd_reply(sp, "501 5.5.4 Error: Bad NOTIFY parameter syntax");
                ret = -1;
            }
        } else if (smtpd_keyword(key, key_len, "ORCPT") && !seen_orcpt) {
            seen_orcpt = 1;
            if (smtpd_orcpt(value, value_len, orcpt, scratch) < 0) {
                smtpd_reply(sp, "501 5.5.4 Error: Bad ORCPT parameter syntax");
                ret = -1;
            }
        } else {
            smtpd_reply(sp, "555 5.5.4 Unsupported option: %.*s",
                        (int)(key_len > 40 ? 40 : key_len), key);
            ret = -1;
        }
    }
    vstr_free(scratch);
    return ret;
}

/* smtpd_cmd_rcpt - RCPT TO:<recipient> [params] */
static int smtpd_cmd_rcpt(SMTPD_PROTO *sp, const char *arg)
{
    VSTR *addr;
    VSTR *why;
    VSTR *notify;
    VSTR *orcpt;
    const char *params;
    SMTPD_RCPT *rcpt;
    int ret = -1;

    if (!sp->in_mail) {
        smtpd_reply(sp, "503 5.5.1 Error: need MAIL command");
        return -1;
    }
    if (sp->in_bdat) {
        smtpd_reply(sp, "503 5.5.1 Error: RCPT after BDAT");
        return -1;
    }
    addr = vstr_alloc(64);
    why = vstr_alloc(64);
    notify = vstr_alloc(32);
    orcpt = vstr_alloc(64);
    if (smtpd_path(arg, "TO:", addr, &params) < 0) {
        smtpd_reply(sp, "501 5.5.4 Syntax: RCPT TO:<address>");
    } else if (smtpd_rcpt_params(sp, params, notify, orcpt) < 0) {
        /* replied */
    } else if (smtpd_check_addr(sp, addr, 0, why) < 0) {
        smtpd_reply(sp, "501 5.1.3 Bad recipient address syntax: %s", vstr_str(why));
    } else if (sp->relay_denied && sp->auth_user == NULL) {
        smtpd_reply(sp, "554 5.7.1 <%s>: Relay access denied", vstr_str(addr));
    } else if (sp->nrcpt >= sp->rcpt_limit) {
        smtpd_reply(sp, "452 4.5.3 Error: too many recipients");
    } else {
        ret = 0;
        /* A repeated recipient is accepted once, as the queue would keep it once. */
        for (size_t i = 0; i < sp->nrcpt; i++)
            if (strcmp(sp->rcpts[i].addr, vstr_str(addr)) == 0)
                ret = 1;
        if (ret == 0) {
            if (sp->nrcpt == sp->rcpt_cap) {
                sp->rcpt_cap = sp->rcpt_cap ? sp->rcpt_cap * 2 : 8;
                sp->rcpts = myrealloc(sp->rcpts, sizeof(*sp->rcpts) * sp->rcpt_cap);
            }
            rcpt = sp->rcpts + sp->nrcpt++;
            rcpt->addr = mystrdup(vstr_str(addr));
            rcpt->notify = mystrdup(vstr_str(notify));
            rcpt->orcpt = mystrdup(vstr_str(orcpt));
        }
        smtpd_reply(sp, "250 2.1.5 Ok");
        ret = 0;
    }
    vstr_free(addr);
    vstr_free(why);
    vstr_free(notify);
    vstr_free(orcpt);
    return ret;
}

/* smtpd_cmd_data - DATA: content follows */
static int smtpd_cmd_data(SMTPD_PROTO *sp, const char *arg)
{
    if (*arg != '\0') {
        smtpd_reply(sp, "501 5.5.4 Syntax: DATA");
        return -1;
    }
    if (!sp->in_mail || sp->nrcpt == 0) {
        smtpd_reply(sp, "503 5.5.1 Error: need RCPT command");
        return -1;
    }
    if (sp->in_bdat) {
        smtpd_reply(sp, "503 5.5.1 Error: DATA after BDAT");
        return -1;
    }
    smtpd_reply(sp, "354 End data with <CR><LF>.<CR><LF>");
    sp->state = SMTPD_ST_DATA;
    sp->data_bol = 1;
    vstr_reset(sp->content);
    return 0;
}

/* smtpd_answer - the reply to a message's final dot, then a new transaction */
static void smtpd_answer(SMTPD_PROTO *sp, SMTPD_RESULT result, const char *text)
{
    /* The reply to a message is never counted as the client's error. */
    int errors = sp->errors;

    switch (result) {
    case SMTPD_QUEUED:
        sp->ok[sp->in_bdat ? SMTPD_C_BDAT : SMTPD_C_DATA]++;
        smtpd_reply(sp, "250 2.0.0 Ok: queued%s%s", *text ? " " : "", text);
        break;
    case SMTPD_TEMPFAIL:
        smtpd_reply(sp, "451 4.3.0 Error: queue file write error%s%s", *text ? ": " : "", text);
        break;
    case SMTPD_NOSPACE:
        smtpd_reply(sp, "452 4.3.1 Insufficient system storage%s%s", *text ? ": " : "", text);
        break;
    default:
        smtpd_reply(sp, "554 5.6.0 Error: message not accepted%s%s", *text ? ": " : "", text);
        break;
    }
    sp->errors = errors;
    smtpd_reset(sp);
}

/* smtpd_deliver - a complete message: hand it over, answer or wait for the verdict */
static void smtpd_deliver(SMTPD_PROTO *sp)
{
    SMTPD_MSG msg;
    VSTR *text;
    SMTPD_RESULT result;

    memset(&msg, 0, sizeof(msg));
    msg.helo = sp->helo;
    msg.sender = sp->sender;
    msg.ret = sp->ret ? sp->ret : "";
    msg.envid = sp->envid ? sp->envid : "";
    msg.smtputf8 = sp->smtputf8;
    msg.rcpts = sp->rcpts;
    msg.nrcpt = sp->nrcpt;
    msg.content = vstr_str(sp->content);
    msg.content_len = vstr_len(sp->content);
    msg.auth_user = sp->auth_user;
    msg.auth_method = sp->auth_user ? sp->auth_method : NULL;
    msg.tls = sp->tls ? (sp->tls_desc ? sp->tls_desc : "") : NULL;
    text = vstr_alloc(100);
    result = sp->ops->message(sp->ctx, &msg, text);
    if (result == SMTPD_PENDING)
        sp->state = SMTPD_ST_WAIT; /* the transaction stays until the verdict */
    else
        smtpd_answer(sp, result, vstr_str(text));
    vstr_free(text);
}

/* smtpd_end_data - the final dot */
static void smtpd_end_data(SMTPD_PROTO *sp)
{
    sp->state = SMTPD_ST_CMD;
    if (sp->data_toobig) {
        smtpd_reply(sp, "552 5.3.4 Error: message file too big");
        smtpd_reset(sp);
        return;
    }
    smtpd_deliver(sp);
}

/* smtpd_data_line - a content line, or the next piece of a long one */
static void smtpd_data_line(SMTPD_PROTO *sp, int complete)
{
    const char *s = vstr_str(sp->line);
    size_t len = vstr_len(sp->line);

    if (sp->data_bol && complete &&
        ((len == 2 && memcmp(s, ".\n", 2) == 0) || (len == 3 && memcmp(s, ".\r\n", 3) == 0))) {
        vstr_reset(sp->line);
        smtpd_end_data(sp);
        return;
    }
    if (sp->data_bol && len > 0 && s[0] == '.')
        s++, len--;
    if (complete)
        len--; /* the LF; CRLF is added back below */
    if (!sp->data_toobig && (long long)(vstr_len(sp->content) + len + 2) > sp->size_limit) {
        sp->data_toobig = 1;
        vstr_reset(sp->content);
    }
    if (!sp->data_toobig) {
        vstr_append(sp->content, s, len);
        if (complete) {
            /* A CR before the LF, possibly at the end of the previous piece, is kept once. */
            if (vstr_len(sp->content) > 0 &&
                vstr_str(sp->content)[vstr_len(sp->content) - 1] == '\r')
                vstr_addch(sp->content, '\n');
            else
                vstr_strcat(sp->content, "\r\n");
        }
    }
    sp->data_bol = complete;
    vstr_reset(sp->line);
}

/* smtpd_bdat_content - octets of a chunk: bare LF to CRLF, within the size limit */
static void smtpd_bdat_content(SMTPD_PROTO *sp, const char *data, size_t len)
{
    size_t bare = 0;
    size_t start = 0;
    int cr = sp->bdat_cr;

    if (len == 0 || sp->bdat_refusal != NULL)
        return;
    sp->bdat_cr = data[len - 1] == '\r';
    if (sp->data_toobig)
        return;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n' && !(i > 0 ? data[i - 1] == '\r' : cr))
            bare++;
    if ((long long)(vstr_len(sp->content) + len + bare) > sp->size_limit) {
        sp->data_toobig = 1;
        vstr_reset(sp->content);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' && !(i > 0 ? data[i - 1] == '\r' : cr)) {
            vstr_append(sp->content, data + start, i - start);
            vstr_strcat(sp->content, "\r\n");
            start = i + 1;
        }
    }
    vstr_append(sp->content, data + start, len - start);
}

/* smtpd_bdat_end - a chunk is read: answer it; the last one ends the message */
static void smtpd_bdat_end(SMTPD_PROTO *sp)
{
    sp->state = SMTPD_ST_CMD;
    if (sp->bdat_refusal != NULL) {
        smtpd_reply(sp, "%s", sp->bdat_refusal);
        /* A bad chunk spoils the message it belongs to. */
        if (sp->in_bdat)
            smtpd_reset(sp);
        return;
    }
    /* Content that stops inside a line gets its line end, as a final dot would. */
    if (sp->bdat_last && !sp->data_toobig && vstr_len(sp->content) > 0 &&
        vstr_str(sp->content)[vstr_len(sp->content) - 1] != '\n') {
        if ((long long)vstr_len(sp->content) + 2 > sp->size_limit)
            sp->data_toobig = 1;
        else if (sp->bdat_cr)
            vstr_addch(sp->content, '\n');
        else
            vstr_strcat(sp->content, "\r\n");
    }
    if (sp->data_toobig) {
        smtpd_reply(sp, "552 5.3.4 Message size exceeds fixed limit");
        if (sp->bdat_last)
            smtpd_reset(sp);
        return;
    }
    if (!sp->bdat_last) {
        sp->ok[SMTPD_C_BDAT]++;
        smtpd_reply(sp, "250 2.0.0 Ok: %lld bytes", sp->bdat_size);
        return;
    }
    smtpd_deliver(sp);
}

/*
 * smtpd_cmd_bdat - BDAT size [LAST]: its octets are read, then it is answered
 *
 * A size that cannot be read leaves no way to tell the octets from the
 * next command: the session ends. Anything else is refused only once the
 * octets are read, so the client's next command is found.
 */
static void smtpd_cmd_bdat(SMTPD_PROTO *sp, const char *arg)
{
    size_t digits = strspn(arg, "0123456789");
    const char *rest = arg + digits;

    if (digits == 0 || digits > 10 || (*rest != '\0' && *rest != ' ') ||
        (sp->bdat_size = strtoll(arg, NULL, 10)) > SMTPD_CONTENT_MAX) {
        smtpd_reply(sp, "501 5.5.4 Syntax: BDAT size [LAST]");
        smtpd_reply(sp, "421 4.5.0 %s Error: bad BDAT chunk size, closing connection",
                    sp->hostname);
        msg_info("bad BDAT chunk size from %s", sp->client);
        smtpd_flush(sp);
        smtpd_log_end(sp);
        smtpd_finish(sp);
        return;
    }
    while (*rest == ' ')
        rest++;
    sp->bdat_last = strcasecmp(rest, "LAST") == 0;
    sp->bdat_left = sp->bdat_size;
    sp->bdat_refusal = NULL;
    if (*rest != '\0' && !sp->bdat_last) {
        sp->bdat_refusal = "501 5.5.4 Syntax: BDAT size [LAST]";
    } else if (!sp->in_mail || sp->nrcpt == 0) {
        sp->bdat_refusal = "503 5.5.1 Error: need RCPT command";
    } else {
        if (!sp->in_bdat)
            vstr_reset(sp->content);
        sp->in_bdat = 1;
        /* Known too big already: no octet of it is kept. */
        if ((long long)vstr_len(sp->content) + sp->bdat_size > sp->size_limit) {
            sp->data_toobig = 1;
            vstr_reset(sp->content);
        }
    }
    sp->state = SMTPD_ST_BDAT;
    if (sp->bdat_left == 0)
        smtpd_bdat_end(sp);
}

/* smtpd_cmd_starttls - STARTTLS: 220, then the caller's handshake */
static int smtpd_cmd_starttls(SMTPD_PROTO *sp, const char *arg)
{
    if (sp->tls) {
        smtpd_reply(sp, "554 5.5.1 Error: TLS already active");
        return -1;
    }
    if (!sp->tls_offer) {
        smtpd_reply(sp, "502 5.5.1 Error: command not implemented");
        return -1;
    }
    if (*arg != '\0') {
        smtpd_reply(sp, "501 5.5.4 Syntax: STARTTLS");
        return -1;
    }
    if (sp->in_mail) {
        smtpd_reply(sp, "503 5.5.1 Error: MAIL transaction in progress");
        return -1;
    }
    smtpd_reply(sp, "220 2.0.0 Ready to start TLS");
    sp->state = SMTPD_ST_TLS;
    return 0;
}

/* smtpd_auth_user_ok - whether a user name may be checked and logged */
static int smtpd_auth_user_ok(const char *user, size_t len)
{
    if (len == 0 || len > SMTPD_USER_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
            return 0;
    return 1;
}

/* smtpd_auth_check - a user (NUL-terminated) and password for ops->auth; the reply */
static void smtpd_auth_check(SMTPD_PROTO *sp, const char *method, const char *user, size_t user_len,
                             const char *password, size_t password_len)
{
    SMTPD_AUTH_RESULT result = SMTPD_AUTH_FAILED;

    if (smtpd_auth_user_ok(user, user_len))
        result = sp->ops->auth(sp->ctx, user, password, password_len);
    switch (result) {
    case SMTPD_AUTH_OK:
        sp->auth_user = mystrdup(user);
        sp->auth_method = method;
        sp->ok[SMTPD_C_AUTH]++;
        smtpd_reply(sp, "235 2.7.0 Authentication successful");
        break;
    case SMTPD_AUTH_TEMPFAIL:
        msg_info("%s authentication failed temporarily from %s", method, sp->client);
        smtpd_reply(sp, "454 4.7.0 Temporary authentication failure");
        break;
    default:
        msg_info("%s authentication failed from %s", method, sp->client);
        smtpd_reply(sp, "535 5.7.8 Error: authentication failed: authentication failure");
        break;
    }
}

/* smtpd_auth_plain - RFC 4616 "authzid NUL authcid NUL password", NUL-terminated */
static void smtpd_auth_plain(SMTPD_PROTO *sp, const char *msg, size_t len)
{
    const char *user = memchr(msg, '\0', len);
    const char *password = user ? memchr(user + 1, '\0', len - (size_t)(user + 1 - msg)) : NULL;
    size_t authz_len = user ? (size_t)(user - msg) : 0;
    size_t user_len;

    /* Malformed, or acting for another user: refused before ops->auth sees it. */
    if (password == NULL || memchr(password + 1, '\0', len - (size_t)(password + 1 - msg))) {
        smtpd_auth_check(sp, "PLAIN", "", 0, "", 0);
        return;
    }
    user++;
    user_len = (size_t)(password - user);
    password++;
    if (authz_len != 0 && (authz_len != user_len || memcmp(msg, user, user_len) != 0))
        smtpd_auth_check(sp, "PLAIN", "", 0, "", 0);
    else
        smtpd_auth_check(sp, "PLAIN", user, user_len, password, len - (size_t)(password - msg));
}

/* smtpd_auth_step - one base64 response of the exchange, from the AUTH line or after a 334 */
static void smtpd_auth_step(SMTPD_PROTO *sp, const char *text)
{
    size_t len = strlen(text);
    size_t cap = len / 4 * 3 + 3;
    unsigned char *buf;
    size_t got = 0;

    sp->state = SMTPD_ST_CMD;
    if (strcmp(text, "*") == 0) {
        smtpd_reply(sp, "501 5.7.0 Authentication aborted");
        smtpd_auth_forget(sp);
        return;
    }
    buf = mymalloc(cap);
    /* "=" is an empty initial response (RFC 4954 section 4), as an empty line is later. */
    if (len > 0 && strcmp(text, "=") != 0 &&
        sodium_base642bin(buf, cap - 1, text, len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        smtpd_reply(sp, "501 5.5.2 Error: invalid base64 in authentication response");
        smtpd_auth_forget(sp);
    } else {
        buf[got] = '\0';
        switch (sp->auth_step) {
        case SMTPD_AUTH_PLAIN:
            smtpd_auth_plain(sp, (const char *)buf, got);
            break;
        case SMTPD_AUTH_LOGIN_USER:
            sp->login_user = mymalloc(got + 1);
            memcpy(sp->login_user, buf, got + 1);
            sp->login_len = got;
            sp->auth_step = SMTPD_AUTH_LOGIN_PASS;
            sp->state = SMTPD_ST_AUTH;
            smtpd_reply(sp, "334 UGFzc3dvcmQ6"); /* "Password:" */
            break;
        case SMTPD_AUTH_LOGIN_PASS:
            smtpd_auth_check(sp, "LOGIN", sp->login_user, sp->login_len, (const char *)buf, got);
            smtpd_auth_forget(sp);
            break;
        }
    }
    sodium_memzero(buf, cap);
    myfree(buf);
}

/* smtpd_cmd_auth - AUTH mechanism [initial-response]; the exchange follows */
static void smtpd_cmd_auth(SMTPD_PROTO *sp, const char *arg)
{
    size_t mech_len = strcspn(arg, " ");
    const char *initial = arg + mech_len;

    while (*initial == ' ')
        initial++;
    if (!smtpd_auth_enabled(sp)) {
        smtpd_reply(sp, "503 5.5.1 Error: authentication not enabled");
    } else if (sp->helo[0] == '\0') {
        smtpd_reply(sp, "503 5.5.1 Error: send HELO/EHLO first");
    } else if (!sp->tls) {
        smtpd_reply(sp, "538 5.7.11 Encryption required for requested authentication mechanism");
    } else if (sp->auth_user != NULL) {
        smtpd_reply(sp, "503 5.5.1 Error: already authenticated");
    } else if (sp->in_mail) {
        smtpd_reply(sp, "503 5.5.1 Error: MAIL transaction in progress");
    } else if (mech_len == 0 || strchr(initial, ' ') != NULL) {
        smtpd_reply(sp, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
    } else if (!smtpd_keyword(arg, mech_len, "PLAIN") && !smtpd_keyword(arg, mech_len, "LOGIN")) {
        smtpd_reply(sp, "504 5.5.4 Unsupported authentication mechanism");
    } else {
        sp->auth_step =
            smtpd_keyword(arg, mech_len, "PLAIN") ? SMTPD_AUTH_PLAIN : SMTPD_AUTH_LOGIN_USER;
        if (*initial != '\0') {
            smtpd_auth_step(sp, initial);
        } else {
            sp->state = SMTPD_ST_AUTH;
            /* LOGIN asks "Username:" in base64; PLAIN asks for all at once. */
            smtpd_reply(sp, sp->auth_step == SMTPD_AUTH_PLAIN ? "334 " : "334 VXNlcm5hbWU6");
        }
    }
}

/* smtpd_auth_line - a complete line while an AUTH exchange waits for a response */
static void smtpd_auth_line(SMTPD_PROTO *sp)
{
    char *line = vstr_str(sp->line);
    size_t len = vstr_len(sp->line);

    line[--len] = '\0';
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    smtpd_auth_step(sp, line);
}

/* smtpd_line_chars - refuse control characters and, unless allowed, 8-bit bytes; -1 after reply */
static int smtpd_line_chars(SMTPD_PROTO *sp, const char *line, size_t len, int allow_8bit)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];

        if (ch < 0x20 || ch == 0x7f) {
            smtpd_reply(sp, "500 5.5.2 Error: bad syntax (control character in command)");
            return -1;
        }
        if (ch > 0x7f && !allow_8bit) {
            smtpd_reply(sp, "500 5.5.2 Error: bad syntax (8-bit character in command)");
            return -1;
        }
    }
    return 0;
}

/* smtpd_command - one complete command line */
static void smtpd_command(SMTPD_PROTO *sp)
{
    char *line = vstr_str(sp->line);
    size_t len = vstr_len(sp->line);
    size_t verb_len;
    const char *arg;
    int cmd;
    int ret;
    int utf8;

    /* Strip the LF and a CR before it. */
    line[--len] = '\0';
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    verb_len = strcspn(line, " ");
    arg = line + verb_len;
    while (*arg == ' ')
        arg++;
    for (cmd = 0; cmd < SMTPD_C_UNKNOWN; cmd++)
        if (verb_len == strlen(smtpd_verbs[cmd]) &&
            strncasecmp(line, smtpd_verbs[cmd], verb_len) == 0)
            break;
    sp->total[cmd]++;
    sp->last = smtpd_verbs[cmd];
    /* UTF-8 only in the addresses of a transaction that declares SMTPUTF8. */
    utf8 = (cmd == SMTPD_C_MAIL && strcasestr(arg, " SMTPUTF8") != NULL) ||
           (cmd == SMTPD_C_RCPT && sp->smtputf8);
    if (smtpd_line_chars(sp, line, len, utf8) < 0)
        return;
    switch (cmd) {
    case SMTPD_C_EHLO:
    case SMTPD_C_HELO:
        ret = smtpd_cmd_helo(sp, arg, cmd == SMTPD_C_EHLO);
        break;
    case SMTPD_C_MAIL:
        ret = smtpd_cmd_mail(sp, arg);
        break;
    case SMTPD_C_RCPT:
        ret = smtpd_cmd_rcpt(sp, arg);
        break;
    case SMTPD_C_DATA:
        /* Counted as ok at the final dot, when the message is queued. */
        (void)smtpd_cmd_data(sp, arg);
        return;
    case SMTPD_C_BDAT:
        /* Counted as ok when its chunk is taken, or its message queued. */
        smtpd_cmd_bdat(sp, arg);
        return;
    case SMTPD_C_AUTH:
        /* Counted as ok at 235, perhaps after a few challenges. */
        smtpd_cmd_auth(sp, arg);
        return;
    case SMTPD_C_STARTTLS:
        ret = smtpd_cmd_starttls(sp, arg);
        break;
    case SMTPD_C_RSET:
        ret = *arg ? -1 : 0;
        if (ret < 0) {
            smtpd_reply(sp, "501 5.5.4 Syntax: RSET");
        } else {
            smtpd_reset(sp);
            smtpd_reply(sp, "250 2.0.0 Ok");
        }
        break;
    case SMTPD_C_NOOP:
        smtpd_reply(sp, "250 2.0.0 Ok");
        ret = 0;
        break;
    case SMTPD_C_VRFY:
        /* A null client knows no users: never confirm, never deny. */
        ret = *arg ? 0 : -1;
        if (ret < 0)
            smtpd_reply(sp, "501 5.5.4 Syntax: VRFY address");
        else
            smtpd_reply(sp, "252 2.0.0 Cannot VRFY user, but will accept message and attempt "
                            "delivery");
        break;
    case SMTPD_C_HELP:
        smtpd_reply(
            sp, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT%s%s",
            sp->tls_offer && !sp->tls ? " STARTTLS" : "", smtpd_auth_offered(sp) ? " AUTH" : "");
        ret = 0;
        break;
    case SMTPD_C_QUIT:
        smtpd_reply(sp, "221 2.0.0 Bye");
        sp->ok[cmd]++;
        smtpd_flush(sp);
        smtpd_log_end(sp);
        smtpd_finish(sp);
        return;
    default:
        if (len == 0)
            smtpd_reply(sp, "500 5.5.2 Error: bad syntax");
        else
            smtpd_reply(sp, "502 5.5.2 Error: command not recognized");
        ret = -1;
        break;
    }
    if (ret == 0)
        sp->ok[cmd]++;
}

/* smtpd_too_many_errors - end the session once the error limit is reached */
static void smtpd_too_many_errors(SMTPD_PROTO *sp)
{
    if (sp->state == SMTPD_ST_DONE || sp->errors < sp->error_limit)
        return;
    smtpd_reply(sp, "421 4.7.0 %s Error: too many errors", sp->hostname);
    msg_info("too many errors after %s from %s", sp->last, sp->client);
    smtpd_flush(sp);
    smtpd_log_end(sp);
    smtpd_finish(sp);
}

/* smtpd_proto_input - consume client bytes, answer what they complete */
int smtpd_proto_input(SMTPD_PROTO *sp, const char *data, size_t len)
{
    size_t pos = 0;
    size_t take;
    size_t room;
    const char *nl;

    /* Input read while the handshake should be running is plaintext: ignored. */
    if (sp->state == SMTPD_ST_TLS)
        return SMTPD_STARTTLS;
    while (pos < len && sp->state != SMTPD_ST_DONE) {
        if (sp->state == SMTPD_ST_WAIT) {
            /* Pipelined after the final dot: read once the verdict is given. */
            vstr_append(sp->held, data + pos, len - pos);
            break;
        }
        if (sp->state == SMTPD_ST_TLS) {
            /* RFC 3207 section 4.2: what was pipelined after STARTTLS is dropped. */
            msg_info("discarded %zu bytes sent after STARTTLS by %s", len - pos, sp->client);
            break;
        }
        if (sp->state == SMTPD_ST_BDAT) {
            take = (long long)(len - pos) < sp->bdat_left ? len - pos : (size_t)sp->bdat_left;
            smtpd_bdat_content(sp, data + pos, take);
            pos += take;
            sp->bdat_left -= (long long)take;
            if (sp->bdat_left == 0)
                smtpd_bdat_end(sp);
            smtpd_too_many_errors(sp);
            continue;
        }
        nl = memchr(data + pos, '\n', len - pos);
        take = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;
        room = SMTPD_LINE_MAX - vstr_len(sp->line);
        if (sp->state == SMTPD_ST_DATA) {
            if (take > room)
                take = room;
            vstr_append(sp->line, data + pos, take);
            pos += take;
            if (vstr_str(sp->line)[vstr_len(sp->line) - 1] == '\n')
                smtpd_data_line(sp, 1);
            else if (vstr_len(sp->line) == SMTPD_LINE_MAX)
                smtpd_data_line(sp, 0);
            continue;
        }
        if (sp->overflow || take > room) {
            sp->overflow = 1;
            smtpd_wipe_line(sp);
        } else {
            vstr_append(sp->line, data + pos, take);
        }
        pos += take;
        if (nl == NULL)
            continue;
        if (sp->overflow && sp->state == SMTPD_ST_AUTH) {
            sp->overflow = 0;
            sp->state = SMTPD_ST_CMD;
            smtpd_auth_forget(sp);
            smtpd_reply(sp, "500 5.5.6 Authentication exchange line is too long");
        } else if (sp->overflow) {
            sp->overflow = 0;
            smtpd_reply(sp, "500 5.5.2 Error: command line too long");
        } else if (sp->state == SMTPD_ST_AUTH) {
            smtpd_auth_line(sp);
        } else {
            smtpd_command(sp);
        }
        smtpd_wipe_line(sp);
        smtpd_too_many_errors(sp);
    }
    smtpd_flush(sp);
    return smtpd_status(sp);
}

/* smtpd_where - the session's place, for "lost connection after X" */
static const char *smtpd_where(const SMTPD_PROTO *sp)
{
    if (sp->state == SMTPD_ST_DATA)
        return "DATA";
    return sp->state == SMTPD_ST_WAIT ? "END-OF-MESSAGE" : sp->last;
}

/* smtpd_proto_waiting - is a message handed over waiting for its verdict */
int smtpd_proto_waiting(const SMTPD_PROTO *sp)
{
    return sp->state == SMTPD_ST_WAIT;
}

/* smtpd_proto_resume - the verdict on the message handed over: answer it, read what came since */
int smtpd_proto_resume(SMTPD_PROTO *sp, SMTPD_RESULT result, const char *text)
{
    VSTR *held;
    int state;

    if (sp->state != SMTPD_ST_WAIT)
        return smtpd_status(sp);
    if (result == SMTPD_PENDING)
        msg_panic("smtpd_proto_resume: a verdict cannot be pending");
    sp->state = SMTPD_ST_CMD;
    smtpd_answer(sp, result, text ? text : "");
    held = sp->held;
    sp->held = vstr_alloc(256);
    state = smtpd_proto_input(sp, vstr_str(held), vstr_len(held));
    vstr_free(held);
    return state;
}

/* smtpd_proto_tls_started - the handshake is done: start again from EHLO, in TLS */
int smtpd_proto_tls_started(SMTPD_PROTO *sp, const char *description)
{
    if (sp->state == SMTPD_ST_DONE)
        return SMTPD_DONE;
    if (sp->state != SMTPD_ST_TLS)
        msg_panic("smtpd_proto_tls_started: STARTTLS was not answered");
    /* RFC 3207 section 4.2: nothing learned from the client before TLS is kept. */
    smtpd_reset(sp);
    myfree(sp->helo);
    sp->helo = mystrdup("");
    myfree(sp->auth_user);
    sp->auth_user = NULL;
    sp->auth_method = NULL;
    sp->tls = 1;
    myfree(sp->tls_desc);
    sp->tls_desc = mystrdup(description ? description : "");
    sp->state = SMTPD_ST_CMD;
    if (msg_verbose)
        msg_info("TLS started with %s: %s", sp->client, sp->tls_desc);
    return SMTPD_MORE;
}

/* smtpd_proto_eof - the client closed its side */
void smtpd_proto_eof(SMTPD_PROTO *sp)
{
    if (sp->state == SMTPD_ST_DONE)
        return;
    msg_info("lost connection after %s from %s", smtpd_where(sp), sp->client);
    smtpd_flush(sp);
    smtpd_log_end(sp);
    smtpd_finish(sp);
}

/* smtpd_proto_timeout - the client sent nothing for too long */
void smtpd_proto_timeout(SMTPD_PROTO *sp)
{
    if (sp->state == SMTPD_ST_DONE)
        return;
    msg_info("timeout after %s from %s", smtpd_where(sp), sp->client);
    /* During the handshake the client expects TLS records, not a reply. */
    if (sp->state != SMTPD_ST_TLS)
        smtpd_reply(sp, "421 4.4.2 %s Error: timeout exceeded", sp->hostname);
    smtpd_flush(sp);
    smtpd_log_end(sp);
    smtpd_finish(sp);
}

/* smtpd_proto_free - release the session */
void smtpd_proto_free(SMTPD_PROTO *sp)
{
    smtpd_log_end(sp);
    smtpd_reset(sp);
    smtpd_auth_forget(sp);
    smtpd_wipe_line(sp);
    myfree(sp->rcpts);
    myfree(sp->auth_user);
    myfree(sp->tls_desc);
    myfree(sp->hostname);
    myfree(sp->client);
    myfree(sp->qualify);
    myfree(sp->helo);
    vstr_free(sp->line);
    vstr_free(sp->out);
    vstr_free(sp->content);
    vstr_free(sp->held);
    myfree(sp);
}
