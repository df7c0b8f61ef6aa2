/*
 * qstore - the durable mail queue: one LMDB environment
 *
 * This is the only module that calls mdb_*(). The environment holds eight
 * named databases (DESIGN.md): messages (queue id -> envelope),
 * recipients (queue id + 32-bit index -> recipient), bodies (queue id +
 * 32-bit chunk number -> content), schedule (64-bit big-endian time +
 * queue id -> nothing, the due-time index), picked (maildrop file name ->
 * queue id), attempts (queue id + 64-bit time in ms + 32-bit recipient
 * index -> one delivery attempt's outcome), aside (queue id -> when and
 * why a message was set aside) and meta (name -> value: the schema
 * version).
 *
 * qstore_open(), qstore_close()
 *	open the environment in a directory (created when missing unless
 *	read-only) with MDB_NOTLS, so that one process may use it from any
 *	thread and a reader slot is not tied to a thread. Every process opens
 *	its own environment after exec; it is never inherited, and frees the
 *	reader slots of dead processes as it opens it. When the
 *	process configuration (var_config) names queue_encryption_key_file,
 *	the key ring is loaded with it (seal.c): a key file that is refused
 *	makes the open fail with its "FILE:LINE: reason".
 * qstore_set_keyring(), qstore_keyring(), qstore_reload_keys()
 *	replace the key ring (the store owns it; NULL: no encryption), the
 *	ring in use (pickup opens maildrop files with it), and read
 *	queue_encryption_key_file again (SIGHUP; on error the old ring stays).
 * qstore_reader_check()
 *	free the reader slots of processes that died inside a read
 *	transaction; returns how many. A dead reader pins its snapshot: the
 *	pages freed after it are never reused and the map fills. Every open
 *	runs it; one long-lived process (qmgr) runs it every few seconds.
 * qstore_set_mapped_limit(), qstore_set_resident_limit()
 *	the most queue pages the process keeps mapped (default
 *	QSTORE_MAPPED_DEFAULT, 64 MB; smtpout sets 512 MB), or, with a
 *	resident limit, whatever the process's own memory leaves of that
 *	budget, never less than the mapped limit (qmgr: 256 MB in all, so
 *	that a small queue keeps its pages and a million messages stay under
 *	300 MB). LMDB reads through a shared map of the
 *	whole file, and the kernel maps the neighbours of each page read
 *	besides (fault-around): a process that reads a million messages
 *	(qmgr deleting them, smtpout sending their bodies) would otherwise
 *	count the whole queue file, gigabytes, as its resident memory. Every
 *	QSTORE_MAPPED_CHECK_EVERY reads (a message, its recipients, its
 *	body, a record of a scan) or transactions, the store looks at the
 *	process's resident file pages (/proc/self/statm); above the limit it
 *	unmaps the queue's pages (madvise MADV_DONTNEED on the read-only
 *	shared map). They stay in the page cache, a later read maps them
 *	again, and nothing is lost. That is not free: the pages still in use
 *	fault back in, 64 KB around each, so a limit far below what the
 *	process could afford halves qmgr's speed on a big queue (measured:
 *	twice its CPU a message at 100,000 messages with 64 MB). The map is
 *	never written through, and a
 *	pointer into it that a transaction still holds reads the same bytes,
 *	as LMDB never rewrites a page a live snapshot can see.
 * qstore_set_schedule_hook()
 *	have a function told of every schedule change a write transaction
 *	made (a message's new entry, or none), in order, once the
 *	transaction has committed; never for a transaction that failed or
 *	was abandoned. qmgr keeps its in-memory schedule (sched.c) with it.
 * qstore_begin(), qstore_commit(), qstore_abort()
 *	transactions. A write transaction carries a sticky error: after the
 *	first failed operation the others do nothing and return the same
 *	error, and commit returns it, so a caller can batch many operations
 *	(group commit) and check once. qstore_commit_at() is a commit at a
 *	fault point the caller names (fault.c), besides the one every commit
 *	passes, so that a test can fail one kind of commit. MDB_MAP_RESIZED (another process grew
 *	the map) and MDB_READERS_FULL (stale readers of dead processes) are
 *	handled here, at begin. Every other LMDB failure goes through one
 *	error map, qstore_mdb_error(): MDB_MAP_FULL, MDB_TXN_FULL and ENOSPC
 *	are QSTORE_FULL ("retry after deliveries free room"), anything else
 *	QSTORE_ERROR.
 * qstore_room()
 *	whether new content of a given size fits and still leaves the
 *	reserve free (QSTORE_FULL otherwise, with the numbers): the writer of
 *	new mail (pickup) asks before it adds a message, so that deleting
 *	delivered mail and recording results (qmgr) always find free pages.
 *	The reserve is 2% of the map, at least 1 MB, at most a quarter of it.
 * qstore_message_*()
 *	envelopes: put (create refuses to overwrite: QSTORE_EXISTS),
 *	get, reschedule (move the schedule entry and rewrite the envelope),
 *	delete (the envelope, its recipients, body and schedule entry) and
 *	scan (every envelope, in queue id order, from the first or from the
 *	one after a given queue id, so that a long walk can go on in a later
 *	transaction).
 * qstore_rcpt_put(), qstore_rcpts_get()
 *	recipients, written one by one and read all at once.
 * qstore_attempt_put(), qstore_attempts_get(), qstore_attempts_free()
 *	the attempt history of a message, oldest first; deleted with it.
 * qstore_body_put(), qstore_body_get()
 *	content, stored in chunks of QSTORE_CHUNK bytes.
 * qstore_schedule_scan()
 *	visit schedule entries due at or before a time, earliest first, until
 *	the callback returns non-zero.
 * qstore_picked_*()
 *	the record that makes pickup idempotent across crashes.
 * qstore_count()
 *	the number of messages and of schedule entries.
 * qstore_count_rcpts()
 *	the number of recipient records: every recipient of every message
 *	in the queue, set aside or not. A recipient delivered or bounced
 *	stays, marked so, until its message leaves the queue (when the
 *	message is tried again, qmgr passes over it by its mark), so
 *	the figure counts recipients still to deliver plus those already
 *	done in messages that still have some to deliver. One mdb_stat():
 *	no walk.
 * qstore_count_more()
 *	the number of messages set aside, and of schedule entries after a
 *	time (deferred mail), at a cost of twice the smaller of the counts
 *	before and after it, not of the whole schedule: the entries are
 *	walked from both ends at once, and the walk that ends first gives
 *	the other count by subtraction (a drain has nothing deferred, a
 *	quiet queue of retries nothing due: either way it costs little).
 * qstore_oldest()
 *	the queue id of the oldest message that is not set aside (queue ids
 *	sort by time), or QSTORE_NOTFOUND; nothing is decoded, so a reader
 *	without the encryption keys gets it too.
 * qstore_map_use()
 *	the bytes of the map in use (up to its last page) and the map's size.
 * qstore_aside_put(), qstore_aside_get(), qstore_aside_scan()
 *	set a message aside for good (its schedule entry is removed and it
 *	is never scheduled again; its records stay for the operator, and
 *	qstore_message_scan() passes it over), ask whether and why a message
 *	is set aside, and visit every message set aside.
 * qstore_body_verify(), qstore_seal_ids()
 *	authenticate a message's whole content without keeping it (qmgr,
 *	before it hands the message out), and the key ids of its envelope and
 *	content (0: clear), for `relayq show`.
 *
 * The records and their keys are stored as qrecord.c encodes them. A
 * record that does not decode is reported as QSTORE_ERROR with a reason
 * naming the queue id.
 *
 * Sealing: with a key ring, the values of messages, recipients, bodies
 * and attempts are sealed (seal_record(): XChaCha20-Poly1305 under the
 * ring's current key) with the database name and the record's key as
 * associated data, so a record moved to another message, index or
 * database fails. Body chunks carry one more byte at the end of their
 * sealed content, 1 on the last chunk, so a body cut short fails too.
 * schedule, picked, meta and aside stay clear: they hold no mail content.
 * A message is sealed or clear as a whole, decided by its envelope when it
 * is stored: a message queued before encryption was turned on keeps being
 * written in the clear until it leaves, so turning encryption on needs no
 * migration, and a clear record of a sealed message is refused. A record
 * that fails authentication is QSTORE_TAMPERED ("QID: queue record in DB
 * fails authentication"), never its bytes; a record sealed under a key id
 * the ring does not hold is QSTORE_ERROR, after the key file is read again
 * if it changed since it was loaded (a new key another process already
 * uses). Neither is sticky: the transaction goes on.
 *
 * qstore_clear_left(), qstore_mark_sealed_only(), qstore_sealed_only()
 *	once encryption is on and no clear message is left, qmgr marks the
 *	queue sealed-only (meta "sealed_only" = the time, in seconds): from
 *	then on a clear record of any message is refused like a tampered one
 *	("QID: clear queue record in DB, in a queue sealed-only since TIME"),
 *	so someone who can write data.mdb but lacks the key can no longer add
 *	clear messages of his own. qstore_clear_left() says whether a clear
 *	envelope is left (the walk stops at the first one: queue ids sort by
 *	time, and clear messages are the oldest); qstore_sealed_only() gives
 *	the mark's time, 0 when unmarked.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pwd.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "fault.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qstore.h"
#include "seal.h"

#define QSTORE_SCHEMA "1"
#define QSTORE_CHUNK 65536
#define QSTORE_MAX_DBS 16   /* named databases: room for more than the eight of today */
#define QSTORE_LAST_CHUNK 1 /* the byte after a sealed body chunk: the body ends here */
#define QSTORE_RESERVE_MIN (1024 * 1024) /* bytes of the map kept free for qmgr, at least */
#define QSTORE_RESERVE_PCT 2             /* ... or this percentage of the map, if more */
#define QSTORE_RESERVE_MAX_DIV 4         /* ... but never more than this fraction of it */
#define QSTORE_ROOM_PAGES 8 /* pages a message's small records may touch (envelope, index) */
#define QSTORE_FREE_DBI 0   /* LMDB's free-page database: its own pages are in use */
#define QSTORE_META_PAGES 2 /* LMDB's two meta pages */
#define QSTORE_MAPPED_DEFAULT (64 * 1024 * 1024) /* queue pages mapped, at most */
#define QSTORE_MAPPED_CHECK_EVERY 16             /* transactions between two looks */
#define QSTORE_SCHEMA_KEY "schema"               /* meta: the schema version */
#define QSTORE_SEALED_ONLY "sealed_only"         /* meta: since when no clear record is accepted */
#define QSTORE_SEALED_ONLY_LEN (sizeof(QSTORE_SEALED_ONLY) - 1)

