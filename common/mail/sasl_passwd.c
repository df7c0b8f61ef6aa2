/*
 * sasl_passwd - the SMTP AUTH credentials file (smtp_sasl_password_maps)
 *
 * sasl_passwd_path()
 *	the file a map value names: Postfix's "texthash:" or "hash:" prefix
 *	is accepted and dropped, because relayq reads the text file itself
 *	(there is no .db to build).
 * sasl_passwd_check_owner()
 *	whether a credentials file of owner `uid` and mode `mode` may be
 *	used: owned by root or by `owner` (mail_owner), and neither
 *	readable, writable nor searchable by other users. -1 with the reason
 *	"PATH: refusing credentials file: ..." otherwise.
 * sasl_passwd_load()
 *	read the file: "KEY USER:SECRET" per line, KEY "[host]:port",
 *	"host:port", "[host]" or "host", "#" comments and blank lines
 *	skipped; a SECRET "xoauth2:PATH" means XOAUTH2 with the bearer token
 *	read from PATH. A malformed line is reported through `complain` and
 *	skipped; the first line for a key wins. NULL with the reason when
 *	the file cannot be read or is refused by sasl_passwd_check_owner().
 * sasl_passwd_free(), sasl_passwd_count()
 *	destroy a table (secrets wiped); the number of credentials.
 * sasl_passwd_find()
 *	the credential for a key (compared without regard to case), or NULL.
 * sasl_passwd_find_relay()
 *	the credential for a relay, looked up in this order: the relay as
 *	the configuration writes it (relayhost, when it names this host and
 *	port; may be NULL), "[host]:port", "host:port", "[host]", "host".
 * sasl_cred_refresh()
 *	XOAUTH2: read the token file again when its size or modification
 *	time changed since the last read (a no-op for a password).
 * sasl_cred_open(), sasl_cred_close()
 *	make the secret readable for the moment it is needed, and
 *	inaccessible again.
 *
 * Secrets (and the file's text while it is parsed) live in libsodium
 * guarded memory (sodium_malloc), inaccessible (sodium_mprotect_noaccess)
 * except between sasl_cred_open() and sasl_cred_close(), and wiped when
 * freed. Nothing here logs a secret. A credential's identity (`id`) is a
 * hash keyed with a per-process random key, so it can be compared to tell
 * a changed secret without keeping or revealing the secret.
 *
 * Ownership: the table owns its credentials; callers borrow them until
 * sasl_passwd_free(). Failures are returned; a libsodium that cannot be
 * initialised, or guarded memory that cannot be had, is fatal.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guarded.h"
#include "msg.h"
#include "mymalloc.h"
#include "sasl_passwd.h"

#define SASL_FILE_MAX (1024 * 1024) /* bytes of a credentials file */
#define SASL_TOKEN_MAX 65536        /* bytes of an XOAUTH2 token file */
#define SASL_XOAUTH2_PREFIX "xoauth2:"

struct SASL_PASSWD {
    SASL_CRED *creds;
    size_t count;
};

static unsigned char sasl_id_key[crypto_generichash_KEYBYTES];
static int sasl_id_key_ready;

/* sasl_sodium_init - libsodium must be initialised before guarded memory */
static void sasl_sodium_init(void)
{
    if (sodium_init() < 0)
        msg_fatal("cannot initialise libsodium");
    if (!sasl_id_key_ready) {
        randombytes_buf(sasl_id_key, sizeof(sasl_id_key));
        sasl_id_key_ready = 1;
    }
}

/* sasl_passwd_path - the text file behind a map value */
const char *sasl_passwd_path(const char *map)
{
    if (strncmp(map, "texthash:", 9) == 0)
        return map + 9;
    if (strncmp(map, "hash:", 5) == 0)
        return map + 5;
    return map;
}

/* sasl_passwd_check_owner - may a file with this owner and mode hold secrets */
int sasl_passwd_check_owner(const char *path, uid_t uid, mode_t mode, uid_t owner, VSTR *why)
{
    if (uid != 0 && uid != owner) {
        vstr_sprintf(why, "%s: refusing credentials file: owned by uid %ld, not root or mail_owner",
                     path, (long)uid);
        return -1;
    }
    if (mode & 007) {
        vstr_sprintf(why, "%s: refusing credentials file: %s by other users (mode %04o)", path,
                     (mode & 004)   ? "readable"
                     : (mode & 002) ? "writable"
                                    : "accessible",
                     (unsigned)(mode & 07777));
        return -1;
    }
    return 0;
}

