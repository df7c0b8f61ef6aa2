/*
 * qshape - the queue's shape: mail per domain by age, as Postfix's qshape
 *
 * qshape_main()
 *	"relayq qshape [-c FILE] [-s] [-b BUCKETS] [-t MINUTES] [--json]":
 *	count the recipients that are still to be delivered (pending or
 *	deferred) per recipient domain, or with -s the messages per sender
 *	domain (the null sender counts as MAILER-DAEMON), in age buckets,
 *	and print Postfix's qshape(1) table: a heading row, a TOTAL row,
 *	then one row per domain, most mail first (ties by name). Columns:
 *	T (the total), then the buckets; the first holds mail younger than
 *	-t minutes (default 5), each next one reaches twice as far, and the
 *	last of -b buckets (default 10) is open ("1280+"). Age is now minus
 *	arrival. --json prints the same figures as one object on one line.
 *
 * The whole queue counts (incoming, deferred and held mail alike): unlike
 * Postfix, relayq has one queue, not one directory per state.
 *
 * Only envelopes and, without -s, recipient records are read, never a
 * body: 100,000 messages take a fraction of a second. The queue is opened
 * read-only and the table is printed after the read snapshot ends, so a
 * slow reader of the output does not pin LMDB pages. A queue that was
 * never created is empty. Failures to read the queue are fatal
 * (EX_UNAVAILABLE, or EX_NOPERM); a bad option is EX_USAGE.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "cli.h"
#include "htable.h"
#include "iostuff.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "qstore.h"

#define QSHAPE_WIDTH 80           /* the last column ends here, as in Postfix */
#define QSHAPE_DOMAIN_MIN 18      /* narrowest domain column */
#define QSHAPE_BUCKETS_MAX 32     /* -b limit: the bucket bounds stay far from overflow */
#define QSHAPE_MINUTES_MAX 525600 /* -t limit: a year */
#define QSHAPE_DOMAIN_MAX 255     /* longest domain kept; longer ones are cut */

/* One row of the table: a domain (or TOTAL) and its counts; counts[0] is T. */
typedef struct QSHAPE_ROW {
    char *domain;
    long counts[]; /* 1 + buckets */
} QSHAPE_ROW;

/* One count in progress. */
typedef struct QSHAPE_STATE {
    QSTORE_TXN *txn;   /* the read snapshot */
    int senders;       /* -s: messages per sender domain */
    int buckets;       /* -b */
    long long tick_ms; /* -t, in ms */
    long long now_ms;  /* the reference time of the ages */
    HTABLE *rows;      /* domain -> QSHAPE_ROW */
    QSHAPE_ROW *total;
    VSTR *domain; /* scratch */
    VSTR *why;    /* the first read error, which stops the count */
    int failed;
} QSHAPE_STATE;

/* qshape_row_new - a row of zero counts */
static QSHAPE_ROW *qshape_row_new(const char *domain, int buckets)
{
    QSHAPE_ROW *row = mycalloc(1, sizeof(*row) + sizeof(long) * (size_t)(buckets + 1));

    row->domain = mystrdup(domain);
    return row;
}

/* qshape_row_free - htable_free callback */
static void qshape_row_free(void *value)
{
    QSHAPE_ROW *row = value;

    myfree(row->domain);
    myfree(row);
}

/* qshape_bucket - the age bucket of an arrival time, 1 to buckets */
static int qshape_bucket(const QSHAPE_STATE *state, long long arrival_ms)
{
    long long age = state->now_ms - arrival_ms;
    long long limit = state->tick_ms;
    int bucket = 1;

    /* [0, t), [t, 2t), [2t, 4t), ...: mail from the future is new mail. */
    while (age >= limit && bucket < state->buckets) {
        limit *= 2;
        bucket++;
    }
    return bucket;
}

