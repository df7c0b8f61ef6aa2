/*
 * postqueue - Postfix's postqueue command, mapped onto mailq and flush
 *
 * postqueue_main()
 *	"postqueue [-c CONFIG_DIR] -p|-j|-f|-i QUEUE_ID...|-s SITE...", run
 *	when relayq is invoked through a link named postqueue:
 *	-p is "relayq mailq", -j "relayq mailq --json", -f "relayq flush",
 *	-i QUEUE_ID "relayq flush -i QUEUE_ID" and -s SITE "relayq flush -s
 *	SITE" (-i and -s may be repeated and mixed). -c CONFIG_DIR is a
 *	directory holding relayq.conf, as Postfix's -c names the directory
 *	of main.cf. The arguments are rewritten into those commands' and
 *	their code runs: output, messages and exit codes are theirs.
 *
 * Failures: a missing mode, two modes, or an operand is EX_USAGE.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "msg.h"
#include "mymalloc.h"

/* postqueue_mode - record the mode; two different ones are a usage error */
static void postqueue_mode(int *mode, int want)
{
    if (*mode != 0 && *mode != want)
        relayq_usage("postqueue", NULL);
    *mode = want;
}

/* postqueue_main - "postqueue -p|-j|-f|-i ID|-s SITE" */
int postqueue_main(int argc, char **argv)
{
    /* The command's own argument vector: its name, -c FILE, then -i/-s pairs. */
    char **args = mymalloc(sizeof(*args) * (size_t)(2 * argc + 4));
    char *config = NULL;
    int nargs = 1, mode = 0, ch, status;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:fi:jps:")) != -1) {
        switch (ch) {
        case 'c':
            myfree(config);
            config = relayq_config_dir(optarg);
            break;
        case 'p':
        case 'j':
        case 'f':
            postqueue_mode(&mode, ch);
            break;
        case 'i':
        case 's':
            postqueue_mode(&mode, 'i');
            args[nargs++] = ch == 'i' ? "-i" : "-s";
            args[nargs++] = optarg;
            break;
        default:
            relayq_usage("postqueue", NULL);
        }
    }
    if (optind != argc || mode == 0)
        relayq_usage("postqueue", NULL);
    if (config != NULL) {
        /* -c FILE goes first: move the -i/-s pairs up by two. */
        memmove(args + 3, args + 1, sizeof(*args) * (size_t)(nargs - 1));
        args[1] = "-c";
        args[2] = config;
        nargs += 2;
    }
    if (mode == 'j')
        args[nargs++] = "--json";
    args[nargs] = NULL;
    args[0] = mode == 'p' || mode == 'j' ? "mailq" : "flush";
    optind = 1;
    status = mode == 'p' || mode == 'j' ? mailq_main(nargs, args) : flush_main(nargs, args);
    myfree(args);
    myfree(config);
    return status;
}
