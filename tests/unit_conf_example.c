/*
 * unit_conf_example - the example relayq.conf documents the whole registry
 *
 * For each parameter of params_table, a case: doc/relayq.conf.example (as
 * built, in $top_builddir) has exactly one commented setting "#NAME =
 * VALUE", the comment above it says "Default: DEFAULT." ("Default:
 * empty." for an empty default), and VALUE is the default unless that is
 * empty (then the setting shows an example value). One more case: every
 * commented setting of the example names a parameter of the registry, so
 * a renamed or removed parameter cannot linger there. That the example,
 * uncommented, passes "relayq check" is tests/t_doc_examples.sh's part.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mymalloc.h"
#include "params.h"
#include "tap.h"

/* The example, one string per line, without line ends. */
typedef struct EXAMPLE {
    char **lines;
    size_t count;
} EXAMPLE;

/* example_read - the example's lines, or exit with a Bail out! */
static void example_read(EXAMPLE *ex, const char *path)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t size = 0;
    ssize_t len;

    if (fp == NULL) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }
    ex->lines = NULL;
    ex->count = 0;
    while ((len = getline(&line, &size, fp)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = '\0';
        ex->lines = myrealloc(ex->lines, (ex->count + 1) * sizeof(*ex->lines));
        ex->lines[ex->count++] = mystrdup(line);
    }
    free(line);
    fclose(fp);
}

/* setting_value - the VALUE of a "#NAME = VALUE" line, or NULL */
static const char *setting_value(const char *line, const char *name)
{
    size_t len = strlen(name);

    if (line[0] != '#' || strncmp(line + 1, name, len) != 0 || strncmp(line + 1 + len, " =", 2))
        return NULL;
    line += 1 + len + 2;
    return *line == ' ' ? line + 1 : line;
}

/* check_param - one parameter's entry; a reason when it is wrong, else NULL */
static const char *check_param(const EXAMPLE *ex, const CONFIG_PARAM *param, VSTR *why)
{
    const char *value = NULL;
    const char *shown;
    size_t at = 0;
    size_t found = 0;
    size_t i;
    int documented = 0;

    for (i = 0; i < ex->count; i++)
        if (setting_value(ex->lines[i], param->name) != NULL) {
            value = setting_value(ex->lines[i], param->name);
            at = i;
            found++;
        }
    if (found != 1) {
        vstr_sprintf(why, "%zu settings \"#%s = \" (want 1)", found, param->name);
        return vstr_str(why);
    }
    if (*param->defval != '\0' && strcmp(value, param->defval) != 0) {
        vstr_sprintf(why, "shown as \"%s\", the default is \"%s\"", value, param->defval);
        return vstr_str(why);
    }
    shown = *param->defval ? param->defval : "empty";
    vstr_sprintf(why, "Default: %s.", shown);
    /* The comment block right above the setting. */
    for (i = at; i > 0 && strncmp(ex->lines[i - 1], "# ", 2) == 0; i--)
        if (strstr(ex->lines[i - 1], vstr_str(why)) != NULL)
            documented = 1;
    if (!documented) {
        vstr_sprintf(why, "no comment above it saying \"Default: %s.\"", shown);
        return vstr_str(why);
    }
    return NULL;
}

/* unknown_setting - the first commented setting that names no parameter, or NULL */
static const char *unknown_setting(const EXAMPLE *ex)
{
    const CONFIG_PARAM *param;
    size_t i;

    for (i = 0; i < ex->count; i++) {
        const char *line = ex->lines[i];
        size_t len;

        /* An empty line has nothing after its terminator to look at. */
        if (line[0] != '#')
            continue;
        len = strspn(line + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789");
        if (len == 0 || strncmp(line + 1 + len, " =", 2) != 0)
            continue;
        for (param = params_table; param->name; param++)
            if (strlen(param->name) == len && strncmp(line + 1, param->name, len) == 0)
                break;
        if (param->name == NULL)
            return line;
    }
    return NULL;
}

int main(void)
{
    const char *top = getenv("top_builddir");
    const CONFIG_PARAM *param;
    const char *reason;
    VSTR *path = vstr_alloc(256);
    VSTR *why = vstr_alloc(256);
    EXAMPLE ex;

    vstr_sprintf(path, "%s/doc/relayq.conf.example", top && *top ? top : ".");
    example_read(&ex, vstr_str(path));
    for (param = params_table; param->name; param++) {
        reason = check_param(&ex, param, why);
        tap_ok(reason == NULL, "%s is in the example with its default%s%s", param->name,
               reason ? ": " : "", reason ? reason : "");
    }
    reason = unknown_setting(&ex);
    tap_ok(reason == NULL, "every setting of the example is a parameter%s%s",
           reason ? ": not " : "", reason ? reason : "");
    for (size_t i = 0; i < ex.count; i++)
        myfree(ex.lines[i]);
    myfree(ex.lines);
    vstr_free(path);
    vstr_free(why);
    return tap_done();
}
