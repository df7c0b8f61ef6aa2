/*
 * mailq - list the mail queue
 *
 * mailq_main()
 *	"relayq mailq [-c FILE] [--json]", also run as "mailq" and as
 *	"sendmail -bp": list every message in the queue in Postfix's
 *	"postqueue -p" layout (queue id, "*" when being delivered, "!" when
 *	held; size; arrival time; sender; each recipient still to be
 *	delivered with its last deferral reason), or with --json one object
 *	per message per line with "postqueue -j" field names plus
 *	next_attempt and attempts.
 *
 * The queue is opened read-only, so mailq never changes it and works
 * while the daemons run. Which messages are being delivered right now is
 * qmgr's knowledge, asked over public/control; when qmgr is not running,
 * none are.
 *
 * The listing is written to a temporary file while the LMDB read snapshot
 * is open and copied to standard output after it ends: a reader parked
 * on a slow pipe ("mailq | less") would otherwise pin old pages and let
 * the map fill up under the daemons.
 *
 * A queue that was never created (no mail ever queued) is empty. Other
 * failures to read it are fatal (EX_UNAVAILABLE, or EX_NOPERM).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "qstore.h"

#define MAILQ_ACTIVE_TIMEOUT_MS 2000
#define MAILQ_RCPT_INDENT 44 /* recipients start in the sender's column */
#define MAILQ_WIDTH 78       /* deferral reasons end in this column */

/* mailq_cmp - strcmp for qsort and bsearch over char * */
static int mailq_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* mailq_ask_active - the ids qmgr is delivering; none when qmgr does not answer */
static void mailq_ask_active(MAILQ_STATE *state)
{
    IPC_REC *req = ipc_rec_create("active");
    IPC_REC *reply = NULL;
    VSTR *why = vstr_alloc(100);
    const char *qid;

    state->active = NULL;
    state->nactive = 0;
    if (control_request(SOCK_CONTROL, PROTO_CONTROL, req, MAILQ_ACTIVE_TIMEOUT_MS, &reply, why) ==
            CONTROL_OK &&
        strcmp(ipc_rec_type(reply), "active") == 0 &&
        ipc_rec_check(reply, "", "queue_id*", why) == 0) {
        state->active = mymalloc(sizeof(char *) * (reply->count + 1));
        for (size_t i = 1; i < reply->count; i++) {
            qid = reply->attrs[i].value;
            if (qid_valid(qid))
                state->active[state->nactive++] = mystrdup(qid);
        }
        qsort(state->active, state->nactive, sizeof(char *), mailq_cmp);
    }
    ipc_rec_free(reply);
    ipc_rec_free(req);
    vstr_free(why);
}

/* mailq_is_active - whether qmgr is delivering a message */
static int mailq_is_active(const MAILQ_STATE *state, const char *qid)
{
    return state->nactive > 0 &&
           bsearch(&qid, state->active, state->nactive, sizeof(char *), mailq_cmp) != NULL;
}

/* mailq_clean - text for a terminal: line breaks become blanks, controls "?" */
static char *mailq_clean(const char *text)
{
    char *copy = mystrdup(text);

    for (char *cp = copy; *cp; cp++) {
        if (*cp == '\r' || *cp == '\n' || *cp == '\t')
            *cp = ' ';
        else if ((unsigned char)*cp < 0x20 || *cp == 0x7f)
            *cp = '?';
    }
    return copy;
}

/* mailq_reason - "(reason)" right-aligned to end in column 78, as Postfix prints it */
static void mailq_reason(FILE *fp, const char *reply)
{
    char *text = mailq_clean(reply);
    int padding = MAILQ_WIDTH - 2 - (int)strlen(text);

    /* A reason too long for the line starts in column 0, unbroken, so that
     * scripts that read mailq find it on one line. */
    fprintf(fp, "%*s(%s)\n", padding > 0 ? padding : 0, "", text);
    myfree(text);
}

