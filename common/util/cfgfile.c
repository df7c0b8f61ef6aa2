/*
 * cfgfile - a main.cf-style configuration file against a parameter table
 *
 * config_load()
 *	read FILE ("name = value" lines, "#" comments, indented continuation
 *	lines), expand $name, ${name} and $(name) once the whole file is read,
 *	and check every parameter of the table, defaults included. The result
 *	holds a value for every parameter.
 *	Every unknown parameter name in the file is reported, not only the
 *	first: one error lists them all in file order ("FILE:LINE: unknown
 *	parameter "name"", joined by "; ", at most CONFIG_UNKNOWN_SHOWN of them
 *	and then how many more), followed by the syntax error that stopped
 *	the reading, if one did.
 * config_load_hinted()
 *	the same, with a function that may add a hint to each unknown name
 *	(what the caller's world calls it, or what to use instead).
 * config_defaults()
 *	the same without a file: the table's defaults, expanded and checked.
 * config_set()
 *	replace one value (a command-line override or a computed default),
 *	checked like a file value; every other value is expanded again, so
 *	"myorigin = $myhostname" follows a late change of myhostname. On error
 *	the configuration is left as it was.
 * config_free()
 *	release a configuration (NULL is fine).
 * config_file_stat()
 *	the file the configuration was read from, as fstat() saw the very
 *	descriptor that was read (owner and mode for a trust decision that
 *	no rename can race); NULL for defaults.
 * config_path()
 *	the file name given to config_load(), or "(defaults)".
 * config_str(), config_int(), config_bool()
 *	a parameter's expanded text, its number (INT, TIME in seconds, SIZE in
 *	bytes, BOOL as 0/1), its truth value.
 * config_raw_str()
 *	a parameter's text as written (file, config_set() or the default),
 *	before $name expansion, as postconf shows it.
 * config_line()
 *	the file line that sets a parameter, or 0 when the file does not.
 *
 * This module knows nothing of mail: the table is the caller's.
 *
 * Ownership: the caller owns the CONFIG and frees it with config_free();
 * strings returned by config_str() live until the next config_set() or
 * config_free(). The table must outlive the CONFIG.
 *
 * Failures: a bad file or value is reported in `why` as one line
 * "FILE:LINE: reason" ("FILE: reason" for the file as a whole; the bare
 * reason for config_set() and for defaults), with NULL or -1 returned; this
 * module never exits for those. Asking for a parameter that is not in the
 * table, or for the number of a text parameter, is a caller bug: panic.
 * Allocation failure is fatal (mymalloc).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgfile.h"
#include "msg.h"
#include "mymalloc.h"
#include "vstr.h"

#define CONFIG_FILE_MAX (1024 * 1024)  /* larger files are refused */
#define CONFIG_LINE_MAX 4096           /* longest physical line, without the newline */
#define CONFIG_VALUE_MAX (1024 * 1024) /* longest value after expansion */
#define CONFIG_DEPTH_MAX 32            /* nesting of $name expansions */
#define CONFIG_QUOTE_MAX 100           /* bytes of a bad value quoted in a message */
#define CONFIG_UNKNOWN_SHOWN 10        /* unknown names listed in one error */

/* Where a value came from, which decides how its errors are located. */
#define CONFIG_FROM_DEFAULT 0 /* line: the table default */
#define CONFIG_FROM_SET (-1)  /* line: config_set() */

/* Progress of one value; BUSY during its own expansion reveals a reference loop. */
#define CONFIG_RAW 0
#define CONFIG_BUSY 1
#define CONFIG_DONE 2 /* expanded and checked */

/* One parameter's value as written and as expanded and checked. */
typedef struct CONFIG_ITEM {
    char *raw;   /* as written (file, config_set) or NULL: the default */
    int line;    /* > 0 file line; CONFIG_FROM_DEFAULT or CONFIG_FROM_SET */
    char *value; /* expanded text, NULL until expanded */
    long num;    /* INT, TIME, SIZE, BOOL: the checked number */
    int state;   /* CONFIG_RAW, CONFIG_BUSY, CONFIG_DONE */
} CONFIG_ITEM;