/* sasl_cred_hash - the credential's identity: user and secret (or token file), keyed */
static void sasl_cred_hash(SASL_CRED *cred)
{
    crypto_generichash_state state;
    const unsigned char zero = 0;

    crypto_generichash_init(&state, sasl_id_key, sizeof(sasl_id_key), SASL_ID_LEN);
    crypto_generichash_update(&state, (const unsigned char *)cred->user, strlen(cred->user));
    crypto_generichash_update(&state, &zero, 1);
    if (cred->token_file != NULL) {
        /* A refreshed token is the same credential: the identity is its file. */
        crypto_generichash_update(&state, (const unsigned char *)SASL_XOAUTH2_PREFIX,
                                  sizeof(SASL_XOAUTH2_PREFIX) - 1);
        crypto_generichash_update(&state, (const unsigned char *)cred->token_file,
                                  strlen(cred->token_file));
    } else {
        (void)sodium_mprotect_readonly(cred->secret);
        crypto_generichash_update(&state, cred->secret, cred->secret_len);
        (void)sodium_mprotect_noaccess(cred->secret);
    }
    crypto_generichash_final(&state, cred->id, SASL_ID_LEN);
}

/* sasl_complain - report a malformed line */
static void sasl_complain(SASL_PASSWD_COMPLAIN_FN complain, const char *path, int lineno,
                          const char *reason)
{
    VSTR *text = vstr_alloc(128);

    vstr_sprintf(text, "%s:%d: %s", path, lineno, reason);
    if (complain != NULL)
        complain(vstr_str(text));
    else
        msg_warn("%s", vstr_str(text));
    vstr_free(text);
}

/* sasl_passwd_line - parse one line (NUL-terminated, in guarded memory) into the table */
static void sasl_passwd_line(SASL_PASSWD *table, char *line, const char *path, int lineno,
                             SASL_PASSWD_COMPLAIN_FN complain)
{
    char *key, *value, *colon, *end;
    size_t key_len, secret_len;
    SASL_CRED *cred;

    while (*line == ' ' || *line == '\t')
        line++;
    end = line + strlen(line);
    while (end > line && isspace((unsigned char)end[-1]))
        *--end = '\0';
    if (*line == '\0' || *line == '#')
        return;
    key = line;
    key_len = strcspn(key, " \t");
    if (key[key_len] == '\0') {
        sasl_complain(complain, path, lineno, "expected \"relay user:secret\", found no value");
        return;
    }
    key[key_len] = '\0';
    value = key + key_len + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    if ((colon = strchr(value, ':')) == NULL || colon == value || colon[1] == '\0') {
        sasl_complain(complain, path, lineno, "expected \"user:secret\" after the relay");
        return;
    }
    for (size_t i = 0; i < key_len; i++)
        key[i] = (char)tolower((unsigned char)key[i]);
    for (size_t i = 0; i < table->count; i++) {
        if (strcmp(table->creds[i].key, key) == 0) {
            sasl_complain(complain, path, lineno, "duplicate entry for this relay; ignored");
            return;
        }
    }
    table->creds = myrealloc(table->creds, (table->count + 1) * sizeof(*table->creds));
    cred = table->creds + table->count++;
    memset(cred, 0, sizeof(*cred));
    cred->key = mystrdup(key);
    cred->user = mystrndup(value, (size_t)(colon - value));
    if (strncasecmp(colon + 1, SASL_XOAUTH2_PREFIX, sizeof(SASL_XOAUTH2_PREFIX) - 1) == 0 &&
        colon[sizeof(SASL_XOAUTH2_PREFIX)] != '\0') {
        cred->token_file = mystrdup(colon + sizeof(SASL_XOAUTH2_PREFIX));
    } else {
        secret_len = strlen(colon + 1);
        cred->secret = guarded_alloc(secret_len + 1);
        memcpy(cred->secret, colon + 1, secret_len + 1);
        cred->secret_len = secret_len;
        (void)sodium_mprotect_noaccess(cred->secret);
    }
    sasl_cred_hash(cred);
}

/* sasl_passwd_load - read and check the credentials file */
SASL_PASSWD *sasl_passwd_load(const char *map, uid_t owner, SASL_PASSWD_COMPLAIN_FN complain,
                              VSTR *why)
{
    const char *path = sasl_passwd_path(map);
    SASL_PASSWD *table;
    unsigned char *text;
    struct stat st;
    size_t len;
    int fd, lineno = 0;
    char *line, *next;

    sasl_sodium_init();
    if ((fd = guarded_open(path, "credentials file", &st, why)) < 0)
        return NULL;
    if (!S_ISREG(st.st_mode)) {
        vstr_sprintf(why, "%s: refusing credentials file: not a regular file", path);
        (void)close(fd);
        return NULL;
    }
    if (sasl_passwd_check_owner(path, st.st_uid, st.st_mode, owner, why) < 0) {
        (void)close(fd);
        return NULL;
    }
    if (st.st_size > SASL_FILE_MAX) {
        vstr_sprintf(why, "%s: credentials file larger than %d bytes", path, SASL_FILE_MAX);
        (void)close(fd);
        return NULL;
    }
    text = (unsigned char *)guarded_read_file(fd, path, (size_t)st.st_size, why);
    len = (size_t)st.st_size;
    (void)close(fd);
    if (text == NULL)
        return NULL;
    table = mycalloc(1, sizeof(*table));
    for (line = (char *)text; line < (char *)text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)((char *)text + len - line));

        lineno++;
        if (nl != NULL) {
            *nl = '\0';
            next = nl + 1;
        } else {
            next = (char *)text + len;
        }
        if (strlen(line) != (size_t)(next - line) - (nl != NULL)) {
            sasl_complain(complain, path, lineno, "NUL byte in line; ignored");
            continue;
        }
        sasl_passwd_line(table, line, path, lineno, complain);
    }
    sodium_free(text); /* wipes the file's text */
    return table;
}