struct QSTORE {
    MDB_env *env;
    MDB_dbi messages;
    MDB_dbi recipients;
    MDB_dbi bodies;
    MDB_dbi schedule;
    MDB_dbi picked;
    MDB_dbi attempts;
    MDB_dbi aside;
    MDB_dbi meta;
    MDB_dbi main;  /* the unnamed database that holds the named ones */
    int has_aside; /* a queue made before the aside database, opened read-only, has none */
    int readonly;
    SEAL_RING *ring;                    /* NULL: records are written in the clear */
    QSTORE_SCHEDULE_HOOK schedule_hook; /* told of committed schedule changes, or NULL */
    void *schedule_ctx;
    size_t mapped_limit;      /* resident file pages above which the map is let go, bytes */
    size_t resident_limit;    /* 0, or the process's whole budget, its own memory included */
    unsigned reads_unchecked; /* reads and transactions since the last look */
};

/* A schedule change of a write transaction, for the hook after its commit. */
typedef struct QSTORE_SCHED_CHANGE {
    char qid[QID_LEN + 1];
    long long when; /* the new entry, 0: removed */
} QSTORE_SCHED_CHANGE;

struct QSTORE_TXN {
    QSTORE *store;
    MDB_txn *txn;
    int error;                    /* sticky: the first failure */
    VSTR *reason;                 /* why it failed, or why the last read was refused */
    VSTR *ad;                     /* associated data of the record being sealed or opened */
    VSTR *clear;                  /* the content of the last record opened */
    VSTR *sealed;                 /* the last record sealed */
    VSTR *seal_why;               /* why the last record did not open */
    char mode_qid[QID_LEN + 1];   /* the message whose envelope mode is known */
    int mode;                     /* its envelope: 1 sealed, 0 clear, -1 absent */
    QSTORE_SCHED_CHANGE *changes; /* schedule changes, in order, when the store has a hook */
    size_t nchanges, changes_size;
};

/* qstore_mdb_error - the one error map: an LMDB or system error as a result and a reason */
static int qstore_mdb_error(int rc, const char *what, VSTR *why)
{
    switch (rc) {
    case MDB_MAP_FULL:
        vstr_sprintf(why, "%s: queue map is full (queue_map_size)", what);
        return QSTORE_FULL;
    case MDB_TXN_FULL:
        vstr_sprintf(why, "%s: too many changes for one transaction (MDB_TXN_FULL)", what);
        return QSTORE_FULL;
    case ENOSPC:
        vstr_sprintf(why, "%s: no space left on the queue's file system (ENOSPC)", what);
        return QSTORE_FULL;
    default:
        vstr_sprintf(why, "%s: %s", what, mdb_strerror(rc));
        return QSTORE_ERROR;
    }
}

/* qstore_fail - record the first failure of a transaction */
static int qstore_fail(QSTORE_TXN *txn, int rc, const char *what)
{
    if (txn->error == QSTORE_OK)
        txn->error = qstore_mdb_error(rc, what, txn->reason);
    return txn->error;
}