struct CONFIG {
    const CONFIG_PARAM *table;
    size_t count;
    char *path;
    CONFIG_ITEM *items;  /* parallel to table */
    CONFIG_HINT_FN hint; /* adds to the report of an unknown name, or NULL */
    VSTR *unknown;       /* the unknown names found while reading, reported */
    size_t unknown_count;
    struct stat file_st; /* the descriptor that was read, as fstat() saw it */
    int have_file_st;
};

/* config_quote - append text to a message, quoted, bounded and printable */
static void config_quote(VSTR *out, const char *text, size_t len)
{
    size_t n = len > CONFIG_QUOTE_MAX ? CONFIG_QUOTE_MAX : len;
    size_t i;

    vstr_addch(out, '"');
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];

        vstr_addch(out, ch >= 0x20 && ch < 0x7f ? ch : '?');
    }
    vstr_addch(out, '"');
    if (n < len)
        vstr_strcat(out, "...");
}

/* config_where - start an error message with the location of an item */
static void config_where(const CONFIG *cfg, const CONFIG_ITEM *item, VSTR *why)
{
    vstr_reset(why);
    if (item != NULL && item->line > 0)
        vstr_sprintf(why, "%s:%d: ", cfg->path, item->line);
}

/* config_find - the index of a name in the table, or -1 */
static long config_find(const CONFIG *cfg, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < cfg->count; i++)
        if (strncmp(cfg->table[i].name, name, len) == 0 && cfg->table[i].name[len] == '\0')
            return (long)i;
    return -1;
}

/* config_lookup - the item of a name the caller knows is in the table */
static const CONFIG_ITEM *config_lookup(const CONFIG *cfg, const char *name, const char **what)
{
    long idx;

    if (cfg == NULL)
        msg_panic("config: lookup of \"%s\" without a configuration", name);
    if ((idx = config_find(cfg, name, strlen(name))) < 0)
        msg_panic("config: \"%s\" is not in the parameter table", name);
    if (cfg->items[idx].state != CONFIG_DONE)
        msg_panic("config: \"%s\" was never checked", name);
    *what = cfg->table[idx].name;
    return cfg->items + idx;
}

/* config_is_name_char - parameter names are letters, digits and "_" */
static int config_is_name_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* config_create - an empty configuration for a table, sanity-checked */
static CONFIG *config_create(const CONFIG_PARAM *table, const char *path)
{
    CONFIG *cfg = mymalloc(sizeof(*cfg));
    size_t i;
    size_t j;

    cfg->table = table;
    for (cfg->count = 0; table[cfg->count].name != NULL; cfg->count++)
        /* count */;
    /* A broken table is a programming error that no file can fix. */
    for (i = 0; i < cfg->count; i++) {
        if (table[i].defval == NULL)
            msg_panic("config: parameter \"%s\" has no default", table[i].name);
        if (table[i].type == CONFIG_ENUM && table[i].choices == NULL)
            msg_panic("config: enum parameter \"%s\" has no choices", table[i].name);
        for (j = 0; j < i; j++)
            if (strcmp(table[i].name, table[j].name) == 0)
                msg_panic("config: parameter \"%s\" is in the table twice", table[i].name);
    }
    cfg->path = mystrdup(path);
    cfg->items = mycalloc(cfg->count ? cfg->count : 1, sizeof(*cfg->items));
    cfg->hint = NULL;
    cfg->unknown = NULL;
    cfg->unknown_count = 0;
    return cfg;
}

/* config_free - release a configuration */
void config_free(CONFIG *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->count; i++) {
        myfree(cfg->items[i].raw);
        myfree(cfg->items[i].value);
    }
    myfree(cfg->items);
    myfree(cfg->path);
    if (cfg->unknown != NULL)
        vstr_free(cfg->unknown);
    myfree(cfg);
}

