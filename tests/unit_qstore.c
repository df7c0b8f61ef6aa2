/*
 * unit_qstore - tests of the LMDB queue store on a tiny map
 *
 * Stores, reads, reschedules and deletes messages; checks the schedule
 * order, body chunking, the picked table, the count of recipient records
 * (a recipient marked sent still counts; its message's deletion takes it
 * away), and that a full map gives
 * QSTORE_FULL at the write, leaves nothing half-written, and recovers when
 * messages are deleted.
 *
 * The error map: a commit that meets MDB_MAP_FULL (for real, on the tiny
 * map), MDB_TXN_FULL or ENOSPC (injected through RELAYQ_FAIL_AT in a
 * build with --enable-fault-injection; skipped otherwise) is QSTORE_FULL
 * with a reason naming it, stores nothing, and the next commit works; EIO
 * stays QSTORE_ERROR. The reserve: qstore_room() refuses new mail before
 * any commit fails, and the deletes that follow fit in one transaction.
 *
 * The mapped-page limit: reading 32 MB of mail, one message per
 * transaction, with a limit of 4 MB keeps less than half of it resident
 * (RssFile of /proc/self/status) and reads the same mail; without a limit
 * the same reads keep it all.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mymalloc.h"
#include "qstore.h"
#include "tap.h"

#define TINY_MAP (1024 * 1024)
#define FREED 8                    /* messages deleted to make room in the full map */
#define ROOM_MAP (4 * 1024 * 1024) /* its reserve is 1 MB: a quarter of it */
#define ROOM_BODY 20000            /* bytes of each message stored until the reserve */
#define MAPPED_MAP (128 * 1024 * 1024)
#define MAPPED_MESSAGES 128
#define MAPPED_BODY (256 * 1024)                                 /* 32 MB read in all */
#define MAPPED_TOTAL_KB (MAPPED_MESSAGES * (MAPPED_BODY / 1024)) /* what a reader reads */
#define MAPPED_LIMIT (4 * 1024 * 1024)

/* store_message - put one message with n recipients and a body */
static int store_message_as(QSTORE *store, const char *fixed, char *qid, long long when,
                            unsigned nrcpt, const char *body, size_t body_len, VSTR *why)
{
    QSTORE_TXN *txn = qstore_begin(store, 1, why);
    QMSG msg;
    int rc;

    if (txn == NULL)
        return QSTORE_ERROR;
    qmsg_init(&msg);
    do {
        if (fixed != NULL)
            snprintf(msg.qid, sizeof(msg.qid), "%s", fixed);
        else
            qid_create(msg.qid);
        msg.sender = "sender@example.com";
        msg.envid = "";
        msg.ret = "";
        msg.nrcpt = nrcpt;
        msg.size = (long long)body_len;
        msg.arrival_ms = 1000;
    } while ((rc = qstore_message_put(txn, &msg, 1)) == QSTORE_EXISTS && fixed == NULL);
    if (rc == QSTORE_EXISTS) {
        qstore_abort(txn);
        return rc;
    }
    for (unsigned i = 0; i < nrcpt; i++) {
        QRCPT rcpt = {
            .index = i, .addr = "rcpt@example.com", .orcpt = "", .notify = "", .reply = ""};

        qstore_rcpt_put(txn, msg.qid, &rcpt);
    }
    qstore_body_put(txn, msg.qid, body, body_len);
    qstore_message_reschedule(txn, &msg, when);
    strcpy(qid, msg.qid);
    return qstore_commit(txn, why);
}

/* store_message - store a message under a new queue id; that id in qid */
static int store_message(QSTORE *store, char *qid, long long when, unsigned nrcpt, const char *body,
                         size_t body_len, VSTR *why)
{
    return store_message_as(store, NULL, qid, when, nrcpt, body, body_len, why);
}

/* counted_qid - the queue id of the n-th message of a fill: the same ids, so the same pages, every
 * run */
static void counted_qid(char *qid, int n)
{
    static const char digits[] = "0123456789BCDFGHJKLMNPQRSTVWXYZb";

    snprintf(qid, QID_LEN + 1, "1000000");
    for (int i = QID_LEN - 1; i >= 7; i--, n /= 32)
        qid[i] = digits[n % 32];
    qid[QID_LEN] = '\0';
}

