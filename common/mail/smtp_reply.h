/*
 * smtp_reply.h - incremental parser of SMTP server replies
 */
#ifndef RELAYQ_SMTP_REPLY_H
#define RELAYQ_SMTP_REPLY_H

#include <stddef.h>

#include "vstr.h"

#define SMTP_REPLY_LINE_MAX 4096  /* longer lines are a protocol error */
#define SMTP_REPLY_LINES_MAX 1000 /* more continuation lines are a protocol error */
#define SMTP_REPLY_TEXT_MAX 65536 /* cap on the joined text that is kept */

/* One complete, possibly multi-line, reply. */
typedef struct SMTP_REPLY {
    int code;     /* 200..599 */
    char dsn[16]; /* "X.Y.Z" from the enhanced status code, or "" */
    VSTR *text;   /* the lines' text after the code (and after the enhanced
                   * code when present), joined with "\n" */
    int lines;    /* number of lines */
} SMTP_REPLY;

/* The parser's state between reads. */
typedef struct SMTP_REPLY_PARSER SMTP_REPLY_PARSER;

SMTP_REPLY_PARSER *smtp_reply_parser_create(void);
void smtp_reply_parser_free(SMTP_REPLY_PARSER *parser);
void smtp_reply_parser_reset(SMTP_REPLY_PARSER *parser);

/* Result of feeding a line. */
#define SMTP_REPLY_MORE 0   /* continuation line consumed; feed the next */
#define SMTP_REPLY_DONE 1   /* reply complete in *reply */
#define SMTP_REPLY_ERROR -1 /* protocol error; reason in why */

int smtp_reply_feed_line(SMTP_REPLY_PARSER *parser, const char *line, size_t len, SMTP_REPLY *reply,
                         VSTR *why);
SMTP_REPLY *smtp_reply_alloc(void);
void smtp_reply_free(SMTP_REPLY *reply);
void smtp_reply_default_dsn(const SMTP_REPLY *reply, char *dsn, size_t size);

#endif