/* config_raw - the text of an item as written */
static const char *config_raw(const CONFIG *cfg, size_t idx)
{
    return cfg->items[idx].raw ? cfg->items[idx].raw : cfg->table[idx].defval;
}

/* config_bad_value - "bad [default ]value "text" for name: " */
static void config_bad_value(const CONFIG *cfg, size_t idx, const char *text, VSTR *why)
{
    const CONFIG_ITEM *item = cfg->items + idx;

    config_where(cfg, item, why);
    vstr_strcat(why, item->line == CONFIG_FROM_DEFAULT ? "bad default value " : "bad value ");
    config_quote(why, text, strlen(text));
    vstr_sprintf_append(why, " for %s: ", cfg->table[idx].name);
}

static int config_resolve_one(CONFIG *cfg, size_t idx, int depth, VSTR *why);

/* config_expand_text - expand the references in one item's raw text */
static int config_expand_text(CONFIG *cfg, size_t idx, int depth, VSTR *out, VSTR *why)
{
    const char *cp = config_raw(cfg, idx);
    const char *name;
    const char *reason;
    size_t len;
    long ref;
    int close;

    while (*cp) {
        if (*cp != '$') {
            len = strcspn(cp, "$");
            vstr_append(out, cp, len);
            cp += len;
        } else if (cp[1] == '$') {
            vstr_addch(out, '$');
            cp += 2;
        } else {
            cp++;
            close = *cp == '{' ? '}' : *cp == '(' ? ')' : 0;
            if (close)
                cp++;
            for (name = cp; config_is_name_char(*cp); cp++)
                /* scan */;
            len = (size_t)(cp - name);
            if (!close && len == 0)
                reason = "\"$\" without a parameter name (write \"$$\" for a literal \"$\")";
            else if (close && *cp == '\0')
                reason = "missing closing bracket after \"$\"";
            else if (close && (len == 0 || *cp != close))
                reason = "bad parameter name after \"$\"";
            else
                reason = NULL;
            if (reason != NULL) {
                config_bad_value(cfg, idx, config_raw(cfg, idx), why);
                vstr_strcat(why, reason);
                return -1;
            }
            if (close)
                cp++;
            if ((ref = config_find(cfg, name, len)) < 0) {
                config_where(cfg, cfg->items + idx, why);
                vstr_strcat(why, "unknown parameter ");
                config_quote(why, name, len);
                vstr_sprintf_append(why, " in the value of %s", cfg->table[idx].name);
                return -1;
            }
            if (config_resolve_one(cfg, (size_t)ref, depth + 1, why) < 0)
                return -1;
            vstr_strcat(out, cfg->items[ref].value);
        }
        if (vstr_len(out) > CONFIG_VALUE_MAX) {
            config_where(cfg, cfg->items + idx, why);
            vstr_sprintf_append(why, "value of %s is longer than %d bytes after expansion",
                                cfg->table[idx].name, CONFIG_VALUE_MAX);
            return -1;
        }
    }
    return 0;
}

/* config_number - parse digits with an optional sign; -1 bad syntax, -2 overflow */
static int config_number(const char *text, int allow_sign, long *num, const char **end)
{
    const char *cp = text;
    int neg = 0;
    long val = 0;
    int digit;

    if (allow_sign && *cp == '-') {
        neg = 1;
        cp++;
    }
    if (*cp < '0' || *cp > '9')
        return -1;
    for (; *cp >= '0' && *cp <= '9'; cp++) {
        digit = *cp - '0';
        /* Accumulate negatively so LONG_MIN itself is representable. */
        if (val < (LONG_MIN + digit) / 10)
            return -2;
        val = val * 10 - digit;
    }
    if (!neg) {
        if (val == LONG_MIN)
            return -2;
        val = -val;
    }
    *num = val;
    *end = cp;
    return 0;
}