/* Collects schedule entries in order. */
typedef struct SEEN {
    long long when[64];
    char qid[64][QID_LEN + 1];
    int count;
} SEEN;

/* collect - schedule scan callback */
static int collect(const char *qid, long long when, void *ctx)
{
    SEEN *seen = ctx;

    if (seen->count < 64) {
        seen->when[seen->count] = when;
        strcpy(seen->qid[seen->count], qid);
    }
    seen->count++;
    return 0;
}

/* count_rcpts - number of recipient records in the store */
static size_t count_rcpts(QSTORE *store)
{
    VSTR *why = vstr_alloc(64);
    QSTORE_TXN *txn = qstore_begin(store, 0, why);
    size_t recipients = 0;

    if (qstore_count_rcpts(txn, &recipients) != QSTORE_OK)
        recipients = (size_t)-1;
    qstore_abort(txn);
    vstr_free(why);
    return recipients;
}

/* count_messages - number of messages in the store */
static size_t count_messages(QSTORE *store)
{
    VSTR *why = vstr_alloc(64);
    QSTORE_TXN *txn = qstore_begin(store, 0, why);
    size_t messages = 0, scheduled = 0;

    qstore_count(txn, &messages, &scheduled);
    qstore_abort(txn);
    vstr_free(why);
    return messages;
}

/* One failure injected into a commit, and what the error map makes of it. */
typedef struct INJECT_CASE {
    const char *error;  /* RELAYQ_FAIL_AT's ERROR */
    int want;           /* the commit's result */
    const char *reason; /* a part of the reason it gives */
} INJECT_CASE;

static const INJECT_CASE inject_cases[] = {
    {"MDB_TXN_FULL", QSTORE_FULL, "MDB_TXN_FULL"},
    {"ENOSPC", QSTORE_FULL, "ENOSPC"},
    {"MDB_MAP_FULL", QSTORE_FULL, "queue_map_size"},
    {"EIO", QSTORE_ERROR, "Input/output error"},
};

#ifdef RELAYQ_FAULT_INJECTION
/* inject_child - in a child process: a commit that fails once, then one that works */
static void inject_child(const char *dir, const char *error, int fd)
{
    VSTR *why = vstr_alloc(100), *line = vstr_alloc(200);
    char spec[100], marker[320], qid[QID_LEN + 1];
    QSTORE *store;
    int rc, again = QSTORE_ERROR;
    size_t count = 0;

    snprintf(spec, sizeof(spec), "qstore-before-commit=%s", error);
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    setenv("RELAYQ_FAIL_AT", spec, 1);
    setenv("RELAYQ_CRASH_MARKER", marker, 1);
    if ((store = qstore_open(dir, TINY_MAP, 0, why)) == NULL) {
        rc = QSTORE_ERROR;
    } else {
        rc = store_message(store, qid, 100, 1, "x\r\n", 3, why);
        count = count_messages(store);
        /* The marker stays: the fault does not fire again. */
        again = store_message(store, qid, 100, 1, "y\r\n", 3, line);
        qstore_close(store);
    }
    vstr_sprintf(line, "%d %zu %d %s", rc, count, again, vstr_str(why));
    if (write(fd, vstr_str(line), vstr_len(line)) < 0)
        _exit(2);
    _exit(0);
}