/* qshape_domain - the domain of an address, normalised as Postfix's qshape does */
static void qshape_domain(VSTR *out, const char *addr)
{
    const char *at = strrchr(addr, '@');
    const char *cp = at ? at + 1 : addr;
    size_t len;

    vstr_reset(out);
    if (*addr == '\0') {
        vstr_strcpy(out, "MAILER-DAEMON");
        return;
    }
    /* Lower case, ".." collapsed, one leading and one trailing dot dropped,
     * and bytes a terminal would act on shown as "?". */
    if (*cp == '.')
        cp++;
    for (; *cp && vstr_len(out) < QSHAPE_DOMAIN_MAX; cp++) {
        unsigned char ch = (unsigned char)*cp;

        if (ch == '.' && vstr_len(out) > 0 && vstr_str(out)[vstr_len(out) - 1] == '.')
            continue;
        vstr_addch(out, ch > 0x20 && ch < 0x7f ? tolower(ch) : '?');
    }
    len = vstr_len(out);
    if (len > 1 && vstr_str(out)[len - 1] == '.')
        vstr_truncate(out, len - 1);
    if (vstr_len(out) == 0)
        vstr_strcpy(out, "?");
}

/* qshape_count - one more piece of mail of a domain in a bucket */
static void qshape_count(QSHAPE_STATE *state, const char *addr, int bucket)
{
    QSHAPE_ROW *row;

    qshape_domain(state->domain, addr);
    if ((row = htable_get(state->rows, vstr_str(state->domain))) == NULL) {
        row = qshape_row_new(vstr_str(state->domain), state->buckets);
        htable_put(state->rows, row->domain, row);
    }
    row->counts[0]++;
    row->counts[bucket]++;
    state->total->counts[0]++;
    state->total->counts[bucket]++;
}

/* qshape_message - qstore_message_scan callback: count one message */
static int qshape_message(const QMSG *msg, void *ctx)
{
    QSHAPE_STATE *state = ctx;
    int bucket = qshape_bucket(state, msg->arrival_ms);
    QRCPT *rcpts = NULL;
    size_t nrcpt = 0;

    if (state->senders) {
        qshape_count(state, msg->sender, bucket);
        return 0;
    }
    if (qstore_rcpts_get(state->txn, msg->qid, &rcpts, &nrcpt) != QSTORE_OK) {
        vstr_sprintf(state->why, "%s", qstore_txn_reason(state->txn));
        state->failed = 1;
        return 1;
    }
    for (size_t i = 0; i < nrcpt; i++)
        if (rcpts[i].status == QRCPT_PENDING || rcpts[i].status == QRCPT_DEFERRED)
            qshape_count(state, rcpts[i].addr, bucket);
    qstore_rcpts_free(rcpts, nrcpt);
    return 0;
}

/* qshape_read - count the queue; 0 when it does not exist yet */
static void qshape_read(QSHAPE_STATE *state)
{
    char *dbdir = qdir_path(var_str(queue_directory), QDIR_DB);
    char *datafile = qdir_path(dbdir, "data.mdb");
    VSTR *why = vstr_alloc(100);
    QSTORE *store;
    struct stat st;

    if (stat(datafile, &st) < 0 && errno == ENOENT)
        goto done;
    if ((store = qstore_open(dbdir, (size_t)var_int(queue_map_size), QSTORE_READONLY, why)) ==
        NULL) {
        /* Created but never committed to: no database exists yet. */
        if (strstr(vstr_str(why), "queue not created yet") != NULL)
            goto done;
        msg_fatal_status(strstr(vstr_str(why), "ermission denied") ? EX_NOPERM : EX_UNAVAILABLE,
                         "cannot read the queue: %s", vstr_str(why));
    }
    if ((state->txn = qstore_begin(store, 0, why)) == NULL)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", vstr_str(why));
    if (qstore_message_scan(state->txn, NULL, qshape_message, state) != QSTORE_OK &&
        !state->failed) {
        vstr_strcpy(state->why, qstore_txn_reason(state->txn));
        state->failed = 1;
    }
    qstore_abort(state->txn);
    state->txn = NULL;
    qstore_close(store);
    if (state->failed)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", vstr_str(state->why));
done:
    vstr_free(why);
    myfree(dbdir);
    myfree(datafile);
}

