/*
 * ops - the operator's queue operations: hold, release, delete, requeue
 *
 * ops_main()
 *	"relayq hold|release|delete|requeue [-c FILE] [--dry-run]
 *	[--sender ADDR] [--recipient ADDR] [--domain DOMAIN]
 *	[--older-than TIME] [--ids] QUEUE_ID...|ALL|- [QUEUE_NAME...]", the
 *	postsuper -h/-H/-d/-r operations. "-" reads queue ids from standard
 *	input (whitespace separated, as mailq or a script prints them); ALL
 *	means every message. The selectors narrow the set; TIME is a number
 *	with an optional unit s, m, h, d or w; the queue names (qname.c:
 *	active, deferred, hold, incoming) that follow the ids keep only the
 *	messages in one of those queues, as Postfix's "postsuper -d ALL
 *	deferred". qmgr does the work (it is the only writer of delivery
 *	state), in batches, and reports after each one.
 *	With --dry-run nothing changes: the queue ids that would be touched
 *	are printed, one per line; --ids prints the ids changed the same
 *	way, as qmgr reports them. A Postfix-style summary goes to standard
 *	error, e.g. "relayq: Placed on hold: 3 messages", also when qmgr
 *	stopped half way (it then says how many it had done, and why).
 * ops_add_target()
 *	add one QUEUE_ID, ALL or "-" to a request (the postsuper command
 *	builds its requests with these too).
 * ops_add_queue()
 *	add one queue name to a request.
 * ops_is_queue_word()
 *	whether an operand is meant as a queue name: lower-case letters
 *	only, which no queue id is.
 * ops_run()
 *	send a request to qmgr, print the ids it reports as they come (with
 *	--dry-run or --ids) and then the summary; the configuration is
 *	loaded. The wait for qmgr is OPS_IDLE_TIMEOUT_MS from its last
 *	report, so a long operation that goes on is never cut short.
 *
 * Every queue id and queue name is checked before anything is sent, so a
 * typing mistake changes nothing. Exit codes: EX_USAGE for bad arguments,
 * EX_UNAVAILABLE when qmgr does not answer, EX_SOFTWARE when it refuses.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "addr.h"
#include "cli.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "qid.h"
#include "qname.h"

#define OPS_IDLE_TIMEOUT_MS 60000 /* longest silence from qmgr, which reports every batch */
#define OPS_STDIN_MAX 10000000    /* bytes of queue ids read from standard input */

/* What each operation is called in the summary. */
static const struct {
    const char *op;
    const char *done;
} ops_words[] = {
    {"hold", "Placed on hold"},
    {"release", "Released from hold"},
    {"delete", "Deleted"},
    {"requeue", "Requeued"},
};

/* ops_add_id - check and add one queue id to the request */
static void ops_add_id(IPC_REC *req, const char *id)
{
    if (!qid_valid(id)) {
        char *shown = relayq_printable(id, 0);

        msg_fatal_status(EX_USAGE, "bad queue id \"%s\"", shown);
    }
    ipc_rec_add(req, "queue_id", id);
}

/* ops_read_stdin - queue ids from standard input */
static void ops_read_stdin(IPC_REC *req)
{
    VSTR *word = vstr_alloc(32);
    size_t total = 0;
    int ch;

    while ((ch = getchar()) != EOF) {
        if (++total > OPS_STDIN_MAX)
            msg_fatal_status(EX_USAGE, "more than %d bytes of queue ids on standard input",
                             OPS_STDIN_MAX);
        if (isspace(ch)) {
            if (vstr_len(word) > 0)
                ops_add_id(req, vstr_str(word));
            vstr_reset(word);
        } else if (vstr_len(word) < 64) {
            vstr_addch(word, ch);
        }
    }
    if (vstr_len(word) > 0)
        ops_add_id(req, vstr_str(word));
    vstr_free(word);
}

/* ops_is_queue_word - an operand of lower-case letters only is a queue name */
int ops_is_queue_word(const char *word)
{
    return *word != '\0' && strspn(word, "abcdefghijklmnopqrstuvwxyz") == strlen(word) &&
           !qid_valid(word);
}