/* qstore_open_dbs - open (and create) the named databases */
static int qstore_open_dbs(QSTORE *store, VSTR *why)
{
    MDB_txn *txn;
    unsigned flags = store->readonly ? 0 : MDB_CREATE;
    int rc;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {
        {"messages", &store->messages}, {"recipients", &store->recipients},
        {"bodies", &store->bodies},     {"schedule", &store->schedule},
        {"picked", &store->picked},     {"attempts", &store->attempts},
        {"meta", &store->meta},         {"aside", &store->aside},
    };

    if ((rc = mdb_txn_begin(store->env, NULL, store->readonly ? MDB_RDONLY : 0, &txn)) != 0) {
        vstr_sprintf(why, "begin transaction: %s", mdb_strerror(rc));
        return -1;
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &store->main)) != 0) {
        vstr_sprintf(why, "open the main database: %s", mdb_strerror(rc));
        mdb_txn_abort(txn);
        return -1;
    }
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, flags, dbs[i].dbi);
        if (rc == MDB_NOTFOUND && dbs[i].dbi == &store->aside)
            continue; /* read-only, and no message was ever set aside */
        if (dbs[i].dbi == &store->aside)
            store->has_aside = rc == 0;
        if (rc != 0) {
            vstr_sprintf(why, "open database %s: %s%s", dbs[i].name, mdb_strerror(rc),
                         rc == MDB_NOTFOUND ? " (queue not created yet: start relayq first)" : "");
            mdb_txn_abort(txn);
            return -1;
        }
    }
    if (!store->readonly) {
        MDB_val key = {.mv_size = strlen(QSTORE_SCHEMA_KEY), .mv_data = (void *)QSTORE_SCHEMA_KEY};
        MDB_val val = {.mv_size = strlen(QSTORE_SCHEMA), .mv_data = (void *)QSTORE_SCHEMA};
        MDB_val old;

        rc = mdb_get(txn, store->meta, &key, &old);
        if (rc == MDB_NOTFOUND)
            rc = mdb_put(txn, store->meta, &key, &val, 0);
        else if (rc == 0 && (old.mv_size != val.mv_size ||
                             memcmp(old.mv_data, val.mv_data, val.mv_size) != 0)) {
            vstr_sprintf(why, "queue schema version %.*s, this relayq reads %s", (int)old.mv_size,
                         (char *)old.mv_data, QSTORE_SCHEMA);
            mdb_txn_abort(txn);
            return -1;
        }
        if (rc != 0) {
            vstr_sprintf(why, "write schema version: %s", mdb_strerror(rc));
            mdb_txn_abort(txn);
            return -1;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        vstr_sprintf(why, "commit: %s", mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/* qstore_open - open the queue environment */
QSTORE *qstore_open(const char *dir, size_t map_size, int flags, VSTR *why)
{
    QSTORE *store = mycalloc(1, sizeof(*store));
    unsigned env_flags = MDB_NOTLS;
    int rc;

    if (sodium_init() < 0) {
        vstr_strcpy(why, "libsodium initialisation failed");
        myfree(store);
        return NULL;
    }
    store->readonly = (flags & QSTORE_READONLY) != 0;
    store->mapped_limit = QSTORE_MAPPED_DEFAULT;
    if (store->readonly)
        env_flags |= MDB_RDONLY;
    else if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        vstr_sprintf(why, "create %s: %s", dir, strerror(errno));
        myfree(store);
        return NULL;
    }
    if ((rc = mdb_env_create(&store->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(store->env, QSTORE_MAX_DBS)) != 0 ||
        (rc = mdb_env_set_maxreaders(store->env, 256)) != 0 ||
        (!store->readonly && (rc = mdb_env_set_mapsize(store->env, map_size)) != 0) ||
        (rc = mdb_env_open(store->env, dir, env_flags, 0600)) != 0) {
        vstr_sprintf(why, "open queue %s: %s", dir, mdb_strerror(rc));
        if (store->env)
            mdb_env_close(store->env);
        myfree(store);
        return NULL;
    }
    (void)qstore_reader_check(store);
    if (qstore_open_dbs(store, why) < 0 || qstore_reload_keys(store, why) < 0) {
        mdb_env_close(store->env);
        myfree(store);
        return NULL;
    }
    return store;
}

/* qstore_reader_check - free the reader slots of dead processes; how many, or -1 */
int qstore_reader_check(QSTORE *store)
{
    int dead = 0;

    return mdb_reader_check(store->env, &dead) == 0 ? dead : -1;
}

/* qstore_close - close the environment */
void qstore_close(QSTORE *store)
{
    if (store == NULL)
        return;
    mdb_env_close(store->env);
    seal_ring_free(store->ring);
    myfree(store);
}

/* qstore_key_owner - who besides root may own the key file: the user the daemons run as */
static uid_t qstore_key_owner(void)
{
    uid_t owner = geteuid();
    struct passwd *pw;

    if (owner == 0 && var_config != NULL && (pw = getpwnam(var_str(mail_owner))) != NULL)
        owner = pw->pw_uid;
    return owner;
}

/* qstore_set_keyring - use another key ring (the store owns it) */
void qstore_set_keyring(QSTORE *store, SEAL_RING *ring)
{
    if (ring != store->ring)
        seal_ring_free(store->ring);
    store->ring = ring;
}

/* qstore_keyring - the key ring in use, NULL when the queue is written in the clear */
const SEAL_RING *qstore_keyring(const QSTORE *store)
{
    return store->ring;
}

/* qstore_reload_keys - read queue_encryption_key_file of the configuration again */
int qstore_reload_keys(QSTORE *store, VSTR *why)
{
    const char *path = var_config != NULL ? var_str(queue_encryption_key_file) : "";
    SEAL_RING *ring = NULL;

    if (*path != '\0' && (ring = seal_ring_load(path, qstore_key_owner(), why)) == NULL)
        return -1;
    qstore_set_keyring(store, ring);
    return 0;
}

/* qstore_begin - start a transaction, absorbing resize and stale readers */
QSTORE_TXN *qstore_begin(QSTORE *store, int write, VSTR *why)
{
    QSTORE_TXN *txn;
    MDB_txn *mtxn;
    int rc;

    for (int attempt = 0;; attempt++) {
        rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &mtxn);
        if (rc == 0)
            break;
        if (attempt < 2 && rc == MDB_MAP_RESIZED) {
            /* Another process grew the map: adopt its size. */
            if (mdb_env_set_mapsize(store->env, 0) == 0)
                continue;
        }
        if (attempt < 2 && rc == MDB_READERS_FULL && qstore_reader_check(store) > 0)
            continue;
        vstr_sprintf(why, "begin %s transaction: %s", write ? "write" : "read", mdb_strerror(rc));
        return NULL;
    }
    txn = mycalloc(1, sizeof(*txn));
    txn->store = store;
    txn->txn = mtxn;
    txn->reason = vstr_alloc(100);
    txn->ad = vstr_alloc(64);
    txn->clear = vstr_alloc(256);
    txn->sealed = vstr_alloc(256);
    txn->seal_why = vstr_alloc(100);
    return txn;
}

/* qstore_unmap_read_pages - let go of the mapped queue pages read so far */
static int qstore_unmap_read_pages(QSTORE *store)
{
    MDB_val key = {.mv_size = strlen(QSTORE_SCHEMA_KEY), .mv_data = (void *)QSTORE_SCHEMA_KEY};
    MDB_val val;
    MDB_txn *txn;
    uintptr_t inside, start, end;
    FILE *maps;
    char *line = NULL;
    size_t line_size = 0;
    int rc;

    /* LMDB does not say where it mapped the file (me_mapaddr is set only
     * with MDB_FIXEDMAP), but a value read in a read-only transaction points
     * into the map, and /proc/self/maps gives the mapping around it. */
    if ((rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn)) == 0) {
        rc = mdb_get(txn, store->meta, &key, &val);
        mdb_txn_abort(txn);
    }
    if (rc != 0) {
        errno = rc > 0 ? rc : EIO; /* LMDB's own codes are negative */
        return -1;
    }
    if ((maps = fopen("/proc/self/maps", "r")) == NULL)
        return -1;
    inside = (uintptr_t)val.mv_data;
    errno = ENOENT;
    rc = -1;
    while (getline(&line, &line_size, maps) > 0) {
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) == 2 && start <= inside &&
            inside < end) {
            rc = madvise((void *)start, end - start, MADV_DONTNEED);
            break;
        }
    }
    free(line);
    fclose(maps);
    return rc;
}

/* qstore_resident_bytes - the process's resident memory and its mapped files' part (0: unknown) */
static void qstore_resident_bytes(size_t *resident_bytes, size_t *mapped_bytes)
{
    FILE *statm = fopen("/proc/self/statm", "r");
    unsigned long size, resident = 0, shared = 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    /* "shared" is RssFile + RssShmem: the queue's pages, and the libraries'. */
    if (statm == NULL || fscanf(statm, "%lu %lu %lu", &size, &resident, &shared) != 3)
        resident = shared = 0;
    if (statm != NULL)
        fclose(statm);
    *resident_bytes = (size_t)resident * page;
    *mapped_bytes = (size_t)shared * page;
}

/* qstore_trim_mapped - now and then, let go of the queue pages above the limit */
static void qstore_trim_mapped(QSTORE *store)
{
    size_t resident, mapped, own, limit;

    if (++store->reads_unchecked < QSTORE_MAPPED_CHECK_EVERY)
        return;
    store->reads_unchecked = 0;
    qstore_resident_bytes(&resident, &mapped);
    limit = store->mapped_limit;
    own = resident - mapped;
    if (store->resident_limit > own && store->resident_limit - own > limit)
        limit = store->resident_limit - own;
    if (mapped > limit && qstore_unmap_read_pages(store) < 0)
        msg_warn("cannot let go of the queue pages read: %m");
}

/* qstore_set_mapped_limit - the most queue pages, in bytes, the process keeps mapped */
void qstore_set_mapped_limit(QSTORE *store, size_t bytes)
{
    store->mapped_limit = bytes;
}

/* qstore_set_resident_limit - keep queue pages up to this budget for the whole process (0: off) */
void qstore_set_resident_limit(QSTORE *store, size_t bytes)
{
    store->resident_limit = bytes;
}

/* qstore_txn_free - release the wrapper */
static void qstore_txn_free(QSTORE_TXN *txn)
{
    QSTORE *store = txn->store;

    vstr_free(txn->reason);
    vstr_free(txn->ad);
    vstr_free(txn->clear);
    vstr_free(txn->sealed);
    vstr_free(txn->seal_why);
    myfree(txn->changes);
    myfree(txn);
    qstore_trim_mapped(store);
}

/* qstore_set_schedule_hook - be told of every committed schedule change */
void qstore_set_schedule_hook(QSTORE *store, QSTORE_SCHEDULE_HOOK hook, void *ctx)
{
    store->schedule_hook = hook;
    store->schedule_ctx = ctx;
}

/* qstore_note_schedule - remember a schedule change for the hook */
static void qstore_note_schedule(QSTORE_TXN *txn, const char *qid, long long when)
{
    QSTORE_SCHED_CHANGE *change;

    if (txn->store->schedule_hook == NULL)
        return;
    if (txn->nchanges == txn->changes_size) {
        txn->changes_size = txn->changes_size ? 2 * txn->changes_size : 16;
        txn->changes = myrealloc(txn->changes, sizeof(*txn->changes) * txn->changes_size);
    }
    change = txn->changes + txn->nchanges++;
    snprintf(change->qid, sizeof(change->qid), "%s", qid);
    change->when = when;
}

