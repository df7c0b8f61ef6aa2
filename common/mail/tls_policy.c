/*
 * tls_policy - the TLS policy of one relay: smtp_tls_policy_maps over the global parameters
 *
 * tls_policy_level()
 *	a security level word (none, may, encrypt, verify) as TLS_POLICY_*,
 *	or -1.
 * tls_policy_lookup()
 *	the policy for a relay and port: the smtp_tls_policy_maps entry for
 *	"[relay]:port", else "[relay]", else "relay" (Postfix's spelling of
 *	a next hop), else the defaults (smtp_tls_security_level and
 *	smtp_tls_CAfile: the caller's parameters). An
 *	entry is "LEVEL [name=value ...]", Postfix's syntax:
 *	  match=NAME       verify: the name the relay's certificate must
 *	                   carry instead of the relay's own; "hostname" and
 *	                   "nexthop" mean the relay's name (one name only)
 *	  CAfile=FILE      trust anchors for this relay instead of
 *	                   smtp_tls_CAfile
 *	  protocols=LIST   TLSv1.2 and TLSv1.3, as ">=TLSv1.3" or a list
 *	                   "TLSv1.3" or "!TLSv1.2" (':', ',' or ' ' between);
 *	                   older protocols are never offered, so excluding them
 *	                   changes nothing and including them is an error
 *	  ciphers=GRADE    medium (GnuTLS's NORMAL set, the default) or high
 *	                   (SECURE128)
 *	0, or -1 with "the entry for KEY in FILE: reason" in why.
 * tls_policy_check()
 *	every entry of a table parses: "relayq check" runs it. 0, or -1
 *	with the first bad entry in why.
 * tls_policy_copy()
 *	a policy of one's own, for a caller that keeps one it was lent.
 * tls_policy_free()
 *	release what a lookup or a copy filled in.
 *
 * Levels dane, fingerprint and secure are Postfix's, not relayq's: an
 * entry that names them is refused rather than treated as something
 * weaker. Nothing here exits.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mymalloc.h"
#include "tls_policy.h"

#define TLS_POLICY_WORD_MAX 1024 /* bytes of one attribute */
#define TLS_POLICY_VERS_12 1
#define TLS_POLICY_VERS_13 2

/* The levels, indexed by TLS_POLICY_*. */
static const char *const tls_policy_levels[] = {"none", "may", "encrypt", "verify"};

/* tls_policy_level - a level word as a number, or -1 */
int tls_policy_level(const char *word)
{
    for (int i = 0; i < (int)(sizeof(tls_policy_levels) / sizeof(tls_policy_levels[0])); i++)
        if (strcasecmp(word, tls_policy_levels[i]) == 0)
            return i;
    return -1;
}

/* tls_policy_protocols - protocols= as a set of TLS_POLICY_VERS_*; 0 with why when bad */
static int tls_policy_protocols(const char *list, VSTR *why)
{
    char *copy = mystrdup(list), *save = NULL, *word;
    int include = 0, exclude = 0;

    if (strcasecmp(list, ">=TLSv1.2") == 0 || strcasecmp(list, ">=TLSv1") == 0 ||
        strcasecmp(list, ">=TLSv1.1") == 0) {
        myfree(copy);
        return TLS_POLICY_VERS_12 | TLS_POLICY_VERS_13;
    }
    if (strcasecmp(list, ">=TLSv1.3") == 0) {
        myfree(copy);
        return TLS_POLICY_VERS_13;
    }
    for (word = strtok_r(copy, ":, ", &save); word; word = strtok_r(NULL, ":, ", &save)) {
        int negated = *word == '!';
        const char *name = word + negated;
        int vers = strcasecmp(name, "TLSv1.2") == 0   ? TLS_POLICY_VERS_12
                   : strcasecmp(name, "TLSv1.3") == 0 ? TLS_POLICY_VERS_13
                                                      : 0;

        if (vers == 0 && negated &&
            (strcasecmp(name, "SSLv2") == 0 || strcasecmp(name, "SSLv3") == 0 ||
             strcasecmp(name, "TLSv1") == 0 || strcasecmp(name, "TLSv1.1") == 0))
            continue; /* never offered anyway */
        if (vers == 0) {
            vstr_sprintf(why, "protocols: \"%.40s\" is not TLSv1.2 or TLSv1.3", name);
            myfree(copy);
            return 0;
        }
        if (negated)
            exclude |= vers;
        else
            include |= vers;
    }
    myfree(copy);
    /* Inclusions: those alone; only exclusions: what they leave of both. */
    include = (include ? include : TLS_POLICY_VERS_12 | TLS_POLICY_VERS_13) & ~exclude;
    if (include == 0)
        vstr_strcpy(why, "protocols: no protocol is left");
    return include;
}

