/*
 * auth - SMTP AUTH for smtpout: credentials, mechanisms, the exchange
 *
 * auth_reload()
 *	(re)load smtp_sasl_password_maps when smtp_sasl_auth_enable is on
 *	(at start-up and on SIGHUP). A refused or unreadable file is logged
 *	as a warning and leaves no credentials; the failure cache is cleared.
 * auth_lookup()
 *	the credential for a relay: the keys tried are relayhost as written
 *	(when it names this relay and port), then "[host]:port", "host:port",
 *	"[host]" and "host". -1 with the reason for the recipients
 *	("no SASL credentials for relay X in FILE") when there is none.
 * auth_mechs()
 *	the AUTH_MECH_* bits of an EHLO "AUTH ..." (or "AUTH=...") line.
 * auth_start()
 *	choose the mechanism (XOAUTH2 for a token credential, else PLAIN,
 *	then LOGIN, as the server offers them), refresh an XOAUTH2 token
 *	from its file when that changed, and append the AUTH command to
 *	`out`. Every later response the mechanism needs is prepared now, in
 *	guarded memory, so that a reload during the exchange cannot pull the
 *	credential away. -1 with a reason when no mechanism fits or the
 *	token cannot be read.
 * auth_continue()
 *	after a 334 challenge: append the next prepared response (for
 *	XOAUTH2's error challenge, the empty response that makes the server
 *	send its final reply); with nothing left, the "*" that cancels, once:
 *	after it nothing is appended, and the caller ends a dialogue that
 *	the server will not end.
 * auth_end()
 *	wipe and free whatever the exchange still holds.
 * auth_fail_remember(), auth_fail_cached()
 *	an AUTH rejection (the session calls this for 5xx replies only: a
 *	4xx says the server may accept the same credential next time) for
 *	a credential identity is remembered for
 *	smtp_sasl_auth_failure_suspend (or until the next reload), so that the jobs
 *	behind it are deferred at once instead of each logging in again and
 *	again -- the storm that makes providers lock an account.
 *
 * Secrets are only ever copied into guarded memory (sodium_malloc) or
 * into the session's output buffer, which the session wipes once written.
 * Nothing here logs a secret or a response.
 *
 * Ownership: the credentials table belongs to this module; a SASL_CRED
 * returned by auth_lookup() is valid until the next auth_reload().
 * Failures are returned; running out of guarded memory is fatal.
 */
#include "config.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "sasl_passwd.h"
#include "smtpout.h"

#define AUTH_STEP_CANCELLED SIZE_MAX /* AUTH_EXCHANGE step once "*" was sent */

static SASL_PASSWD *auth_table;
static VSTR *auth_table_error; /* why there is no table, for the recipients */

static unsigned char auth_fail_id[SASL_ID_LEN];
static long long auth_fail_until;
static AUTH_EXCHANGE auth_fail_token; /* only its token file stamp is used */
static VSTR *auth_fail_reason;

/* auth_reload - read the credentials file again */
void auth_reload(void)
{
    const char *map = var_str(smtp_sasl_password_maps);
    VSTR *why = vstr_alloc(128);

    sasl_passwd_free(auth_table);
    auth_table = NULL;
    auth_fail_until = 0;
    if (auth_table_error == NULL)
        auth_table_error = vstr_alloc(128);
    vstr_reset(auth_table_error);
    if (!var_bool(smtp_sasl_auth_enable)) {
        vstr_free(why);
        return;
    }
    if (*map == '\0') {
        vstr_strcpy(auth_table_error, "smtp_sasl_auth_enable = yes, but smtp_sasl_password_maps "
                                      "is empty");
        msg_warn("%s", vstr_str(auth_table_error));
    } else if ((auth_table = sasl_passwd_load(map, geteuid(), NULL, why)) == NULL) {
        msg_warn("%s", vstr_str(why));
        vstr_sprintf(auth_table_error, "SASL credentials file not usable: %s", vstr_str(why));
    } else if (msg_verbose) {
        msg_info("%s: %zu SASL credentials", sasl_passwd_path(map), sasl_passwd_count(auth_table));
    }
    vstr_free(why);
}