/* qstore_commit - commit, or report the sticky error */
int qstore_commit(QSTORE_TXN *txn, VSTR *why)
{
    return qstore_commit_at(txn, NULL, why);
}

/* qstore_commit_at - commit at a fault point of the caller's, or report the sticky error */
int qstore_commit_at(QSTORE_TXN *txn, const char *point, VSTR *why)
{
    int ret = txn->error;
    int rc = 0;

    (void)point; /* only a fault point: unused without fault injection */
    if (ret != QSTORE_OK) {
        vstr_strcpy(why, vstr_str(txn->reason));
        mdb_txn_abort(txn->txn);
    } else {
        /* A test may make this commit fail as LMDB or the disk would. */
        if (point != NULL)
            rc = FAULT_ERROR(point);
        if (rc == 0)
            rc = FAULT_ERROR("qstore-before-commit");
        if (rc != 0)
            mdb_txn_abort(txn->txn);
        else
            rc = mdb_txn_commit(txn->txn);
        if (rc != 0)
            ret = qstore_mdb_error(rc, "commit", why);
    }
    /* Only a committed change reaches the hook: memory follows the disk. */
    for (size_t i = 0; ret == QSTORE_OK && i < txn->nchanges; i++)
        txn->store->schedule_hook(txn->store->schedule_ctx, txn->changes[i].qid,
                                  txn->changes[i].when);
    qstore_txn_free(txn);
    return ret;
}

/* qstore_pages - pages the transaction's view of a database uses */
static size_t qstore_pages(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat st;

    if (mdb_stat(txn, dbi, &st) != 0)
        return 0;
    return st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
}

/* qstore_room - whether len bytes of new content fit above the reserve */
int qstore_room(QSTORE_TXN *txn, size_t len, VSTR *why)
{
    QSTORE *store = txn->store;
    MDB_dbi dbs[] = {QSTORE_FREE_DBI, store->main,     store->messages, store->recipients,
                     store->bodies,   store->schedule, store->picked,   store->attempts,
                     store->meta,     store->aside};
    size_t ndbs = sizeof(dbs) / sizeof(dbs[0]) - !store->has_aside;
    size_t used = QSTORE_META_PAGES, total, need, reserve;
    MDB_envinfo info;
    MDB_stat st;

    if (txn->error)
        return txn->error;
    if (mdb_env_info(store->env, &info) != 0 || mdb_env_stat(store->env, &st) != 0)
        return QSTORE_OK; /* cannot tell: the commit will */
    /* Pages the trees do not reach are free, or soon: pages freed but still
     * seen by a reader are counted free, which the reserve allows for. */
    for (size_t i = 0; i < ndbs; i++)
        used += qstore_pages(txn->txn, dbs[i]);
    total = info.me_mapsize / st.ms_psize;
    reserve = info.me_mapsize / 100 * QSTORE_RESERVE_PCT;
    if (reserve < QSTORE_RESERVE_MIN)
        reserve = QSTORE_RESERVE_MIN;
    if (reserve > info.me_mapsize / QSTORE_RESERVE_MAX_DIV)
        reserve = info.me_mapsize / QSTORE_RESERVE_MAX_DIV;
    /* Content goes in chunks of overflow pages, each with a header. */
    need = len / st.ms_psize + len / QSTORE_CHUNK + 1 + QSTORE_ROOM_PAGES;
    if (used + need <= total && (total - used - need) * st.ms_psize >= reserve)
        return QSTORE_OK;
    vstr_sprintf(why,
                 "queue map has %zu KB free, less than %zu KB of new mail and the reserve of %zu "
                 "KB for delivery records (queue_map_size)",
                 used < total ? (total - used) * st.ms_psize / 1024 : 0, need * st.ms_psize / 1024,
                 reserve / 1024);
    return QSTORE_FULL;
}

/* qstore_abort - abandon a transaction */
void qstore_abort(QSTORE_TXN *txn)
{
    if (txn == NULL)
        return;
    mdb_txn_abort(txn->txn);
    qstore_txn_free(txn);
}

/* qstore_txn_error - the sticky error, QSTORE_OK when none */
int qstore_txn_error(const QSTORE_TXN *txn)
{
    return txn->error;
}

/* qstore_txn_reason - the text of the sticky error */
const char *qstore_txn_reason(const QSTORE_TXN *txn)
{
    return vstr_str(txn->reason);
}

/* qmsg_key - the key of a message */
static MDB_val qmsg_key(const char *qid)
{
    MDB_val key = {.mv_size = strlen(qid), .mv_data = (void *)qid};

    return key;
}

/*
 * Sealing.
 */

/* qstore_envelope_mode - is a message's stored envelope sealed (1), clear (0) or absent (-1) */
static int qstore_envelope_mode(QSTORE_TXN *txn, const char *qid)
{
    MDB_val key = qmsg_key(qid), val;

    if (strcmp(txn->mode_qid, qid) == 0)
        return txn->mode;
    if (mdb_get(txn->txn, txn->store->messages, &key, &val) != 0)
        txn->mode = -1;
    else
        txn->mode = seal_is_sealed(val.mv_data, val.mv_size);
    snprintf(txn->mode_qid, sizeof(txn->mode_qid), "%s", qid);
    return txn->mode;
}

/* qstore_seals - are new records of this message to be sealed */
static int qstore_seals(QSTORE_TXN *txn, const char *qid)
{
    /* A message queued in the clear stays clear until it leaves. */
    return txn->store->ring != NULL && qstore_envelope_mode(txn, qid) != 0;
}

/* qstore_ad - the associated data of a record: its database's name, a NUL, its key */
static void qstore_ad(QSTORE_TXN *txn, const char *db, const MDB_val *key)
{
    vstr_strcpy(txn->ad, db);
    vstr_addch(txn->ad, '\0');
    vstr_append(txn->ad, key->mv_data, key->mv_size);
}

/* qstore_put - store a record, sealed when its message is; an mdb_put() result */
static int qstore_put(QSTORE_TXN *txn, MDB_dbi dbi, const char *db, const char *qid, MDB_val *key,
                      const void *data, size_t len, unsigned flags)
{
    MDB_val val = {.mv_size = len, .mv_data = (void *)data};

    if (qstore_seals(txn, qid)) {
        qstore_ad(txn, db, key);
        seal_record(txn->store->ring, vstr_str(txn->ad), vstr_len(txn->ad), data, len, txn->sealed);
        val.mv_size = vstr_len(txn->sealed);
        val.mv_data = vstr_str(txn->sealed);
    }
    return mdb_put(txn->txn, dbi, key, &val, flags);
}

/* qstore_tampered - refuse a record that fails authentication */
static int qstore_tampered(QSTORE_TXN *txn, const char *qid, const char *db)
{
    vstr_sprintf(txn->reason, "%s: queue record in %s fails authentication", qid, db);
    return QSTORE_TAMPERED;
}

/* qstore_sealed_only - since when the queue is sealed-only (seconds), 0 when it is not, -1 */
long long qstore_sealed_only(QSTORE_TXN *txn)
{
    MDB_val key = {.mv_size = QSTORE_SEALED_ONLY_LEN, .mv_data = (void *)QSTORE_SEALED_ONLY};
    MDB_val val;
    char text[32];
    long long since;
    int rc = mdb_get(txn->txn, txn->store->meta, &key, &val);

    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || val.mv_size == 0 || val.mv_size >= sizeof(text))
        return -1;
    memcpy(text, val.mv_data, val.mv_size);
    text[val.mv_size] = '\0';
    since = strtoll(text, NULL, 10);
    return since > 0 ? since : -1;
}

/* qstore_clear_allowed - may a message have a clear record: only when its
 * envelope is clear, and never in a sealed-only queue */
