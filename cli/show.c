/*
 * show - one message in detail: envelope, headers, recipients, attempts
 *
 * show_main()
 *	"relayq show [-c FILE] QUEUE_ID": print, in sections,
 *	- the envelope: queue id, state (active when qmgr is delivering it,
 *	  else held, deferred when it was tried, else incoming; "set aside"
 *	  with the reason when qmgr took it out of scheduling because a
 *	  queue record fails authentication), the key ids its envelope and
 *	  content are sealed under (when they are), arrival time, size,
 *	  sender, attempts, next attempt, DSN ENVID and RET;
 *	- the header section of the content (at most SHOW_HEADER_MAX bytes);
 *	- each recipient with its status (pending, sent, deferred, bounced),
 *	  last DSN code, last attempt time and last reply, ORCPT and NOTIFY;
 *	- the attempt history kept in the queue, oldest first, one line per
 *	  recipient per attempt in the log's words: time, to=<>, relay=,
 *	  dsn=, status= and the reply.
 *
 * Everything read from the queue is untrusted text: control bytes and
 * bytes outside ASCII are shown as \xHH escapes (a header's tab stays),
 * so the output cannot drive the terminal. The queue is opened read-only
 * and everything is read in one snapshot, which ends before the first
 * byte is printed. Whether qmgr delivers the message now is asked over
 * public/control, as mailq does; when qmgr is not running, it does not.
 *
 * A section whose queue record fails authentication says so instead of
 * showing anything of it: altered data is never shown.
 *
 * Exit codes: 0; EX_USAGE for a malformed queue id or bad arguments;
 * EX_NOINPUT ("QUEUE_ID: no such message") when the queue does not hold
 * the message; EX_UNAVAILABLE or EX_NOPERM when the queue cannot be read.
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

#include "cli.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "qstore.h"

#define SHOW_ACTIVE_TIMEOUT_MS 2000
#define SHOW_HEADER_MAX 65536 /* bytes of the header section shown */

/* Everything shown about one message, read in one snapshot. */
typedef struct SHOW_MSG {
    QMSG msg;
    QRCPT *rcpts;
    size_t nrcpt;
    QATTEMPT *attempts;
    size_t nattempt;
    VSTR *headers;                   /* the header section, at most SHOW_HEADER_MAX bytes */
    size_t header_len;               /* its full length */
    int have_body;                   /* the content was found */
    VSTR *aside;                     /* why qmgr set it aside, or "" */
    unsigned envelope_key, body_key; /* key ids sealing them, 0: clear */
    int bad_envelope, bad_rcpts, bad_attempts, bad_body; /* fail authentication */
} SHOW_MSG;

#define SHOW_TAMPERED "(a queue record fails authentication: not shown)\n"

/* show_is_active - whether qmgr says it is delivering the message now */
static int show_is_active(const char *qid)
{
    IPC_REC *req = ipc_rec_create("active");
    IPC_REC *reply = NULL;
    VSTR *why = vstr_alloc(100);
    int active = 0;

    if (control_request(SOCK_CONTROL, PROTO_CONTROL, req, SHOW_ACTIVE_TIMEOUT_MS, &reply, why) ==
            CONTROL_OK &&
        strcmp(ipc_rec_type(reply), "active") == 0 &&
        ipc_rec_check(reply, "", "queue_id*", why) == 0) {
        for (size_t i = 1; i < reply->count && !active; i++)
            active = strcmp(reply->attrs[i].value, qid) == 0;
    }
    ipc_rec_free(reply);
    ipc_rec_free(req);
    vstr_free(why);
    return active;
}

/* show_escape - untrusted bytes for a terminal: controls and non-ASCII as \xHH */
static void show_escape(FILE *fp, const char *text, size_t len, int keep_tab)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];

        if ((ch >= 0x20 && ch < 0x7f) || (ch == '\t' && keep_tab))
            putc(ch, fp);
        else
            fprintf(fp, "\\x%02x", ch);
    }
}

