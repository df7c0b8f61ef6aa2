/*
 * maps - lookup tables from text files
 *
 * maps_open()
 *	read a table named by a parameter value: a file path, optionally
 *	with Postfix's "texthash:" or "hash:" prefix (relayq reads the text
 *	file itself; there is no postmap step). Lines are "KEY VALUE": blank
 *	lines and lines starting with "#" are ignored, a line starting with
 *	white space continues the previous one, keys compare case-insensitively.
 *	An empty spec gives NULL without an error. A syntax error is
 *	reported as "FILE:LINE: reason"; a missing file as "FILE: reason".
 * maps_find()
 *	the value of a key, or NULL.
 * maps_walk()
 *	visit every entry (lower-cased key, value), to check values.
 * maps_path(), maps_free()
 *	the file name; release the table.
 *
 * Limits: 1 MB per file, 4096 bytes per line. Nothing here exits.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "htable.h"
#include "iostuff.h"
#include "maps.h"
#include "mymalloc.h"

#define MAPS_FILE_MAX (1024 * 1024)
#define MAPS_LINE_MAX 4096

struct MAPS {
    char *path;
    HTABLE *table; /* lower-cased key -> value */
};

/* maps_lower - a lower-cased copy */
static char *maps_lower(const char *text)
{
    char *copy = mystrdup(text);

    for (char *cp = copy; *cp; cp++)
        *cp = (char)tolower((unsigned char)*cp);
    return copy;
}

/* maps_add - one logical line into the table; -1 with why on a syntax error */
static int maps_add(MAPS *map, const char *line, int lineno, VSTR *why)
{
    const char *key = line + strspn(line, " \t");
    size_t klen = strcspn(key, " \t");
    const char *value = key + klen;
    char *lkey, *k;
    size_t vlen;

    value += strspn(value, " \t");
    vlen = strlen(value);
    while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        vlen--;
    if (klen == 0)
        return 0;
    if (vlen == 0) {
        vstr_sprintf(why, "%s:%d: no value for \"%.*s\"", map->path, lineno, (int)klen, key);
        return -1;
    }
    k = mystrndup(key, klen);
    lkey = maps_lower(k);
    myfree(k);
    myfree(htable_remove(map->table, lkey));
    htable_put(map->table, lkey, mystrndup(value, vlen));
    myfree(lkey);
    return 0;
}

/* maps_open - read a table */
MAPS *maps_open(const char *spec, VSTR *why)
{
    const char *path = spec;
    MAPS *map;
    VSTR *logical;
    void *data;
    size_t len;
    char *text, *line, *next;
    int lineno = 0, start = 0;

    if (*spec == '\0')
        return NULL;
    if (strncmp(spec, "texthash:", 9) == 0)
        path = spec + 9;
    else if (strncmp(spec, "hash:", 5) == 0)
        path = spec + 5;
    if (read_file(path, MAPS_FILE_MAX, &data, &len) < 0) {
        vstr_sprintf(why, "%s: %s", path, errno == EFBIG ? "larger than 1 MB" : strerror(errno));
        return NULL;
    }
    map = mycalloc(1, sizeof(*map));
    map->path = mystrdup(path);
    map->table = htable_create(64);
    text = data;
    if (memchr(text, '\0', len) != NULL) {
        vstr_sprintf(why, "%s: contains a NUL byte", path);
        goto bad;
    }
    logical = vstr_alloc(256);
    for (line = text; line && *line; line = next) {
        size_t n = strcspn(line, "\n");

        next = line[n] ? line + n + 1 : NULL;
        line[n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        lineno++;
        if (n > MAPS_LINE_MAX) {
            vstr_sprintf(why, "%s:%d: line longer than %d bytes", path, lineno, MAPS_LINE_MAX);
            vstr_free(logical);
            goto bad;
        }
        if (line[strspn(line, " \t")] == '#' || line[strspn(line, " \t")] == '\0')
            continue;
        if ((*line == ' ' || *line == '\t') && vstr_len(logical) > 0) {
            vstr_addch(logical, ' ');
            vstr_strcat(logical, line + strspn(line, " \t"));
            continue;
        }
        if (vstr_len(logical) > 0 && maps_add(map, vstr_str(logical), start, why) < 0) {
            vstr_free(logical);
            goto bad;
        }
        if (*line == ' ' || *line == '\t') {
            vstr_sprintf(why, "%s:%d: indented line continues nothing", path, lineno);
            vstr_free(logical);
            goto bad;
        }
        vstr_strcpy(logical, line);
        start = lineno;
    }
    if (vstr_len(logical) > 0 && maps_add(map, vstr_str(logical), start, why) < 0) {
        vstr_free(logical);
        goto bad;
    }
    vstr_free(logical);
    myfree(data);
    return map;
bad:
    myfree(data);
    maps_free(map);
    return NULL;
}

/* maps_find - look up a key */
const char *maps_find(const MAPS *map, const char *key)
{
    char *lkey;
    const char *value;

    if (map == NULL)
        return NULL;
    lkey = maps_lower(key);
    value = htable_get(map->table, lkey);
    myfree(lkey);
    return value;
}

/* maps_path - the file a table came from */
const char *maps_path(const MAPS *map)
{
    return map->path;
}

/* maps_walk - visit every entry */
void maps_walk(const MAPS *map, void (*fn)(const char *key, void *value, void *ctx), void *ctx)
{
    htable_walk(map->table, fn, ctx);
}

/* maps_free - release a table */
void maps_free(MAPS *map)
{
    if (map == NULL)
        return;
    htable_free(map->table, myfree);
    myfree(map->path);
    myfree(map);
}
