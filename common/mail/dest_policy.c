/*
 * dest_policy - the settings of a destination_policy_maps entry
 *
 * dest_policy_parse()
 *	parse an entry's value, words separated by blanks:
 *	"concurrency=1..1000", "rate=R" (messages per second, decimal, 0 to
 *	1000000), "recipient_limit=1..10000", "daily=N" (1 to 1000000000),
 *	"local", "shared_key=NAME" (1 to 200 of letters, digits and
 *	".:_-@[]/+="; it becomes part of Redis key names). 0, or -1 with
 *	`bad setting "WORD" (...the accepted words...)` in why. The caller
 *	frees the result with dest_policy_free(), also after a failure.
 * dest_policy_free()
 *	release what a parse allocated.
 * dest_policy_check()
 *	every key of the table is a relay as relayhost writes it, and every
 *	value parses: 0, or -1 with `entry "KEY": REASON` in why. qmgr
 *	refuses such a table (at start, fatal; on reload, the old one
 *	stays); "relayq check" reports it.
 * dest_policy_daily_entry()
 *	the key of the first entry that sets daily=, or NULL: a quota that
 *	only a shared-limits server keeps ("relayq check" warns when there
 *	is none).
 *
 * Parsing only: no parameter is read here; what the settings mean (the
 * defaults they override, which are shared through shared_limits_server)
 * is qmgr's (qmgr/dest.c, qmgr/shared.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dest_policy.h"
#include "mymalloc.h"
#include "params.h"

#define DEST_POLICY_WORDS                                                                          \
    "concurrency=1..1000, rate=N, daily=N, local, shared_key=NAME, recipient_limit=1..10000"

/* dest_policy_int - the number of a "name=N" word, 1 to max; -1 when malformed */
static int dest_policy_int(const char *word, size_t name_len, long max, int *value)
{
    char *end;
    long n = strtol(word + name_len, &end, 10);

    if (*end != '\0' || end == word + name_len || n < 1 || n > max)
        return -1;
    *value = (int)n;
    return 0;
}

/* dest_policy_word - one word into the policy; -1 when malformed */
static int dest_policy_word(const char *word, DEST_POLICY *policy)
{
    char *end;
    size_t len;

    if (strncmp(word, "concurrency=", 12) == 0)
        return dest_policy_int(word, 12, 1000, &policy->concurrency);
    if (strncmp(word, "recipient_limit=", 16) == 0)
        return dest_policy_int(word, 16, 10000, &policy->recipient_limit);
    if (strncmp(word, "daily=", 6) == 0)
        return dest_policy_int(word, 6, 1000000000, &policy->daily);
    if (strcmp(word, "local") == 0) {
        policy->local = 1;
        return 0;
    }
    if (strncmp(word, "shared_key=", 11) == 0) {
        len = strlen(word + 11);
        if (len == 0 || len > DEST_POLICY_KEY_MAX ||
            strspn(word + 11, DEST_POLICY_KEY_CHARS) != len)
            return -1;
        myfree(policy->shared_key);
        policy->shared_key = mystrdup(word + 11);
        return 0;
    }
    if (strncmp(word, "rate=", 5) == 0) {
        double r = strtod(word + 5, &end);

        if (*end != '\0' || end == word + 5 || !(r >= 0) || r > 1e6)
            return -1;
        policy->rate = r;
        return 0;
    }
    return -1;
}

/* dest_policy_parse - an entry's value into a policy */
int dest_policy_parse(const char *value, DEST_POLICY *policy, VSTR *why)
{
    char *copy = mystrdup(value), *save = NULL, *word;
    int ret = 0;

    memset(policy, 0, sizeof(*policy));
    policy->rate = -1;
    for (word = strtok_r(copy, " \t", &save); word; word = strtok_r(NULL, " \t", &save))
        if (dest_policy_word(word, policy) < 0) {
            vstr_sprintf(why, "bad setting \"%s\" (" DEST_POLICY_WORDS ")", word);
            ret = -1;
            break;
        }
    myfree(copy);
    return ret;
}

/* dest_policy_free - release a parsed policy */
void dest_policy_free(DEST_POLICY *policy)
{
    myfree(policy->shared_key);
    policy->shared_key = NULL;
}

/* dest_policy_check_entry - maps_walk callback: the first bad entry's reason */
static void dest_policy_check_entry(const char *key, void *value, void *ctx)
{
    VSTR *why = ctx;
    VSTR *reason;
    RELAY_ADDR relay;
    DEST_POLICY policy;

    if (vstr_len(why) > 0)
        return;
    if (params_parse_relay(key, &relay, why) < 0)
        return;
    reason = vstr_alloc(100);
    if (dest_policy_parse(value, &policy, reason) < 0)
        vstr_sprintf(why, "entry \"%s\": %s", key, vstr_str(reason));
    dest_policy_free(&policy);
    vstr_free(reason);
}

/* dest_policy_check - every entry of a table parses */
int dest_policy_check(const MAPS *map, VSTR *why)
{
    vstr_reset(why);
    if (map != NULL)
        maps_walk(map, dest_policy_check_entry, why);
    return vstr_len(why) > 0 ? -1 : 0;
}

/* dest_policy_find_daily - maps_walk callback: remember the first key with daily= */
static void dest_policy_find_daily(const char *key, void *value, void *ctx)
{
    const char **found = ctx;
    DEST_POLICY policy;
    VSTR *why;

    if (*found != NULL)
        return;
    why = vstr_alloc(100);
    if (dest_policy_parse(value, &policy, why) == 0 && policy.daily > 0)
        *found = key;
    dest_policy_free(&policy);
    vstr_free(why);
}

/* dest_policy_daily_entry - the first entry with a daily quota, or NULL */
const char *dest_policy_daily_entry(const MAPS *map)
{
    const char *found = NULL;

    if (map != NULL)
        maps_walk(map, dest_policy_find_daily, &found);
    return found;
}
