/*
 * qstore_fill - test and benchmark helper: bulk-create messages in a queue
 *
 * Usage: qstore_fill QUEUE_DIR -n COUNT [-a SECONDS_AGO] [--arrival EPOCH]
 *	[-d DOMAINS] [-s SENDER_DOMAINS] [-r MAX_RCPTS] [--deferred]
 *	[--hold-every K] [--dsn] [--seed N] [--ids PREFIX] [--map-size MB]
 *	[--body-size BYTES]
 *
 * main()
 *	create the queue directory tree (owned by the caller) and COUNT
 *	messages in its LMDB store, committed every QFILL_BATCH messages,
 *	so that the commands that read the queue (mailq, qshape, show) can be
 *	tested and timed on queues far bigger than delivery could build,
 *	and so that delivery can be timed on a backlog (bench/drain).
 *
 * What the messages look like:
 *	- arrival: "now" is --arrival EPOCH (default: the clock); the oldest
 *	  message arrived -a SECONDS_AGO before it (default 0) and the others
 *	  are spread evenly from there to "now", oldest first;
 *	- sender: user<k>@ a domain of -s (comma list, default example.org;
 *	  "<>" stands for the null sender);
 *	- 1 to -r recipients (default 1), user<k>@ domains of -d (comma list,
 *	  default example.com);
 *	- a small body with Subject, Message-ID and Date; --body-size BYTES
 *	  (at most 10 MiB) makes the whole content, headers and body as
 *	  stored and sent, BYTES octets long by filler text on the last line
 *	  and on further lines of 76 characters; a message already that long
 *	  without filler is left as it is;
 *	- --deferred: 1 to 5 attempts so far, each recipient deferred with a
 *	  deferral reason and its attempt history, the next attempt 10 to 70
 *	  minutes after "now"; otherwise never tried and due at "now";
 *	- --hold-every K: every K-th message is on hold;
 *	- --dsn: DSN parameters: ENVID, RET=HDRS, and each recipient's NOTIFY
 *	  and ORCPT.
 * Choices come from a small deterministic generator: with --seed N the
 * same arguments give the same queue, byte for byte, except the queue
 * ids, which come from qid_create() unless --ids PREFIX makes them PREFIX
 * followed by a counter in the queue id alphabet. The ids of the new
 * messages are not printed (there may be 100,000); `relayq mailq` lists
 * them.
 *
 * Ownership: everything is released at exit. Any failure is fatal (exit 1
 * with the reason on standard error).
 */
#include "config.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "qdir.h"
#include "qstore.h"
#include "vstr.h"

#define QFILL_BATCH 20000                  /* messages per write transaction */
#define QFILL_MAP_MB 2048                  /* default map size, MB: 100,000 messages fit */
#define QFILL_MAX_ATTEMPTS 5               /* --deferred: at most this many attempts so far */
#define QFILL_LIST_MAX 64                  /* domains in a -d or -s list */
#define QFILL_BACKOFF 300                  /* seconds between the invented attempts */
#define QFILL_NEXT_MIN 600                 /* --deferred: next attempt at least this far ahead */
#define QFILL_NEXT_SPREAD 3600             /* ... plus up to this much */
#define QFILL_BODY_MAX (10L * 1024 * 1024) /* --body-size: at most this many octets */
#define QFILL_PAD_LINE 76                  /* filler lines: this many characters */

static const char qfill_filler[QFILL_PAD_LINE + 1] =
    "Filler text that makes the message as long as --body-size asks, line by line";

static const char qfill_alphabet[] = "0123456789BCDFGHJKLMNPQRSTVWXYZb";

/* One comma-separated list of domains. */
typedef struct QFILL_LIST {
    char *items[QFILL_LIST_MAX];
    size_t count;
} QFILL_LIST;

/* What to create, from the command line. */
typedef struct QFILL_OPTS {
    const char *queue_dir;
    long count;
    long long now;    /* the reference time, s since the epoch */
    long long spread; /* the oldest message is this much older */
    QFILL_LIST rcpt_domains;
    QFILL_LIST sender_domains;
    unsigned max_rcpts;
    int deferred;
    int dsn;         /* --dsn: ENVID, RET, NOTIFY and ORCPT set */
    long hold_every; /* 0: none held */
    uint64_t seed;
    const char *id_prefix; /* NULL: qid_create() */
    size_t map_size;
    size_t body_size; /* 0: no filler */
} QFILL_OPTS;

/* qfill_usage - the usage line, then exit 1 */
static void qfill_usage(void)
{
    msg_fatal("usage: qstore_fill QUEUE_DIR -n COUNT [-a SECONDS_AGO] [--arrival EPOCH] "
              "[-d DOMAINS] [-s SENDER_DOMAINS] [-r MAX_RCPTS] [--deferred] [--hold-every K] "
              "[--dsn] [--seed N] [--ids PREFIX] [--map-size MB] [--body-size BYTES]");
}

