/*
 * sasl_passwd.h - the SMTP AUTH credentials file (smtp_sasl_password_maps)
 */
#ifndef RELAYQ_SASL_PASSWD_H
#define RELAYQ_SASL_PASSWD_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "vstr.h"

#define SASL_ID_LEN 32         /* bytes of a credential's identity hash */
#define SASL_RELAY_KEY_MAX 300 /* bytes of a lookup key made from a host name and port */

/*
 * SASL_CRED models one line of the credentials file: the relay it is for,
 * the user name, and the secret -- a password, or for "xoauth2:PATH" the
 * bearer token read from PATH (cached, re-read when the file changes).
 * Secrets live in libsodium guarded memory, inaccessible while unused.
 */
typedef struct SASL_CRED {
    char *key;             /* the lookup key, lower case: "[host]:port", "host" ... */
    char *user;            /* the authentication identity */
    char *token_file;      /* XOAUTH2: the file holding the bearer token; NULL: password */
    unsigned char *secret; /* guarded: the password or the token, NUL-terminated */
    size_t secret_len;
    time_t token_mtime; /* the token file as last read */
    long token_mtime_ns;
    off_t token_size;
    unsigned char id[SASL_ID_LEN]; /* keyed hash of user and secret (or token file) */
} SASL_CRED;

typedef struct SASL_PASSWD SASL_PASSWD;

/* Called once per malformed line ("FILE:LINE: reason"); NULL: msg_warn. */
typedef void (*SASL_PASSWD_COMPLAIN_FN)(const char *text);

const char *sasl_passwd_path(const char *map);
int sasl_passwd_check_owner(const char *path, uid_t uid, mode_t mode, uid_t owner, VSTR *why);
SASL_PASSWD *sasl_passwd_load(const char *map, uid_t owner, SASL_PASSWD_COMPLAIN_FN complain,
                              VSTR *why);
void sasl_passwd_free(SASL_PASSWD *table);
size_t sasl_passwd_count(const SASL_PASSWD *table);
SASL_CRED *sasl_passwd_find(SASL_PASSWD *table, const char *key);
SASL_CRED *sasl_passwd_find_relay(SASL_PASSWD *table, const char *written, const char *host,
                                  unsigned port);
int sasl_cred_refresh(SASL_CRED *cred, VSTR *why);
const char *sasl_cred_open(SASL_CRED *cred);
void sasl_cred_close(SASL_CRED *cred);

#endif