/* ops_add_target - add QUEUE_ID, ALL or "-" to a request */
void ops_add_target(IPC_REC *req, const char *word)
{
    int all = strcmp(word, "ALL") == 0;

    if (ipc_rec_get(req, "all") != NULL || (all && ipc_rec_get(req, "queue_id") != NULL))
        msg_fatal_status(EX_USAGE, "ALL cannot be combined with queue ids");
    if (all)
        ipc_rec_add(req, "all", "1");
    else if (strcmp(word, "-") == 0)
        ops_read_stdin(req);
    else
        ops_add_id(req, word);
}

/* ops_add_queue - add a queue name to a request */
void ops_add_queue(IPC_REC *req, const char *name)
{
    char *shown;

    if (qname_lookup(name) == 0) {
        shown = relayq_printable(name, 0);
        msg_fatal_status(EX_USAGE, "unknown queue name \"%s\"%s (valid: %s)", shown,
                         strcmp(name, "maildrop") == 0
                             ? ": pickup takes mail out of maildrop/ at once, and it is then "
                               "incoming"
                             : "",
                         QNAME_VALID);
    }
    ipc_rec_add(req, "queue", name);
}

/* ops_parse_age - "90", "15m", "2h", "3d", "1w" as seconds, or -1 */
static long long ops_parse_age(const char *text)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(text, &end, 10);
    if (end == text || n < 0 || errno == ERANGE)
        return -1;
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        n *= 60;
        break;
    case 'h':
        n *= 3600;
        break;
    case 'd':
        n *= 86400;
        break;
    case 'w':
        n *= 7 * 86400;
        break;
    default:
        return -1;
    }
    if (*end && end[1])
        return -1;
    return n;
}

/* ops_check_address - a selector address, syntax-checked */
static void ops_check_address(const char *what, const char *addr)
{
    VSTR *why = vstr_alloc(100);

    if (addr_check(addr, strlen(addr), ADDR_ALLOW_UTF8 | ADDR_ALLOW_EMPTY, why) < 0) {
        char *shown = relayq_printable(addr, 0);

        msg_fatal_status(EX_USAGE, "bad %s address \"%s\": %s", what, shown, vstr_str(why));
    }
    vstr_free(why);
}

/* ops_done_word - what an operation is called in the summary */
static const char *ops_done_word(const char *op)
{
    for (size_t k = 0; k < sizeof(ops_words) / sizeof(ops_words[0]); k++)
        if (strcmp(ops_words[k].op, op) == 0)
            return ops_words[k].done;
    msg_panic("ops: unknown operation %s", op);
}

/* ops_main - "relayq hold|release|delete|requeue ..." */
int ops_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'n'},
        {"sender", required_argument, NULL, 'S'},
        {"recipient", required_argument, NULL, 'R'},
        {"domain", required_argument, NULL, 'D'},
        {"older-than", required_argument, NULL, 'O'},
        {"ids", no_argument, NULL, 'I'},
        {0, 0, 0, 0},
    };
    const char *op = argv[0], *config = NULL;
    IPC_REC *req = ipc_rec_create(op);
    VSTR *why = vstr_alloc(100), *domain;
    long long age;
    int dry_run = 0, ch, i;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'n':
            dry_run = 1;
            ipc_rec_add(req, "dry_run", "1");
            break;
        case 'I':
            ipc_rec_add(req, "ids", "1");
            break;
        case 'S':
            /* "<>" names the null sender, as in mailq. */
            if (strcmp(optarg, "<>") != 0)
                ops_check_address("sender", optarg);
            ipc_rec_add(req, "sender", strcmp(optarg, "<>") == 0 ? "" : optarg);
            break;
        case 'R':
            ops_check_address("recipient", optarg);
            ipc_rec_add(req, "recipient", optarg);
            break;
        case 'D':
            domain = vstr_alloc(64);
            vstr_sprintf(domain, "x@%s", optarg);
            if (addr_check(vstr_str(domain), vstr_len(domain), ADDR_ALLOW_UTF8, why) < 0)
                msg_fatal_status(EX_USAGE, "bad domain \"%s\": %s", relayq_printable(optarg, 0),
                                 vstr_str(why));
            vstr_free(domain);
            ipc_rec_add(req, "domain", optarg);
            break;
        case 'O':
            if ((age = ops_parse_age(optarg)) < 0)
                msg_fatal_status(EX_USAGE,
                                 "bad --older-than \"%s\": a number with an optional unit s, m, "
                                 "h, d or w",
                                 relayq_printable(optarg, 0));
            ipc_rec_add_long(req, "older_than", age);
            break;
        default:
            relayq_usage(op, NULL);
        }
    }
    if (optind == argc)
        relayq_usage(op, NULL);
    for (i = optind; i < argc; i++) {
        if (ops_is_queue_word(argv[i])) {
            if (i == optind)
                msg_fatal_status(EX_USAGE, "give QUEUE_ID...|ALL|- before the queue names");
            ops_add_queue(req, argv[i]);
        } else if (ipc_rec_get(req, "queue") != NULL) {
            msg_fatal_status(EX_USAGE, "the queue names must come after the queue ids");
        } else {
            ops_add_target(req, argv[i]);
        }
    }
    relayq_load_config(config);
    ops_run(req, dry_run);
    ipc_rec_free(req);
    vstr_free(why);
    return 0;
}

