/*
 * config - print the configuration as postconf does
 *
 * config_main()
 *	"relayq config [-c FILE] [-n|-d] [-h] [-x] [NAME...]": print
 *	"name = value" for every parameter relayq knows, sorted by name, or
 *	for the NAMEs given, in the order given. The value is the effective
 *	one (the file's, else the default), as written: $name references are
 *	kept, as postconf shows them; -x expands them. -n prints only what the
 *	file sets; -d prints the defaults, without reading the file; -h
 *	prints the value alone. An unknown NAME is an error naming every
 *	unknown one (with relayq's word on a Postfix parameter it does not
 *	have), and nothing is printed. NAME=VALUE is refused: the file is
 *	the one place the configuration is written.
 * config_postconf_main()
 *	the same, run through a link named postconf; there -c CONFIG_DIR is
 *	a directory holding relayq.conf, as Postfix's -c names the directory
 *	of main.cf.
 *
 * Failures: bad arguments are EX_USAGE; a configuration that does not load
 * is EX_CONFIG with its "file:line: reason" line (relayq.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfgfile.h"
#include "cli.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"

/* What to print. */
typedef struct CONFIG_OPTS {
    const char *command; /* for the usage line: "config" or "postconf" */
    char *path;          /* -c, NULL: the default */
    int only_set;        /* -n */
    int defaults;        /* -d */
    int value_only;      /* -h */
    int expand;          /* -x */
} CONFIG_OPTS;

/* config_name_cmp - qsort by parameter name */
static int config_name_cmp(const void *a, const void *b)
{
    return strcmp((*(const CONFIG_PARAM *const *)a)->name, (*(const CONFIG_PARAM *const *)b)->name);
}

/* config_print - one parameter, unless -n and the file does not set it */
static void config_print(const CONFIG_OPTS *opts, const CONFIG *cfg, const CONFIG_PARAM *param)
{
    const char *value;

    if (opts->only_set && config_line(cfg, param->name) == 0)
        return;
    value = opts->expand ? config_str(cfg, param->name) : config_raw_str(cfg, param->name);
    if (opts->value_only)
        printf("%s\n", value);
    else
        printf("%s =%s%s\n", param->name, *value ? " " : "", value);
}

/* config_check_names - every NAME known, or one error listing the others */
static void config_check_names(const CONFIG_OPTS *opts, int count, char **names)
{
    VSTR *bad = vstr_alloc(100);
    char *shown;

    for (int i = 0; i < count; i++) {
        if (strchr(names[i], '=') != NULL)
            msg_fatal_status(EX_USAGE,
                             "NAME=VALUE: the configuration changes only by editing %s (then "
                             "\"relayq reload\")",
                             relayq_config_file(opts->path));
        if (params_find(names[i]) != NULL)
            continue;
        shown = relayq_printable(names[i], 0);
        vstr_sprintf_append(bad, "%sunknown parameter \"%s\"", vstr_len(bad) ? "; " : "", shown);
        params_hint(names[i], bad);
        myfree(shown);
    }
    if (vstr_len(bad) > 0)
        msg_fatal_status(EX_USAGE, "%s", vstr_str(bad));
    vstr_free(bad);
}

/* config_run - parse the options and print */
static int config_run(CONFIG_OPTS *opts, int postconf, int argc, char **argv)
{
    const CONFIG_PARAM **sorted;
    CONFIG *cfg;
    VSTR *why;
    size_t count = 0;
    int ch;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:dhnx")) != -1) {
        switch (ch) {
        case 'c':
            myfree(opts->path);
            opts->path = postconf ? relayq_config_dir(optarg) : mystrdup(optarg);
            break;
        case 'd':
            opts->defaults = 1;
            break;
        case 'h':
            opts->value_only = 1;
            break;
        case 'n':
            opts->only_set = 1;
            break;
        case 'x':
            opts->expand = 1;
            break;
        default:
            relayq_usage(opts->command, NULL);
        }
    }
    if (opts->defaults && opts->only_set)
        relayq_usage(opts->command, NULL);
    config_check_names(opts, argc - optind, argv + optind);

    if (opts->defaults) {
        why = vstr_alloc(100);
        if ((cfg = config_defaults(params_table, why)) == NULL)
            msg_panic("config: the built-in defaults do not load: %s", vstr_str(why));
        vstr_free(why);
    } else {
        relayq_load_config(opts->path);
        cfg = var_config;
    }
    if (optind < argc) {
        for (int i = optind; i < argc; i++)
            config_print(opts, cfg, params_find(argv[i]));
    } else {
        while (params_table[count].name != NULL)
            count++;
        sorted = mymalloc(sizeof(*sorted) * count);
        for (size_t i = 0; i < count; i++)
            sorted[i] = params_table + i;
        qsort(sorted, count, sizeof(*sorted), config_name_cmp);
        for (size_t i = 0; i < count; i++)
            config_print(opts, cfg, sorted[i]);
        myfree(sorted);
    }
    if (opts->defaults)
        config_free(cfg);
    myfree(opts->path);
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal_status(EX_IOERR, "write the configuration: %s", strerror(errno));
    return 0;
}

/* config_main - "relayq config [-c FILE] [-n|-d] [-h] [-x] [NAME...]" */
int config_main(int argc, char **argv)
{
    CONFIG_OPTS opts = {.command = "config"};

    return config_run(&opts, 0, argc, argv);
}

/* config_postconf_main - "postconf [-c CONFIG_DIR] [-n|-d] [-h] [-x] [NAME...]" */
int config_postconf_main(int argc, char **argv)
{
    CONFIG_OPTS opts = {.command = "postconf"};

    return config_run(&opts, 1, argc, argv);
}
