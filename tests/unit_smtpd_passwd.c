/*
 * unit_smtpd_passwd - tests of the SMTP AUTH password file (smtpd_passwd.c)
 *
 * A table of file contents and modes, each loaded from a fresh file: it
 * loads with so many users, or is refused with the exact reason ("%F"
 * stands for the file's name). In the text, "%A" and "%B" stand for the
 * hashes of alice's and bob's passwords, "%0" for a NUL byte. Then the
 * files that are not what they seem (a symbolic link, a FIFO, a directory,
 * a relative name, a missing file, one byte too many), and the answers of
 * smtpd_passwd_verify(): the right password, a wrong one, an unknown user,
 * the same answers again from the cache, a NUL in the password, one too
 * long. The hashes are made at libsodium's least cost so the test is
 * fast, except one at the cost "relayq passwd" uses, to show that the
 * cache answers at once and that an unknown user costs a verification.
 */
#include "config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "smtpd_passwd.h"
#include "tap.h"
#include "vstr.h"

#define ALICE_PW "alice's password"
#define BOB_PW "bob: pw"

/* One file: its text, its mode, and what loading it gives. */
struct load_case {
    const char *name;
    const char *text;
    mode_t mode;
    int users;         /* users loaded, or -1: refused */
    const char *error; /* the reason, when refused */
};

static const struct load_case load_cases[] = {
    {"users, comments and blank lines",
     "# SMTP AUTH users\n\nalice:%A\n  \t\n   # indented comment\nbob:%B", 0600, 2, NULL},
    {"an empty file", "", 0600, 0, NULL},
    {"only comments", "# nobody yet\n", 0600, 0, NULL},
    {"group may read", "alice:%A\n", 0640, 1, NULL},
    {"a clear password", "alice:%A\nbob:bob-secret\n", 0600, -1,
     "%F:2: not an argon2id hash (a clear password?): make the line with \"relayq passwd USER\""},
    {"an empty hash", "alice:\n", 0600, -1,
     "%F:1: not an argon2id hash (a clear password?): make the line with \"relayq passwd USER\""},
    {"an argon2i hash", "alice:$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\n", 0600, -1,
     "%F:1: not an argon2id hash (a clear password?): make the line with \"relayq passwd USER\""},
    {"a truncated hash", "alice:$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ\n", 0600, -1,
     "%F:1: malformed argon2id hash: make the line with \"relayq passwd USER\""},
    {"a hash with text after it", "alice:%A trailing\n", 0600, -1,
     "%F:1: malformed argon2id hash: make the line with \"relayq passwd USER\""},
    {"a CRLF line end", "alice:%A\r\n", 0600, -1,
     "%F:1: malformed argon2id hash: make the line with \"relayq passwd USER\""},
    {"no colon", "\n\nalice\n", 0600, -1, "%F:3: expected \"user:hash\""},
    {"a duplicate user", "alice:%A\nbob:%B\nalice:%B\n", 0600, -1,
     "%F:3: duplicate user \"alice\" (first on line 1)"},
    {"an empty user", ":%A\n", 0600, -1, "%F:1: empty user name"},
    {"a space in the user", "al ice:%A\n", 0600, -1, "%F:1: space in user name"},
    {"a blank before the user", " alice:%A\n", 0600, -1, "%F:1: space in user name"},
    {"a control character in the user", "al\tice:%A\n", 0600, -1,
     "%F:1: control character in user name"},
    {"a DEL in the user", "al\177ice:%A\n", 0600, -1, "%F:1: control character in user name"},
    {"a NUL in a line", "alice:%A\nbob%0:%B\n", 0600, -1, "%F:2: NUL byte in line"},
    {"UTF-8 and punctuation in users", "j\xc3\xb6rg@example.com:%A\nx-y_z.w+1:%B\n", 0600, 2, NULL},
    {"writable by other users", "alice:%A\n", 0602, -1,
     "%F: refusing credentials file: writable by other users (mode 0602)"},
    {"readable by other users", "alice:%A\n", 0644, -1,
     "%F: refusing credentials file: readable by other users (mode 0644)"},
    {"writable by the group", "alice:%A\n", 0620, -1,
     "%F: refusing credentials file: writable by group (mode 0620)"},
    {"writable by the group, a bad line", "alice\n", 0660, -1,
     "%F: refusing credentials file: writable by group (mode 0660)"},
};

