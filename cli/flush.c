/*
 * flush - make deferred mail due now
 *
 * flush_main()
 *	"relayq flush [-c FILE] [-i QUEUE_ID]... [-s DOMAIN]...": ask qmgr,
 *	over public/control, to make deferred mail due at once: the messages
 *	named, the mail for the domains named, or, with neither, all of it.
 *	Prints nothing when qmgr accepted the request.
 *
 * Queue ids and domains are checked here, so that a typing mistake is a
 * usage error rather than a silent "nothing matched". When qmgr does not
 * listen, the mail system is down: EX_UNAVAILABLE.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qid.h"

#define FLUSH_TIMEOUT_MS 10000

/* flush_check_domain - a domain as written after "@" */
static void flush_check_domain(const char *domain)
{
    VSTR *addr = vstr_alloc(300);
    VSTR *why = vstr_alloc(100);
    char *shown;

    /* Reuse the address checker on "x@domain": one definition of a valid domain. */
    vstr_sprintf(addr, "x@%s", domain);
    if (*domain == '\0' || addr_check(vstr_str(addr), vstr_len(addr), ADDR_ALLOW_UTF8, why) < 0) {
        shown = relayq_printable(domain, 0);
        msg_fatal_status(EX_USAGE, "bad domain \"%s\"%s%s", shown, *domain ? ": " : "",
                         *domain ? vstr_str(why) : "");
    }
    vstr_free(addr);
    vstr_free(why);
}

/* flush_main - "relayq flush [-c FILE] [-i QUEUE_ID]... [-s DOMAIN]..." */
int flush_main(int argc, char **argv)
{
    IPC_REC *req = ipc_rec_create("flush");
    IPC_REC *reply = NULL;
    VSTR *why = vstr_alloc(100);
    const char *config = NULL;
    char *shown;
    int ch;

    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:i:s:")) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'i':
            if (!qid_valid(optarg)) {
                shown = relayq_printable(optarg, 0);
                msg_fatal_status(EX_USAGE, "bad queue id \"%s\"", shown);
            }
            ipc_rec_add(req, "queue_id", optarg);
            break;
        case 's':
            flush_check_domain(optarg);
            ipc_rec_add(req, "domain", optarg);
            break;
        default:
            relayq_usage("flush", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("flush", NULL);
    relayq_load_config(config);

    reply = control_qmgr(req, "flush", FLUSH_TIMEOUT_MS);
    if (strcmp(ipc_rec_type(reply), "ok") != 0 || ipc_rec_check(reply, "count", "", why) < 0)
        msg_fatal_status(EX_PROTOCOL, "unexpected reply from qmgr: %s",
                         strcmp(ipc_rec_type(reply), "ok") ? ipc_rec_type(reply) : vstr_str(why));
    ipc_rec_free(reply);
    ipc_rec_free(req);
    vstr_free(why);
    return 0;
}
