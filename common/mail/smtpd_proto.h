/*
 * smtpd_proto.h - the server side of an ESMTP session, independent of its I/O
 */
#ifndef RELAYQ_SMTPD_PROTO_H
#define RELAYQ_SMTPD_PROTO_H

#include <stddef.h>

#include "vstr.h"

#define SMTPD_LINE_MAX 2048     /* a command line, CRLF included (Postfix's line_length_limit) */
#define SMTPD_ENVID_MAX 100     /* RFC 3461 section 4.4 */
#define SMTPD_ORCPT_TYPE_MAX 32 /* an addr-type atom: "rfc822", "utf-8", ... */
#define SMTPD_CONTENT_MAX (1024LL * 1024 * 1024) /* held in memory even with no size limit */
#define SMTPD_USER_MAX 255                       /* an AUTH user name, in bytes */

/* What smtpd_proto_input() leaves the session in. */
#define SMTPD_MORE 1 /* wants more input */
#define SMTPD_DONE 0 /* over: QUIT, too many errors, timeout, or the client is gone */
/* Answered STARTTLS with 220: the caller runs the TLS handshake, then
 * smtpd_proto_tls_started(); input is ignored until then. */
#define SMTPD_STARTTLS 2

/* What the auth() operation found. */
typedef enum {
    SMTPD_AUTH_OK,      /* the user and password match: 235 */
    SMTPD_AUTH_FAILED,  /* they do not: 535 5.7.8 */
    SMTPD_AUTH_TEMPFAIL /* cannot tell now: 454 4.7.0 */
} SMTPD_AUTH_RESULT;

/* What became of a message handed to the message() callback. */
typedef enum {
    SMTPD_QUEUED,   /* durably queued: 250 */
    SMTPD_TEMPFAIL, /* not queued, try again later: 451 4.3.0 */
    SMTPD_NOSPACE,  /* not queued, out of space: 452 4.3.1 */
    SMTPD_REJECTED, /* never acceptable as it is: 554 5.6.0 */
    SMTPD_PENDING   /* taken; the verdict comes through smtpd_proto_resume() */
} SMTPD_RESULT;

/* One accepted RCPT TO. */
typedef struct SMTPD_RCPT {
    char *addr;   /* qualified, without angle brackets */
    char *notify; /* DSN NOTIFY as "never" or a subset of "success,delay,failure", or "" */
    char *orcpt;  /* DSN ORCPT as "TYPE;ADDRESS", xtext decoded, or "" */
} SMTPD_RCPT;

/* A complete message: the envelope of the transaction and its content. */
typedef struct SMTPD_MSG {
    const char *helo;        /* the EHLO/HELO argument, or "" */
    const char *sender;      /* "" for the null reverse-path */
    const char *ret;         /* DSN RET "full" or "hdrs", or "" */
    const char *envid;       /* DSN ENVID, xtext decoded, or "" */
    int smtputf8;            /* MAIL FROM had SMTPUTF8 */
    const char *auth_user;   /* the user authenticated with AUTH, or NULL */
    const char *auth_method; /* "PLAIN" or "LOGIN", or NULL */
    const SMTPD_RCPT *rcpts;
    size_t nrcpt;
    const char *content; /* dot-unstuffed (DATA) or as sent (BDAT), every line ending in CRLF */
    size_t content_len;
    const char *tls; /* the smtpd_proto_tls_started() description, "" for implicit TLS, or NULL */
} SMTPD_MSG;

/* How the session reaches its client and its queue. */
typedef struct SMTPD_OPS {
    /* Write all of the replies; 0, or -1 when the client is gone. */
    int (*write)(void *ctx, const char *data, size_t len);
    /* Queue a message; on failure `text` may say why (it goes in the reply). */
    SMTPD_RESULT (*message)(void *ctx, const SMTPD_MSG *msg, VSTR *text);
    /* Check a user and password given with AUTH; NULL: AUTH is never offered. */
    SMTPD_AUTH_RESULT (*auth)(void *ctx, const char *user, const char *password, size_t len);
} SMTPD_OPS;

/* The session's settings; the strings are copied. */
typedef struct SMTPD_LIMITS {
    const char *hostname; /* in the greeting and the EHLO reply */
    const char *client;   /* the client as logged, "localhost[127.0.0.1]" or "uid=1000" */
    const char *qualify;  /* the domain added to a bare local part, or NULL to refuse one */
    long long size_limit; /* message bytes, 0: none (SMTPD_CONTENT_MAX still holds) */
    size_t rcpt_limit;    /* recipients per transaction */
    int error_limit;      /* 4xx/5xx replies before "421 too many errors" */
    int relay_denied;     /* refuse every recipient unless authenticated: outside mynetworks */
    int tls_offer;        /* offer STARTTLS (the server has a certificate) */
    int tls_active;       /* the session is in TLS from its start (implicit TLS) */
} SMTPD_LIMITS;

typedef struct SMTPD_PROTO SMTPD_PROTO;

SMTPD_PROTO *smtpd_proto_create(const SMTPD_LIMITS *limits, const SMTPD_OPS *ops, void *ctx);
int smtpd_proto_start(SMTPD_PROTO *sp);
int smtpd_proto_input(SMTPD_PROTO *sp, const char *data, size_t len);
int smtpd_proto_waiting(const SMTPD_PROTO *sp);
int smtpd_proto_resume(SMTPD_PROTO *sp, SMTPD_RESULT result, const char *text);
int smtpd_proto_tls_started(SMTPD_PROTO *sp, const char *description);
void smtpd_proto_eof(SMTPD_PROTO *sp);
void smtpd_proto_timeout(SMTPD_PROTO *sp);
void smtpd_proto_free(SMTPD_PROTO *sp);
int smtpd_proto_notify(const char *text, size_t len, VSTR *out);
int smtpd_proto_orcpt_valid(const char *orcpt);

#endif