static char alice_hash[crypto_pwhash_STRBYTES];
static char bob_hash[crypto_pwhash_STRBYTES];

/* expand - a case's text or reason with its placeholders replaced */
static void expand(VSTR *out, const char *text, const char *path)
{
    vstr_reset(out);
    for (; *text; text++) {
        if (text[0] == '%' && text[1] != '\0') {
            switch (*++text) {
            case 'A':
                vstr_strcat(out, alice_hash);
                continue;
            case 'B':
                vstr_strcat(out, bob_hash);
                continue;
            case 'F':
                vstr_strcat(out, path);
                continue;
            case '0':
                vstr_addch(out, '\0');
                continue;
            }
            text--;
        }
        vstr_addch(out, *text);
    }
}

/* write_file - create a file with these bytes and this mode */
static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    FILE *fp;

    (void)unlink(path);
    if ((fp = fopen(path, "w")) == NULL || fwrite(data, 1, len, fp) != len || fclose(fp) != 0 ||
        chmod(path, mode) < 0) {
        perror(path);
        exit(1);
    }
}

/* load_refused - loading the file fails with exactly this reason */
static int load_refused(const char *path, const char *expected, VSTR *why)
{
    SMTPD_PASSWD *pw = smtpd_passwd_load(path, why);

    smtpd_passwd_free(pw);
    if (pw == NULL && strcmp(vstr_str(why), expected) == 0)
        return 1;
    tap_diag("expected: %s", expected);
    tap_diag("got:      %s", pw != NULL ? "(loaded)" : vstr_str(why));
    return 0;
}

/* make_hash - a hash at libsodium's least cost */
static void make_hash(char *out, const char *password, size_t len)
{
    if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_MIN,
                          crypto_pwhash_MEMLIMIT_MIN) < 0) {
        printf("Bail out! crypto_pwhash_str failed\n");
        exit(1);
    }
}

/* now_us - a monotonic clock in microseconds */
static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* verify_us - how long one verification took; its result in *result */
static double verify_us(SMTPD_PASSWD *pw, const char *user, const char *password,
                        SMTPD_AUTH_RESULT *result)
{
    double start = now_us();

    *result = smtpd_passwd_verify(pw, user, password, strlen(password));
    return now_us() - start;
}

/* test_load - the table of files */
static void test_load(const char *path, VSTR *why)
{
    VSTR *text = vstr_alloc(256), *expected = vstr_alloc(256);
    SMTPD_PASSWD *pw;

    for (size_t i = 0; i < sizeof(load_cases) / sizeof(load_cases[0]); i++) {
        const struct load_case *c = load_cases + i;

        expand(text, c->text, path);
        write_file(path, vstr_str(text), vstr_len(text), c->mode);
        if (c->users >= 0) {
            pw = smtpd_passwd_load(path, why);
            tap_ok(pw != NULL && smtpd_passwd_count(pw) == (size_t)c->users, "%s: %d users (%s)",
                   c->name, c->users, pw != NULL ? "loaded" : vstr_str(why));
            smtpd_passwd_free(pw);
        } else {
            expand(expected, c->error, path);
            tap_ok(load_refused(path, vstr_str(expected), why), "%s: refused", c->name);
        }
    }
    vstr_free(text);
    vstr_free(expected);
}