/* show_str - a NUL-terminated untrusted string, escaped */
static void show_str(FILE *fp, const char *text)
{
    show_escape(fp, text, strlen(text), 0);
}

/* show_time - a time in seconds, local, with the zone; "never" for 0 */
static void show_time(FILE *fp, long long when)
{
    time_t t = (time_t)when;
    struct tm tm;
    char buf[64];

    if (when <= 0) {
        fputs("never", fp);
        return;
    }
    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm);
    fputs(buf, fp);
}

/* show_time_ms - an attempt's time, to the millisecond */
static void show_time_ms(FILE *fp, long long when_ms)
{
    time_t t = (time_t)(when_ms / 1000);
    struct tm tm;
    char buf[64];

    localtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(fp, "%s.%03lld", buf, when_ms % 1000);
}

/* show_status - a recipient status word */
static const char *show_status(int status)
{
    switch (status) {
    case QRCPT_PENDING:
        return "pending";
    case QRCPT_SENT:
        return "sent";
    case QRCPT_DEFERRED:
        return "deferred";
    case QRCPT_BOUNCED:
        return "bounced";
    default:
        return "unknown";
    }
}

/* show_header_section - keep the content up to its empty line, bounded */
static void show_header_section(SHOW_MSG *show, const VSTR *body)
{
    const char *data = vstr_str(body);
    size_t len = vstr_len(body), end = len;

    /* The section ends before the first empty line (CRLF or a bare LF). */
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n')
            continue;
        if (i + 1 < len && data[i + 1] == '\n') {
            end = i + 1;
            break;
        }
        if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n') {
            end = i + 1;
            break;
        }
    }
    if (len > 0 && (data[0] == '\n' || (len > 1 && data[0] == '\r' && data[1] == '\n')))
        end = 0;
    show->header_len = end;
    vstr_append(show->headers, data, end > SHOW_HEADER_MAX ? SHOW_HEADER_MAX : end);
}

/* show_section - whether a part fails authentication (1); other failures are fatal */
static int show_section(QSTORE_TXN *txn, int rc)
{
    if (rc == QSTORE_TAMPERED)
        return 1;
    if (rc != QSTORE_OK)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", qstore_txn_reason(txn));
    return 0;
}

/* show_read - everything about one message; QSTORE_NOTFOUND when it is not queued */
static int show_read(const char *qid, SHOW_MSG *show)
{
    char *dbdir = qdir_path(var_str(queue_directory), QDIR_DB);
    char *datafile = qdir_path(dbdir, "data.mdb");
    VSTR *why = vstr_alloc(100);
    VSTR *body;
    QSTORE *store;
    QSTORE_TXN *txn;
    struct stat st;
    int rc;

    if (stat(datafile, &st) < 0 && errno == ENOENT) {
        rc = QSTORE_NOTFOUND;
        goto done;
    }
    if ((store = qstore_open(dbdir, (size_t)var_int(queue_map_size), QSTORE_READONLY, why)) ==
        NULL) {
        /* Created but never committed to: no message exists. */
        if (strstr(vstr_str(why), "queue not created yet") != NULL) {
            rc = QSTORE_NOTFOUND;
            goto done;
        }
        msg_fatal_status(strstr(vstr_str(why), "ermission denied") ? EX_NOPERM : EX_UNAVAILABLE,
                         "cannot read the queue: %s", vstr_str(why));
    }
    if ((txn = qstore_begin(store, 0, why)) == NULL)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", vstr_str(why));
    rc = qstore_message_get(txn, qid, &show->msg);
    if ((show->bad_envelope = (rc == QSTORE_TAMPERED)) != 0) {
        snprintf(show->msg.qid, sizeof(show->msg.qid), "%s", qid);
        rc = QSTORE_OK;
    }
    if (rc == QSTORE_OK) {
        qstore_aside_get(txn, qid, show->aside);
        qstore_seal_ids(txn, qid, &show->envelope_key, &show->body_key);
        body = vstr_alloc(4096);
        show->bad_rcpts = show_section(txn, qstore_rcpts_get(txn, qid, &show->rcpts, &show->nrcpt));
        show->bad_attempts =
            show_section(txn, qstore_attempts_get(txn, qid, &show->attempts, &show->nattempt));
        rc = qstore_body_get(txn, qid, body);
        show->bad_body = show_section(txn, rc == QSTORE_NOTFOUND ? QSTORE_OK : rc);
        /* A message caught between its envelope and its content is shown without. */
        show->have_body = (rc == QSTORE_OK);
        rc = QSTORE_OK;
        show_header_section(show, body);
        vstr_free(body);
    } else if (rc != QSTORE_NOTFOUND) {
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", qstore_txn_reason(txn));
    }
    qstore_abort(txn);
    qstore_close(store);
done:
    vstr_free(why);
    myfree(dbdir);
    myfree(datafile);
    return rc;
}

