/*
 * qlist - the queue listing of mailq, written by the command or by qmgr
 *
 * qlist_create(), qlist_step(), qlist_free()
 *	a listing written in steps: each qlist_step() lists at most `limit`
 *	more messages of the transaction it is given (a new one each time,
 *	so no snapshot is held between steps) after the last one listed,
 *	then, in the step after the last message, the messages set aside
 *	and the closing line. Returns 1 when the listing is complete, 0 when
 *	more is to come, -1 with why when the queue cannot be read. qmgr
 *	serves other users' listings this way, a bounded step per loop pass.
 * qlist_write()
 *	write every message of a read snapshot to `out`: in Postfix's
 *	"postqueue -p" layout (queue id, "*" when being delivered, "!" when
 *	held; size; arrival time; sender; each recipient still to be
 *	delivered under its last deferral reason; then "-- N Kbytes in M
 *	Requests." or "Mail queue is empty"), or with opts->json one
 *	"postqueue -j" object per message per line, plus next_attempt and
 *	attempts (queue_name "deferred" once an attempt was counted or a
 *	recipient was deferred, e.g. while its destination is suspended). Messages set aside because
 *a queue record fails authentication (encryption at rest) come last: "QUEUE_ID# (set aside:
 *	reason)", or queue_name "aside" with the reason. Returns 0, or -1 with
 *	why when the snapshot cannot be read (the output is then incomplete).
 * qlist_write_empty()
 *	the listing of a queue that was never created.
 *
 * Submissions still in maildrop/ (opts->maildrop, counted by the caller:
 * relayq is stopped, or pickup has not reached them) are not in the queue
 * yet but are mail all the same: the text layout ends with "-- N Requests
 * in maildrop, waiting for pickup." and then never says "Mail queue is
 * empty". The JSON layout has objects for queued messages only.
 *
 * Queue content is untrusted text: line breaks and control characters are
 * neutralised for the terminal, and JSON strings are escaped, with
 * malformed UTF-8 replaced, so that the output always parses.
 *
 * The same code serves "relayq mailq" reading the queue itself (root and
 * mail_owner) and qmgr answering other users over public/control, so both
 * see the same listing. The caller owns `out` and the transaction.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "mymalloc.h"
#include "qid.h"
#include "qlist.h"
#include "qname.h"

#define QLIST_RCPT_INDENT 44 /* recipients start in the sender's column */
#define QLIST_WIDTH 78       /* deferral reasons end in this column */

/* Where a listing in steps stands. */
typedef enum { QLIST_MESSAGES, QLIST_ASIDE, QLIST_DONE } QLIST_PHASE;

/* The state of one listing. */
struct QLIST {
    QSTORE_TXN *txn; /* the current step's */
    QLIST_OPTS opts;
    FILE *out;               /* the current step's */
    QLIST_PHASE phase;       /* what the next step lists */
    char after[QID_LEN + 1]; /* the last message listed */
    size_t step_count;       /* messages listed in this step */
    size_t step_limit;       /* at most this many in one step */
    size_t count;            /* messages listed */
    long long total_bytes;   /* their sizes */
    VSTR *why;               /* the first read error, which stops the listing */
    int failed;
};

/* qlist_clean - text for a terminal: line breaks become blanks, controls "?" */
static char *qlist_clean(const char *text)
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

/* qlist_reason - "(reason)" right-aligned to end in column 78, as Postfix prints it */
static void qlist_reason(FILE *fp, const char *reply)
{
    char *text = qlist_clean(reply);
    int padding = QLIST_WIDTH - 2 - (int)strlen(text);

    /* A reason too long for the line starts in column 0, unbroken, so that
     * scripts that read mailq find it on one line. */
    fprintf(fp, "%*s(%s)\n", padding > 0 ? padding : 0, "", text);
    myfree(text);
}

/* qlist_json_str - a JSON string: quotes, backslashes, controls and bad UTF-8 escaped */
static void qlist_json_str(FILE *fp, const char *text)
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