static int qstore_clear_allowed(QSTORE_TXN *txn, const char *qid, const char *db)
{
    long long since;
    char when[32];

    if (txn->store->ring == NULL)
        return QSTORE_OK;
    if (strcmp(db, "messages") != 0 && qstore_envelope_mode(txn, qid) == 1)
        return qstore_tampered(txn, qid, db);
    if ((since = qstore_sealed_only(txn)) != 0) {
        time_t t = (time_t)since;
        struct tm tm;

        if (since < 0 || gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            snprintf(when, sizeof(when), "an unreadable time");
        vstr_sprintf(txn->reason, "%s: clear queue record in %s, in a queue sealed-only since %s",
                     qid, db, when);
        return QSTORE_TAMPERED;
    }
    return QSTORE_OK;
}

/* qstore_clear_left - is a clear envelope left in the queue: 1 yes, 0 no, or a QSTORE_ error */
int qstore_clear_left(QSTORE_TXN *txn)
{
    MDB_cursor *cursor;
    MDB_val key, val;
    int rc, found = 0;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->messages, &cursor)) != 0)
        return qstore_fail(txn, rc, "open a cursor on messages");
    for (rc = mdb_cursor_get(cursor, &key, &val, MDB_FIRST); rc == 0 && !found;
         rc = mdb_cursor_get(cursor, &key, &val, MDB_NEXT))
        found = !seal_is_sealed(val.mv_data, val.mv_size);
    mdb_cursor_close(cursor);
    if (!found && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "walk messages");
    return found;
}

/* qstore_mark_sealed_only - from now on, no clear record is accepted */
int qstore_mark_sealed_only(QSTORE_TXN *txn, long long now)
{
    MDB_val key = {.mv_size = QSTORE_SEALED_ONLY_LEN, .mv_data = (void *)QSTORE_SEALED_ONLY};
    char text[32];
    MDB_val val = {.mv_size = (size_t)snprintf(text, sizeof(text), "%lld", now), .mv_data = text};

    int rc = mdb_put(txn->txn, txn->store->meta, &key, &val, 0);

    return rc == 0 ? QSTORE_OK : qstore_fail(txn, rc, "mark the queue sealed-only");
}

/* qstore_unseal - point val at a stored record's content; OK, TAMPERED or ERROR */
static int qstore_unseal(QSTORE_TXN *txn, const char *db, const char *qid, const MDB_val *key,
                         MDB_val *val)
{
    SEAL_RING *ring = txn->store->ring;
    VSTR *why = txn->seal_why;
    int rc;

    if (!seal_is_sealed(val->mv_data, val->mv_size))
        return qstore_clear_allowed(txn, qid, db);
    qstore_ad(txn, db, key);
    vstr_reset(txn->clear);
    rc = seal_open(ring, vstr_str(txn->ad), vstr_len(txn->ad), val->mv_data, val->mv_size,
                   txn->clear, why);
    if (rc == SEAL_UNKNOWN_KEY && ring != NULL && seal_ring_changed(ring)) {
        /* Another process may already seal with a key added since we read the file. */
        VSTR *load_why = vstr_alloc(100);
        SEAL_RING *fresh = seal_ring_load(seal_ring_path(ring), qstore_key_owner(), load_why);

        if (fresh != NULL) {
            qstore_set_keyring(txn->store, fresh);
            rc = seal_open(fresh, vstr_str(txn->ad), vstr_len(txn->ad), val->mv_data, val->mv_size,
                           txn->clear, why);
        } else {
            msg_warn("cannot read the key file again: %s", vstr_str(load_why));
        }
        vstr_free(load_why);
    }
    if (rc == SEAL_BAD)
        return qstore_tampered(txn, qid, db);
    if (rc != SEAL_OK) {
        vstr_sprintf(txn->reason, "%s: queue record in %s is %s", qid, db, vstr_str(why));
        return QSTORE_ERROR;
    }
    val->mv_size = vstr_len(txn->clear);
    val->mv_data = vstr_str(txn->clear);
    return QSTORE_OK;
}

/* qstore_message_put - store an envelope */
int qstore_message_put(QSTORE_TXN *txn, const QMSG *msg, int create)
{
    VSTR *buf;
    MDB_val key = qmsg_key(msg->qid);
    int rc, sealed;

    if (txn->error)
        return txn->error;
    buf = vstr_alloc(128);
    qrecord_msg_encode(msg, buf);
    sealed = qstore_seals(txn, msg->qid);
    rc = qstore_put(txn, txn->store->messages, "messages", msg->qid, &key, vstr_str(buf),
                    vstr_len(buf), create ? MDB_NOOVERWRITE : 0);
    vstr_free(buf);
    if (rc == MDB_KEYEXIST)
        return QSTORE_EXISTS;
    if (rc != 0)
        return qstore_fail(txn, rc, "store envelope");
    snprintf(txn->mode_qid, sizeof(txn->mode_qid), "%s", msg->qid);
    txn->mode = sealed;
    return QSTORE_OK;
}

/* qstore_message_get - read an envelope */
int qstore_message_get(QSTORE_TXN *txn, const char *qid, QMSG *msg)
{
    MDB_val key = qmsg_key(qid), val;
    int rc;

    if (txn->error)
        return txn->error;
    qstore_trim_mapped(txn->store);
    qmsg_init(msg);
    rc = mdb_get(txn->txn, txn->store->messages, &key, &val);
    if (rc == MDB_NOTFOUND)
        return QSTORE_NOTFOUND;
    if (rc != 0)
        return qstore_fail(txn, rc, "read envelope");
    if ((rc = qstore_unseal(txn, "messages", qid, &key, &val)) != QSTORE_OK)
        return rc;
    if (qrecord_msg_decode(qid, val.mv_data, val.mv_size, msg) < 0) {
        qmsg_free(msg);
        vstr_sprintf(txn->reason, "%s: malformed envelope record", qid);
        return QSTORE_ERROR;
    }
    return QSTORE_OK;
}

/* schedule_key - the key of a schedule entry, in buf */
static MDB_val schedule_key(unsigned char *buf, long long when, const char *qid)
{
    MDB_val key = {.mv_size = qrecord_schedule_key(buf, when, qid), .mv_data = buf};

    return key;
}

/* schedule_put - add a schedule entry */
static int schedule_put(QSTORE_TXN *txn, long long when, const char *qid)
{
    unsigned char buf[QRECORD_SCHEDULE_KEY_SIZE];
    MDB_val key = schedule_key(buf, when, qid), val = {0, NULL};
    int rc = mdb_put(txn->txn, txn->store->schedule, &key, &val, 0);

    if (rc)
        return qstore_fail(txn, rc, "store schedule entry");
    qstore_note_schedule(txn, qid, when);
    return QSTORE_OK;
}

/* schedule_del - remove a schedule entry; a missing one is fine */
static int schedule_del(QSTORE_TXN *txn, long long when, const char *qid)
{
    unsigned char buf[QRECORD_SCHEDULE_KEY_SIZE];
    MDB_val key = schedule_key(buf, when, qid);
    int rc = mdb_del(txn->txn, txn->store->schedule, &key, NULL);

    if (rc && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "delete schedule entry");
    qstore_note_schedule(txn, qid, 0);
    return QSTORE_OK;
}

/* qstore_message_reschedule - move a message to a new schedule time */
int qstore_message_reschedule(QSTORE_TXN *txn, QMSG *msg, long long next_attempt)
{
    if (txn->error)
        return txn->error;
    if (msg->next_attempt > 0 && schedule_del(txn, msg->next_attempt, msg->qid) != QSTORE_OK)
        return txn->error;
    /* Set aside is for good: whoever asks (flush, release, requeue, a retry). */
    if (next_attempt > 0 && qstore_aside_get(txn, msg->qid, NULL) == QSTORE_OK)
        next_attempt = 0;
    msg->next_attempt = next_attempt;
    if (next_attempt > 0 && schedule_put(txn, next_attempt, msg->qid) != QSTORE_OK)
        return txn->error;
    return qstore_message_put(txn, msg, 0);
}

/* prefix_delete - delete every key of a database that starts with qid */
static int prefix_delete(QSTORE_TXN *txn, MDB_dbi dbi, const char *qid, const char *what)
{
    size_t len = strlen(qid);
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, dbi, &cur)) != 0)
        return qstore_fail(txn, rc, what);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size >= len && memcmp(key.mv_data, qid, len) == 0) {
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
        if (rc == MDB_NOTFOUND || rc == EINVAL)
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, what);
    return QSTORE_OK;
}