/* tls_policy_parse - one entry's value into policy; 0, or -1 with why */
static int tls_policy_parse(const char *value, const char *cafile, TLS_POLICY *policy, VSTR *why)
{
    char *copy = mystrdup(value), *save = NULL, *word;
    int versions = TLS_POLICY_VERS_12 | TLS_POLICY_VERS_13;
    const char *grade = "NORMAL";
    VSTR *text;

    memset(policy, 0, sizeof(*policy));
    word = strtok_r(copy, " \t", &save);
    if (word == NULL || (policy->level = tls_policy_level(word)) < 0) {
        vstr_sprintf(why, "\"%.40s\" is not a security level (none, may, encrypt, verify)",
                     word ? word : "");
        myfree(copy);
        return -1;
    }
    policy->cafile = mystrdup(cafile);
    while ((word = strtok_r(NULL, " \t", &save)) != NULL) {
        char *eq = strchr(word, '=');
        const char *arg = eq ? eq + 1 : "";

        if (eq == NULL || *arg == '\0' || strlen(word) > TLS_POLICY_WORD_MAX) {
            vstr_sprintf(why, "\"%.40s\" is not name=value", word);
            break;
        }
        *eq = '\0';
        if (strcasecmp(word, "match") == 0) {
            if (strchr(arg, ':') != NULL) {
                vstr_sprintf(why, "match: one name, not \"%.80s\"", arg);
                break;
            }
            myfree(policy->match);
            policy->match = strcasecmp(arg, "hostname") == 0 || strcasecmp(arg, "nexthop") == 0
                                ? NULL
                                : mystrdup(arg);
        } else if (strcasecmp(word, "CAfile") == 0) {
            myfree(policy->cafile);
            policy->cafile = mystrdup(arg);
        } else if (strcasecmp(word, "protocols") == 0) {
            if ((versions = tls_policy_protocols(arg, why)) == 0)
                break;
        } else if (strcasecmp(word, "ciphers") == 0) {
            if (strcasecmp(arg, "high") == 0) {
                grade = "SECURE128";
            } else if (strcasecmp(arg, "medium") == 0) {
                grade = "NORMAL";
            } else {
                vstr_sprintf(why, "ciphers: \"%.40s\" is not medium or high", arg);
                break;
            }
        } else {
            vstr_sprintf(why, "unknown attribute \"%.40s\" (match, CAfile, protocols, ciphers)",
                         word);
            break;
        }
    }
    myfree(copy);
    if (word != NULL) {
        tls_policy_free(policy);
        return -1;
    }
    text = vstr_alloc(100);
    vstr_sprintf(text, "%s:-VERS-ALL%s%s", grade,
                 versions & TLS_POLICY_VERS_13 ? ":+VERS-TLS1.3" : "",
                 versions & TLS_POLICY_VERS_12 ? ":+VERS-TLS1.2" : "");
    policy->priority = mystrdup(vstr_str(text));
    vstr_sprintf(text, "%d|%s|%s|%s", policy->level, policy->match ? policy->match : "",
                 policy->cafile, policy->priority);
    policy->canonical = mystrdup(vstr_str(text));
    vstr_free(text);
    return 0;
}

/* tls_policy_lookup - the policy of a relay */
int tls_policy_lookup(const MAPS *map, const TLS_POLICY_DEFAULTS *defaults, const char *relay,
                      unsigned port, TLS_POLICY *policy, VSTR *why)
{
    VSTR *key = vstr_alloc(100);
    const char *value = NULL;
    VSTR *reason;
    int ret;

    vstr_sprintf(key, "[%s]:%u", relay, port);
    if (map != NULL && (value = maps_find(map, vstr_str(key))) == NULL) {
        vstr_sprintf(key, "[%s]", relay);
        if ((value = maps_find(map, vstr_str(key))) == NULL) {
            vstr_strcpy(key, relay);
            value = maps_find(map, vstr_str(key));
        }
    }
    reason = vstr_alloc(100);
    /* No entry: the defaults, the global parameters that the configuration check passed. */
    ret = tls_policy_parse(value ? value : defaults->level, defaults->cafile, policy, reason);
    if (ret < 0 && value != NULL)
        vstr_sprintf(why, "the entry for %s in %s: %s", vstr_str(key), maps_path(map),
                     vstr_str(reason));
    else if (ret < 0)
        vstr_strcpy(why, vstr_str(reason));
    vstr_free(reason);
    vstr_free(key);
    return ret;
}

/* Walking a table for tls_policy_check(). */
typedef struct TLS_POLICY_CHECK {
    VSTR *why;
    int bad;
} TLS_POLICY_CHECK;

/* tls_policy_check_entry - maps_walk callback */
static void tls_policy_check_entry(const char *key, void *value, void *ctx)
{
    TLS_POLICY_CHECK *check = ctx;
    TLS_POLICY policy;
    VSTR *reason;

    if (check->bad)
        return;
    reason = vstr_alloc(100);
    if (tls_policy_parse(value, "", &policy, reason) < 0) {
        vstr_sprintf(check->why, "the entry for %s: %s", key, vstr_str(reason));
        check->bad = 1;
    } else {
        tls_policy_free(&policy);
    }
    vstr_free(reason);
}

/* tls_policy_check - every entry of the table parses */
int tls_policy_check(const MAPS *map, VSTR *why)
{
    TLS_POLICY_CHECK check = {why, 0};

    if (map != NULL)
        maps_walk(map, tls_policy_check_entry, &check);
    return check.bad ? -1 : 0;
}

/* tls_policy_copy - a copy with its own strings */
void tls_policy_copy(TLS_POLICY *to, const TLS_POLICY *from)
{
    to->level = from->level;
    to->match = from->match ? mystrdup(from->match) : NULL;
    to->cafile = mystrdup(from->cafile);
    to->priority = mystrdup(from->priority);
    to->canonical = mystrdup(from->canonical);
}

/* tls_policy_free - release a policy's strings */
void tls_policy_free(TLS_POLICY *policy)
{
    myfree(policy->match);
    myfree(policy->cafile);
    myfree(policy->priority);
    myfree(policy->canonical);
    memset(policy, 0, sizeof(*policy));
}
