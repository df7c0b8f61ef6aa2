/*
 * passwd - make a line of the SMTP AUTH password file
 *
 * passwd_main()
 *	"relayq passwd USER": read a password and print "USER:HASH" for
 *	smtpd_sasl_password_file, HASH an argon2id string at libsodium's
 *	interactive cost. From a terminal the password is asked twice,
 *	without echo, on standard error; otherwise it is the first line of
 *	standard input, without its newline.
 *
 * The user name is checked as pickup checks the file (smtpd_passwd.c), and
 * so is the password: empty, longer than SMTPD_PASSWD_PASSWORD_MAX bytes or
 * holding a NUL, it could never be used, and is refused. The password lives
 * in guarded memory and is wiped when hashed. Needs no configuration and no
 * privilege. Failures are fatal: a bad user name is a usage error (64), a
 * refused password EX_DATAERR (65), a terminal or standard input that cannot
 * be read EX_IOERR (74).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "guarded.h"
#include "msg.h"
#include "mymalloc.h"
#include "smtpd_passwd.h"

#define PASSWD_BUF (SMTPD_PASSWD_PASSWORD_MAX + 1) /* a password and one byte to spot more */

/* The terminal's settings while echo is off, to restore on a signal. */
static struct termios passwd_saved_tty;
static volatile sig_atomic_t passwd_echo_off;

/* passwd_restore_tty - give the terminal its echo back */
static void passwd_restore_tty(void)
{
    if (passwd_echo_off) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &passwd_saved_tty);
        passwd_echo_off = 0;
    }
}

/* passwd_signal - interrupted at the prompt: echo back on, then die of the signal */
static void passwd_signal(int sig)
{
    passwd_restore_tty();
    (void)signal(sig, SIG_DFL);
    (void)raise(sig);
}

/* passwd_echo - turn the terminal's echo off (0) or back on (1) */
static void passwd_echo(int on)
{
    static const int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP};
    struct termios quiet;

    if (on) {
        passwd_restore_tty();
        return;
    }
    if (tcgetattr(STDIN_FILENO, &passwd_saved_tty) < 0)
        msg_fatal_status(EX_IOERR, "cannot read the terminal's settings: %m");
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        (void)signal(sigs[i], passwd_signal);
    quiet = passwd_saved_tty;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    passwd_echo_off = 1;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        msg_fatal_status(EX_IOERR, "cannot turn the terminal's echo off: %m");
}

/* passwd_read_line - one line of standard input into buf; its length without the newline */
static size_t passwd_read_line(char *buf)
{
    size_t len = 0;
    ssize_t n;
    char ch;

    /* A byte at a time: nothing past the line is read, nothing is buffered. */
    for (;;) {
        n = read(STDIN_FILENO, &ch, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            passwd_echo(1);
            msg_fatal_status(EX_IOERR, "read the password: %m");
        }
        if (n == 0 || ch == '\n')
            break;
        if (len < PASSWD_BUF)
            buf[len++] = ch;
    }
    return len;
}

/* passwd_check - refuse a password no AUTH could ever match */
static void passwd_check(const char *password, size_t len)
{
    if (len == 0)
        msg_fatal_status(EX_DATAERR, "empty password refused");
    if (len > SMTPD_PASSWD_PASSWORD_MAX)
        msg_fatal_status(EX_DATAERR, "password longer than %d bytes refused",
                         SMTPD_PASSWD_PASSWORD_MAX);
    if (memchr(password, '\0', len) != NULL)
        msg_fatal_status(EX_DATAERR, "password with a NUL byte refused");
}

/* passwd_ask - the password from the terminal, typed twice without echo */
static size_t passwd_ask(char *password)
{
    char *again = guarded_alloc(PASSWD_BUF);
    size_t len, again_len;
    int same;

    fputs("Password: ", stderr);
    passwd_echo(0);
    len = passwd_read_line(password);
    fputs("\nAgain: ", stderr);
    again_len = passwd_read_line(again);
    passwd_echo(1);
    fputs("\n", stderr);
    same = len == again_len && sodium_memcmp(password, again, len) == 0;
    sodium_free(again);
    if (!same)
        msg_fatal_status(EX_DATAERR, "the passwords differ");
    return len;
}

/* passwd_main - "relayq passwd USER": a line for smtpd_sasl_password_file */
int passwd_main(int argc, char **argv)
{
    char hash[crypto_pwhash_STRBYTES];
    VSTR *why = vstr_alloc(64);
    const char *user;
    char *password, *shown;
    size_t len;

    /* No options; "--" before a name that starts with "-". */
    opterr = 0;
    if (getopt(argc, argv, "+") != -1 || argc - optind != 1)
        relayq_usage("passwd", NULL);
    user = argv[optind];
    if (smtpd_passwd_check_user(user, strlen(user), why) < 0) {
        shown = relayq_printable(user, 0);
        msg_fatal_status(EX_USAGE, "bad user name \"%s\": %s", shown, vstr_str(why));
    }
    if (sodium_init() < 0)
        msg_fatal_status(EX_SOFTWARE, "cannot initialise libsodium");
    password = guarded_alloc(PASSWD_BUF);
    len = isatty(STDIN_FILENO) ? passwd_ask(password) : passwd_read_line(password);
    passwd_check(password, len);
    if (crypto_pwhash_str_alg(hash, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) < 0)
        msg_fatal_status(EX_OSERR, "cannot hash the password: out of memory");
    sodium_free(password);
    printf("%s:%s\n", user, hash);
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal_status(EX_IOERR, "write standard output: %m");
    vstr_free(why);
    return 0;
}