/* qlist_pending - a recipient that is still to be delivered */
static int qlist_pending(const QRCPT *rcpt)
{
    return rcpt->status == QRCPT_PENDING || rcpt->status == QRCPT_DEFERRED;
}

/* qlist_text - one message in the postqueue -p layout */
static void qlist_text(QLIST *state, const QMSG *msg, const QRCPT *rcpts, size_t nrcpt, int active)
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
    sender = qlist_clean(*msg->sender ? msg->sender : "MAILER-DAEMON");
    fprintf(state->out, "%-12s%c %8lld %-20s %s\n", msg->qid,
            active                     ? '*'
            : (msg->flags & QMSG_HOLD) ? '!'
                                       : ' ',
            msg->size, date, sender);
    myfree(sender);
    for (size_t i = 0; i < nrcpt; i++) {
        if (!qlist_pending(rcpts + i))
            continue;
        /* Like Postfix: a reason only where it differs from the one above. */
        if (strcmp(rcpts[i].reply, last_reason) != 0) {
            qlist_reason(state->out, *rcpts[i].reply ? rcpts[i].reply : "reason unavailable");
            last_reason = rcpts[i].reply;
        }
        addr = qlist_clean(rcpts[i].addr);
        fprintf(state->out, "%*s%s\n", QLIST_RCPT_INDENT, "", addr);
        myfree(addr);
    }
    fputc('\n', state->out);
}

/* qlist_json - one message as a postqueue -j object on one line */
static void qlist_json(QLIST *state, const QMSG *msg, const QRCPT *rcpts, size_t nrcpt, int active)
{
    FILE *fp = state->out;
    const char *queue = qname_str(qname_of(msg, rcpts, nrcpt, active));
    int first = 1;

    fprintf(fp, "{\"queue_name\": \"%s\", \"queue_id\": ", queue);
    qlist_json_str(fp, msg->qid);
    fprintf(fp,
            ", \"arrival_time\": %lld, \"message_size\": %lld, \"forced_expire\": false, "
            "\"sender\": ",
            msg->arrival_ms / 1000, msg->size);
    qlist_json_str(fp, msg->sender);
    fputs(", \"recipients\": [", fp);
    for (size_t i = 0; i < nrcpt; i++) {
        if (!qlist_pending(rcpts + i))
            continue;
        fputs(first ? "{\"address\": " : ", {\"address\": ", fp);
        first = 0;
        qlist_json_str(fp, rcpts[i].addr);
        if (*rcpts[i].reply) {
            fputs(", \"delay_reason\": ", fp);
            qlist_json_str(fp, rcpts[i].reply);
        }
        fputc('}', fp);
    }
    fprintf(fp, "], \"next_attempt\": %lld, \"attempts\": %u}\n", msg->next_attempt, msg->attempts);
}

/* qlist_aside - a message set aside (a queue record fails authentication): its id and why */
static int qlist_aside(const char *qid, long long when_ms, const char *reason, void *ctx)
{
    QLIST *state = ctx;
    char *text;

    (void)when_ms;
    if (state->opts.json) {
        fputs("{\"queue_name\": \"aside\", \"queue_id\": ", state->out);
        qlist_json_str(state->out, qid);
        fputs(", \"reason\": ", state->out);
        qlist_json_str(state->out, reason);
        fputs(", \"recipients\": []}\n", state->out);
    } else {
        text = qlist_clean(reason);
        fprintf(state->out, "%-12s# (set aside: %s)\n\n", qid, text);
        myfree(text);
    }
    state->count++;
    return 0;
}

