/*
 * smtpd_passwd - the users SMTP clients may authenticate as (smtpd_sasl_password_file)
 *
 * smtpd_passwd_load()
 *	read the password file: "USER:HASH" per line, HASH an argon2id
 *	string as "relayq passwd" prints it, "#" comment lines and blank
 *	lines skipped. The file must be a regular file (not reached through
 *	a symbolic link) of at most SMTPD_PASSWD_FILE_MAX bytes, owned by
 *	root or by the user who loads it (mail_owner), writable by nobody
 *	else and unreadable by other users. Any malformed line refuses the
 *	whole file: NULL with "FILE:LINE: reason" (or "FILE: reason") in why.
 * smtpd_passwd_verify()
 *	whether a user and password given with AUTH match the file:
 *	SMTPD_AUTH_OK, SMTPD_AUTH_FAILED, or SMTPD_AUTH_TEMPFAIL when argon2
 *	cannot get its memory.
 * smtpd_passwd_free()
 *	destroy the table; the cache and its key are wiped.
 * smtpd_passwd_count()
 *	the number of users.
 * smtpd_passwd_check_user()
 *	whether a user name may appear in the file (1 to
 *	SMTPD_PASSWD_USER_MAX bytes; no colon, space or control character,
 *	no "#" in front): 0, or -1 with the reason. "relayq passwd" checks
 *	with it too.
 *
 * Verifying an argon2id hash takes tens to hundreds of milliseconds, and
 * pickup does it inside its event loop. So each user remembers, after a
 * successful verification, a hash of the password keyed with a random key
 * of the table; the next AUTH with the same password is a keyed hash and
 * a constant-time compare. The cache never answers FAILED: a password
 * that does not match it is verified against the argon2id hash. An
 * unknown user's password is verified against another user's hash and
 * refused whatever the outcome, so that a guess costs the same whether the
 * user exists or not, and timing tells nobody which names are in the file.
 *
 * Ownership: the table owns its users and hashes (ordinary memory: they
 * are what the file holds, not secrets; the file's text passes through
 * guarded memory, as every credentials file does); the caller's password
 * is only read. Failures are returned; a libsodium that cannot be
 * initialised, or guarded memory that cannot be had, is fatal.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guarded.h"
#include "htable.h"
#include "msg.h"
#include "mymalloc.h"
#include "sasl_passwd.h"
#include "smtpd_passwd.h"

/* The text of a number macro, for messages made at compile time. */
#define SMTPD_PASSWD_STR(n) SMTPD_PASSWD_STR2(n)
#define SMTPD_PASSWD_STR2(n) #n

/* One user of the file. */
typedef struct SMTPD_PASSWD_USER {
    char *hash;                                   /* argon2id string, as in the file */
    int lineno;                                   /* where it is, for a duplicate's error */
    int cached;                                   /* `seen` holds a verified password */
    unsigned char seen[crypto_generichash_BYTES]; /* keyed hash of that password */
} SMTPD_PASSWD_USER;

/* The file as loaded: its users by name, and the key of the cache. */
struct SMTPD_PASSWD {
    HTABLE *users;                                  /* name -> SMTPD_PASSWD_USER */
    SMTPD_PASSWD_USER *decoy;                       /* verified for unknown users; NULL: none */
    unsigned char key[crypto_generichash_KEYBYTES]; /* random, made at load */
};

/* smtpd_passwd_user_problem - what makes a name no user of the file, or NULL */
static const char *smtpd_passwd_user_problem(const char *user, size_t len)
{
    if (len == 0)
        return "empty user name";
    if (len > SMTPD_PASSWD_USER_MAX)
        return "user name longer than " SMTPD_PASSWD_STR(SMTPD_PASSWD_USER_MAX) " bytes";
    if (user[0] == '#')
        return "user name starting with \"#\": the line would be a comment";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)user[i];

        if (ch < 0x20 || ch == 0x7f)
            return "control character in user name";
        if (ch == ' ')
            return "space in user name";
        if (ch == ':')
            return "colon in user name";
    }
    return NULL;
}

/* smtpd_passwd_check_user - may this name be a user of the file */
int smtpd_passwd_check_user(const char *user, size_t len, VSTR *why)
{
    const char *problem = smtpd_passwd_user_problem(user, len);

    if (problem == NULL)
        return 0;
    vstr_strcpy(why, problem);
    return -1;
}