/* config_scaled - a number with an optional unit letter, scaled */
static int config_scaled(const char *text, const char *units, const long *scale, long *num)
{
    const char *end;
    const char *unit;
    long val;
    int ret;

    if ((ret = config_number(text, 0, &val, &end)) < 0)
        return ret;
    if (*end == '\0') {
        *num = val;
        return 0;
    }
    if (end[1] != '\0' || (unit = strchr(units, *end)) == NULL)
        return -1;
    if (val > LONG_MAX / scale[unit - units])
        return -2;
    *num = val * scale[unit - units];
    return 0;
}

/* config_check_enum - match a choice, returning its spelling in the table */
static const char *config_check_enum(const char *choices, const char *text)
{
    const char *cp = choices;
    size_t len;
    size_t tlen = strlen(text);

    while (*cp) {
        len = strcspn(cp, ",");
        if (len == tlen && tlen > 0 && strncasecmp(cp, text, len) == 0)
            return cp;
        cp += len;
        cp += (*cp == ',');
    }
    return NULL;
}

/* config_check - check an expanded value against its type, bounds and check */
static int config_check(CONFIG *cfg, size_t idx, VSTR *why)
{
    static const long time_scale[] = {1, 60, 3600, 86400, 7 * 86400};
    static const long size_scale[] = {1024L, 1024L * 1024, 1024L * 1024 * 1024,
                                      1024L, 1024L * 1024, 1024L * 1024 * 1024};
    const CONFIG_PARAM *param = cfg->table + idx;
    CONFIG_ITEM *item = cfg->items + idx;
    const char *choice;
    const char *end;
    const char *unit = "";
    VSTR *reason;
    int ret = 0;

    switch (param->type) {
    case CONFIG_STR:
        break;
    case CONFIG_INT:
        ret = config_number(item->value, 1, &item->num, &end);
        if (ret == 0 && *end != '\0')
            ret = -1;
        if (ret < 0) {
            config_bad_value(cfg, idx, item->value, why);
            vstr_strcat(why, ret == -2 ? "number out of range" : "not a decimal integer");
            return -1;
        }
        break;
    case CONFIG_TIME:
        unit = "s";
        if ((ret = config_scaled(item->value, "smhdw", time_scale, &item->num)) < 0) {
            config_bad_value(cfg, idx, item->value, why);
            vstr_strcat(why, ret == -2 ? "time out of range"
                                       : "not a time (number with optional unit s, m, h, d, w)");
            return -1;
        }
        break;
    case CONFIG_SIZE:
        unit = " bytes";
        if ((ret = config_scaled(item->value, "kmgKMG", size_scale, &item->num)) < 0) {
            config_bad_value(cfg, idx, item->value, why);
            vstr_strcat(why, ret == -2 ? "size out of range"
                                       : "not a size (number with optional unit k, m, g)");
            return -1;
        }
        break;
    case CONFIG_BOOL:
        if (strcasecmp(item->value, "yes") == 0) {
            item->num = 1;
        } else if (strcasecmp(item->value, "no") == 0) {
            item->num = 0;
        } else {
            config_bad_value(cfg, idx, item->value, why);
            vstr_strcat(why, "not \"yes\" or \"no\"");
            return -1;
        }
        break;
    case CONFIG_ENUM:
        if ((choice = config_check_enum(param->choices, item->value)) == NULL) {
            config_bad_value(cfg, idx, item->value, why);
            vstr_strcat(why, "not one of ");
            for (choice = param->choices; *choice; choice++)
                if (*choice == ',')
                    vstr_strcat(why, ", ");
                else
                    vstr_addch(why, *choice);
            return -1;
        }
        /* Callers compare with strcmp(): hand them the table's spelling. */
        memcpy(item->value, choice, strlen(item->value));
        break;
    default:
        msg_panic("config: parameter \"%s\" has unknown type %d", param->name, (int)param->type);
    }
    if (param->type == CONFIG_INT || param->type == CONFIG_TIME || param->type == CONFIG_SIZE) {
        if (item->num < param->min || item->num > param->max) {
            config_where(cfg, item, why);
            vstr_sprintf_append(why, "%s is %s the %s %ld%s for %s", item->value,
                                item->num < param->min ? "below" : "above",
                                item->num < param->min ? "minimum" : "maximum",
                                item->num < param->min ? param->min : param->max, unit,
                                param->name);
            return -1;
        }
    }
    if (param->check != NULL) {
        reason = vstr_alloc(64);
        if (param->check(item->value, reason) < 0) {
            config_bad_value(cfg, idx, item->value, why);
            vstr_append(why, vstr_str(reason), vstr_len(reason));
            ret = -1;
        }
        vstr_free(reason);
    }
    return ret < 0 ? -1 : 0;
}