/* qfill_number - a non-negative decimal option value, or exit */
static long long qfill_number(const char *opt, const char *text)
{
    char *end;
    long long n = strtoll(text, &end, 10);

    if (*text == '\0' || *end != '\0' || n < 0)
        msg_fatal("%s: bad number \"%s\"", opt, text);
    return n;
}

/* qfill_split - a comma-separated list; the strings stay in the argument */
static void qfill_split(const char *opt, char *text, QFILL_LIST *list)
{
    char *item;

    list->count = 0;
    while ((item = strsep(&text, ",")) != NULL) {
        if (*item == '\0')
            continue;
        if (list->count == QFILL_LIST_MAX)
            msg_fatal("%s: more than %d domains", opt, QFILL_LIST_MAX);
        list->items[list->count++] = item;
    }
    if (list->count == 0)
        msg_fatal("%s: empty list", opt);
}

/* qfill_rand - the next number of a splitmix64 sequence: small and reproducible */
static uint64_t qfill_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* qfill_pick - a number below n */
static unsigned qfill_pick(uint64_t *state, unsigned n)
{
    return (unsigned)(qfill_rand(state) % n);
}

/* qfill_make_id - PREFIX and the counter in the queue id alphabet, or a fresh id */
static void qfill_make_id(const QFILL_OPTS *opts, unsigned long serial, char *qid)
{
    size_t plen;

    if (opts->id_prefix == NULL) {
        qid_create(qid);
        return;
    }
    plen = strlen(opts->id_prefix);
    memcpy(qid, opts->id_prefix, plen);
    for (size_t i = QID_LEN; i > plen; i--) {
        qid[i - 1] = qfill_alphabet[serial & 31];
        serial >>= 5;
    }
    qid[QID_LEN] = '\0';
    if (serial != 0)
        msg_fatal("--ids %s: too long for %ld messages", opts->id_prefix, opts->count);
}

/* qfill_reason - an invented deferral reason for a recipient domain */
static void qfill_reason(VSTR *buf, const char *domain, unsigned kind)
{
    /* Two kinds, so that mailq shows a reason change between recipients. */
    if (kind == 0)
        vstr_sprintf(buf, "connect to mx.%s[192.0.2.1]:25: Connection timed out", domain);
    else
        vstr_sprintf(buf,
                     "host mx.%s[192.0.2.1] said: 451 4.7.1 Try again later (in reply to "
                     "RCPT TO command)",
                     domain);
}

/* qfill_pad - lengthen a content that ends with CRLF to size octets, CRLF still last */
static void qfill_pad(VSTR *body, size_t size)
{
    const char *last_line;
    size_t left, col, n;

    if (vstr_len(body) >= size)
        return;
    vstr_truncate(body, vstr_len(body) - 2);
    last_line = strrchr(vstr_str(body), '\n');
    col = vstr_len(body) - (last_line ? (size_t)(last_line + 1 - vstr_str(body)) : 0);
    /* At least 3 octets are missing: some filler, then the CRLF taken off. */
    for (left = size - vstr_len(body); left > 2; left -= n) {
        if (col >= QFILL_PAD_LINE && left >= 5) {
            /* A new line only when a character and the final CRLF still fit after it. */
            vstr_append(body, "\r\n", 2);
            n = 2;
            col = 0;
            continue;
        }
        n = col < QFILL_PAD_LINE ? QFILL_PAD_LINE - col : left - 2;
        if (n > left - 2)
            n = left - 2;
        vstr_append(body, qfill_filler + (col < QFILL_PAD_LINE ? col : 0), n);
        col += n;
    }
    vstr_append(body, "\r\n", 2);
}