/* schedule_del_qid - remove every schedule entry of a message whose envelope is unreadable */
static int schedule_del_qid(QSTORE_TXN *txn, const char *qid)
{
    unsigned char buf[QRECORD_SCHEDULE_KEY_SIZE];
    char found[QID_LEN + 1];
    MDB_cursor *cur;
    MDB_val key, val, own;
    long long when;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->schedule, &cur)) != 0)
        return qstore_fail(txn, rc, "delete schedule entry");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        /* An entry of the message is the key it would have at the entry's time. */
        if (qrecord_schedule_key_decode(key.mv_data, key.mv_size, &when, found) < 0)
            continue;
        own = schedule_key(buf, when, qid);
        if (own.mv_size == key.mv_size && memcmp(own.mv_data, key.mv_data, key.mv_size) == 0 &&
            (rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "delete schedule entry");
    qstore_note_schedule(txn, qid, 0);
    return QSTORE_OK;
}

/* qstore_message_delete - remove a message and everything of it */
int qstore_message_delete(QSTORE_TXN *txn, const char *qid)
{
    QMSG msg;
    MDB_val key = qmsg_key(qid);
    int rc;

    if (txn->error)
        return txn->error;
    qstore_trim_mapped(txn->store);
    rc = qstore_message_get(txn, qid, &msg);
    if (rc == QSTORE_OK && msg.next_attempt > 0)
        schedule_del(txn, msg.next_attempt, qid);
    else if (rc == QSTORE_TAMPERED || (rc == QSTORE_ERROR && txn->error == QSTORE_OK))
        /* An envelope that does not open still goes: the operator asked. */
        schedule_del_qid(txn, qid);
    else if (rc != QSTORE_OK)
        return rc;
    qmsg_free(&msg);
    prefix_delete(txn, txn->store->recipients, qid, "delete recipients");
    prefix_delete(txn, txn->store->bodies, qid, "delete body");
    prefix_delete(txn, txn->store->attempts, qid, "delete attempts");
    if (txn->error)
        return txn->error;
    if (txn->store->has_aside && (rc = mdb_del(txn->txn, txn->store->aside, &key, NULL)) != 0 &&
        rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "delete aside entry");
    if ((rc = mdb_del(txn->txn, txn->store->messages, &key, NULL)) != 0)
        return qstore_fail(txn, rc, "delete envelope");
    txn->mode_qid[0] = '\0';
    return QSTORE_OK;
}

/* qstore_message_scan - visit every envelope, or every one after a queue id */
int qstore_message_scan(QSTORE_TXN *txn, const char *after, int (*fn)(const QMSG *msg, void *ctx),
                        void *ctx)
{
    MDB_cursor *cur;
    MDB_val key, val;
    MDB_stat st;
    int rc, any_aside;
    MDB_cursor_op first = MDB_FIRST;

    /* Most queues never set a message aside: no lookup per message then. */
    any_aside = txn->store->has_aside && mdb_stat(txn->txn, txn->store->aside, &st) == 0 &&
                st.ms_entries > 0;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->messages, &cur)) != 0)
        return qstore_fail(txn, rc, "scan envelopes");
    if (after != NULL && *after != '\0') {
        key = qmsg_key(after);
        first = MDB_SET_RANGE;
    }
    rc = mdb_cursor_get(cur, &key, &val, first);
    /* SET_RANGE lands on the id itself when it is still there: start after it. */
    if (rc == 0 && first == MDB_SET_RANGE && key.mv_size == strlen(after) &&
        memcmp(key.mv_data, after, key.mv_size) == 0)
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    for (; rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char qid[QID_LEN + 1];
        QMSG msg;
        int stop;

        qstore_trim_mapped(txn->store);
        if (key.mv_size > QID_LEN)
            continue;
        memcpy(qid, key.mv_data, key.mv_size);
        qid[key.mv_size] = '\0';
        if (any_aside && qstore_aside_get(txn, qid, NULL) == QSTORE_OK)
            continue;
        if (qstore_unseal(txn, "messages", qid, &key, &val) != QSTORE_OK) {
            msg_warn("%s; skipped", vstr_str(txn->reason));
            continue;
        }
        if (qrecord_msg_decode(qid, val.mv_data, val.mv_size, &msg) < 0) {
            msg_warn("%s: malformed envelope record, skipped", qid);
            qmsg_free(&msg);
            continue;
        }
        stop = fn(&msg, ctx);
        qmsg_free(&msg);
        if (stop)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "scan envelopes");
    return QSTORE_OK;
}

/* qid_index_key - the key of a recipient or a body chunk, in buf */
static MDB_val qid_index_key(unsigned char *buf, const char *qid, unsigned index)
{
    MDB_val key = {.mv_size = qrecord_index_key(buf, qid, index), .mv_data = buf};

    return key;
}

/* qstore_rcpt_put - store one recipient */
int qstore_rcpt_put(QSTORE_TXN *txn, const char *qid, const QRCPT *rcpt)
{
    unsigned char kbuf[QRECORD_INDEX_KEY_SIZE];
    MDB_val key = qid_index_key(kbuf, qid, rcpt->index);
    VSTR *buf;
    int rc;

    if (txn->error)
        return txn->error;
    buf = vstr_alloc(128);
    qrecord_rcpt_encode(rcpt, buf);
    rc = qstore_put(txn, txn->store->recipients, "recipients", qid, &key, vstr_str(buf),
                    vstr_len(buf), 0);
    vstr_free(buf);
    return rc ? qstore_fail(txn, rc, "store recipient") : QSTORE_OK;
}

/* qstore_rcpts_get - read all recipients of a message */
int qstore_rcpts_get(QSTORE_TXN *txn, const char *qid, QRCPT **list, size_t *count)
{
    size_t len = strlen(qid), n = 0, cap = 4;
    QRCPT *rcpts;
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    unsigned index;
    int rc, ret;

    if (txn->error)
        return txn->error;
    qstore_trim_mapped(txn->store);
    if ((rc = mdb_cursor_open(txn->txn, txn->store->recipients, &cur)) != 0)
        return qstore_fail(txn, rc, "read recipients");
    rcpts = mymalloc(sizeof(*rcpts) * cap);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && qrecord_index_key_decode(key.mv_data, key.mv_size, qid, &index) == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (n == cap)
            rcpts = myrealloc(rcpts, sizeof(*rcpts) * (cap *= 2));
        if ((ret = qstore_unseal(txn, "recipients", qid, &key, &val)) != QSTORE_OK) {
            qstore_rcpts_free(rcpts, n);
            mdb_cursor_close(cur);
            return ret;
        }
        if (qrecord_rcpt_decode(index, val.mv_data, val.mv_size, rcpts + n) < 0) {
            qstore_rcpts_free(rcpts, n + 1);
            mdb_cursor_close(cur);
            vstr_sprintf(txn->reason, "%s: malformed recipient record", qid);
            return QSTORE_ERROR;
        }
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        qstore_rcpts_free(rcpts, n);
        return qstore_fail(txn, rc, "read recipients");
    }
    *list = rcpts;
    *count = n;
    return QSTORE_OK;
}

/* qstore_rcpts_free - release a recipient list */
void qstore_rcpts_free(QRCPT *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        qrecord_rcpt_free(list + i);
    myfree(list);
}

/* qstore_attempt_put - record one recipient's delivery attempt */
int qstore_attempt_put(QSTORE_TXN *txn, const char *qid, const QATTEMPT *attempt)
{
    unsigned char kbuf[QRECORD_ATTEMPT_KEY_SIZE];
    MDB_val key = {.mv_size = qrecord_attempt_key(kbuf, qid, attempt->when_ms, attempt->index),
                   .mv_data = kbuf};
    VSTR *buf;
    int rc;

    if (txn->error)
        return txn->error;
    buf = vstr_alloc(128);
    qrecord_attempt_encode(attempt, buf);
    rc = qstore_put(txn, txn->store->attempts, "attempts", qid, &key, vstr_str(buf), vstr_len(buf),
                    0);
    vstr_free(buf);
    return rc ? qstore_fail(txn, rc, "store attempt") : QSTORE_OK;
}