/*
 * config_resolve_one - expand and check one value, once
 *
 * A referenced parameter is checked before its text is used, so that an
 * error is reported on the line that holds it and the text copied is the
 * checked one (an enum in the table's spelling).
 */
static int config_resolve_one(CONFIG *cfg, size_t idx, int depth, VSTR *why)
{
    CONFIG_ITEM *item = cfg->items + idx;
    VSTR *out;
    int ret;

    if (item->state == CONFIG_DONE)
        return 0;
    if (item->state == CONFIG_BUSY) {
        config_where(cfg, item, why);
        vstr_sprintf_append(why, "the value of %s refers back to itself", cfg->table[idx].name);
        return -1;
    }
    if (depth > CONFIG_DEPTH_MAX) {
        config_where(cfg, item, why);
        vstr_sprintf_append(why, "more than %d nested $name expansions in the value of %s",
                            CONFIG_DEPTH_MAX, cfg->table[idx].name);
        return -1;
    }
    item->state = CONFIG_BUSY;
    out = vstr_alloc(64);
    ret = config_expand_text(cfg, idx, depth, out, why);
    if (ret == 0) {
        item->value = mystrdup(vstr_str(out));
        ret = config_check(cfg, idx, why);
    }
    vstr_free(out);
    if (ret == 0)
        item->state = CONFIG_DONE;
    return ret;
}

/* Where an item is checked: file lines first in order, then overrides, then defaults. */
typedef struct CONFIG_ORDER {
    int rank; /* 0 file, 1 config_set(), 2 default */
    int line;
    size_t idx;
} CONFIG_ORDER;

/* config_order_cmp - qsort by key, then by table position */
static int config_order_cmp(const void *a, const void *b)
{
    const CONFIG_ORDER *oa = a;
    const CONFIG_ORDER *ob = b;

    if (oa->rank != ob->rank)
        return oa->rank < ob->rank ? -1 : 1;
    if (oa->line != ob->line)
        return oa->line < ob->line ? -1 : 1;
    return oa->idx < ob->idx ? -1 : oa->idx > ob->idx;
}

/* config_resolve - expand and check every value, reporting the earliest error */
static int config_resolve(CONFIG *cfg, VSTR *why)
{
    CONFIG_ORDER *order = mymalloc((cfg->count ? cfg->count : 1) * sizeof(*order));
    size_t i;
    int ret = 0;

    for (i = 0; i < cfg->count; i++) {
        myfree(cfg->items[i].value);
        cfg->items[i].value = NULL;
        cfg->items[i].state = CONFIG_RAW;
        order[i].idx = i;
        order[i].line = cfg->items[i].line;
        order[i].rank = cfg->items[i].line > 0 ? 0 : cfg->items[i].line == CONFIG_FROM_SET ? 1 : 2;
    }
    qsort(order, cfg->count, sizeof(*order), config_order_cmp);
    for (i = 0; i < cfg->count && ret == 0; i++)
        ret = config_resolve_one(cfg, order[i].idx, 0, why);
    myfree(order);
    return ret;
}

/* config_is_space - the blanks of a configuration line */
static int config_is_space(int ch)
{
    return ch == ' ' || ch == '\t';
}

