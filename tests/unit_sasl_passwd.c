/*
 * unit_sasl_passwd - tests of the SMTP AUTH credentials file reader
 *
 * A file with every key form, comments, blank lines and an XOAUTH2 entry
 * loads, and lookups find the right user and secret; malformed lines are
 * reported with file:line and skipped; a file other users can read, or
 * one owned by another user, is refused with the reason smtpout logs; the
 * Postfix "texthash:"/"hash:" prefixes name the same file; an XOAUTH2
 * token is read from its file and read again only when the file changes;
 * the identity hash changes with the secret and not with a new token.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sasl_passwd.h"
#include "tap.h"

static int complaints;
static char last_complaint[512];

/* note_complaint - the loader's report of a malformed line */
static void note_complaint(const char *text)
{
    complaints++;
    snprintf(last_complaint, sizeof(last_complaint), "%s", text);
}

/* write_file - create a file with the given text and mode */
static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL || fputs(text, fp) == EOF || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
    if (chmod(path, mode) < 0) {
        perror(path);
        exit(1);
    }
}

int main(void)
{
    char dir[] = "/tmp/unit_sasl_passwd.XXXXXX";
    char path[256], token[256], map[300], text[1024];
    VSTR *why = vstr_alloc(128);
    SASL_PASSWD *table;
    SASL_CRED *cred, *tok;
    unsigned char id[SASL_ID_LEN];
    uid_t me = geteuid();

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/sasl_passwd", dir);
    snprintf(token, sizeof(token), "%s/token", dir);
    snprintf(text, sizeof(text),
             "# credentials\n"
             "\n"
             "[smtp.example.com]:587   alice:s3cret:with:colons\n"
             "  Relay.Example.NET\tbob:pw b\n"
             "mx.example.org:25 carol:xoauth2:%s\n"
             "broken-line-without-value\n"
             "[other.example.com] nocolon\n"
             "[smtp.example.com]:587 mallory:second\n",
             token);
    write_file(path, text, 0600);
    write_file(token, "tok-1\n", 0600);

    table = sasl_passwd_load(path, me, note_complaint, why);
    tap_ok(table != NULL, "a good file loads: %s", table ? "ok" : vstr_str(why));
    tap_ok(sasl_passwd_count(table) == 3, "three credentials (got %zu)", sasl_passwd_count(table));
    tap_ok(complaints == 3, "three malformed lines reported (got %d)", complaints);
    tap_ok(strstr(last_complaint, "sasl_passwd:8: duplicate") != NULL,
           "a complaint names file and line: %s", last_complaint);

    cred = sasl_passwd_find(table, "[SMTP.example.com]:587");
    tap_ok(cred != NULL && strcmp(cred->user, "alice") == 0, "[host]:port found, case-insensitive");
    tap_ok(cred != NULL && strcmp(sasl_cred_open(cred), "s3cret:with:colons") == 0,
           "the secret keeps its colons; the first entry for a key wins");
    if (cred != NULL)
        sasl_cred_close(cred);
    cred = sasl_passwd_find(table, "relay.example.net");
    tap_ok(cred != NULL && strcmp(cred->user, "bob") == 0 &&
               strcmp(sasl_cred_open(cred), "pw b") == 0,
           "bare host key, a secret with a space");
    if (cred != NULL)
        sasl_cred_close(cred);
    tap_ok(sasl_passwd_find(table, "[relay.example.net]") == NULL, "no key form is guessed here");

    /* A relay's credential: as written first, then [host]:port, host:port, [host], host. */
    static const struct {
        const char *written, *host;
        unsigned port;
        const char *user; /* NULL: none */
    } relays[] = {
        {NULL, "smtp.example.com", 587, "alice"},             /* [host]:port */
        {NULL, "SMTP.example.com", 587, "alice"},             /* any case */
        {NULL, "smtp.example.com", 25, NULL},                 /* another port */
        {NULL, "relay.example.net", 2525, "bob"},             /* the bare host, any port */
        {NULL, "mx.example.org", 25, "carol"},                /* host:port */
        {NULL, "mx.example.org", 26, NULL},                   /* not another port */
        {"relay.example.net", "smtp.example.com", 25, "bob"}, /* as written wins */
        {"[nowhere.example]", "mx.example.org", 25, "carol"}, /* then the forms */
        {NULL, "other.example.com", 25, NULL},                /* its line was malformed */
    };
    for (size_t i = 0; i < sizeof(relays) / sizeof(relays[0]); i++) {
        cred = sasl_passwd_find_relay(table, relays[i].written, relays[i].host, relays[i].port);
        tap_ok(
            relays[i].user ? cred != NULL && strcmp(cred->user, relays[i].user) == 0 : cred == NULL,
            "relay %s port %u (written %s): %s", relays[i].host, relays[i].port,
            relays[i].written ? relays[i].written : "-", relays[i].user ? relays[i].user : "none");
    }

    tok = sasl_passwd_find(table, "mx.example.org:25");
    tap_ok(tok != NULL && tok->token_file != NULL && strcmp(tok->token_file, token) == 0,
           "xoauth2: names the token file");
    tap_ok(tok != NULL && sasl_cred_refresh(tok, why) == 1 &&
               strcmp(sasl_cred_open(tok), "tok-1") == 0,
           "the token is read, whitespace trimmed");
    if (tok != NULL) {
        sasl_cred_close(tok);
        memcpy(id, tok->id, SASL_ID_LEN);
    }
    tap_ok(tok != NULL && sasl_cred_refresh(tok, why) == 0,
           "an unchanged token file is not read again");
    write_file(token, "tok-22\n", 0600);
    tap_ok(tok != NULL && sasl_cred_refresh(tok, why) == 1 &&
               strcmp(sasl_cred_open(tok), "tok-22") == 0,
           "a changed token file is read again");
    if (tok != NULL) {
        sasl_cred_close(tok);
        tap_ok(memcmp(id, tok->id, SASL_ID_LEN) == 0,
               "a new token keeps the credential's identity");
    } else {
        tap_ok(0, "a new token keeps the credential's identity");
    }
    memcpy(id, sasl_passwd_find(table, "relay.example.net")->id, SASL_ID_LEN);
    sasl_passwd_free(table);

    /* The same file behind Postfix prefixes; a changed secret has a new identity. */
    snprintf(text, sizeof(text), "relay.example.net bob:other\n");
    write_file(path, text, 0600);
    snprintf(map, sizeof(map), "texthash:%s", path);
    tap_ok(strcmp(sasl_passwd_path(map), path) == 0, "texthash: prefix dropped");
    snprintf(map, sizeof(map), "hash:%s", path);
    table = sasl_passwd_load(map, me, note_complaint, why);
    tap_ok(table != NULL && sasl_passwd_count(table) == 1, "hash: prefix loads the text file");
    cred = sasl_passwd_find(table, "relay.example.net");
    tap_ok(cred != NULL && memcmp(id, cred->id, SASL_ID_LEN) != 0,
           "a changed secret changes the identity");
    sasl_passwd_free(table);

    /* Refusals, with the words smtpout logs. */
    chmod(path, 0644);
    table = sasl_passwd_load(path, me, note_complaint, why);
    tap_ok(table == NULL && strstr(vstr_str(why), "refusing credentials file: readable by other "
                                                  "users (mode 0644)") != NULL,
           "mode 0644 refused: %s", vstr_str(why));
    chmod(path, 0602);
    table = sasl_passwd_load(path, me, note_complaint, why);
    tap_ok(table == NULL && strstr(vstr_str(why), "writable by other users (mode 0602)") != NULL,
           "mode 0602 refused: %s", vstr_str(why));
    chmod(path, 0640);
    table = sasl_passwd_load(path, me, note_complaint, why);
    tap_ok(table != NULL, "mode 0640 (group) accepted");
    sasl_passwd_free(table);
    tap_ok(sasl_passwd_check_owner(path, 12345, 0600, 54321, why) < 0 &&
               strstr(vstr_str(why), "owned by uid 12345, not root or mail_owner") != NULL,
           "another owner refused: %s", vstr_str(why));
    tap_ok(sasl_passwd_check_owner(path, 0, 0600, 54321, why) == 0, "root's file accepted");
    table = sasl_passwd_load("relative/path", me, note_complaint, why);
    tap_ok(table == NULL && strstr(vstr_str(why), "not an absolute path") != NULL,
           "a relative path refused");
    snprintf(map, sizeof(map), "%s/missing", dir);
    table = sasl_passwd_load(map, me, note_complaint, why);
    tap_ok(table == NULL && strstr(vstr_str(why), "No such file") != NULL, "a missing file: %s",
           vstr_str(why));

    unlink(path);
    unlink(token);
    rmdir(dir);
    vstr_free(why);
    return tap_done();
}