/* qstore_attempts_get - the attempt history of a message, oldest first */
int qstore_attempts_get(QSTORE_TXN *txn, const char *qid, QATTEMPT **list, size_t *count)
{
    size_t len = strlen(qid), n = 0, cap = 4;
    QATTEMPT *attempts;
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    long long when_ms;
    unsigned index;
    int rc, ret;

    if (txn->error)
        return txn->error;
    qstore_trim_mapped(txn->store);
    if ((rc = mdb_cursor_open(txn->txn, txn->store->attempts, &cur)) != 0)
        return qstore_fail(txn, rc, "read attempts");
    attempts = mymalloc(sizeof(*attempts) * cap);
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 &&
         qrecord_attempt_key_decode(key.mv_data, key.mv_size, qid, &when_ms, &index) == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if ((ret = qstore_unseal(txn, "attempts", qid, &key, &val)) != QSTORE_OK) {
            qstore_attempts_free(attempts, n);
            mdb_cursor_close(cur);
            return ret;
        }
        if (n == cap)
            attempts = myrealloc(attempts, sizeof(*attempts) * (cap *= 2));
        if (qrecord_attempt_decode(when_ms, index, val.mv_data, val.mv_size, attempts + n++) < 0) {
            qstore_attempts_free(attempts, n);
            mdb_cursor_close(cur);
            vstr_sprintf(txn->reason, "%s: malformed attempt record", qid);
            return QSTORE_ERROR;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        qstore_attempts_free(attempts, n);
        return qstore_fail(txn, rc, "read attempts");
    }
    *list = attempts;
    *count = n;
    return QSTORE_OK;
}

/* qstore_attempts_free - release an attempt list */
void qstore_attempts_free(QATTEMPT *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        qrecord_attempt_free(list + i);
    myfree(list);
}

/* qstore_body_put - store content in chunks */
int qstore_body_put(QSTORE_TXN *txn, const char *qid, const char *data, size_t len)
{
    unsigned char kbuf[QRECORD_INDEX_KEY_SIZE];
    unsigned chunk = 0;
    size_t off = 0;
    int sealed;

    if (txn->error)
        return txn->error;
    sealed = qstore_seals(txn, qid);
    do {
        size_t n = len - off > QSTORE_CHUNK ? QSTORE_CHUNK : len - off;
        MDB_val key = qid_index_key(kbuf, qid, chunk++);
        const char *piece = data + off;
        int rc;

        off += n;
        if (sealed) {
            /* The last chunk says so: a body cut short fails to open. */
            vstr_reset(txn->clear);
            vstr_append(txn->clear, piece, n);
            vstr_addch(txn->clear, off == len ? QSTORE_LAST_CHUNK : 0);
            piece = vstr_str(txn->clear);
            n = vstr_len(txn->clear);
        }
        rc = qstore_put(txn, txn->store->bodies, "bodies", qid, &key, piece, n, 0);
        if (rc != 0)
            return qstore_fail(txn, rc, "store body");
    } while (off < len);
    return QSTORE_OK;
}

/* qstore_body_read - the whole content onto out (NULL: only authenticate it) */
static int qstore_body_read(QSTORE_TXN *txn, const char *qid, VSTR *out)
{
    size_t len = strlen(qid), start = out ? vstr_len(out) : 0;
    MDB_cursor *cur;
    MDB_val key = {.mv_size = len, .mv_data = (void *)qid}, val;
    unsigned expect = 0, index;
    int rc, ret = QSTORE_OK, sealed = -1, last = 0;

    if (txn->error)
        return txn->error;
    qstore_trim_mapped(txn->store);
    if ((rc = mdb_cursor_open(txn->txn, txn->store->bodies, &cur)) != 0)
        return qstore_fail(txn, rc, "read body");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && qrecord_index_key_decode(key.mv_data, key.mv_size, qid, &index) == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        /* The first chunk decides: a clear body's later chunks are raw bytes. */
        if (sealed < 0) {
            sealed = seal_is_sealed(val.mv_data, val.mv_size);
            if (!sealed && (ret = qstore_clear_allowed(txn, qid, "bodies")) != QSTORE_OK)
                break;
            if (!sealed && out == NULL)
                break; /* a clear body has nothing to authenticate */
        }
        if (sealed) {
            if (last || index != expect++) {
                ret = qstore_tampered(txn, qid, "bodies");
                break;
            }
            if ((ret = qstore_unseal(txn, "bodies", qid, &key, &val)) != QSTORE_OK)
                break;
            if (val.mv_size == 0) {
                ret = qstore_tampered(txn, qid, "bodies");
                break;
            }
            last = ((const unsigned char *)val.mv_data)[--val.mv_size] == QSTORE_LAST_CHUNK;
        }
        if (out != NULL)
            vstr_append(out, val.mv_data, val.mv_size);
    }
    mdb_cursor_close(cur);
    if (ret == QSTORE_OK && rc != 0 && rc != MDB_NOTFOUND)
        ret = qstore_fail(txn, rc, "read body");
    else if (ret == QSTORE_OK && sealed == 1 && !last)
        ret = qstore_tampered(txn, qid, "bodies");
    if (ret != QSTORE_OK && out != NULL)
        vstr_truncate(out, start); /* nothing of a body that does not open */
    if (ret == QSTORE_OK && sealed < 0)
        ret = QSTORE_NOTFOUND;
    return ret;
}

/* qstore_body_get - read the whole content */
int qstore_body_get(QSTORE_TXN *txn, const char *qid, VSTR *out)
{
    return qstore_body_read(txn, qid, out);
}

/* qstore_body_verify - authenticate the whole content without keeping it */
int qstore_body_verify(QSTORE_TXN *txn, const char *qid)
{
    return qstore_body_read(txn, qid, NULL);
}

/* qstore_seal_ids - key ids of a message's envelope and content; 0 for clear */
int qstore_seal_ids(QSTORE_TXN *txn, const char *qid, unsigned *envelope, unsigned *body)
{
    unsigned char kbuf[QRECORD_INDEX_KEY_SIZE];
    MDB_val key = qmsg_key(qid), val;
    int rc;

    if (txn->error)
        return txn->error;
    if ((rc = mdb_get(txn->txn, txn->store->messages, &key, &val)) == MDB_NOTFOUND)
        return QSTORE_NOTFOUND;
    if (rc != 0)
        return qstore_fail(txn, rc, "read envelope");
    *envelope = seal_key_id(val.mv_data, val.mv_size);
    key = qid_index_key(kbuf, qid, 0);
    if ((rc = mdb_get(txn->txn, txn->store->bodies, &key, &val)) != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "read body");
    *body = rc == 0 ? seal_key_id(val.mv_data, val.mv_size) : 0;
    return QSTORE_OK;
}

/* qstore_count_more - messages set aside, and schedule entries after a time */
int qstore_count_more(QSTORE_TXN *txn, long long after, size_t *aside, size_t *later)
{
    MDB_cursor *early = NULL, *late = NULL;
    MDB_val key, val;
    MDB_stat st;
    size_t before = 0, beyond = 0;
    int rc, rc_early, rc_late;
    char qid[QID_LEN + 1];
    long long when;

    *aside = 0;
    if (txn->store->has_aside && (rc = mdb_stat(txn->txn, txn->store->aside, &st)) != 0)
        return qstore_fail(txn, rc, "stat aside");
    if (txn->store->has_aside)
        *aside = st.ms_entries;
    if ((rc = mdb_stat(txn->txn, txn->store->schedule, &st)) != 0)
        return qstore_fail(txn, rc, "stat schedule");
    if ((rc = mdb_cursor_open(txn->txn, txn->store->schedule, &early)) != 0 ||
        (rc = mdb_cursor_open(txn->txn, txn->store->schedule, &late)) != 0) {
        if (early != NULL)
            mdb_cursor_close(early);
        return qstore_fail(txn, rc, "count schedule");
    }
    /* One step from each end in turn; the first walk to cross the time wins. */
    rc_early = mdb_cursor_get(early, &key, &val, MDB_FIRST);
    rc_late = mdb_cursor_get(late, &key, &val, MDB_LAST);
    for (;;) {
        if (rc_early != 0) {
            *later = 0; /* before the first entry: no entry at all */
            break;
        }
        (void)mdb_cursor_get(early, &key, &val, MDB_GET_CURRENT);
        if (qrecord_schedule_key_decode(key.mv_data, key.mv_size, &when, qid) == 0 &&
            when > after) {
            *later = st.ms_entries - before;
            break;
        }
        before++;
        rc_early = mdb_cursor_get(early, &key, &val, MDB_NEXT);
        if (rc_late != 0) {
            *later = beyond;
            break;
        }
        (void)mdb_cursor_get(late, &key, &val, MDB_GET_CURRENT);
        if (qrecord_schedule_key_decode(key.mv_data, key.mv_size, &when, qid) == 0 &&
            when <= after) {
            *later = beyond;
            break;
        }
        beyond++;
        rc_late = mdb_cursor_get(late, &key, &val, MDB_PREV);
    }
    mdb_cursor_close(early);
    mdb_cursor_close(late);
    if ((rc_early != 0 && rc_early != MDB_NOTFOUND) || (rc_late != 0 && rc_late != MDB_NOTFOUND))
        return qstore_fail(txn, rc_early ? rc_early : rc_late, "count schedule");
    return QSTORE_OK;
}

