/*
 * unit_util - tests of the generic helpers: vstr, htable, and queue ids
 *
 * Growable strings (appends past the initial size, formatted output,
 * consume, embedded NULs), the hash table (insert, replace, remove, growth
 * through many keys), and queue ids (length, alphabet, uniqueness over many,
 * ordering by time).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "htable.h"
#include "mymalloc.h"
#include "qid.h"
#include "tap.h"
#include "vstr.h"

/* count_entry - htable_walk callback counting entries */
static void count_entry(const char *key, void *value, void *ctx)
{
    (void)key;
    (void)value;
    (*(size_t *)ctx)++;
}

int main(void)
{
    VSTR *vp = vstr_alloc(1);
    HTABLE *table = htable_create(1);
    char key[32], ids[2000][QID_LEN + 1];
    size_t walked = 0;
    int ok;

    /* vstr */
    for (int i = 0; i < 1000; i++)
        vstr_strcat(vp, "abc");
    tap_ok(vstr_len(vp) == 3000 && strlen(vstr_str(vp)) == 3000,
           "appends grow past the start size");
    vstr_sprintf(vp, "%s-%d-%05.1f", "x", 42, 3.14159);
    tap_ok(strcmp(vstr_str(vp), "x-42-003.1") == 0, "vstr_sprintf replaces the content");
    vstr_reset(vp);
    for (int i = 0; i < 200; i++)
        vstr_sprintf_append(vp, "%0100d", i);
    tap_ok(vstr_len(vp) == 20000, "formatted appends longer than the buffer are complete");
    vstr_consume(vp, 19900);
    tap_ok(vstr_len(vp) == 100 && vstr_str(vp)[99] == '9', "consume removes a prefix");
    vstr_reset(vp);
    vstr_append(vp, "a\0b", 3);
    tap_ok(vstr_len(vp) == 3 && vstr_str(vp)[2] == 'b' && vstr_str(vp)[3] == '\0',
           "embedded NUL bytes are counted and the string stays terminated");
    vstr_truncate(vp, 1);
    tap_ok(vstr_len(vp) == 1 && strcmp(vstr_str(vp), "a") == 0, "truncate shortens");

    /* htable */
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        htable_put(table, key, (void *)(long)(i + 1));
    }
    ok = htable_count(table) == 10000;
    for (int i = 0; i < 10000 && ok; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        ok = htable_get(table, key) == (void *)(long)(i + 1);
    }
    tap_ok(ok, "10000 keys inserted and found through growth");
    htable_put(table, "key5", (void *)99L);
    tap_ok(htable_count(table) == 10000 && htable_get(table, "key5") == (void *)99L,
           "put of an existing key replaces its value");
    tap_ok(htable_remove(table, "key5") == (void *)99L && htable_get(table, "key5") == NULL &&
               htable_count(table) == 9999,
           "remove returns the value and forgets the key");
    tap_ok(htable_remove(table, "nope") == NULL, "remove of a missing key is NULL");
    htable_walk(table, count_entry, &walked);
    tap_ok(walked == 9999, "walk visits every entry once");
    htable_free(table, NULL);

    /* qid */
    if (sodium_init() < 0)
        return 1;
    ok = 1;
    for (int i = 0; i < 2000; i++) {
        qid_create(ids[i]);
        if (!qid_valid(ids[i]))
            ok = 0;
    }
    tap_ok(ok, "new queue ids are valid (%s)", ids[0]);
    table = htable_create(4096);
    for (int i = 0; i < 2000; i++)
        htable_put(table, ids[i], ids[i]);
    /* 25 random bits: a collision among 2000 in one second is unlikely
     * but possible; the queue refuses duplicates anyway. */
    tap_ok(htable_count(table) >= 1999, "2000 ids made in the same second are distinct (%zu)",
           htable_count(table));
    htable_free(table, NULL);
    tap_ok(strncmp(ids[0], ids[1999], 6) <= 0, "ids made later do not sort earlier");
    tap_ok(!qid_valid("short") && !qid_valid("AEIOUAEIOUAE") && !qid_valid("0123456789BC!"),
           "malformed ids are refused");
    vstr_free(vp);
    return tap_done();
}