/* ops_summary - the Postfix-style summary on standard error */
static void ops_summary(const char *done, int dry_run, long long count)
{
    fprintf(stderr, "relayq: %s%s: %lld message%s\n", done,
            dry_run ? " (dry run, nothing changed)" : "", count, count == 1 ? "" : "s");
}

/* ops_run - send a request to qmgr and print what it did, as it reports it */
void ops_run(const IPC_REC *req, int dry_run)
{
    const char *op = ipc_rec_type(req), *done = ops_done_word(op), *type;
    VSTR *why = vstr_alloc(100);
    IPC_CHAN *chan;
    IPC_REC *reply;
    long long count = 0;

    if (ipc_rec_get(req, "all") == NULL && ipc_rec_get(req, "queue_id") == NULL) {
        if (!dry_run)
            ops_summary(done, 0, 0);
        vstr_free(why);
        return;
    }
    chan = control_qmgr_open(req, OPS_IDLE_TIMEOUT_MS);
    /* qmgr reports after every batch: the wait is for its silence, not the whole operation. */
    while ((reply = ipc_chan_recv_wait(chan, OPS_IDLE_TIMEOUT_MS, why)) != NULL &&
           strcmp(ipc_rec_type(reply), "progress") == 0) {
        if (ipc_rec_check(reply, "done,examined", "queue_id*", why) < 0)
            msg_fatal_status(EX_PROTOCOL, "unexpected reply from qmgr: %s", vstr_str(why));
        for (size_t k = 1; k < reply->count; k++)
            if (strcmp(reply->attrs[k].name, "queue_id") == 0)
                printf("%s\n", reply->attrs[k].value);
        ipc_rec_free(reply);
    }
    if (reply == NULL)
        msg_fatal_status(EX_UNAVAILABLE,
                         "no word from qmgr for %d s: %s (mailq shows what the %s has done)",
                         OPS_IDLE_TIMEOUT_MS / 1000, vstr_str(why), op);
    ipc_chan_free(chan);
    type = ipc_rec_type(reply);
    if (strcmp(type, "error") == 0 && ipc_rec_get(reply, "count") != NULL &&
        ipc_rec_check(reply, "reason,count", "", why) == 0 &&
        ipc_rec_get_long(reply, "count", 0, 1LL << 40, &count, why) == 0)
        /* It stopped half way: say what is done before why it stopped. */
        ops_summary(done, dry_run, count);
    control_refused(reply, op);
    if (strcmp(type, "ok") != 0 || ipc_rec_check(reply, "count", "", why) < 0 ||
        ipc_rec_get_long(reply, "count", 0, 1LL << 40, &count, why) < 0)
        msg_fatal_status(EX_PROTOCOL, "unexpected reply from qmgr: %s",
                         strcmp(type, "ok") ? type : vstr_str(why));
    ops_summary(done, dry_run, count);
    ipc_rec_free(reply);
    vstr_free(why);
}
