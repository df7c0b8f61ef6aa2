/*
 * unit_tls_policy - smtp_tls_policy_maps entries and their lookup
 *
 * One table of entries (given as the default, so that no table is read)
 * and the policy each must give, or the words its refusal must contain;
 * then the lookup order of a table: "[host]:port", "[host]", "host", the
 * defaults.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maps.h"
#include "tap.h"
#include "tls_policy.h"

struct policy_case {
    const char *entry;
    int level;            /* -1: refused */
    const char *match;    /* NULL: the relay's name */
    const char *cafile;   /* the CA file in force */
    const char *priority; /* or, refused, words of the reason */
};

static const struct policy_case cases[] = {
    {"may", 1, NULL, "/default.pem", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
    {"NONE", 0, NULL, "/default.pem", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
    {"encrypt protocols=TLSv1.2", 2, NULL, "/default.pem", "NORMAL:-VERS-ALL:+VERS-TLS1.2"},
    {"encrypt protocols=>=TLSv1.3", 2, NULL, "/default.pem", "NORMAL:-VERS-ALL:+VERS-TLS1.3"},
    {"encrypt protocols=!SSLv3:!TLSv1:!TLSv1.2", 2, NULL, "/default.pem",
     "NORMAL:-VERS-ALL:+VERS-TLS1.3"},
    {"verify match=mx.example.net CAfile=/private.pem", 3, "mx.example.net", "/private.pem",
     "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
    {"verify match=hostname", 3, NULL, "/default.pem",
     "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
    {"verify ciphers=high", 3, NULL, "/default.pem",
     "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
    {"dane", -1, NULL, NULL, "\"dane\" is not a security level"},
    {"", -1, NULL, NULL, "is not a security level"},
    {"verify match=a.example:b.example", -1, NULL, NULL, "match: one name"},
    {"encrypt protocols=TLSv1", -1, NULL, NULL, "\"TLSv1\" is not TLSv1.2 or TLSv1.3"},
    {"encrypt protocols=!TLSv1.2:!TLSv1.3", -1, NULL, NULL, "no protocol is left"},
    {"encrypt ciphers=export", -1, NULL, NULL, "ciphers: \"export\" is not medium or high"},
    {"encrypt exclude=RC4", -1, NULL, NULL, "unknown attribute \"exclude\""},
    {"encrypt CAfile", -1, NULL, NULL, "\"CAfile\" is not name=value"},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* same - two optional strings are equal */
static int same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* lookup_level - the level a table gives a relay, or -1 */
static int lookup_level(const MAPS *map, const char *relay, unsigned port)
{
    TLS_POLICY_DEFAULTS defaults = {"none", ""};
    VSTR *why = vstr_alloc(100);
    TLS_POLICY policy;
    int level = -1;

    if (tls_policy_lookup(map, &defaults, relay, port, &policy, why) == 0) {
        level = policy.level;
        tls_policy_free(&policy);
    }
    vstr_free(why);
    return level;
}

int main(void)
{
    char path[] = "/tmp/unit_tls_policy.XXXXXX";
    VSTR *why = vstr_alloc(100);
    TLS_POLICY policy;
    MAPS *map;
    FILE *fp;
    int fd;

    tap_plan((int)NELEM(cases) + 8);
    for (size_t i = 0; i < NELEM(cases); i++) {
        const struct policy_case *c = cases + i;
        TLS_POLICY_DEFAULTS defaults = {c->entry, "/default.pem"};
        int ret = tls_policy_lookup(NULL, &defaults, "relay.example", 25, &policy, why);

        if (c->level < 0) {
            tap_ok(ret < 0 && strstr(vstr_str(why), c->priority) != NULL, "\"%s\": refused (%s)",
                   c->entry, vstr_str(why));
            continue;
        }
        tap_ok(ret == 0 && policy.level == c->level && same(policy.match, c->match) &&
                   same(policy.cafile, c->cafile) && same(policy.priority, c->priority),
               "\"%s\": level %d, match %s, CA file %s, priority %s", c->entry,
               ret == 0 ? policy.level : -1, ret == 0 && policy.match ? policy.match : "-",
               ret == 0 ? policy.cafile : "-", ret == 0 ? policy.priority : vstr_str(why));
        if (ret == 0)
            tls_policy_free(&policy);
    }

    /* The lookup order, over a real table. */
    if ((fd = mkstemp(path)) < 0 || (fp = fdopen(fd, "w")) == NULL)
        return 1;
    fprintf(fp, "[Relay.Example]:587 verify\n[relay.example] encrypt\nrelay.example may\n"
                "[other.example]:25 dane\n");
    fclose(fp);
    map = maps_open(path, why);
    tap_ok(map != NULL, "the table loads");
    tap_ok(lookup_level(map, "relay.example", 587) == 3, "\"[host]:port\" first, in any case");
    tap_ok(lookup_level(map, "relay.example", 25) == 2, "then \"[host]\"");
    tap_ok(lookup_level(map, "unlisted.example", 25) == 0, "a relay without an entry: defaults");
    tap_ok(tls_policy_check(map, why) < 0 &&
               strstr(vstr_str(why), "the entry for [other.example]:25") != NULL,
           "the check names the bad entry (%s)", vstr_str(why));
    unlink(path);
    maps_free(map);
    fp = fopen(path, "w");
    fprintf(fp, "relay.example may\n");
    fclose(fp);
    map = maps_open(path, why);
    tap_ok(lookup_level(map, "relay.example", 25) == 1, "then the bare \"host\"");
    tap_ok(tls_policy_check(map, why) == 0, "a good table passes the check");
    {
        TLS_POLICY_DEFAULTS defaults = {"verify match=mx.example.net", "/default.pem"};
        TLS_POLICY copy;

        (void)tls_policy_lookup(NULL, &defaults, "relay.example", 25, &policy, why);
        tls_policy_copy(&copy, &policy);
        tls_policy_free(&policy);
        tap_ok(copy.level == 3 && same(copy.match, "mx.example.net") &&
                   same(copy.cafile, "/default.pem") && strstr(copy.canonical, "mx.example.net"),
               "a copy keeps every setting once the original is freed");
        tls_policy_free(&copy);
    }
    maps_free(map);
    unlink(path);
    vstr_free(why);
    return tap_done();
}