/* mailq_json_str - a JSON string: quotes, backslashes, controls and bad UTF-8 escaped */
static void mailq_json_str(FILE *fp, const char *text)
{
    const unsigned char *cp = (const unsigned char *)text;
    size_t n;

    putc('"', fp);
    while (*cp) {
        if (*cp == '"' || *cp == '\\') {
            fprintf(fp, "\\%c", *cp++);
        } else if (*cp < 0x20 || *cp == 0x7f) {
            fprintf(fp, "\\u%04x", *cp++);
        } else if (*cp < 0x80) {
            putc(*cp++, fp);
        } else {
            /* Pass well-formed UTF-8 through; anything else would make invalid JSON. */
            n = *cp >= 0xc2 && *cp <= 0xdf   ? 1
                : *cp >= 0xe0 && *cp <= 0xef ? 2
                : *cp >= 0xf0 && *cp <= 0xf4 ? 3
                                             : 0;
            for (size_t k = 1; k <= n; k++)
                if ((cp[k] & 0xc0) != 0x80)
                    n = 0;
            if (n == 0) {
                fputs("\\ufffd", fp);
                cp++;
            } else {
                fwrite(cp, 1, n + 1, fp);
                cp += n + 1;
            }
        }
    }
    putc('"', fp);
}

/* mailq_pending - a recipient that is still to be delivered */
static int mailq_pending(const QRCPT *rcpt)
{
    return rcpt->status == QRCPT_PENDING || rcpt->status == QRCPT_DEFERRED;
}

/* mailq_print_text - one message in the postqueue -p layout */
static void mailq_print_text(MAILQ_STATE *state, const QMSG *msg, const QRCPT *rcpts, size_t nrcpt,
                             int active)
{
    time_t when = (time_t)(msg->arrival_ms / 1000);
    struct tm tm;
    char date[64];
    char *sender;
    char *addr;
    const char *last_reason = "";

    if (state->count == 0)
        fprintf(state->out, "%-13s %8s %-20s %s\n", "-Queue ID-", "--Size--",
                "----Arrival Time----", "-Sender/Recipient-------");
    localtime_r(&when, &tm);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S", &tm);
    sender = mailq_clean(*msg->sender ? msg->sender : "MAILER-DAEMON");
    fprintf(state->out, "%-12s%c %8lld %-20s %s\n", msg->qid,
            active                     ? '*'
            : (msg->flags & QMSG_HOLD) ? '!'
                                       : ' ',
            msg->size, date, sender);
    myfree(sender);
    for (size_t i = 0; i < nrcpt; i++) {
        if (!mailq_pending(rcpts + i))
            continue;
        /* Like Postfix: a reason only where it differs from the one above. */
        if (strcmp(rcpts[i].reply, last_reason) != 0) {
            mailq_reason(state->out, *rcpts[i].reply ? rcpts[i].reply : "reason unavailable");
            last_reason = rcpts[i].reply;
        }
        addr = mailq_clean(rcpts[i].addr);
        fprintf(state->out, "%*s%s\n", MAILQ_RCPT_INDENT, "", addr);
        myfree(addr);
    }
    fputc('\n', state->out);
}

/* mailq_print_json - one message as a postqueue -j object on one line */
static void mailq_print_json(MAILQ_STATE *state, const QMSG *msg, const QRCPT *rcpts, size_t nrcpt,
                             int active)
{
    FILE *fp = state->out;
    const char *queue = active                     ? "active"
                        : (msg->flags & QMSG_HOLD) ? "hold"
                        : msg->attempts > 0        ? "deferred"
                                                   : "incoming";
    int first = 1;

    fprintf(fp, "{\"queue_name\": \"%s\", \"queue_id\": ", queue);
    mailq_json_str(fp, msg->qid);
    fprintf(fp,
            ", \"arrival_time\": %lld, \"message_size\": %lld, \"forced_expire\": false, "
            "\"sender\": ",
            msg->arrival_ms / 1000, msg->size);
    mailq_json_str(fp, msg->sender);
    fputs(", \"recipients\": [", fp);
    for (size_t i = 0; i < nrcpt; i++) {
        if (!mailq_pending(rcpts + i))
            continue;
        fputs(first ? "{\"address\": " : ", {\"address\": ", fp);
        first = 0;
        mailq_json_str(fp, rcpts[i].addr);
        if (*rcpts[i].reply) {
            fputs(", \"delay_reason\": ", fp);
            mailq_json_str(fp, rcpts[i].reply);
        }
        fputc('}', fp);
    }
    fprintf(fp, "], \"next_attempt\": %lld, \"attempts\": %u}\n", msg->next_attempt, msg->attempts);
}