/* sasl_cred_wipe - release one credential's memory */
static void sasl_cred_wipe(SASL_CRED *cred)
{
    myfree(cred->key);
    myfree(cred->user);
    myfree(cred->token_file);
    if (cred->secret != NULL)
        sodium_free(cred->secret);
    sodium_memzero(cred, sizeof(*cred));
}

/* sasl_passwd_free - destroy a table and wipe its secrets */
void sasl_passwd_free(SASL_PASSWD *table)
{
    if (table == NULL)
        return;
    for (size_t i = 0; i < table->count; i++)
        sasl_cred_wipe(table->creds + i);
    myfree(table->creds);
    myfree(table);
}

/* sasl_passwd_count - how many credentials the table holds */
size_t sasl_passwd_count(const SASL_PASSWD *table)
{
    return table != NULL ? table->count : 0;
}

/* sasl_passwd_find - the credential for a key */
SASL_CRED *sasl_passwd_find(SASL_PASSWD *table, const char *key)
{
    if (table == NULL)
        return NULL;
    for (size_t i = 0; i < table->count; i++)
        if (strcasecmp(table->creds[i].key, key) == 0)
            return table->creds + i;
    return NULL;
}

/* sasl_passwd_find_relay - the credential for a relay: as written, then each key form */
SASL_CRED *sasl_passwd_find_relay(SASL_PASSWD *table, const char *written, const char *host,
                                  unsigned port)
{
    char key[SASL_RELAY_KEY_MAX];
    SASL_CRED *cred;

    if (written != NULL && (cred = sasl_passwd_find(table, written)) != NULL)
        return cred;
    for (int i = 0; i < 4; i++) {
        if (i == 0)
            snprintf(key, sizeof(key), "[%s]:%u", host, port);
        else if (i == 1)
            snprintf(key, sizeof(key), "%s:%u", host, port);
        else if (i == 2)
            snprintf(key, sizeof(key), "[%s]", host);
        else
            snprintf(key, sizeof(key), "%s", host);
        if ((cred = sasl_passwd_find(table, key)) != NULL)
            return cred;
    }
    return NULL;
}

/* sasl_cred_refresh - read an XOAUTH2 token file again when it changed */
int sasl_cred_refresh(SASL_CRED *cred, VSTR *why)
{
    struct stat st;
    unsigned char *text, *start, *end;
    size_t len;
    int fd;

    if (cred->token_file == NULL)
        return 0;
    if ((fd = open(cred->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        vstr_sprintf(why, "cannot open XOAUTH2 token file %s: %s", cred->token_file,
                     strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SASL_TOKEN_MAX) {
        vstr_sprintf(why, "XOAUTH2 token file %s: not a regular file of at most %d bytes",
                     cred->token_file, SASL_TOKEN_MAX);
        (void)close(fd);
        return -1;
    }
    if (cred->secret != NULL && st.st_mtim.tv_sec == cred->token_mtime &&
        st.st_mtim.tv_nsec == cred->token_mtime_ns && st.st_size == cred->token_size) {
        (void)close(fd);
        return 0;
    }
    text = (unsigned char *)guarded_read_file(fd, cred->token_file, (size_t)st.st_size, why);
    len = (size_t)st.st_size;
    (void)close(fd);
    if (text == NULL)
        return -1;
    start = text;
    end = text + len;
    while (start < end && isspace(*start))
        start++;
    while (end > start && isspace(end[-1]))
        end--;
    if (end == start || memchr(start, '\0', (size_t)(end - start)) != NULL) {
        vstr_sprintf(why, "XOAUTH2 token file %s is empty or not text", cred->token_file);
        sodium_free(text);
        return -1;
    }
    if (cred->secret != NULL)
        sodium_free(cred->secret);
    cred->secret_len = (size_t)(end - start);
    cred->secret = guarded_alloc(cred->secret_len + 1);
    memcpy(cred->secret, start, cred->secret_len);
    cred->secret[cred->secret_len] = '\0';
    (void)sodium_mprotect_noaccess(cred->secret);
    sodium_free(text);
    cred->token_mtime = st.st_mtim.tv_sec;
    cred->token_mtime_ns = st.st_mtim.tv_nsec;
    cred->token_size = st.st_size;
    return 1;
}

/* sasl_cred_open - the secret, readable until sasl_cred_close() */
const char *sasl_cred_open(SASL_CRED *cred)
{
    if (cred->secret == NULL)
        msg_panic("sasl_cred_open: %s: no secret loaded", cred->key);
    (void)sodium_mprotect_readonly(cred->secret);
    return (const char *)cred->secret;
}

/* sasl_cred_close - the secret is inaccessible again */
void sasl_cred_close(SASL_CRED *cred)
{
    if (cred->secret != NULL)
        (void)sodium_mprotect_noaccess(cred->secret);
}
