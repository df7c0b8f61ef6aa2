/*
 * postsuper - Postfix's postsuper command, mapped onto the queue operations
 *
 * postsuper_main()
 *	"postsuper [-c CONFIG_DIR] [-d ID|ALL|-]... [-h ID|ALL|-]...
 *	[-H ID|ALL|-]... [-r ID|ALL|-]... [QUEUE_NAME...]", run when relayq
 *	is invoked through a link named postsuper: -d is "relayq delete",
 *	-h "relayq hold", -H "relayq release" and -r "relayq requeue" (ops.c
 *	builds and sends each request). Each option may be repeated and the
 *	options mixed, as in Postfix; the queue names after the options
 *	narrow every operation of the call ("postsuper -d ALL deferred").
 *	The operations run in the order delete, hold, release, requeue,
 *	one request to qmgr each, each printing its summary ("relayq:
 *	Deleted: 3 messages"). -c CONFIG_DIR is a directory holding
 *	relayq.conf, as Postfix's -c names the directory of main.cf.
 *
 * Every argument is checked before the first request is sent, so a typing
 * mistake changes nothing. Standard input ("-") can be read once. Exit
 * codes are those of the relayq commands: EX_USAGE, EX_UNAVAILABLE when
 * qmgr does not answer.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "ipc.h"
#include "msg.h"
#include "mymalloc.h"

/* The options, in the order their operations run. */
static const struct {
    int opt;
    const char *op;
} postsuper_ops[] = {
    {'d', "delete"},
    {'h', "hold"},
    {'H', "release"},
    {'r', "requeue"},
};

#define POSTSUPER_NOPS (sizeof(postsuper_ops) / sizeof(postsuper_ops[0]))

/* postsuper_main - "postsuper -d|-h|-H|-r ID|ALL|- ... [QUEUE_NAME...]" */
int postsuper_main(int argc, char **argv)
{
    IPC_REC *reqs[POSTSUPER_NOPS] = {NULL};
    char *config = NULL;
    int stdin_read = 0, any = 0, ch;
    size_t k;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:d:h:H:r:")) != -1) {
        if (ch == 'c') {
            myfree(config);
            config = relayq_config_dir(optarg);
            continue;
        }
        for (k = 0; k < POSTSUPER_NOPS && postsuper_ops[k].opt != ch; k++)
            /* find */;
        if (k == POSTSUPER_NOPS)
            relayq_usage("postsuper", NULL);
        if (strcmp(optarg, "-") == 0 && stdin_read++)
            msg_fatal_status(EX_USAGE, "\"-\" (queue ids on standard input) can be given once");
        if (reqs[k] == NULL)
            reqs[k] = ipc_rec_create(postsuper_ops[k].op);
        ops_add_target(reqs[k], optarg);
        any = 1;
    }
    if (!any)
        relayq_usage("postsuper", NULL);
    for (int i = optind; i < argc; i++)
        for (k = 0; k < POSTSUPER_NOPS; k++)
            if (reqs[k] != NULL)
                ops_add_queue(reqs[k], argv[i]);
    relayq_load_config(config);
    for (k = 0; k < POSTSUPER_NOPS; k++) {
        if (reqs[k] != NULL) {
            ops_run(reqs[k], 0);
            ipc_rec_free(reqs[k]);
        }
    }
    myfree(config);
    return 0;
}