/* test_files - files that are not what they seem, and the bounds */
static void test_files(const char *dir, const char *path, VSTR *why)
{
    VSTR *text = vstr_alloc(SMTPD_PASSWD_FILE_MAX + 2), *expected = vstr_alloc(256);
    char link[256], fifo[256], line[SMTPD_PASSWD_LINE_MAX + 1];
    SMTPD_PASSWD *pw;

    snprintf(link, sizeof(link), "%s/link", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    write_file(path, "", 0, 0600);
    if (symlink(path, link) < 0 || mkfifo(fifo, 0600) < 0) {
        perror(dir);
        exit(1);
    }
    vstr_sprintf(expected, "%s: refusing credentials file: a symbolic link", link);
    tap_ok(load_refused(link, vstr_str(expected), why), "a symbolic link refused");
    vstr_sprintf(expected, "%s: refusing credentials file: not a regular file", fifo);
    tap_ok(load_refused(fifo, vstr_str(expected), why), "a FIFO refused, without waiting");
    vstr_sprintf(expected, "%s: refusing credentials file: not a regular file", dir);
    tap_ok(load_refused(dir, vstr_str(expected), why), "a directory refused");
    tap_ok(load_refused("relative/passwd",
                        "relative/passwd: credentials file name is not an "
                        "absolute path",
                        why),
           "a relative name refused");
    vstr_sprintf(expected, "%s/missing: open: No such file or directory", dir);
    vstr_sprintf(text, "%s/missing", dir);
    tap_ok(load_refused(vstr_str(text), vstr_str(expected), why), "a missing file");

    /* Lines of 512 bytes (newline excluded): the longest accepted. */
    memset(line, 'x', SMTPD_PASSWD_LINE_MAX);
    line[0] = '#';
    line[SMTPD_PASSWD_LINE_MAX] = '\n';
    vstr_reset(text);
    while (vstr_len(text) + sizeof(line) <= SMTPD_PASSWD_FILE_MAX)
        vstr_append(text, line, sizeof(line));
    while (vstr_len(text) < SMTPD_PASSWD_FILE_MAX)
        vstr_addch(text, '\n');
    write_file(path, vstr_str(text), vstr_len(text), 0600);
    pw = smtpd_passwd_load(path, why);
    tap_ok(pw != NULL && smtpd_passwd_count(pw) == 0, "a file of %d bytes, lines of %d, loads",
           SMTPD_PASSWD_FILE_MAX, SMTPD_PASSWD_LINE_MAX);
    smtpd_passwd_free(pw);
    vstr_addch(text, '\n');
    write_file(path, vstr_str(text), vstr_len(text), 0600);
    vstr_sprintf(expected, "%s: credentials file larger than %d bytes", path,
                 SMTPD_PASSWD_FILE_MAX);
    tap_ok(load_refused(path, vstr_str(expected), why), "one byte more is refused");
    vstr_strcpy(text, "\n#");
    for (int i = 0; i < SMTPD_PASSWD_LINE_MAX; i++)
        vstr_addch(text, 'x');
    write_file(path, vstr_str(text), vstr_len(text), 0600);
    vstr_sprintf(expected, "%s:2: line longer than %d bytes", path, SMTPD_PASSWD_LINE_MAX);
    tap_ok(load_refused(path, vstr_str(expected), why), "a line of %d bytes is refused",
           SMTPD_PASSWD_LINE_MAX + 1);

    /* User names of 255 and 256 bytes. */
    vstr_reset(text);
    for (int i = 0; i < SMTPD_PASSWD_USER_MAX; i++)
        vstr_addch(text, 'u');
    vstr_sprintf_append(text, ":%s\n", alice_hash);
    write_file(path, vstr_str(text), vstr_len(text), 0600);
    pw = smtpd_passwd_load(path, why);
    tap_ok(pw != NULL && smtpd_passwd_count(pw) == 1, "a user name of %d bytes",
           SMTPD_PASSWD_USER_MAX);
    smtpd_passwd_free(pw);
    vstr_strcpy(text, "u");
    for (int i = 0; i < SMTPD_PASSWD_USER_MAX; i++)
        vstr_addch(text, 'u');
    vstr_sprintf_append(text, ":%s\n", alice_hash);
    write_file(path, vstr_str(text), vstr_len(text), 0600);
    vstr_sprintf(expected, "%s:1: user name longer than %d bytes", path, SMTPD_PASSWD_USER_MAX);
    tap_ok(load_refused(path, vstr_str(expected), why), "a user name of %d bytes is refused",
           SMTPD_PASSWD_USER_MAX + 1);

    tap_ok(smtpd_passwd_check_user("#alice", 6, why) < 0 &&
               strcmp(vstr_str(why), "user name starting with \"#\": the line would be a "
                                     "comment") == 0,
           "a user name starting with # is refused (relayq passwd): %s", vstr_str(why));
    tap_ok(smtpd_passwd_check_user("a:b", 3, why) < 0 &&
               strcmp(vstr_str(why), "colon in user name") == 0,
           "a user name with a colon is refused (relayq passwd)");
    tap_ok(smtpd_passwd_check_user("alice@example.com", 17, why) == 0, "an address is a user");

    unlink(link);
    unlink(fifo);
    vstr_free(text);
    vstr_free(expected);
}

/* test_verify - the answers of smtpd_passwd_verify(), from argon2id and from the cache */
static void test_verify(const char *path, VSTR *why)
{
    char long_pw[SMTPD_PASSWD_PASSWORD_MAX + 2], long_hash[crypto_pwhash_STRBYTES];
    VSTR *text = vstr_alloc(512);
    SMTPD_PASSWD *pw;

    memset(long_pw, 'p', sizeof(long_pw) - 1);
    long_pw[sizeof(long_pw) - 1] = '\0';
    make_hash(long_hash, long_pw, SMTPD_PASSWD_PASSWORD_MAX);
    vstr_sprintf(text, "alice:%s\nbob:%s\nlong:%s\n", alice_hash, bob_hash, long_hash);
    write_file(path, vstr_str(text), vstr_len(text), 0600);
    if ((pw = smtpd_passwd_load(path, why)) == NULL) {
        printf("Bail out! %s\n", vstr_str(why));
        exit(1);
    }
    for (int round = 1; round <= 2; round++) {
        const char *when = round == 1 ? "first" : "again, alice and bob cached";

        tap_ok(smtpd_passwd_verify(pw, "alice", ALICE_PW, strlen(ALICE_PW)) == SMTPD_AUTH_OK,
               "%s: alice, her password: OK", when);
        tap_ok(smtpd_passwd_verify(pw, "bob", BOB_PW, strlen(BOB_PW)) == SMTPD_AUTH_OK,
               "%s: bob, his password: OK", when);
        tap_ok(smtpd_passwd_verify(pw, "alice", "wrong", 5) == SMTPD_AUTH_FAILED,
               "%s: alice, a wrong password: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "alice", BOB_PW, strlen(BOB_PW)) == SMTPD_AUTH_FAILED,
               "%s: alice, bob's password: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "bob", ALICE_PW, strlen(ALICE_PW)) == SMTPD_AUTH_FAILED,
               "%s: bob, alice's password: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "alice", ALICE_PW, strlen(ALICE_PW) - 1) ==
                   SMTPD_AUTH_FAILED,
               "%s: alice, her password less its last byte: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "Alice", ALICE_PW, strlen(ALICE_PW)) == SMTPD_AUTH_FAILED,
               "%s: user names are case-sensitive", when);
        /* The unknown user's guess is verified against alice's hash, and refused. */
        tap_ok(smtpd_passwd_verify(pw, "carol", ALICE_PW, strlen(ALICE_PW)) == SMTPD_AUTH_FAILED,
               "%s: an unknown user with alice's password: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "", "", 0) == SMTPD_AUTH_FAILED,
               "%s: an empty user and password: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "alice", ALICE_PW, strlen(ALICE_PW) + 1) ==
                   SMTPD_AUTH_FAILED,
               "%s: alice, her password and a NUL: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "alice", "alice's\0password", 16) == SMTPD_AUTH_FAILED,
               "%s: a NUL inside the password: FAILED", when);
        tap_ok(smtpd_passwd_verify(pw, "long", long_pw, SMTPD_PASSWD_PASSWORD_MAX) == SMTPD_AUTH_OK,
               "%s: a password of %d bytes: OK", when, SMTPD_PASSWD_PASSWORD_MAX);
        tap_ok(smtpd_passwd_verify(pw, "long", long_pw, SMTPD_PASSWD_PASSWORD_MAX + 1) ==
                   SMTPD_AUTH_FAILED,
               "%s: a password of %d bytes: FAILED", when, SMTPD_PASSWD_PASSWORD_MAX + 1);
    }
    smtpd_passwd_free(pw);

    write_file(path, "# nobody\n", 9, 0600);
    pw = smtpd_passwd_load(path, why);
    tap_ok(pw != NULL &&
               smtpd_passwd_verify(pw, "alice", ALICE_PW, strlen(ALICE_PW)) == SMTPD_AUTH_FAILED,
           "a file without users: FAILED");
    smtpd_passwd_free(pw);
    vstr_free(text);
}

/* test_cost - at the cost of relayq passwd: the answers, and (as a diagnostic, never a
 * result: timing decides no test) what the cache and an unknown user cost */
static void test_cost(const char *path, VSTR *why)
{
    char hash[crypto_pwhash_STRBYTES];
    double first, cached = 1e12, unknown, t;
    SMTPD_AUTH_RESULT r1, r2 = SMTPD_AUTH_OK, r3, r4;
    VSTR *text = vstr_alloc(256);
    SMTPD_PASSWD *pw;

    if (crypto_pwhash_str(hash, ALICE_PW, strlen(ALICE_PW), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0) {
        printf("Bail out! crypto_pwhash_str failed\n");
        exit(1);
    }
    vstr_sprintf(text, "alice:%s\n", hash);
    write_file(path, vstr_str(text), vstr_len(text), 0600);
    if ((pw = smtpd_passwd_load(path, why)) == NULL) {
        printf("Bail out! %s\n", vstr_str(why));
        exit(1);
    }
    first = verify_us(pw, "alice", ALICE_PW, &r1);
    for (int i = 0; i < 5; i++) {
        SMTPD_AUTH_RESULT r;

        if ((t = verify_us(pw, "alice", ALICE_PW, &r)) < cached)
            cached = t;
        if (r != SMTPD_AUTH_OK)
            r2 = r;
    }
    unknown = verify_us(pw, "mallory", "guess", &r3);
    (void)verify_us(pw, "alice", "guess", &r4);
    tap_diag("argon2id verification %.1f ms, cached %.1f us, unknown user %.1f ms", first / 1e3,
             cached, unknown / 1e3);
    tap_ok(r1 == SMTPD_AUTH_OK && r2 == SMTPD_AUTH_OK && r3 == SMTPD_AUTH_FAILED &&
               r4 == SMTPD_AUTH_FAILED,
           "interactive cost: OK, OK from the cache, FAILED, FAILED");
    smtpd_passwd_free(pw);
    vstr_free(text);
}

int main(void)
{
    char dir[] = "/tmp/unit_smtpd_passwd.XXXXXX";
    char path[256];
    VSTR *why = vstr_alloc(128);

    if (sodium_init() < 0 || mkdtemp(dir) == NULL) {
        printf("Bail out! sodium_init or mkdtemp failed\n");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/smtpd_passwd", dir);
    make_hash(alice_hash, ALICE_PW, strlen(ALICE_PW));
    make_hash(bob_hash, BOB_PW, strlen(BOB_PW));

    test_load(path, why);
    test_files(dir, path, why);
    test_verify(path, why);
    test_cost(path, why);

    unlink(path);
    rmdir(dir);
    vstr_free(why);
    return tap_done();
}