/* auth_lookup - the credential for a relay */
int auth_lookup(const char *relay, unsigned port, SASL_CRED **cred, VSTR *why)
{
    const char *relayhost = var_str(relayhost);
    RELAY_ADDR parsed;
    VSTR *shown = vstr_alloc(64);
    int ret = -1;

    *cred = NULL;
    /* relayhost as written names the relay when it parses to the same host and port. */
    if (*relayhost != '\0' && params_parse_relay(relayhost, &parsed, why) == 0 &&
        strcasecmp(parsed.host, relay) == 0 && parsed.port == port)
        vstr_strcpy(shown, relayhost);
    else
        vstr_sprintf(shown, "[%s]:%u", relay, port);
    if (auth_table == NULL && vstr_len(auth_table_error) > 0)
        vstr_strcpy(why, vstr_str(auth_table_error));
    else if ((*cred = sasl_passwd_find_relay(auth_table, vstr_str(shown), relay, port)) != NULL)
        ret = 0;
    else
        vstr_sprintf(why, "no SASL credentials for relay %s in %s", vstr_str(shown),
                     sasl_passwd_path(var_str(smtp_sasl_password_maps)));
    vstr_free(shown);
    return ret;
}

/* auth_mechs - the mechanisms an EHLO AUTH line offers */
unsigned auth_mechs(const char *args, size_t len)
{
    unsigned mechs = 0;
    size_t pos = 0;

    while (pos < len) {
        size_t word;

        while (pos < len && (args[pos] == ' ' || args[pos] == '='))
            pos++;
        for (word = 0; pos + word < len && args[pos + word] != ' '; word++)
            ;
#define MECH(name) (word == sizeof(name) - 1 && strncasecmp(args + pos, name, word) == 0)
        if (MECH("PLAIN"))
            mechs |= AUTH_MECH_PLAIN;
        else if (MECH("LOGIN"))
            mechs |= AUTH_MECH_LOGIN;
        else if (MECH("XOAUTH2"))
            mechs |= AUTH_MECH_XOAUTH2;
#undef MECH
        pos += word;
    }
    return mechs;
}

/* auth_base64 - base64 of `len` bytes, into guarded memory, NUL-terminated */
static unsigned char *auth_base64(const unsigned char *data, size_t len, size_t *out_len)
{
    size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    unsigned char *out = sodium_malloc(size);

    if (out == NULL)
        msg_fatal("sodium_malloc %zu bytes: %m", size);
    sodium_bin2base64((char *)out, size, data, len, sodium_base64_VARIANT_ORIGINAL);
    *out_len = strlen((char *)out);
    return out;
}

/* auth_append - a response line to the output, and wipe its guarded copy */
static void auth_append(VSTR *out, const char *prefix, unsigned char *line, size_t len)
{
    vstr_strcat(out, prefix);
    vstr_append(out, line, len);
    vstr_strcat(out, "\r\n");
    sodium_free(line); /* sodium_free wipes before it frees */
}

/* auth_start - the AUTH command for a credential */
int auth_start(AUTH_EXCHANGE *ax, SASL_CRED *cred, unsigned offered, VSTR *out, VSTR *why)
{
    size_t ulen = strlen(cred->user);
    const char *secret;
    unsigned char *raw, *line;
    size_t slen, rlen, llen;

    auth_end(ax);
    if (sasl_cred_refresh(cred, why) < 0)
        return -1;
    if (cred->token_file != NULL) {
        if (!(offered & AUTH_MECH_XOAUTH2)) {
            vstr_strcpy(why, "the credential is an XOAUTH2 token, but the server does not offer "
                             "AUTH XOAUTH2");
            return -1;
        }
        ax->mech = AUTH_MECH_XOAUTH2;
    } else if (offered & AUTH_MECH_PLAIN) {
        ax->mech = AUTH_MECH_PLAIN;
    } else if (offered & AUTH_MECH_LOGIN) {
        ax->mech = AUTH_MECH_LOGIN;
    } else {
        vstr_strcpy(why, "the server offers none of the mechanisms PLAIN and LOGIN");
        return -1;
    }
    secret = sasl_cred_open(cred);
    slen = cred->secret_len;
    switch (ax->mech) {
    case AUTH_MECH_PLAIN:
        /* authzid (empty) NUL authcid NUL password */
        rlen = 1 + ulen + 1 + slen;
        raw = sodium_malloc(rlen);
        if (raw == NULL)
            msg_fatal("sodium_malloc: %m");
        raw[0] = '\0';
        memcpy(raw + 1, cred->user, ulen);
        raw[1 + ulen] = '\0';
        memcpy(raw + 2 + ulen, secret, slen);
        line = auth_base64(raw, rlen, &llen);
        sodium_free(raw);
        auth_append(out, "AUTH PLAIN ", line, llen);
        break;
    case AUTH_MECH_LOGIN:
        /* Both answers now: the credential may be gone by the time they are asked for. */
        ax->responses[0] = auth_base64((const unsigned char *)cred->user, ulen, &ax->lens[0]);
        ax->responses[1] = auth_base64((const unsigned char *)secret, slen, &ax->lens[1]);
        ax->count = 2;
        vstr_strcat(out, "AUTH LOGIN\r\n");
        break;
    case AUTH_MECH_XOAUTH2:
        /* "user=U^Aauth=Bearer TOKEN^A^A" */
        rlen = 5 + ulen + 1 + 12 + slen + 2;
        raw = sodium_malloc(rlen + 1);
        if (raw == NULL)
            msg_fatal("sodium_malloc: %m");
        snprintf((char *)raw, rlen + 1, "user=%s\001auth=Bearer %s\001\001", cred->user, secret);
        line = auth_base64(raw, rlen, &llen);
        sodium_free(raw);
        auth_append(out, "AUTH XOAUTH2 ", line, llen);
        break;
    }
    sasl_cred_close(cred);
    ax->step = 0;
    ax->token = cred->token_file != NULL;
    ax->token_mtime = cred->token_mtime;
    ax->token_mtime_ns = cred->token_mtime_ns;
    ax->token_size = cred->token_size;
    return 0;
}