/* config_trim - strip blanks at both ends of a VSTR */
static void config_trim(VSTR *vp)
{
    size_t start = 0;
    size_t end = vstr_len(vp);

    while (end > 0 && config_is_space(vstr_str(vp)[end - 1]))
        end--;
    vstr_truncate(vp, end);
    while (start < end && config_is_space(vstr_str(vp)[start]))
        start++;
    vstr_consume(vp, start);
}

/* config_unknown - note an unknown name and read on, so that one error lists them all */
static void config_unknown(CONFIG *cfg, const char *name, size_t len, int line)
{
    char *copy;

    if (cfg->unknown == NULL)
        cfg->unknown = vstr_alloc(256);
    if (cfg->unknown_count++ >= CONFIG_UNKNOWN_SHOWN)
        return;
    if (cfg->unknown_count > 1)
        vstr_strcat(cfg->unknown, "; ");
    vstr_sprintf_append(cfg->unknown, "%s:%d: unknown parameter ", cfg->path, line);
    config_quote(cfg->unknown, name, len);
    if (cfg->hint != NULL) {
        copy = mystrndup(name, len);
        cfg->hint(copy, cfg->unknown);
        myfree(copy);
    }
}

/* config_unknown_report - the error of the unknown names, then the one that stopped reading */
static void config_unknown_report(CONFIG *cfg, int stopped, VSTR *why)
{
    VSTR *report = vstr_alloc(256);

    vstr_strcpy(report, vstr_str(cfg->unknown));
    if (cfg->unknown_count > CONFIG_UNKNOWN_SHOWN)
        vstr_sprintf_append(report, "; and %zu more unknown parameter%s",
                            cfg->unknown_count - CONFIG_UNKNOWN_SHOWN,
                            cfg->unknown_count - CONFIG_UNKNOWN_SHOWN == 1 ? "" : "s");
    if (stopped) {
        vstr_strcat(report, "; ");
        vstr_strcat(report, vstr_str(why));
    }
    vstr_strcpy(why, vstr_str(report));
    vstr_free(report);
}

/* config_assign - store one logical "name = value" line */
static int config_assign(CONFIG *cfg, VSTR *logical, int line, VSTR *why)
{
    char *text = vstr_str(logical);
    size_t name_len = strcspn(text, "=");
    size_t word_len;
    size_t n;
    long idx;
    CONFIG_ITEM *item;

    if (text[name_len] != '=') {
        word_len = strcspn(text, " \t");
        vstr_sprintf(why, "%s:%d: missing \"=\" after ", cfg->path, line);
        config_quote(why, text, word_len);
        return -1;
    }
    n = name_len;
    while (n > 0 && config_is_space(text[n - 1]))
        n--;
    if (n == 0) {
        vstr_sprintf(why, "%s:%d: missing parameter name before \"=\"", cfg->path, line);
        return -1;
    }
    for (word_len = 0; word_len < n && config_is_name_char(text[word_len]); word_len++)
        /* scan */;
    if (word_len < n) {
        vstr_sprintf(why, "%s:%d: bad parameter name ", cfg->path, line);
        config_quote(why, text, n);
        return -1;
    }
    if ((idx = config_find(cfg, text, n)) < 0) {
        config_unknown(cfg, text, n, line);
        return 0;
    }
    vstr_consume(logical, name_len + 1);
    config_trim(logical);
    item = cfg->items + idx;
    /* Postfix semantics: a later assignment silently replaces an earlier one. */
    myfree(item->raw);
    item->raw = mystrdup(vstr_str(logical));
    item->line = line;
    return 0;
}