/* smtpd_passwd_user_free - release one user, its cache wiped */
static void smtpd_passwd_user_free(void *value)
{
    SMTPD_PASSWD_USER *entry = value;

    myfree(entry->hash);
    sodium_memzero(entry, sizeof(*entry));
    myfree(entry);
}

/* smtpd_passwd_bad - "FILE:LINE: reason" in why, and -1 */
static int smtpd_passwd_bad(VSTR *why, const char *path, int lineno, const char *reason)
{
    vstr_sprintf(why, "%s:%d: %s", path, lineno, reason);
    return -1;
}

/* smtpd_passwd_line - add one line of the file; -1 with "FILE:LINE: reason" */
static int smtpd_passwd_line(SMTPD_PASSWD *pw, const char *line, size_t len, const char *path,
                             int lineno, VSTR *why)
{
    SMTPD_PASSWD_USER *entry, *first;
    const char *colon, *hash, *problem;
    size_t user_len, blank = strspn(line, " \t");
    char *user;

    if (len > SMTPD_PASSWD_LINE_MAX) {
        vstr_sprintf(why, "%s:%d: line longer than %d bytes", path, lineno, SMTPD_PASSWD_LINE_MAX);
        return -1;
    }
    if (memchr(line, '\0', len) != NULL)
        return smtpd_passwd_bad(why, path, lineno, "NUL byte in line");
    if (blank == len || line[blank] == '#')
        return 0;
    if ((colon = memchr(line, ':', len)) == NULL)
        return smtpd_passwd_bad(why, path, lineno, "expected \"user:hash\"");
    user_len = (size_t)(colon - line);
    if ((problem = smtpd_passwd_user_problem(line, user_len)) != NULL)
        return smtpd_passwd_bad(why, path, lineno, problem);
    hash = colon + 1;
    if (strncmp(hash, SMTPD_PASSWD_PREFIX, sizeof(SMTPD_PASSWD_PREFIX) - 1) != 0)
        return smtpd_passwd_bad(why, path, lineno,
                                "not an argon2id hash (a clear password?): make the line "
                                "with \"relayq passwd USER\"");
    /* The rehash test decodes the whole string: -1 for one that is not a hash. */
    if (crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0)
        return smtpd_passwd_bad(why, path, lineno,
                                "malformed argon2id hash: make the line with "
                                "\"relayq passwd USER\"");
    user = mystrndup(line, user_len);
    if ((first = htable_get(pw->users, user)) != NULL) {
        vstr_sprintf(why, "%s:%d: duplicate user \"%s\" (first on line %d)", path, lineno, user,
                     first->lineno);
        myfree(user);
        return -1;
    }
    entry = mycalloc(1, sizeof(*entry));
    entry->hash = mystrdup(hash);
    entry->lineno = lineno;
    htable_put(pw->users, user, entry);
    if (pw->decoy == NULL)
        pw->decoy = entry;
    myfree(user);
    return 0;
}

/* smtpd_passwd_open - open the file and check what was opened; -1 with the reason */
static int smtpd_passwd_open(const char *path, struct stat *st, VSTR *why)
{
    int fd;

    if (*path != '/') {
        vstr_sprintf(why, "%s: credentials file name is not an absolute path", path);
        return -1;
    }
    /* O_NONBLOCK: a FIFO put in the file's place must not stall the daemon. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK)) < 0) {
        if (errno == ELOOP)
            vstr_sprintf(why, "%s: refusing credentials file: a symbolic link", path);
        else
            vstr_sprintf(why, "%s: open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) < 0) {
        vstr_sprintf(why, "%s: fstat: %s", path, strerror(errno));
    } else if (!S_ISREG(st->st_mode)) {
        vstr_sprintf(why, "%s: refusing credentials file: not a regular file", path);
    } else if (sasl_passwd_check_owner(path, st->st_uid, st->st_mode, geteuid(), why) < 0) {
        /* the reason is set */
    } else if (st->st_mode & 020) {
        vstr_sprintf(why, "%s: refusing credentials file: writable by group (mode %04o)", path,
                     (unsigned)(st->st_mode & 07777));
    } else if (st->st_size > SMTPD_PASSWD_FILE_MAX) {
        vstr_sprintf(why, "%s: credentials file larger than %d bytes", path, SMTPD_PASSWD_FILE_MAX);
    } else {
        return fd;
    }
    (void)close(fd);
    return -1;
}

