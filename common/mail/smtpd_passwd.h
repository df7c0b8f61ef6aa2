/*
 * smtpd_passwd.h - the users SMTP clients may authenticate as (smtpd_sasl_password_file)
 */
#ifndef RELAYQ_SMTPD_PASSWD_H
#define RELAYQ_SMTPD_PASSWD_H

#include <stddef.h>

#include "smtpd_proto.h"
#include "vstr.h"

#define SMTPD_PASSWD_USER_MAX 255        /* bytes of a user name */
#define SMTPD_PASSWD_PASSWORD_MAX 1024   /* bytes of a password; a longer one never matches */
#define SMTPD_PASSWD_LINE_MAX 512        /* bytes of a line, newline excluded */
#define SMTPD_PASSWD_FILE_MAX 1048576    /* bytes of the file */
#define SMTPD_PASSWD_PREFIX "$argon2id$" /* how every hash starts */

typedef struct SMTPD_PASSWD SMTPD_PASSWD;

SMTPD_PASSWD *smtpd_passwd_load(const char *path, VSTR *why);
SMTPD_AUTH_RESULT smtpd_passwd_verify(SMTPD_PASSWD *pw, const char *user, const char *password,
                                      size_t len);
void smtpd_passwd_free(SMTPD_PASSWD *pw);
size_t smtpd_passwd_count(const SMTPD_PASSWD *pw);
int smtpd_passwd_check_user(const char *user, size_t len, VSTR *why);

#endif