/* inject_commit - run inject_child() in a child; its results, 0 when it ran */
static int inject_commit(const char *dir, const char *error, int *rc, size_t *count, int *again,
                         VSTR *reason)
{
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    int fds[2], status, off = 0;
    pid_t pid;

    if (pipe(fds) < 0 || (pid = fork()) < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        inject_child(dir, error, fds[1]);
    }
    close(fds[1]);
    while (got < sizeof(buf) - 1 && (n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fds[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(buf, "%d %zu %d %n", rc, count, again, &off) != 3)
        return -1;
    vstr_strcpy(reason, buf + off);
    return 0;
}
#endif

/* test_error_map - each injected failure of a commit, through the error map */
static void test_error_map(const char *base)
{
#ifdef RELAYQ_FAULT_INJECTION
    VSTR *reason = vstr_alloc(100);

    for (size_t i = 0; i < sizeof(inject_cases) / sizeof(inject_cases[0]); i++) {
        const INJECT_CASE *c = inject_cases + i;
        char dir[300];
        size_t count = 99;
        int rc = 0, again = 0;

        /* Each in a child: the fault points read the environment once per process. */
        snprintf(dir, sizeof(dir), "%s/inject-%s", base, c->error);
        if (mkdir(dir, 0700) < 0 || inject_commit(dir, c->error, &rc, &count, &again, reason) < 0) {
            tap_ok(0, "%s: the child process ran", c->error);
            continue;
        }
        tap_ok(rc == c->want && strstr(vstr_str(reason), c->reason) != NULL,
               "a commit that fails with %s is %s: %s", c->error,
               c->want == QSTORE_FULL ? "QSTORE_FULL" : "QSTORE_ERROR", vstr_str(reason));
        tap_ok(count == 0 && again == QSTORE_OK,
               "%s: the failed commit stored nothing (%zu messages), the next one works", c->error,
               count);
    }
    vstr_free(reason);
#else
    (void)base;
    for (size_t i = 0; i < sizeof(inject_cases) / sizeof(inject_cases[0]) * 2; i++)
        tap_ok(1, "# SKIP injected commit failures need a build with --enable-fault-injection");
#endif
}

/* room_for - whether the queue takes len more bytes of mail above its reserve */
static int room_for(QSTORE *store, size_t len, VSTR *why)
{
    QSTORE_TXN *txn = qstore_begin(store, 1, why);
    int rc;

    if (txn == NULL)
        return QSTORE_ERROR;
    rc = qstore_room(txn, len, why);
    qstore_abort(txn);
    return rc;
}

/* test_reserve - new mail stops at the reserve, before any commit fails */
static void test_reserve(const char *base)
{
    VSTR *why = vstr_alloc(100);
    char dir[300], (*qids)[QID_LEN + 1] = NULL;
    char *body = mymalloc(ROOM_BODY);
    int stored = 0, room = QSTORE_OK, rc = QSTORE_OK;
    QSTORE_TXN *txn;
    QSTORE *store;

    memset(body, 'r', ROOM_BODY);
    snprintf(dir, sizeof(dir), "%s/room", base);
    if (mkdir(dir, 0700) < 0 || (store = qstore_open(dir, ROOM_MAP, 0, why)) == NULL) {
        tap_ok(0, "open a queue on a %d KiB map", ROOM_MAP / 1024);
        myfree(body);
        vstr_free(why);
        return;
    }
    while (stored < 1000 && (room = room_for(store, ROOM_BODY, why)) == QSTORE_OK) {
        qids = myrealloc(qids, sizeof(*qids) * (size_t)(stored + 1));
        if ((rc = store_message(store, qids[stored], 500, 1, body, ROOM_BODY, why)) != QSTORE_OK)
            break;
        stored++;
    }
    tap_ok(room == QSTORE_FULL && rc == QSTORE_OK && stored > 0,
           "new mail is refused at the reserve before a commit fails (%d messages stored)", stored);
    tap_ok(strstr(vstr_str(why), "reserve") != NULL, "the refusal names the reserve: %s",
           vstr_str(why));
    txn = qstore_begin(store, 1, why);
    for (int i = 0; i < stored; i++)
        qstore_message_delete(txn, qids[i]);
    tap_ok(qstore_commit(txn, why) == QSTORE_OK && count_messages(store) == 0,
           "the reserve lets all %d deletes go in one transaction", stored);
    qstore_close(store);
    myfree(qids);
    myfree(body);
    vstr_free(why);
}

/* rss_kb - one Rss line of this process's status ("RssFile", "RssAnon"), in KiB (-1: unknown) */
static long rss_kb(const char *name)
{
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    size_t len = strlen(name);
    long kb = -1;

    if (status == NULL)
        return -1;
    while (fgets(line, sizeof(line), status) != NULL)
        if (strncmp(line, name, len) == 0 && line[len] == ':' &&
            sscanf(line + len + 1, "%ld kB", &kb) == 1)
            break;
    fclose(status);
    return kb;
}

/* rss_file_kb - this process's resident pages of mapped files, in KiB (-1: unknown) */
static long rss_file_kb(void)
{
    return rss_kb("RssFile");
}

/* rss_anon_kb - this process's own resident memory, in KiB (-1: unknown) */
static long rss_anon_kb(void)
{
    return rss_kb("RssAnon");
}

/* read_bodies - read every body back, each in its own transaction; how many
 * equal the expected one; *peak_kb: the most file pages resident meanwhile */
static int read_bodies(QSTORE *store, char (*qids)[QID_LEN + 1], int count, const char *expect,
                       size_t len, long *peak_kb, VSTR *why)
{
    VSTR *body = vstr_alloc(len);
    QSTORE_TXN *txn;
    int same = 0;

    *peak_kb = rss_file_kb();
    for (int i = 0; i < count && (txn = qstore_begin(store, 0, why)) != NULL; i++) {
        long now_kb;

        vstr_reset(body);
        same += qstore_body_get(txn, qids[i], body) == QSTORE_OK && vstr_len(body) == len &&
                memcmp(vstr_str(body), expect, len) == 0;
        qstore_abort(txn);
        if ((now_kb = rss_file_kb()) > *peak_kb)
            *peak_kb = now_kb;
    }
    vstr_free(body);
    return same;
}

/* test_mapped_limit - the queue pages read stop being resident above the limit */
static void test_mapped_limit(const char *base)
{
    VSTR *why = vstr_alloc(100);
    char dir[300], qids[MAPPED_MESSAGES][QID_LEN + 1];
    char *body = mymalloc(MAPPED_BODY);
    long start, peak;
    QSTORE *store;
    int stored = 0, same;

    for (size_t i = 0; i < MAPPED_BODY; i++)
        body[i] = (char)('A' + i % 23);
    snprintf(dir, sizeof(dir), "%s/mapped", base);
    if (mkdir(dir, 0700) < 0 || (store = qstore_open(dir, MAPPED_MAP, 0, why)) == NULL) {
        tap_ok(0, "open a queue on a %d MiB map", MAPPED_MAP / 1024 / 1024);
        myfree(body);
        vstr_free(why);
        return;
    }
    while (stored < MAPPED_MESSAGES &&
           store_message(store, qids[stored], 700, 1, body, MAPPED_BODY, why) == QSTORE_OK)
        stored++;
    qstore_set_mapped_limit(store, MAPPED_LIMIT);
    start = rss_file_kb();
    same = read_bodies(store, qids, stored, body, MAPPED_BODY, &peak, why);
    tap_ok(same == MAPPED_MESSAGES, "%d messages of %d KiB stored and read back intact", same,
           MAPPED_BODY / 1024);
    tap_ok(start > 0 && peak - start < MAPPED_TOTAL_KB / 2,
           "with a limit of %d MiB, reading %d MiB keeps at most %ld KiB mapped",
           MAPPED_LIMIT / 1024 / 1024, MAPPED_TOTAL_KB / 1024, peak - start);
    /* A resident budget the process's own memory already exceeds leaves the mapped limit. */
    qstore_set_resident_limit(store, 1024 * 1024);
    start = rss_file_kb();
    same = read_bodies(store, qids, stored, body, MAPPED_BODY, &peak, why);
    tap_ok(same == MAPPED_MESSAGES && start > 0 && peak - start < MAPPED_TOTAL_KB / 2,
           "with a resident budget of 1 MiB, the mapped limit still holds: %ld KiB mapped",
           peak - start);
    /* A budget with room keeps every page read: the faults a small limit costs. */
    qstore_set_resident_limit(store, (size_t)(rss_anon_kb() + 4 * MAPPED_TOTAL_KB) * 1024);
    start = rss_file_kb();
    same = read_bodies(store, qids, stored, body, MAPPED_BODY, &peak, why);
    tap_ok(same == MAPPED_MESSAGES && peak - start > MAPPED_TOTAL_KB * 3 / 4,
           "with a resident budget of room, the same reads keep %ld KiB mapped", peak - start);
    qstore_close(store);
    myfree(body);
    vstr_free(why);
}

int main(void)
{
    char dir[] = "/tmp/unit_qstore.XXXXXX";
    VSTR *why = vstr_alloc(100);
    VSTR *body = vstr_alloc(100);
    QSTORE *store;
    QSTORE_TXN *txn;
    char qids[3][QID_LEN + 1], first[QID_LEN + 1], freed[FREED][QID_LEN + 1];
    char *big;
    QMSG msg;
    QRCPT *rcpts;
    size_t nrcpt;
    SEEN seen = {0};
    int rc, stored, full_rc = QSTORE_OK;

    if (mkdtemp(dir) == NULL)
        return 1;
    /* First, while this process has passed no fault point. */
    test_error_map(dir);
    test_reserve(dir);
    test_mapped_limit(dir);
    store = qstore_open(dir, TINY_MAP, 0, why);
    tap_ok(store != NULL, "open a new queue on a %d KiB map: %s", TINY_MAP / 1024,
           store ? "ok" : vstr_str(why));
    if (store == NULL)
        return tap_done();

    /* Round trip of one message with a body that spans several chunks. */
    big = mymalloc(200000);
    for (size_t i = 0; i < 200000; i++)
        big[i] = (char)('a' + i % 26);
    rc = store_message(store, qids[0], 300, 3, big, 200000, why);
    tap_ok(rc == QSTORE_OK, "store a message with a 200000-byte body");
    txn = qstore_begin(store, 0, why);
    tap_ok(qstore_message_get(txn, qids[0], &msg) == QSTORE_OK && msg.nrcpt == 3 &&
               msg.next_attempt == 300 && strcmp(msg.sender, "sender@example.com") == 0,
           "envelope reads back");
    qmsg_free(&msg);
    tap_ok(qstore_rcpts_get(txn, qids[0], &rcpts, &nrcpt) == QSTORE_OK && nrcpt == 3 &&
               rcpts[2].index == 2 && rcpts[0].status == QRCPT_PENDING,
           "three recipients read back in order");
    qstore_rcpts_free(rcpts, nrcpt);
    tap_ok(qstore_body_get(txn, qids[0], body) == QSTORE_OK && vstr_len(body) == 200000 &&
               memcmp(vstr_str(body), big, 200000) == 0,
           "body reads back intact across chunks");
    tap_ok(qstore_message_get(txn, "NOSUCHQUEUE0", &msg) == QSTORE_NOTFOUND,
           "a missing message is QSTORE_NOTFOUND");
    qstore_abort(txn);
    myfree(big);

    /* Schedule order: by time, not by insertion. */
    store_message(store, qids[1], 100, 1, "x\r\n", 3, why);
    store_message(store, qids[2], 200, 1, "y\r\n", 3, why);
    txn = qstore_begin(store, 0, why);
    qstore_schedule_scan(txn, 250, collect, &seen);
    qstore_abort(txn);
    tap_ok(seen.count == 2 && seen.when[0] == 100 && seen.when[1] == 200 &&
               strcmp(seen.qid[0], qids[1]) == 0,
           "schedule scan returns due entries earliest first and stops at the limit");
    tap_ok(count_rcpts(store) == 5, "recipient records: 5 for messages of 3, 1 and 1 (%zu)",
           count_rcpts(store));

    /* A recipient sent is marked in place: it counts until its message goes. */
    txn = qstore_begin(store, 1, why);
    if (qstore_rcpts_get(txn, qids[0], &rcpts, &nrcpt) == QSTORE_OK && nrcpt > 0) {
        rcpts[0].status = QRCPT_SENT;
        qstore_rcpt_put(txn, qids[0], &rcpts[0]);
        qstore_rcpts_free(rcpts, nrcpt);
    }
    tap_ok(qstore_commit(txn, why) == QSTORE_OK && count_rcpts(store) == 5,
           "a recipient marked sent still counts (%zu)", count_rcpts(store));

    /* Reschedule moves the entry. */
    txn = qstore_begin(store, 1, why);
    qstore_message_get(txn, qids[1], &msg);
    qstore_message_reschedule(txn, &msg, 400);
    qmsg_free(&msg);
    tap_ok(qstore_commit(txn, why) == QSTORE_OK, "reschedule commits");
    memset(&seen, 0, sizeof(seen));
    txn = qstore_begin(store, 0, why);
    qstore_schedule_scan(txn, 1000, collect, &seen);
    qstore_abort(txn);
    tap_ok(seen.count == 3 && seen.when[2] == 400 && strcmp(seen.qid[2], qids[1]) == 0,
           "a rescheduled message has exactly one schedule entry, at its new time");

    /* Picked table. */
    txn = qstore_begin(store, 1, why);
    qstore_picked_put(txn, "123.456.789", qids[0]);
    tap_ok(qstore_commit(txn, why) == QSTORE_OK, "picked entry commits");
    txn = qstore_begin(store, 1, why);
    tap_ok(qstore_picked_get(txn, "123.456.789", first) == QSTORE_OK && strcmp(first, qids[0]) == 0,
           "picked entry maps the file name to the queue id");
    qstore_picked_delete(txn, "123.456.789");
    tap_ok(qstore_picked_get(txn, "123.456.789", first) == QSTORE_NOTFOUND,
           "picked entry is gone after delete");
    qstore_commit(txn, why);

    /* Delete removes everything. */
    txn = qstore_begin(store, 1, why);
    rc = qstore_message_delete(txn, qids[0]);
    tap_ok(rc == QSTORE_OK && qstore_commit(txn, why) == QSTORE_OK, "delete commits");
    txn = qstore_begin(store, 0, why);
    vstr_reset(body);
    rcpts = NULL;
    nrcpt = 0;
    tap_ok(qstore_message_get(txn, qids[0], &msg) == QSTORE_NOTFOUND &&
               qstore_body_get(txn, qids[0], body) == QSTORE_NOTFOUND &&
               qstore_rcpts_get(txn, qids[0], &rcpts, &nrcpt) == QSTORE_OK && nrcpt == 0,
           "a deleted message leaves no envelope, body or recipients");
    tap_ok(count_rcpts(store) == 2, "its 3 recipients no longer count (%zu left)",
           count_rcpts(store));
    if (rcpts)
        qstore_rcpts_free(rcpts, nrcpt);
    memset(&seen, 0, sizeof(seen));
    qstore_schedule_scan(txn, 1000, collect, &seen);
    qstore_abort(txn);
    tap_ok(seen.count == 2, "a deleted message leaves no schedule entry");

    /* Fill the map: a write eventually fails with QSTORE_FULL, cleanly. */
    big = mymalloc(20000);
    memset(big, 'z', 20000);
    /* Counted ids, not random ones: where the map ends full depends on the
     * tree's shape, and random ids gave a shape in which the deletes below
     * found no free page about one run in twenty. */
    for (stored = 0; stored < 1000; stored++) {
        char qid[QID_LEN + 1], fixed[QID_LEN + 1];

        counted_qid(fixed, stored);
        full_rc = store_message_as(store, fixed, qid, 500, 2, big, 20000, why);
        if (full_rc != QSTORE_OK)
            break;
        if (stored < FREED)
            strcpy(freed[stored], qid);
    }
    tap_ok(full_rc == QSTORE_FULL, "filling the tiny map ends in QSTORE_FULL (after %d messages)",
           stored);
    tap_ok(strstr(vstr_str(why), "queue_map_size") != NULL, "the reason names queue_map_size: %s",
           vstr_str(why));
    tap_ok(count_messages(store) == (size_t)stored + 2,
           "the failed transaction left nothing behind (%zu messages)", count_messages(store));
    /* Copy-on-write needs free pages for every change, deletes too: in a
     * full map they go one per transaction (as qmgr falls back to), and
     * deliveries that remove a few messages make room for a new one. */
    rc = QSTORE_OK;
    for (int i = 0; i < FREED && rc == QSTORE_OK; i++) {
        txn = qstore_begin(store, 1, why);
        qstore_message_delete(txn, freed[i]);
        rc = qstore_commit(txn, why);
    }
    tap_ok(rc == QSTORE_OK, "deleting %d messages, one per transaction, in a full map works",
           FREED);
    {
        char qid[QID_LEN + 1];

        rc = store_message(store, qid, 500, 1, "small\r\n", 7, why);
    }
    tap_ok(rc == QSTORE_OK, "after the deletes there is room again");
    myfree(big);
    qstore_close(store);

    /* Read-only open of an existing queue. */
    store = qstore_open(dir, TINY_MAP, QSTORE_READONLY, why);
    tap_ok(store != NULL && count_messages(store) == (size_t)stored + 3 - FREED,
           "a read-only open sees the same queue");
    qstore_close(store);

    vstr_free(why);
    vstr_free(body);
    {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            tap_diag("could not remove %s", dir);
    }
    return tap_done();
}