/* smtpd_passwd_load - read and check the password file */
SMTPD_PASSWD *smtpd_passwd_load(const char *path, VSTR *why)
{
    SMTPD_PASSWD *pw;
    struct stat st;
    char *text, *line, *end, *nl;
    int fd, lineno = 0;

    if (sodium_init() < 0)
        msg_fatal("cannot initialise libsodium");
    if ((fd = smtpd_passwd_open(path, &st, why)) < 0)
        return NULL;
    text = guarded_read_file(fd, path, (size_t)st.st_size, why);
    (void)close(fd);
    if (text == NULL)
        return NULL;
    pw = mycalloc(1, sizeof(*pw));
    pw->users = htable_create(16);
    randombytes_buf(pw->key, sizeof(pw->key));
    end = text + st.st_size;
    for (line = text; line < end; line = nl + 1) {
        if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
            nl = end;
        *nl = '\0';
        if (smtpd_passwd_line(pw, line, (size_t)(nl - line), path, ++lineno, why) < 0) {
            sodium_free(text);
            smtpd_passwd_free(pw);
            return NULL;
        }
    }
    sodium_free(text);
    return pw;
}

/* smtpd_passwd_argon2 - verify a password against a hash: OK, FAILED or TEMPFAIL */
static SMTPD_AUTH_RESULT smtpd_passwd_argon2(const char *hash, const char *password, size_t len)
{
    errno = 0;
    if (crypto_pwhash_str_verify(hash, password, len) == 0)
        return SMTPD_AUTH_OK;
    /* A mismatch is -1; so is argon2 without its memory, with ENOMEM. */
    return errno == ENOMEM ? SMTPD_AUTH_TEMPFAIL : SMTPD_AUTH_FAILED;
}

/* smtpd_passwd_verify - check a user and password given with AUTH */
SMTPD_AUTH_RESULT smtpd_passwd_verify(SMTPD_PASSWD *pw, const char *user, const char *password,
                                      size_t len)
{
    unsigned char seen[crypto_generichash_BYTES];
    SMTPD_PASSWD_USER *entry;
    SMTPD_AUTH_RESULT result;

    /* A password "relayq passwd" cannot have hashed never matches. */
    if (len > SMTPD_PASSWD_PASSWORD_MAX || memchr(password, '\0', len) != NULL)
        return SMTPD_AUTH_FAILED;
    crypto_generichash(seen, sizeof(seen), (const unsigned char *)password, len, pw->key,
                       sizeof(pw->key));
    if ((entry = htable_get(pw->users, user)) == NULL) {
        sodium_memzero(seen, sizeof(seen));
        if (pw->decoy == NULL)
            return SMTPD_AUTH_FAILED;
        /* The same work as for a user of the file; only the verdict is dropped. */
        result = smtpd_passwd_argon2(pw->decoy->hash, password, len);
        return result == SMTPD_AUTH_TEMPFAIL ? SMTPD_AUTH_TEMPFAIL : SMTPD_AUTH_FAILED;
    }
    if (entry->cached && sodium_memcmp(seen, entry->seen, sizeof(seen)) == 0) {
        sodium_memzero(seen, sizeof(seen));
        return SMTPD_AUTH_OK;
    }
    result = smtpd_passwd_argon2(entry->hash, password, len);
    if (result == SMTPD_AUTH_OK) {
        memcpy(entry->seen, seen, sizeof(seen));
        entry->cached = 1;
    }
    sodium_memzero(seen, sizeof(seen));
    return result;
}

/* smtpd_passwd_count - how many users the file has */
size_t smtpd_passwd_count(const SMTPD_PASSWD *pw)
{
    return pw != NULL ? htable_count(pw->users) : 0;
}

/* smtpd_passwd_free - destroy the table, cache and key wiped */
void smtpd_passwd_free(SMTPD_PASSWD *pw)
{
    if (pw == NULL)
        return;
    htable_free(pw->users, smtpd_passwd_user_free);
    sodium_memzero(pw, sizeof(*pw));
    myfree(pw);
}