/* qstore_oldest - the first queue id of the messages that is not set aside */
int qstore_oldest(QSTORE_TXN *txn, char qid[QID_LEN + 1])
{
    MDB_cursor *cur;
    MDB_val key, val, ignored;
    int rc;

    if (txn->error)
        return txn->error;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->messages, &cur)) != 0)
        return qstore_fail(txn, rc, "find the oldest message");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size > QID_LEN)
            continue;
        if (txn->store->has_aside && mdb_get(txn->txn, txn->store->aside, &key, &ignored) == 0)
            continue;
        memcpy(qid, key.mv_data, key.mv_size);
        qid[key.mv_size] = '\0';
        break;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return QSTORE_NOTFOUND;
    return rc ? qstore_fail(txn, rc, "find the oldest message") : QSTORE_OK;
}

/* qstore_map_use - bytes of the map in use, and its size */
void qstore_map_use(QSTORE *store, size_t *used, size_t *size)
{
    MDB_envinfo info;
    MDB_stat st;

    *used = *size = 0;
    if (mdb_env_info(store->env, &info) != 0 || mdb_env_stat(store->env, &st) != 0)
        return;
    *used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    *size = info.me_mapsize;
}

/* qstore_aside_put - set a message aside for good; when: its schedule entry, -1 to search */
int qstore_aside_put(QSTORE_TXN *txn, const char *qid, long long when, const char *reason)
{
    MDB_val key = qmsg_key(qid), val;
    VSTR *buf;
    int rc;

    if (txn->error)
        return txn->error;
    if (txn->store->readonly)
        msg_panic("qstore_aside_put: read-only queue");
    if (when > 0)
        schedule_del(txn, when, qid);
    else if (when < 0)
        schedule_del_qid(txn, qid);
    buf = vstr_alloc(128);
    qrecord_aside_encode(wall_ms(), reason, buf);
    val.mv_size = vstr_len(buf);
    val.mv_data = vstr_str(buf);
    rc = mdb_put(txn->txn, txn->store->aside, &key, &val, 0);
    vstr_free(buf);
    return rc ? qstore_fail(txn, rc, "store aside entry") : txn->error;
}

/* qstore_aside_get - whether (and why) a message is set aside; reason may be NULL */
int qstore_aside_get(QSTORE_TXN *txn, const char *qid, VSTR *reason)
{
    MDB_val key = qmsg_key(qid), val;
    long long when_ms;
    char *text;
    int rc;

    if (txn->error)
        return txn->error;
    if (!txn->store->has_aside)
        return QSTORE_NOTFOUND;
    if ((rc = mdb_get(txn->txn, txn->store->aside, &key, &val)) == MDB_NOTFOUND)
        return QSTORE_NOTFOUND;
    if (rc != 0)
        return qstore_fail(txn, rc, "read aside entry");
    if (reason != NULL) {
        if (qrecord_aside_decode(val.mv_data, val.mv_size, &when_ms, &text) < 0)
            vstr_strcpy(reason, "(malformed aside entry)");
        else
            vstr_strcpy(reason, text);
        myfree(text);
    }
    return QSTORE_OK;
}

/* qstore_aside_scan - visit every message set aside, in queue id order */
int qstore_aside_scan(QSTORE_TXN *txn,
                      int (*fn)(const char *qid, long long when_ms, const char *reason, void *ctx),
                      void *ctx)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if (!txn->store->has_aside)
        return QSTORE_OK;
    if ((rc = mdb_cursor_open(txn->txn, txn->store->aside, &cur)) != 0)
        return qstore_fail(txn, rc, "scan aside entries");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char qid[QID_LEN + 1];
        long long when_ms;
        char *reason;
        int stop;

        qstore_trim_mapped(txn->store);
        if (key.mv_size > QID_LEN)
            continue;
        memcpy(qid, key.mv_data, key.mv_size);
        qid[key.mv_size] = '\0';
        if (qrecord_aside_decode(val.mv_data, val.mv_size, &when_ms, &reason) < 0) {
            myfree(reason);
            reason = mystrdup("(malformed aside entry)");
        }
        stop = fn(qid, when_ms, reason, ctx);
        myfree(reason);
        if (stop)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "scan aside entries");
    return QSTORE_OK;
}

/* qstore_schedule_scan - visit due schedule entries, earliest first */
int qstore_schedule_scan(QSTORE_TXN *txn, long long upto,
                         int (*fn)(const char *qid, long long when, void *ctx), void *ctx)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->schedule, &cur)) != 0)
        return qstore_fail(txn, rc, "scan schedule");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char qid[QID_LEN + 1];
        long long when;

        qstore_trim_mapped(txn->store);
        if (qrecord_schedule_key_decode(key.mv_data, key.mv_size, &when, qid) < 0)
            continue;
        if (when > upto)
            break;
        if (fn(qid, when, ctx))
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "scan schedule");
    return QSTORE_OK;
}

/* qstore_picked_put - remember that a maildrop file became a message */
int qstore_picked_put(QSTORE_TXN *txn, const char *name, const char *qid)
{
    MDB_val key = {.mv_size = strlen(name), .mv_data = (void *)name};
    MDB_val val = {.mv_size = strlen(qid), .mv_data = (void *)qid};
    int rc;

    if (txn->error)
        return txn->error;
    rc = mdb_put(txn->txn, txn->store->picked, &key, &val, 0);
    return rc ? qstore_fail(txn, rc, "store picked entry") : QSTORE_OK;
}

/* qstore_picked_get - the queue id a maildrop file became, if any */
int qstore_picked_get(QSTORE_TXN *txn, const char *name, char *qid)
{
    MDB_val key = {.mv_size = strlen(name), .mv_data = (void *)name}, val;
    int rc;

    if (txn->error)
        return txn->error;
    rc = mdb_get(txn->txn, txn->store->picked, &key, &val);
    if (rc == MDB_NOTFOUND)
        return QSTORE_NOTFOUND;
    if (rc != 0)
        return qstore_fail(txn, rc, "read picked entry");
    snprintf(qid, QID_LEN + 1, "%.*s", (int)val.mv_size, (char *)val.mv_data);
    return QSTORE_OK;
}

/* qstore_picked_delete - forget a maildrop file that is gone */
int qstore_picked_delete(QSTORE_TXN *txn, const char *name)
{
    MDB_val key = {.mv_size = strlen(name), .mv_data = (void *)name};
    int rc;

    if (txn->error)
        return txn->error;
    rc = mdb_del(txn->txn, txn->store->picked, &key, NULL);
    return rc && rc != MDB_NOTFOUND ? qstore_fail(txn, rc, "delete picked entry") : QSTORE_OK;
}

/* qstore_picked_scan - visit every picked entry's file name */
int qstore_picked_scan(QSTORE_TXN *txn, int (*fn)(const char *name, void *ctx), void *ctx)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn->txn, txn->store->picked, &cur)) != 0)
        return qstore_fail(txn, rc, "scan picked");
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        char *name = mystrndup(key.mv_data, key.mv_size);
        int stop = fn(name, ctx);

        myfree(name);
        if (stop)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return qstore_fail(txn, rc, "scan picked");
    return QSTORE_OK;
}

/* qstore_count_rcpts - how many recipient records there are */
int qstore_count_rcpts(QSTORE_TXN *txn, size_t *recipients)
{
    MDB_stat st;
    int rc;

    if ((rc = mdb_stat(txn->txn, txn->store->recipients, &st)) != 0)
        return qstore_fail(txn, rc, "stat recipients");
    *recipients = st.ms_entries;
    return QSTORE_OK;
}

/* qstore_count - how many messages and schedule entries there are */
int qstore_count(QSTORE_TXN *txn, size_t *messages, size_t *scheduled)
{
    MDB_stat st;
    int rc;

    if ((rc = mdb_stat(txn->txn, txn->store->messages, &st)) != 0)
        return qstore_fail(txn, rc, "stat messages");
    *messages = st.ms_entries;
    if ((rc = mdb_stat(txn->txn, txn->store->schedule, &st)) != 0)
        return qstore_fail(txn, rc, "stat schedule");
    *scheduled = st.ms_entries;
    return QSTORE_OK;
}