/* mailq_message - qstore_message_scan callback: list one message */
static int mailq_message(const QMSG *msg, void *ctx)
{
    MAILQ_STATE *state = ctx;
    QRCPT *rcpts = NULL;
    size_t nrcpt = 0;
    int active = mailq_is_active(state, msg->qid);

    if (qstore_rcpts_get(state->txn, msg->qid, &rcpts, &nrcpt) != QSTORE_OK) {
        vstr_sprintf(state->why, "%s", qstore_txn_reason(state->txn));
        state->failed = 1;
        return 1;
    }
    if (state->json)
        mailq_print_json(state, msg, rcpts, nrcpt, active);
    else
        mailq_print_text(state, msg, rcpts, nrcpt, active);
    qstore_rcpts_free(rcpts, nrcpt);
    state->count++;
    state->total_bytes += msg->size;
    return 0;
}

/* mailq_copy - the finished listing to standard output */
static void mailq_copy(FILE *from)
{
    char buf[65536];
    size_t n;

    rewind(from);
    while ((n = fread(buf, 1, sizeof(buf), from)) > 0)
        if (fwrite(buf, 1, n, stdout) != n)
            break;
    if (ferror(from))
        msg_fatal_status(EX_IOERR, "read the temporary listing: %s", strerror(errno));
}

/* mailq_empty - a queue that never held mail */
static int mailq_empty(int json)
{
    if (!json)
        printf("Mail queue is empty\n");
    return 0;
}

/* mailq_main - "relayq mailq [-c FILE] [--json]" */
int mailq_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    MAILQ_STATE state;
    const char *config = NULL;
    char *dbdir;
    char *datafile;
    struct stat st;
    QSTORE *store;
    VSTR *why = vstr_alloc(100);
    int ch;

    memset(&state, 0, sizeof(state));
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:j", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            state.json = 1;
            break;
        default:
            relayq_usage("mailq", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("mailq", NULL);
    relayq_load_config(config);

    dbdir = qdir_path(var_str("queue_directory"), QDIR_DB);
    datafile = qdir_path(dbdir, "data.mdb");
    if (stat(datafile, &st) < 0 && errno == ENOENT)
        return mailq_empty(state.json);
    mailq_ask_active(&state);
    if ((store = qstore_open(dbdir, (size_t)var_int("queue_map_size"), QSTORE_READONLY, why)) ==
        NULL) {
        /* Created but never committed to: no database exists yet. */
        if (strstr(vstr_str(why), "queue not created yet") != NULL)
            return mailq_empty(state.json);
        msg_fatal_status(strstr(vstr_str(why), "ermission denied") ? EX_NOPERM : EX_UNAVAILABLE,
                         "cannot read the queue: %s", vstr_str(why));
    }
    if ((state.txn = qstore_begin(store, 0, why)) == NULL)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", vstr_str(why));
    if ((state.out = tmpfile()) == NULL)
        state.out = stdout;
    state.why = vstr_alloc(100);
    if (qstore_message_scan(state.txn, mailq_message, &state) != QSTORE_OK && !state.failed) {
        vstr_strcpy(state.why, qstore_txn_reason(state.txn));
        state.failed = 1;
    }
    qstore_abort(state.txn);
    qstore_close(store);
    if (state.failed)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", vstr_str(state.why));
    if (state.out != stdout) {
        mailq_copy(state.out);
        fclose(state.out);
    }
    if (state.count == 0)
        mailq_empty(state.json);
    else if (!state.json)
        printf("-- %lld Kbytes in %zu Request%s.\n", state.total_bytes / 1024, state.count,
               state.count == 1 ? "" : "s");
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal_status(EX_IOERR, "write the listing: %s", strerror(errno));

    for (size_t i = 0; i < state.nactive; i++)
        myfree(state.active[i]);
    myfree(state.active);
    vstr_free(state.why);
    vstr_free(why);
    myfree(dbdir);
    myfree(datafile);
    return 0;
}