/* qfill_message - create one message in an open write transaction */
static void qfill_message(const QFILL_OPTS *opts, QSTORE_TXN *txn, long serial, uint64_t *rng,
                          VSTR *body, VSTR *scratch)
{
    const char *sdomain =
        opts->sender_domains.items[qfill_pick(rng, (unsigned)opts->sender_domains.count)];
    unsigned nrcpt = 1 + qfill_pick(rng, opts->max_rcpts);
    unsigned attempts = opts->deferred ? 1 + qfill_pick(rng, QFILL_MAX_ATTEMPTS) : 0;
    long long arrival_ms, next;
    char sender[256];
    char envid[64];
    char date[64];
    struct tm tm;
    time_t when;
    QMSG msg;

    qmsg_init(&msg);
    qfill_make_id(opts, (unsigned long)serial, msg.qid);
    /* Oldest first, so that with --ids the id order is the arrival order. */
    arrival_ms = (opts->now - opts->spread) * 1000LL;
    if (opts->count > 1)
        arrival_ms += opts->spread * 1000LL * serial / (opts->count - 1);
    msg.arrival_ms = arrival_ms;
    if (strcmp(sdomain, "<>") == 0)
        sender[0] = '\0';
    else
        snprintf(sender, sizeof(sender), "user%u@%s", qfill_pick(rng, 100), sdomain);
    msg.sender = sender;
    snprintf(envid, sizeof(envid), "fill-%ld", serial);
    msg.envid = opts->dsn ? envid : "";
    msg.ret = opts->dsn ? "HDRS" : "";
    msg.nrcpt = nrcpt;
    msg.attempts = attempts;
    if (opts->hold_every > 0 && (serial + 1) % opts->hold_every == 0)
        msg.flags |= QMSG_HOLD;

    when = (time_t)(arrival_ms / 1000);
    gmtime_r(&when, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    vstr_sprintf(body,
                 "From: <%s>\r\nSubject: test message %ld\r\nMessage-ID: <fill-%ld@relayq.test>\r\n"
                 "Date: %s\r\n",
                 *sender ? sender : "MAILER-DAEMON@relayq.test", serial, serial, date);
    for (unsigned i = 0; i < nrcpt; i++)
        vstr_sprintf_append(body, "%s user%u@%s", i == 0 ? "To:" : ",\r\n", i,
                            opts->rcpt_domains.items[(serial + i) % opts->rcpt_domains.count]);
    vstr_sprintf_append(body, "\r\n\r\nThis is test message %ld.\r\n", serial);
    qfill_pad(body, opts->body_size);
    msg.size = (long long)vstr_len(body);

    if (opts->deferred)
        next = opts->now + QFILL_NEXT_MIN + qfill_pick(rng, QFILL_NEXT_SPREAD);
    else
        next = arrival_ms / 1000;
    /* Fresh ids made in the same second collide now and then: draw again. */
    while (qstore_message_put(txn, &msg, 1) == QSTORE_EXISTS) {
        if (opts->id_prefix != NULL)
            msg_fatal("%s: queue id exists already", msg.qid);
        qid_create(msg.qid);
    }
    /* reschedule writes the schedule entry as well as the envelope. */
    (void)qstore_message_reschedule(txn, &msg, next);
    (void)qstore_body_put(txn, msg.qid, vstr_str(body), vstr_len(body));

    for (unsigned i = 0; i < nrcpt; i++) {
        /* Recipients rotate over the domains, so every domain gets mail. */
        const char *rdomain = opts->rcpt_domains.items[(serial + i) % opts->rcpt_domains.count];
        unsigned kind = qfill_pick(rng, 2);
        char addr[256];
        char orcpt[300];
        QRCPT rcpt;

        snprintf(addr, sizeof(addr), "user%u@%s", i, rdomain);
        memset(&rcpt, 0, sizeof(rcpt));
        rcpt.index = i;
        rcpt.addr = addr;
        snprintf(orcpt, sizeof(orcpt), "rfc822;%s", addr);
        rcpt.orcpt = opts->dsn ? orcpt : "";
        rcpt.notify = opts->dsn ? "FAILURE,DELAY" : "";
        rcpt.reply = "";
        rcpt.status = QRCPT_PENDING;
        if (attempts > 0) {
            /* Attempts QFILL_BACKOFF apart, squeezed in before "now" for new mail. */
            long long gap_ms = (opts->now * 1000LL - arrival_ms) / (attempts + 1);

            if (gap_ms > QFILL_BACKOFF * 1000LL)
                gap_ms = QFILL_BACKOFF * 1000LL;
            if (gap_ms < 1000)
                gap_ms = 1000;
            qfill_reason(scratch, rdomain, kind);
            rcpt.status = QRCPT_DEFERRED;
            snprintf(rcpt.dsn, sizeof(rcpt.dsn), "%s", kind == 0 ? "4.4.1" : "4.7.1");
            rcpt.reply = vstr_str(scratch);
            for (unsigned a = 0; a < attempts; a++) {
                QATTEMPT at;

                memset(&at, 0, sizeof(at));
                at.when_ms = arrival_ms + gap_ms * (a + 1) + i;
                at.index = i;
                at.status = QRCPT_DEFERRED;
                snprintf(at.dsn, sizeof(at.dsn), "%s", rcpt.dsn);
                at.relay = kind == 0 ? "none" : "mx.example.com[192.0.2.1]:25";
                at.reply = vstr_str(scratch);
                (void)qstore_attempt_put(txn, msg.qid, &at);
                rcpt.last_attempt = at.when_ms / 1000;
            }
        }
        (void)qstore_rcpt_put(txn, msg.qid, &rcpt);
    }
}

/* qfill_args - the command line */
static void qfill_args(int argc, char **argv, QFILL_OPTS *opts)
{
    static const struct option longopts[] = {{"arrival", required_argument, NULL, 'A'},
                                             {"deferred", no_argument, NULL, 'D'},
                                             {"dsn", no_argument, NULL, 'N'},
                                             {"hold-every", required_argument, NULL, 'H'},
                                             {"seed", required_argument, NULL, 'S'},
                                             {"ids", required_argument, NULL, 'I'},
                                             {"map-size", required_argument, NULL, 'M'},
                                             {"body-size", required_argument, NULL, 'B'},
                                             {NULL, 0, NULL, 0}};
    static char default_rcpt_domains[] = "example.com";
    static char default_sender_domains[] = "example.org";
    char *rcpt_domains = default_rcpt_domains, *sender_domains = default_sender_domains;
    int have_seed = 0, ch;

    memset(opts, 0, sizeof(*opts));
    opts->count = -1;
    opts->now = (long long)time(NULL);
    opts->max_rcpts = 1;
    opts->map_size = (size_t)QFILL_MAP_MB * 1024 * 1024;
    while ((ch = getopt_long(argc, argv, "n:a:d:s:r:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            opts->count = (long)qfill_number("-n", optarg);
            break;
        case 'a':
            opts->spread = qfill_number("-a", optarg);
            break;
        case 'A':
            opts->now = qfill_number("--arrival", optarg);
            break;
        case 'd':
            rcpt_domains = optarg;
            break;
        case 's':
            sender_domains = optarg;
            break;
        case 'r':
            opts->max_rcpts = (unsigned)qfill_number("-r", optarg);
            if (opts->max_rcpts == 0 || opts->max_rcpts > 1000)
                msg_fatal("-r: from 1 to 1000");
            break;
        case 'D':
            opts->deferred = 1;
            break;
        case 'N':
            opts->dsn = 1;
            break;
        case 'H':
            opts->hold_every = (long)qfill_number("--hold-every", optarg);
            break;
        case 'S':
            opts->seed = (uint64_t)qfill_number("--seed", optarg);
            have_seed = 1;
            break;
        case 'I':
            opts->id_prefix = optarg;
            break;
        case 'M':
            opts->map_size = (size_t)qfill_number("--map-size", optarg) * 1024 * 1024;
            break;
        case 'B':
            opts->body_size = (size_t)qfill_number("--body-size", optarg);
            if (opts->body_size > QFILL_BODY_MAX)
                msg_fatal("--body-size: at most %ld octets", QFILL_BODY_MAX);
            break;
        default:
            qfill_usage();
        }
    }
    if (optind != argc - 1 || opts->count < 0)
        qfill_usage();
    opts->queue_dir = argv[optind];
    qfill_split("-d", rcpt_domains, &opts->rcpt_domains);
    qfill_split("-s", sender_domains, &opts->sender_domains);
    if (opts->id_prefix != NULL &&
        (strlen(opts->id_prefix) >= QID_LEN ||
         strspn(opts->id_prefix, qfill_alphabet) != strlen(opts->id_prefix)))
        msg_fatal("--ids: a prefix of fewer than %d characters from \"%s\"", QID_LEN,
                  qfill_alphabet);
    if (sodium_init() < 0)
        msg_fatal("cannot initialise libsodium");
    if (!have_seed)
        opts->seed = ((uint64_t)randombytes_random() << 32) | randombytes_random();
}

/* main - create the messages */
int main(int argc, char **argv)
{
    VSTR *why = vstr_alloc(128);
    VSTR *body = vstr_alloc(1024);
    VSTR *scratch = vstr_alloc(256);
    QFILL_OPTS opts;
    QSTORE *store;
    QSTORE_TXN *txn = NULL;
    uint64_t rng;
    char *db;

    msg_init("qstore_fill", MSG_TO_STDERR_PLAIN);
    qfill_args(argc, argv, &opts);
    rng = opts.seed;
    if (qdir_create(opts.queue_dir, getuid(), getgid(), why) < 0)
        msg_fatal("%s", vstr_str(why));
    db = qdir_path(opts.queue_dir, QDIR_DB);
    if ((store = qstore_open(db, opts.map_size, 0, why)) == NULL)
        msg_fatal("open %s: %s", db, vstr_str(why));
    for (long i = 0; i < opts.count; i++) {
        if (txn == NULL && (txn = qstore_begin(store, 1, why)) == NULL)
            msg_fatal("%s", vstr_str(why));
        qfill_message(&opts, txn, i, &rng, body, scratch);
        /* Operations are checked at commit: the transaction's error is sticky. */
        if ((i + 1) % QFILL_BATCH == 0 || i + 1 == opts.count) {
            if (qstore_commit(txn, why) != QSTORE_OK)
                msg_fatal("commit: %s", vstr_str(why));
            txn = NULL;
        }
    }
    qstore_close(store);
    myfree(db);
    vstr_free(why);
    vstr_free(body);
    vstr_free(scratch);
    return 0;
}