/* show_envelope - the envelope section */
static void show_envelope(FILE *fp, const SHOW_MSG *show, int active)
{
    const QMSG *msg = &show->msg;

    fprintf(fp, "*** ENVELOPE ***\n");
    fprintf(fp, "queue_id: %s\n", msg->qid);
    if (vstr_len(show->aside) > 0) {
        fputs("state: set aside (", fp);
        show_str(fp, vstr_str(show->aside));
        fputs(")\n", fp);
    } else if (!show->bad_envelope) {
        fprintf(fp, "state: %s\n",
                active                     ? "active"
                : (msg->flags & QMSG_HOLD) ? "held"
                : msg->attempts > 0        ? "deferred"
                                           : "incoming");
    }
    if (show->envelope_key != 0 || show->body_key != 0)
        fprintf(fp, "sealed: envelope key %u, content key %u\n", show->envelope_key,
                show->body_key);
    if (show->bad_envelope) {
        fputs(SHOW_TAMPERED, fp);
        return;
    }
    fprintf(fp, "arrival_time: ");
    show_time(fp, msg->arrival_ms / 1000);
    fprintf(fp, "\nmessage_size: %lld\nsender: ", msg->size);
    show_str(fp, *msg->sender ? msg->sender : "MAILER-DAEMON");
    fprintf(fp, "\nattempts: %u\nnext_attempt: ", msg->attempts);
    if (vstr_len(show->aside) > 0)
        fputs("none (set aside)", fp);
    else if (msg->flags & QMSG_HOLD)
        fputs("none (held)", fp);
    else
        show_time(fp, msg->next_attempt);
    fputc('\n', fp);
    if (*msg->envid) {
        fputs("dsn_envid: ", fp);
        show_str(fp, msg->envid);
        fputc('\n', fp);
    }
    if (*msg->ret) {
        fputs("dsn_ret: ", fp);
        show_str(fp, msg->ret);
        fputc('\n', fp);
    }
}

/* show_headers - the header section, line by line */
static void show_headers(FILE *fp, const SHOW_MSG *show)
{
    const char *cp = vstr_str(show->headers);
    const char *end = cp + vstr_len(show->headers);

    fprintf(fp, "*** HEADERS ***\n");
    if (show->bad_body) {
        fputs(SHOW_TAMPERED, fp);
        return;
    }
    if (!show->have_body) {
        fprintf(fp, "(no content stored)\n");
        return;
    }
    while (cp < end) {
        const char *nl = memchr(cp, '\n', (size_t)(end - cp));
        const char *stop = nl ? nl : end;

        /* The stored line end is CRLF: only a CR elsewhere is news. */
        if (nl && stop > cp && stop[-1] == '\r')
            stop--;
        show_escape(fp, cp, (size_t)(stop - cp), 1);
        fputc('\n', fp);
        cp = nl ? nl + 1 : end;
    }
    if (show->header_len > vstr_len(show->headers))
        fprintf(fp, "(header section truncated: %zu of %zu bytes shown)\n", vstr_len(show->headers),
                show->header_len);
}