/* auth_continue - the response to a 334 challenge */
void auth_continue(AUTH_EXCHANGE *ax, VSTR *out)
{
    if (ax->step < ax->count) {
        auth_append(out, "", ax->responses[ax->step], ax->lens[ax->step]);
        ax->responses[ax->step++] = NULL;
    } else if (ax->mech == AUTH_MECH_XOAUTH2 && ax->step == 0) {
        /* The challenge is an error report; an empty line asks for the final 535. */
        ax->step++;
        vstr_strcat(out, "\r\n");
    } else if (ax->step != AUTH_STEP_CANCELLED) {
        ax->step = AUTH_STEP_CANCELLED;
        vstr_strcat(out, "*\r\n");
    }
}

/* auth_end - wipe what the exchange holds */
void auth_end(AUTH_EXCHANGE *ax)
{
    for (size_t i = 0; i < sizeof(ax->responses) / sizeof(ax->responses[0]); i++) {
        if (ax->responses[i] != NULL)
            sodium_free(ax->responses[i]);
        ax->responses[i] = NULL;
        ax->lens[i] = 0;
    }
    ax->count = 0;
    ax->step = 0;
    ax->mech = 0;
}

/* auth_mech_name - for the log */
const char *auth_mech_name(unsigned mech)
{
    return mech == AUTH_MECH_PLAIN     ? "PLAIN"
           : mech == AUTH_MECH_LOGIN   ? "LOGIN"
           : mech == AUTH_MECH_XOAUTH2 ? "XOAUTH2"
                                       : "none";
}

/* auth_fail_remember - an AUTH failure for this credential identity */
void auth_fail_remember(const unsigned char *id, const AUTH_EXCHANGE *ax, const char *reason)
{
    memcpy(auth_fail_id, id, SASL_ID_LEN);
    auth_fail_until = now_ms() + var_int(smtp_sasl_auth_failure_suspend) * 1000LL;
    memset(&auth_fail_token, 0, sizeof(auth_fail_token));
    auth_fail_token.token = ax->token;
    auth_fail_token.token_mtime = ax->token_mtime;
    auth_fail_token.token_mtime_ns = ax->token_mtime_ns;
    auth_fail_token.token_size = ax->token_size;
    if (auth_fail_reason == NULL)
        auth_fail_reason = vstr_alloc(128);
    vstr_strcpy(auth_fail_reason, reason);
}

/* auth_fail_cached - the reason of a recent AUTH failure for this identity, or NULL */
const char *auth_fail_cached(const unsigned char *id, const SASL_CRED *cred)
{
    struct stat st;

    if (auth_fail_until == 0 || now_ms() >= auth_fail_until ||
        sodium_memcmp(auth_fail_id, id, SASL_ID_LEN) != 0)
        return NULL;
    /* A new token is worth a new try: refreshing it is how an expired one is fixed. */
    if (auth_fail_token.token && cred->token_file != NULL &&
        (stat(cred->token_file, &st) < 0 || st.st_mtim.tv_sec != auth_fail_token.token_mtime ||
         st.st_mtim.tv_nsec != auth_fail_token.token_mtime_ns ||
         st.st_size != auth_fail_token.token_size))
        return NULL;
    return vstr_str(auth_fail_reason);
}