/* qshape_collect - htable_walk callback: the rows into an array */
static void qshape_collect(const char *key, void *value, void *ctx)
{
    QSHAPE_ROW ***tail = ctx;

    (void)key;
    *(*tail)++ = value;
}

/* qshape_row_cmp - most mail first, ties by name */
static int qshape_row_cmp(const void *a, const void *b)
{
    const QSHAPE_ROW *ra = *(QSHAPE_ROW *const *)a, *rb = *(QSHAPE_ROW *const *)b;

    if (ra->counts[0] != rb->counts[0])
        return ra->counts[0] > rb->counts[0] ? -1 : 1;
    return strcmp(ra->domain, rb->domain);
}

/* qshape_headings - "T", then each bucket's upper bound in minutes, the last "N+" */
static char **qshape_headings(const QSHAPE_STATE *state)
{
    char **heads = mymalloc(sizeof(char *) * (size_t)(state->buckets + 1));
    long long minutes = 0;
    char buf[32];

    heads[0] = mystrdup("T");
    for (int i = 1; i <= state->buckets; i++) {
        /* As Postfix labels them: the open bucket repeats the bound before it. */
        if (i < state->buckets)
            minutes = minutes ? minutes * 2 : state->tick_ms / 60000;
        snprintf(buf, sizeof(buf), i < state->buckets ? "%lld" : "%lld+", minutes);
        heads[i] = mystrdup(buf);
    }
    return heads;
}

/* qshape_print_domain - a domain or heading, right-aligned or cut to "+" and its end */
static void qshape_print_domain(const char *domain, int width)
{
    int len = (int)strlen(domain);

    if (len > width)
        printf("+%s", domain + len - width + 1);
    else
        printf("%*s", width, domain);
}

/* qshape_print_text - the qshape(1) table */
static void qshape_print_text(const QSHAPE_STATE *state, QSHAPE_ROW **rows, size_t nrows)
{
    char **heads = qshape_headings(state);
    int *widths = mymalloc(sizeof(int) * (size_t)(state->buckets + 1));
    int domain_width = QSHAPE_WIDTH;
    char buf[32];

    /* Each column fits its heading and the TOTAL figure plus one blank, at
     * least 3; the domain column takes what remains of 80, at least 18. */
    for (int i = 0; i <= state->buckets; i++) {
        int len = snprintf(buf, sizeof(buf), "%ld", state->total->counts[i]);

        if ((int)strlen(heads[i]) > len)
            len = (int)strlen(heads[i]);
        widths[i] = len > 2 ? len + 1 : 3;
        domain_width -= widths[i];
    }
    if (domain_width < QSHAPE_DOMAIN_MIN)
        domain_width = QSHAPE_DOMAIN_MIN;

    qshape_print_domain("", domain_width);
    for (int i = 0; i <= state->buckets; i++)
        printf("%*s", widths[i], heads[i]);
    putchar('\n');
    for (size_t r = 0; r < nrows; r++) {
        qshape_print_domain(rows[r]->domain, domain_width);
        for (int i = 0; i <= state->buckets; i++)
            printf("%*ld", widths[i], rows[r]->counts[i]);
        putchar('\n');
    }
    for (int i = 0; i <= state->buckets; i++)
        myfree(heads[i]);
    myfree(heads);
    myfree(widths);
}

/* qshape_json_counts - "total": T, "counts": [...] of a row */
static void qshape_json_counts(const QSHAPE_STATE *state, const QSHAPE_ROW *row)
{
    printf("\"total\": %ld, \"counts\": [", row->counts[0]);
    for (int i = 1; i <= state->buckets; i++)
        printf(i > 1 ? ", %ld" : "%ld", row->counts[i]);
    putchar(']');
}