/* show_recipients - each recipient and its state */
static void show_recipients(FILE *fp, const SHOW_MSG *show)
{
    fprintf(fp, "*** RECIPIENTS ***\n");
    if (show->bad_rcpts)
        fputs(SHOW_TAMPERED, fp);
    for (size_t i = 0; i < show->nrcpt; i++) {
        const QRCPT *rcpt = show->rcpts + i;

        fputs("recipient: ", fp);
        show_str(fp, rcpt->addr);
        fprintf(fp, "\n  status: %s\n", show_status(rcpt->status));
        if (*rcpt->dsn) {
            fputs("  dsn: ", fp);
            show_str(fp, rcpt->dsn);
            fputc('\n', fp);
        }
        fputs("  last_attempt: ", fp);
        show_time(fp, rcpt->last_attempt);
        fputc('\n', fp);
        if (*rcpt->reply) {
            fputs("  reply: ", fp);
            show_str(fp, rcpt->reply);
            fputc('\n', fp);
        }
        if (*rcpt->orcpt) {
            fputs("  orcpt: ", fp);
            show_str(fp, rcpt->orcpt);
            fputc('\n', fp);
        }
        if (*rcpt->notify) {
            fputs("  notify: ", fp);
            show_str(fp, rcpt->notify);
            fputc('\n', fp);
        }
    }
}

/* show_attempts - the attempt history, oldest first, in the log's words */
static void show_attempts(FILE *fp, const SHOW_MSG *show)
{
    fprintf(fp, "*** ATTEMPTS ***\n");
    if (show->bad_attempts)
        fputs(SHOW_TAMPERED, fp);
    else if (show->nattempt == 0)
        fprintf(fp, "(none)\n");
    for (size_t i = 0; i < show->nattempt; i++) {
        const QATTEMPT *at = show->attempts + i;
        const char *addr = NULL;

        for (size_t r = 0; r < show->nrcpt && addr == NULL; r++)
            if (show->rcpts[r].index == at->index)
                addr = show->rcpts[r].addr;
        show_time_ms(fp, at->when_ms);
        fputs(" to=<", fp);
        if (addr != NULL)
            show_str(fp, addr);
        else
            fprintf(fp, "#%u", at->index);
        fputs(">, relay=", fp);
        show_str(fp, *at->relay ? at->relay : "none");
        fputs(", dsn=", fp);
        show_str(fp, *at->dsn ? at->dsn : "-");
        fprintf(fp, ", status=%s (", show_status(at->status));
        show_str(fp, at->reply);
        fputs(")\n", fp);
    }
}

/* show_main - "relayq show [-c FILE] QUEUE_ID" */
int show_main(int argc, char **argv)
{
    SHOW_MSG show;
    const char *config = NULL;
    const char *qid;
    int active, ch;

    memset(&show, 0, sizeof(show));
    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:")) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        default:
            relayq_usage("show", NULL);
        }
    }
    if (optind != argc - 1)
        relayq_usage("show", NULL);
    qid = argv[optind];
    if (!qid_valid(qid)) {
        char *shown = relayq_printable(qid, 0);

        fprintf(stderr, "relayq: fatal: %s: malformed queue id\n", shown);
        myfree(shown);
        relayq_usage("show", NULL);
    }
    relayq_load_config(config);
    relayq_read_as_mail_owner();

    show.headers = vstr_alloc(1024);
    show.aside = vstr_alloc(100);
    if (show_read(qid, &show) == QSTORE_NOTFOUND)
        msg_fatal_status(EX_NOINPUT, "%s: no such message", qid);
    active = show_is_active(qid);
    show_envelope(stdout, &show, active);
    show_headers(stdout, &show);
    show_recipients(stdout, &show);
    show_attempts(stdout, &show);
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal_status(EX_IOERR, "write the message: %s", strerror(errno));

    qmsg_free(&show.msg);
    qstore_rcpts_free(show.rcpts, show.nrcpt);
    qstore_attempts_free(show.attempts, show.nattempt);
    vstr_free(show.headers);
    vstr_free(show.aside);
    return 0;
}