/* config_read - read a whole file, bounded by CONFIG_FILE_MAX */
static int config_read(CONFIG *cfg, const char *path, VSTR *data, VSTR *why)
{
    struct stat st;
    ssize_t got;
    int fd;
    int saved;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        vstr_sprintf(why, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* Who owns what was read is asked of this descriptor, never of the
     * name again: the file cannot be swapped between check and read. */
    if (fstat(fd, &st) < 0) {
        vstr_sprintf(why, "%s: cannot fstat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    cfg->file_st = st;
    cfg->have_file_st = 1;
    if (S_ISREG(st.st_mode) && st.st_size > CONFIG_FILE_MAX) {
        vstr_sprintf(why, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
        close(fd);
        return -1;
    }
    /* Re-check while reading: a pipe or a growing file has no useful size. */
    for (;;) {
        vstr_reserve(data, 8192);
        got = read(fd, vstr_str(data) + vstr_len(data), 8192);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            saved = errno;
            vstr_sprintf(why, "%s: cannot read: %s", path, strerror(saved));
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        data->len += (size_t)got;
        data->data[data->len] = '\0';
        if (vstr_len(data) > CONFIG_FILE_MAX) {
            vstr_sprintf(why, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* config_parse - split file data into logical lines and store them */
static int config_parse(CONFIG *cfg, const char *data, size_t size, VSTR *why)
{
    VSTR *logical = vstr_alloc(256);
    const char *cp = data;
    const char *end = data + size;
    const char *nl;
    size_t len;
    size_t i;
    int lineno = 0;
    int start = 0; /* first line of the logical line being built, 0: none */
    int ret = 0;

    for (; cp < end && ret == 0; cp = nl + 1) {
        lineno++;
        nl = memchr(cp, '\n', (size_t)(end - cp));
        if (nl == NULL)
            nl = end;
        len = (size_t)(nl - cp);
        if (len > CONFIG_LINE_MAX) {
            vstr_sprintf(why, "%s:%d: line longer than %d bytes", cfg->path, lineno,
                         CONFIG_LINE_MAX);
            ret = -1;
            break;
        }
        if (len > 0 && cp[len - 1] == '\r')
            len--; /* CRLF files edited elsewhere */
        for (i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)cp[i];

            if (ch == '\0' || ch == '\r' || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
                vstr_sprintf(why, "%s:%d: %s", cfg->path, lineno,
                             ch == '\0'   ? "contains a NUL byte"
                             : ch == '\r' ? "contains a carriage return"
                                          : "contains a control character");
                ret = -1;
                break;
            }
        }
        if (ret < 0)
            break;
        for (i = 0; i < len && config_is_space(cp[i]); i++)
            /* skip */;
        if (i == len || cp[i] == '#')
            continue; /* blank and comment lines neither start nor end a logical line */
        if (i > 0) {
            if (start == 0) {
                vstr_sprintf(why, "%s:%d: indented line continues nothing", cfg->path, lineno);
                ret = -1;
                break;
            }
            config_trim(logical);
            vstr_addch(logical, ' ');
            vstr_append(logical, cp + i, len - i);
            continue;
        }
        if (start != 0)
            ret = config_assign(cfg, logical, start, why);
        vstr_reset(logical);
        vstr_append(logical, cp, len);
        start = lineno;
    }
    if (ret == 0 && start != 0)
        ret = config_assign(cfg, logical, start, why);
    vstr_free(logical);
    return ret;
}

/* config_load - read, expand and check a configuration file */
CONFIG *config_load(const CONFIG_PARAM *table, const char *path, VSTR *why)
{
    return config_load_hinted(table, NULL, path, why);
}

/* config_load_hinted - config_load() with hints for unknown names */
CONFIG *config_load_hinted(const CONFIG_PARAM *table, CONFIG_HINT_FN hint, const char *path,
                           VSTR *why)
{
    CONFIG *cfg = config_create(table, path);
    VSTR *data = vstr_alloc(8192);
    int ret;

    cfg->hint = hint;
    ret = config_read(cfg, path, data, why);
    if (ret == 0)
        ret = config_parse(cfg, vstr_str(data), vstr_len(data), why);
    vstr_free(data);
    if (cfg->unknown_count > 0) {
        config_unknown_report(cfg, ret < 0, why);
        ret = -1;
    }
    if (ret == 0)
        ret = config_resolve(cfg, why);
    if (ret < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* config_defaults - a configuration of the table's defaults */
CONFIG *config_defaults(const CONFIG_PARAM *table, VSTR *why)
{
    CONFIG *cfg = config_create(table, "(defaults)");

    if (config_resolve(cfg, why) < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* config_set - replace one value, keeping the old one when the new is bad */
int config_set(CONFIG *cfg, const char *name, const char *value, VSTR *why)
{
    VSTR *text;
    VSTR *ignored;
    CONFIG_ITEM *item;
    char *old_raw;
    int old_line;
    long idx;
    const char *cp;

    if ((idx = config_find(cfg, name, strlen(name))) < 0) {
        vstr_strcpy(why, "unknown parameter ");
        config_quote(why, name, strlen(name));
        return -1;
    }
    for (cp = value; *cp; cp++) {
        unsigned char ch = (unsigned char)*cp;

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            vstr_strcpy(why, "bad value ");
            config_quote(why, value, strlen(value));
            vstr_sprintf_append(why, " for %s: %s", name,
                                ch == '\r' || ch == '\n' ? "contains a line break"
                                                         : "contains a control character");
            return -1;
        }
    }
    text = vstr_alloc(64);
    vstr_strcpy(text, value);
    config_trim(text);
    item = cfg->items + idx;
    old_raw = item->raw;
    old_line = item->line;
    item->raw = mystrdup(vstr_str(text));
    item->line = CONFIG_FROM_SET;
    vstr_free(text);
    if (config_resolve(cfg, why) < 0) {
        myfree(item->raw);
        item->raw = old_raw;
        item->line = old_line;
        /* The old values passed before; resolving them again cannot fail. */
        ignored = vstr_alloc(64);
        if (config_resolve(cfg, ignored) < 0)
            msg_panic("config: restoring %s failed: %s", name, vstr_str(ignored));
        vstr_free(ignored);
        return -1;
    }
    myfree(old_raw);
    return 0;
}

/* config_file_stat - the file that was read, as fstat() saw its descriptor; NULL: none */
const struct stat *config_file_stat(const CONFIG *cfg)
{
    return cfg->have_file_st ? &cfg->file_st : NULL;
}

/* config_path - the file a configuration came from */
const char *config_path(const CONFIG *cfg)
{
    return cfg->path;
}

/* config_str - a parameter's expanded text */
const char *config_str(const CONFIG *cfg, const char *name)
{
    const char *what;

    return config_lookup(cfg, name, &what)->value;
}

/* config_raw_str - a parameter's text before expansion */
const char *config_raw_str(const CONFIG *cfg, const char *name)
{
    const char *what;
    const CONFIG_ITEM *item = config_lookup(cfg, name, &what);

    return config_raw(cfg, (size_t)(item - cfg->items));
}

/* config_line - the file line that sets a parameter, or 0 */
int config_line(const CONFIG *cfg, const char *name)
{
    const char *what;
    const CONFIG_ITEM *item = config_lookup(cfg, name, &what);

    return item->line > 0 ? item->line : 0;
}

/* config_int - a numeric parameter's value */
long config_int(const CONFIG *cfg, const char *name)
{
    const CONFIG_ITEM *item;
    const char *what;
    long idx;

    item = config_lookup(cfg, name, &what);
    idx = item - cfg->items;
    if (cfg->table[idx].type == CONFIG_STR || cfg->table[idx].type == CONFIG_ENUM)
        msg_panic("config: \"%s\" is not a numeric parameter", what);
    return item->num;
}

/* config_bool - a yes/no parameter's value */
int config_bool(const CONFIG *cfg, const char *name)
{
    const CONFIG_ITEM *item;
    const char *what;
    long idx;

    item = config_lookup(cfg, name, &what);
    idx = item - cfg->items;
    if (cfg->table[idx].type != CONFIG_BOOL)
        msg_panic("config: \"%s\" is not a yes/no parameter", what);
    return item->num != 0;
}
