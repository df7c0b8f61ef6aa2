/*
 * maildrop.h - the file the sendmail command leaves for pickup
 */
#ifndef RELAYQ_MAILDROP_H
#define RELAYQ_MAILDROP_H

#include <stddef.h>

#include "vstr.h"

#define MAILDROP_RCPT_MAX 10000 /* recipients in one message */

/*
 * Bytes of an envelope record: MAILDROP_RCPT_MAX recipients of the longest
 * address (RFC 5321 path, 256 octets, some of them percent-encoded) with
 * room to spare for the other attributes.
 */
#define MAILDROP_ENVELOPE_MAX (8 * 1024 * 1024)

/* The envelope of a maildrop file. */
typedef struct MAILDROP_ENV {
    long long uid;    /* the submitting user */
    long long posted; /* time(2) of submission */
    char *sender;     /* "" for the null sender */
    int own_sender;   /* no sender given (no -f): pickup names the submitting user */
    char *fullname;   /* sendmail -F, or "" */
    char *notify;     /* DSN NOTIFY (sendmail -N), or "" */
    char *ret;        /* DSN RET (sendmail -R), or "" */
    char *envid;      /* DSN ENVID (sendmail -V), or "" */
    char **rcpts;
    char **notifies; /* per recipient: DSN NOTIFY of "sendmail -bs", or "" (then notify) */
    char **orcpts;   /* per recipient: DSN ORCPT "TYPE;ADDRESS", or "" */
    size_t nrcpt;
} MAILDROP_ENV;

void maildrop_env_init(MAILDROP_ENV *env);
void maildrop_env_add_rcpt(MAILDROP_ENV *env, const char *rcpt);
void maildrop_env_add_rcpt_dsn(MAILDROP_ENV *env, const char *rcpt, const char *notify,
                               const char *orcpt);
void maildrop_env_free(MAILDROP_ENV *env);
void maildrop_encode_envelope(const MAILDROP_ENV *env, VSTR *out);
int maildrop_parse(const char *data, size_t len, const char *origin, MAILDROP_ENV *env,
                   size_t *content_offset, VSTR *why);

#endif