/* qshape_print_json - the same figures as one object on one line; rows[0] is TOTAL */
static void qshape_print_json(const QSHAPE_STATE *state, QSHAPE_ROW **rows, size_t nrows)
{
    char **heads = qshape_headings(state);
    long long minutes = 0;

    /* Domains hold only printable ASCII other than blanks (qshape_domain),
     * but a quote or backslash still needs escaping. */
    printf("{\"by\": \"%s\", \"now\": %lld, \"buckets\": [",
           state->senders ? "sender" : "recipient", state->now_ms / 1000);
    for (int i = 1; i <= state->buckets; i++) {
        if (i < state->buckets) {
            minutes = minutes ? minutes * 2 : state->tick_ms / 60000;
            printf("%s{\"label\": \"%s\", \"max_minutes\": %lld}", i > 1 ? ", " : "", heads[i],
                   minutes);
        } else {
            printf("%s{\"label\": \"%s\", \"max_minutes\": null}", i > 1 ? ", " : "", heads[i]);
        }
    }
    printf("], \"total\": {");
    qshape_json_counts(state, rows[0]);
    printf("}, \"domains\": [");
    for (size_t r = 1; r < nrows; r++) {
        printf("%s{\"domain\": \"", r > 1 ? ", " : "");
        for (const char *cp = rows[r]->domain; *cp; cp++) {
            if (*cp == '"' || *cp == '\\')
                putchar('\\');
            putchar(*cp);
        }
        printf("\", ");
        qshape_json_counts(state, rows[r]);
        putchar('}');
    }
    printf("]}\n");
    for (int i = 0; i <= state->buckets; i++)
        myfree(heads[i]);
    myfree(heads);
}

/* qshape_option - a positive number option within limits, or the usage */
static long long qshape_option(const char *text, long long max)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || n < 1 || n > max)
        relayq_usage("qshape", NULL);
    return n;
}

/* qshape_main - "relayq qshape [-c FILE] [-s] [-b BUCKETS] [-t MINUTES] [--json]" */
int qshape_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    QSHAPE_STATE state;
    const char *config = NULL;
    QSHAPE_ROW **rows, **tail;
    size_t nrows;
    int json = 0, ch;

    memset(&state, 0, sizeof(state));
    state.buckets = 10;
    state.tick_ms = 5 * 60000LL;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:sb:t:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 's':
            state.senders = 1;
            break;
        case 'b':
            state.buckets = (int)qshape_option(optarg, QSHAPE_BUCKETS_MAX);
            break;
        case 't':
            state.tick_ms = qshape_option(optarg, QSHAPE_MINUTES_MAX) * 60000LL;
            break;
        case 'j':
            json = 1;
            break;
        default:
            relayq_usage("qshape", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("qshape", NULL);
    relayq_load_config(config);
    relayq_read_as_mail_owner();

    state.now_ms = wall_ms();
    state.rows = htable_create(64);
    state.total = qshape_row_new("TOTAL", state.buckets);
    state.domain = vstr_alloc(64);
    state.why = vstr_alloc(100);
    qshape_read(&state);

    /* TOTAL first, whatever a domain is called. */
    nrows = htable_count(state.rows) + 1;
    rows = mymalloc(sizeof(*rows) * nrows);
    rows[0] = state.total;
    tail = rows + 1;
    htable_walk(state.rows, qshape_collect, &tail);
    qsort(rows + 1, nrows - 1, sizeof(*rows), qshape_row_cmp);
    if (json)
        qshape_print_json(&state, rows, nrows);
    else
        qshape_print_text(&state, rows, nrows);
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal_status(EX_IOERR, "write the table: %s", strerror(errno));

    myfree(rows);
    htable_free(state.rows, qshape_row_free);
    qshape_row_free(state.total);
    vstr_free(state.domain);
    vstr_free(state.why);
    return 0;
}