/* qlist_message - qstore_message_scan callback: list one message */
static int qlist_message(const QMSG *msg, void *ctx)
{
    QLIST *state = ctx;
    QRCPT *rcpts = NULL;
    size_t nrcpt = 0;
    int active = state->opts.is_active && state->opts.is_active(msg->qid, state->opts.ctx);
    int rc;

    /* Not set aside yet: qmgr will when it next tries it. */
    if ((rc = qstore_rcpts_get(state->txn, msg->qid, &rcpts, &nrcpt)) == QSTORE_TAMPERED) {
        (void)qlist_aside(msg->qid, 0, "queue record in recipients fails authentication", state);
        snprintf(state->after, sizeof(state->after), "%s", msg->qid);
        return ++state->step_count >= state->step_limit;
    }
    if (rc != QSTORE_OK) {
        vstr_sprintf(state->why, "%s", qstore_txn_reason(state->txn));
        state->failed = 1;
        return 1;
    }
    if (state->opts.json)
        qlist_json(state, msg, rcpts, nrcpt, active);
    else
        qlist_text(state, msg, rcpts, nrcpt, active);
    qstore_rcpts_free(rcpts, nrcpt);
    state->count++;
    state->total_bytes += msg->size;
    snprintf(state->after, sizeof(state->after), "%s", msg->qid);
    return ++state->step_count >= state->step_limit;
}

/* qlist_write_maildrop - the submissions pickup has not taken yet, after the listing */
static void qlist_write_maildrop(const QLIST_OPTS *opts, FILE *out)
{
    if (!opts->json && opts->maildrop > 0)
        fprintf(out, "-- %ld Request%s in maildrop, waiting for pickup.\n", opts->maildrop,
                opts->maildrop == 1 ? "" : "s");
}

/* qlist_write_empty - the listing of an empty queue */
void qlist_write_empty(const QLIST_OPTS *opts, FILE *out)
{
    if (!opts->json && opts->maildrop <= 0)
        fprintf(out, "Mail queue is empty\n");
    qlist_write_maildrop(opts, out);
}

/* qlist_create - a listing to write in steps */
QLIST *qlist_create(const QLIST_OPTS *opts)
{
    QLIST *list = mycalloc(1, sizeof(*list));

    list->opts = *opts;
    list->phase = QLIST_MESSAGES;
    return list;
}

/* qlist_free - release a listing */
void qlist_free(QLIST *list)
{
    myfree(list);
}

/* qlist_end - the closing lines, once everything is listed */
static void qlist_end(QLIST *list)
{
    if (list->count == 0) {
        qlist_write_empty(&list->opts, list->out);
    } else {
        if (!list->opts.json)
            fprintf(list->out, "-- %lld Kbytes in %zu Request%s.\n", list->total_bytes / 1024,
                    list->count, list->count == 1 ? "" : "s");
        qlist_write_maildrop(&list->opts, list->out);
    }
}

/* qlist_step - list up to limit more messages from a transaction */
int qlist_step(QLIST *list, QSTORE_TXN *txn, FILE *out, size_t limit, VSTR *why)
{
    int rc;

    list->txn = txn;
    list->out = out;
    list->why = why;
    list->step_count = 0;
    list->step_limit = limit > 0 ? limit : 1;
    if (list->phase == QLIST_MESSAGES) {
        rc = qstore_message_scan(txn, list->after, qlist_message, list);
        if (rc != QSTORE_OK && !list->failed) {
            vstr_strcpy(why, qstore_txn_reason(txn));
            list->failed = 1;
        }
        /* A step that stopped at its limit may have more after it. */
        if (!list->failed && list->step_count < list->step_limit)
            list->phase = QLIST_ASIDE;
    } else if (list->phase == QLIST_ASIDE) {
        if (qstore_aside_scan(txn, qlist_aside, list) != QSTORE_OK && !list->failed) {
            vstr_strcpy(why, qstore_txn_reason(txn));
            list->failed = 1;
        }
        if (!list->failed) {
            qlist_end(list);
            list->phase = QLIST_DONE;
        }
    }
    if (list->failed)
        return -1;
    return list->phase == QLIST_DONE;
}

/* qlist_write - list every message of the snapshot */
int qlist_write(QSTORE_TXN *txn, const QLIST_OPTS *opts, FILE *out, VSTR *why)
{
    QLIST *list = qlist_create(opts);
    int rc;

    while ((rc = qlist_step(list, txn, out, (size_t)-1, why)) == 0)
        continue;
    qlist_free(list);
    return rc < 0 ? -1 : 0;
}
