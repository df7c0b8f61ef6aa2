/*
 * passwd_verify - test helper: check a password against an SMTP AUTH password file
 *
 * Usage: passwd_verify FILE USER PASSWORD
 *
 * main()
 *	load FILE as pickup does (smtpd_passwd_load) and print what
 *	smtpd_passwd_verify() answers for USER and PASSWORD: "OK", "FAILED"
 *	or "TEMPFAIL", exit 0; a file that does not load prints the reason
 *	and exits 1; bad usage exits 2. tests/t_passwd.sh checks with it that
 *	the lines "relayq passwd" prints are what the loader accepts.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "smtpd_passwd.h"
#include "vstr.h"

int main(int argc, char **argv)
{
    static const char *const answers[] = {"OK", "FAILED", "TEMPFAIL"};
    VSTR *why = vstr_alloc(100);
    SMTPD_PASSWD *pw;
    SMTPD_AUTH_RESULT result;

    if (argc != 4) {
        fprintf(stderr, "usage: passwd_verify FILE USER PASSWORD\n");
        return 2;
    }
    if ((pw = smtpd_passwd_load(argv[1], why)) == NULL) {
        printf("%s\n", vstr_str(why));
        return 1;
    }
    result = smtpd_passwd_verify(pw, argv[2], argv[3], strlen(argv[3]));
    printf("%s\n", answers[result]);
    smtpd_passwd_free(pw);
    vstr_free(why);
    return 0;
}
