/*
 * scan - take maildrop files into the queue, many per write transaction
 *
 * scan_event()
 *	the scan timer's callback: read maildrop/ when the list of names
 *	from the last read is used up, then commit one batch (at most
 *	batch_max files or PICKUP_BATCH_BYTES of content) and ask for the
 *	next pass, so that signals and wake-ups are served between batches.
 * scan_request()
 *	run the scan after a delay (0: in the next loop pass); an earlier
 *	request replaces a later one, as event timers do.
 * scan_picked_cleanup()
 *	at start, delete picked entries whose file is gone (a crash came
 *	between the unlink and the delete of the entry), and wake qmgr once:
 *	a pickup killed after its commit and before its wake-up would
 *	otherwise leave the committed mail waiting for qmgr's next scan.
 * scan_flush_gone()
 *	delete the picked entries of files already unlinked, in a
 *	transaction of their own (at idle time and before exit).
 *
 * Crash safety: a file's message, recipients, body, schedule entry and
 * picked entry (file name -> queue id) are committed in one transaction;
 * the file is unlinked only after that commit, the directory fsynced,
 * and only then, in a later transaction, its picked entry deleted. A file
 * found with a picked entry was committed before a crash: it is unlinked,
 * not queued again. A kill -9 at any instant therefore neither loses nor
 * duplicates a message.
 *
 * A file that is not a valid maildrop file is renamed into corrupt/ with
 * a warning; it never stops the files after it.
 *
 * A full queue: before it adds a file, the batch asks the queue whether
 * the content fits above the reserve kept for qmgr's deletes and result
 * records (qstore_room()); when it does not, the batch ends with the files
 * taken so far. A commit may also fail for a full map, a transaction too
 * large or a full file system (all QSTORE_FULL). Either way the files
 * left stay in maildrop/, one warning says why, the scan retries after
 * PICKUP_FULL_RETRY ms (with half the batch after a failed commit), and
 * "queue has room again" is logged once a batch goes through unhindered.
 *
 * Other failures of the queue, and a maildrop/ that cannot be read, are
 * fatal: master restarts pickup, and the files wait.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "fault.h"
#include "iostuff.h"
#include "maildrop.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "pickup.h"
#include "qdir.h"
#include "seal.h"

/* What scan_take() did with a file. */
#define SCAN_TAKEN 1 /* part of the transaction */
#define SCAN_LEFT 0  /* moved to corrupt/, gone, skipped, or the transaction failed */
#define SCAN_FULL 2  /* left in maildrop/: the queue has no room for it above the reserve */

/* A directory entry to sort: oldest first, then by name. */
typedef struct SCAN_ENTRY {
    char *name;
    struct timespec mtime;
} SCAN_ENTRY;

/* scan_entry_cmp - order entries by modification time, then name */
static int scan_entry_cmp(const void *a, const void *b)
{
    const SCAN_ENTRY *ea = a, *eb = b;

    if (ea->mtime.tv_sec != eb->mtime.tv_sec)
        return ea->mtime.tv_sec < eb->mtime.tv_sec ? -1 : 1;
    if (ea->mtime.tv_nsec != eb->mtime.tv_nsec)
        return ea->mtime.tv_nsec < eb->mtime.tv_nsec ? -1 : 1;
    return strcmp(ea->name, eb->name);
}

/* scan_path - the name of a file in a directory (the caller frees it) */
static char *scan_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = mymalloc(len);

    snprintf(path, len, "%s/%s", dir, name);
    return path;
}

/* scan_list_free - forget the names of the last directory read */
static void scan_list_free(PICKUP *p)
{
    for (size_t i = 0; i < p->ntodo; i++)
        myfree(p->todo[i]);
    myfree(p->todo);
    p->todo = NULL;
    p->ntodo = p->todo_pos = 0;
}

/* scan_skipped - whether a file is left alone for now; forgets expired entries */
static int scan_skipped(PICKUP *p, const char *name, time_t now)
{
    for (size_t i = 0; i < p->nskip; i++) {
        if (p->skip[i].retry_at <= now) {
            myfree(p->skip[i].name);
            p->skip[i--] = p->skip[--p->nskip];
            continue;
        }
        if (strcmp(p->skip[i].name, name) == 0)
            return 1;
    }
    return 0;
}

/* scan_skip_add - leave a file alone for PICKUP_SKIP_TIME seconds */
static void scan_skip_add(PICKUP *p, const char *name)
{
    p->skip = myrealloc(p->skip, sizeof(*p->skip) * (p->nskip + 1));
    p->skip[p->nskip].name = mystrdup(name);
    p->skip[p->nskip].retry_at = time(NULL) + PICKUP_SKIP_TIME;
    p->nskip++;
}

/* scan_gone_add - remember an unlinked file whose picked entry is to delete */
static void scan_gone_add(PICKUP *p, const char *name)
{
    p->gone = myrealloc(p->gone, sizeof(*p->gone) * (p->ngone + 1));
    p->gone[p->ngone++] = mystrdup(name);
}

/* scan_gone_free - forget the gone list once its deletes are committed */
static void scan_gone_free(PICKUP *p)
{
    for (size_t i = 0; i < p->ngone; i++)
        myfree(p->gone[i]);
    myfree(p->gone);
    p->gone = NULL;
    p->ngone = 0;
}

/* scan_stale_tmp - remove a "tmp.*" file a killed sendmail left behind, once it is
 * PICKUP_TMP_MAX_AGE seconds old */
static void scan_stale_tmp(int dir_fd, const char *name, time_t now)
{
    struct stat st;

    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        st.st_mtime > now - PICKUP_TMP_MAX_AGE)
        return;
    if (unlinkat(dir_fd, name, 0) == 0)
        msg_info("maildrop/%s: removed: an unfinished submission, untouched for %lld s", name,
                 (long long)(now - st.st_mtime));
    else if (errno != ENOENT)
        msg_warn("maildrop/%s: cannot remove an unfinished submission: %m", name);
}

/* scan_readdir - list the maildrop files to take, oldest first */
static void scan_readdir(PICKUP *p)
{
    DIR *dir;
    struct dirent *dp;
    SCAN_ENTRY *list = NULL;
    size_t count = 0, cap = 0;
    time_t now = time(NULL);

    scan_list_free(p);
    if ((dir = opendir(p->maildrop_dir)) == NULL)
        msg_fatal("open directory %s: %m", p->maildrop_dir);
    while ((errno = 0, dp = readdir(dir)) != NULL) {
        struct stat st;

        if (strncmp(dp->d_name, "tmp.", 4) == 0) {
            scan_stale_tmp(dirfd(dir), dp->d_name, now);
            continue;
        }
        if (!qdir_maildrop_ready(dp->d_name))
            continue;
        if (scan_skipped(p, dp->d_name, now))
            continue;
        if (fstatat(dirfd(dir), dp->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* gone already */
        if (count == cap)
            list = myrealloc(list, sizeof(*list) * (cap = cap ? cap * 2 : 64));
        list[count].name = mystrdup(dp->d_name);
        list[count].mtime = st.st_mtim;
        count++;
    }
    if (errno != 0)
        msg_fatal("read directory %s: %m", p->maildrop_dir);
    closedir(dir);
    if (count > 1)
        qsort(list, count, sizeof(*list), scan_entry_cmp);
    p->todo = mymalloc(sizeof(*p->todo) * (count ? count : 1));
    for (size_t i = 0; i < count; i++)
        p->todo[i] = list[i].name;
    p->ntodo = count;
    p->todo_pos = 0;
    myfree(list);
}

/* scan_corrupt - move a file that cannot be queued out of the way */
static void scan_corrupt(PICKUP *p, const char *name, const char *reason)
{
    char *from = scan_path(p->maildrop_dir, name);
    char *to = scan_path(p->corrupt_dir, name);

    if (rename(from, to) == 0) {
        msg_warn("maildrop/%s: %s: moved to corrupt/", name, reason);
        p->progress = 1;
    } else if (errno != ENOENT) {
        msg_warn("maildrop/%s: %s; cannot move it to corrupt/: %m; will retry in %d s", name,
                 reason, PICKUP_SKIP_TIME);
        scan_skip_add(p, name);
    }
    myfree(from);
    myfree(to);
}

/* scan_limit - the largest content we accept, from message_size_limit */
static size_t scan_limit(void)
{
    long limit = var_int(message_size_limit);

    return limit > 0 ? (size_t)limit : (size_t)PICKUP_NO_LIMIT;
}

/*
 * scan_read - read a maildrop file, bounded. Returns 0 with the data, 1
 * when the file is gone, -1 when it is not acceptable (move it to
 * corrupt/) and -2 when it cannot be read now (leave it); why says why.
 */
static int scan_read(PICKUP *p, const char *name, char **data, size_t *len, uid_t *uid, VSTR *why)
{
    char *path = scan_path(p->maildrop_dir, name);
    size_t limit = scan_limit() + MAILDROP_ENVELOPE_MAX, got = 0;
    struct stat st;
    char *buf;
    int fd;

    /* O_NOFOLLOW and the checks below: the directory is writable by every user. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    myfree(path);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        vstr_sprintf(why, "open: %s", strerror(errno));
        /* A symbolic link, or a file relayq sendmail did not write: waiting will not help. */
        return errno == ELOOP || errno == EACCES ? -1 : -2;
    }
    if (fstat(fd, &st) < 0) {
        vstr_sprintf(why, "fstat: %s", strerror(errno));
        close(fd);
        return -2;
    }
    if (!S_ISREG(st.st_mode)) {
        vstr_strcpy(why, "not a regular file");
        close(fd);
        return -1;
    }
    if (st.st_nlink != 1) {
        vstr_sprintf(why, "file has %lu links", (unsigned long)st.st_nlink);
        close(fd);
        return -1;
    }
    if ((unsigned long long)st.st_size > limit) {
        vstr_sprintf(why, "file size %lld exceeds the limit of %zu bytes", (long long)st.st_size,
                     limit);
        close(fd);
        return -1;
    }
    buf = mymalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vstr_sprintf(why, "read: %s", strerror(errno));
            myfree(buf);
            close(fd);
            return -2;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    *uid = st.st_uid;
    return 0;
}

/* scan_queue - add a message to the transaction: a maildrop file's (f->name: a picked entry
 * for it), an SMTP client's (client: its Received: line) or one sendmail handed over (neither);
 * -1: reject it, with a reason */
int scan_queue(QSTORE_TXN *txn, const MAILDROP_ENV *env, const char *content, size_t content_len,
               const CLEANUP_INFO *client, PICKUP_FILE *f, VSTR *body, VSTR *why)
{
    CLEANUP_INFO info;
    QMSG msg;
    QRCPT rcpt;
    int rc, tries = 0;

    memset(&info, 0, sizeof(info));
    if (client != NULL) {
        info.helo = client->helo;
        info.client_addr = client->client_addr;
        info.protocol = client->protocol;
        info.tls = client->tls;
    }
    info.myhostname = var_str(myhostname);
    info.sender = env->sender;
    info.fullname = env->fullname;
    info.now = time(NULL);
    do {
        /* The id is in the Received: and Message-ID: headers: a new id, new content. */
        if (++tries > 100)
            msg_panic("no unused queue id after 100 tries");
        qid_create(f->qid);
        info.qid = f->qid;
        /* A rejection does not depend on the id: it can only come on the first try. */
        if (cleanup_message_limited(content, content_len, &info, (size_t)var_int(header_size_limit),
                                    body, &f->cleanup, why) < 0)
            return -1;
        qmsg_init(&msg);
        memcpy(msg.qid, f->qid, sizeof(msg.qid));
        msg.arrival_ms = (long long)info.now * 1000;
        {
            struct timespec ts;

            if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
                msg.arrival_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        }
        msg.size = (long long)vstr_len(body);
        msg.nrcpt = (unsigned)env->nrcpt;
        msg.sender = env->sender;
        msg.envid = env->envid;
        msg.ret = env->ret;
        rc = qstore_message_put(txn, &msg, 1);
    } while (rc == QSTORE_EXISTS);
    if (rc != QSTORE_OK)
        return 0; /* the sticky error ends the batch */
    for (size_t i = 0; i < env->nrcpt; i++) {
        memset(&rcpt, 0, sizeof(rcpt));
        rcpt.index = (unsigned)i;
        rcpt.status = QRCPT_PENDING;
        rcpt.addr = env->rcpts[i];
        rcpt.orcpt = env->orcpts[i];
        rcpt.notify = *env->notifies[i] ? env->notifies[i] : env->notify;
        rcpt.reply = "";
        qstore_rcpt_put(txn, f->qid, &rcpt);
    }
    qstore_body_put(txn, f->qid, vstr_str(body), vstr_len(body));
    qstore_message_reschedule(txn, &msg, (long long)info.now);
    f->due = (long long)info.now;
    if (f->name != NULL)
        qstore_picked_put(txn, f->name, f->qid);
    return 0;
}

/* scan_take - put one maildrop file into the transaction, or deal with it */
static int scan_take(PICKUP *p, QSTORE_TXN *txn, PICKUP_FILE *f, size_t *bytes, VSTR *body,
                     VSTR *why)
{
    MAILDROP_ENV env;
    char *data;
    size_t len, off;
    int retry;
    int rc;

    switch (qstore_picked_get(txn, f->name, f->qid)) {
    case QSTORE_OK:
        /* Committed before a crash, not unlinked yet: unlink it, do not queue it again. */
        f->already = 1;
        return SCAN_TAKEN;
    case QSTORE_NOTFOUND:
        break;
    default:
        return SCAN_LEFT;
    }
    switch (scan_read(p, f->name, &data, &len, &f->uid, why)) {
    case 0:
        if (qstore_room(txn, len, why) == QSTORE_FULL) {
            myfree(data);
            return SCAN_FULL;
        }
        break;
    case 1:
        return SCAN_LEFT;
    case -1:
        scan_corrupt(p, f->name, vstr_str(why));
        return SCAN_LEFT;
    default:
        msg_warn("maildrop/%s: %s; will retry in %d s", f->name, vstr_str(why), PICKUP_SKIP_TIME);
        scan_skip_add(p, f->name);
        return SCAN_LEFT;
    }
    /* A file sealed by relayq sendmail (queue_encryption_key_file) opens with the ring. */
    if (seal_drop_unseal(qstore_keyring(p->store), &data, &len, why) < 0) {
        scan_corrupt(p, f->name, vstr_str(why));
        myfree(data);
        return SCAN_LEFT;
    }
    memset(&env, 0, sizeof(env));
    if (maildrop_parse(data, len, var_str(myorigin), &env, &off, why) < 0) {
        VSTR *reason = vstr_alloc(100);

        vstr_sprintf(reason, "bad envelope: %s", vstr_str(why));
        scan_corrupt(p, f->name, vstr_str(reason));
        vstr_free(reason);
        myfree(data);
        return SCAN_LEFT;
    }
    /*
     * A file owned by mail_owner was written by root's or mail_owner's own
     * submission (sendmail gives root's file to mail_owner): the envelope's
     * uid, written by that trusted submitter, names who sent it. Any other
     * owner is the submitter itself, whatever its envelope claims.
     */
    if (f->uid == geteuid() && env.uid >= 0)
        f->uid = (uid_t)env.uid;
    if (sender_of_uid(&env, f->uid, var_str(myorigin), &retry, why) < 0 && retry) {
        msg_warn("maildrop/%s: %s; will retry in %d s", f->name, vstr_str(why), PICKUP_SKIP_TIME);
        scan_skip_add(p, f->name);
        rc = SCAN_LEFT;
    } else if (env.own_sender) {
        scan_corrupt(p, f->name, vstr_str(why));
        rc = SCAN_LEFT;
    } else if (var_int(message_size_limit) > 0 && len - off > (size_t)var_int(message_size_limit)) {
        vstr_sprintf(why, "message size %zu exceeds message_size_limit %ld", len - off,
                     var_int(message_size_limit));
        scan_corrupt(p, f->name, vstr_str(why));
        rc = SCAN_LEFT;
    } else if (scan_queue(txn, &env, data + off, len - off, NULL, f, body, why) < 0) {
        scan_corrupt(p, f->name, vstr_str(why));
        rc = SCAN_LEFT;
    } else {
        f->sender = mystrdup(env.sender);
        *bytes += vstr_len(body);
        rc = SCAN_TAKEN;
    }
    maildrop_env_free(&env);
    myfree(data);
    return rc;
}

/* scan_full - the queue is full: say why once, until a batch goes through again */
static void scan_full(PICKUP *p, const char *why)
{
    if (!p->full)
        msg_warn("queue is full: %s; leaving mail in maildrop until deliveries free room", why);
    else if (msg_verbose)
        msg_info("queue is still full: %s; next batch: %zu files", why, p->batch_max);
    p->full = 1;
}

/* scan_batch - commit one batch; QSTORE_OK, or QSTORE_FULL to back off */
static int scan_batch(PICKUP *p)
{
    PICKUP_FILE *files = mycalloc(p->batch_max, sizeof(*files));
    VSTR *why = vstr_alloc(100), *body = vstr_alloc(4096), *take_why = vstr_alloc(100);
    QSTORE_TXN *txn;
    size_t nfiles = 0, bytes = 0, queued = 0;
    long long commit_us; /* the commit's time, told to qmgr */
    time_t now = time(NULL);
    int rc, taken, roomless = 0;

    /* The queue has one writer at a time: the SMTP clients' messages go first. */
    submit_commit(p->submit);
    if ((txn = qstore_begin(p->store, 1, why)) == NULL)
        msg_fatal("queue: %s", vstr_str(why));
    for (size_t i = 0; i < p->ngone; i++)
        qstore_picked_delete(txn, p->gone[i]);
    while (p->todo_pos < p->ntodo && nfiles < p->batch_max && bytes < PICKUP_BATCH_BYTES &&
           qstore_txn_error(txn) == QSTORE_OK) {
        const char *name = p->todo[p->todo_pos++];
        PICKUP_FILE *f = files + nfiles;

        if (scan_skipped(p, name, now))
            continue;
        memset(f, 0, sizeof(*f));
        f->name = mystrdup(name);
        f->source = PICKUP_SOURCE_MAILDROP;
        if ((taken = scan_take(p, txn, f, &bytes, body, take_why)) == SCAN_TAKEN) {
            nfiles++;
            FAULT_POINT("pickup-mid-txn");
        } else {
            myfree(f->name);
            myfree(f->sender);
        }
        if (taken == SCAN_FULL) {
            roomless = 1; /* the files taken so far go in; this one waits */
            break;
        }
    }
    vstr_free(body);
    commit_us = now_us();
    rc = qstore_commit(txn, why);
    commit_us = now_us() - commit_us;
    if (rc == QSTORE_OK) {
        scan_gone_free(p);
        if (p->full && nfiles > 0 && !roomless) {
            msg_info("queue has room again: resuming pickup");
            p->full = 0;
        }
        if (p->batch_max < PICKUP_BATCH_FILES)
            p->batch_max =
                p->batch_max * 2 > PICKUP_BATCH_FILES ? PICKUP_BATCH_FILES : p->batch_max * 2;
        if (roomless)
            scan_full(p, vstr_str(take_why));
    } else if (rc == QSTORE_FULL) {
        /* Halve what was tried, not the limit: 16 files waiting must not take 5 retries. */
        if (nfiles > 0 && nfiles < p->batch_max)
            p->batch_max = nfiles;
        if (p->batch_max > 1)
            p->batch_max /= 2;
        scan_full(p, vstr_str(why));
    } else {
        msg_fatal("queue: %s", vstr_str(why));
    }

    /* Only committed files may go: the picked entry protects them until the fsync below. */
    for (size_t i = 0; i < nfiles; i++) {
        PICKUP_FILE *f = files + i;

        if (rc == QSTORE_OK) {
            char *path = scan_path(p->maildrop_dir, f->name);

            if (!f->already) {
                msg_info("%s: uid=%ld from=<%s>", f->qid, (long)f->uid, f->sender);
                VSTR *source = vstr_alloc(64);

                vstr_sprintf(source, "maildrop/%s", f->name);
                cleanup_log(f->qid, vstr_str(source), (size_t)var_int(header_size_limit),
                            &f->cleanup);
                vstr_free(source);
                queued++;
            } else if (msg_verbose) {
                msg_info("maildrop/%s: queued before as %s: removed", f->name, f->qid);
            }
            FAULT_POINT("pickup-after-commit");
            if (unlink(path) == 0 || errno == ENOENT) {
                scan_gone_add(p, f->name);
                p->progress = 1;
            } else {
                msg_warn("remove %s: %m", path);
            }
            myfree(path);
        }
        myfree(f->name);
        myfree(f->sender);
    }
    if (queued > 0)
        pickup_tell_qmgr(p, files, nfiles, commit_us);
    myfree(files);
    if (rc == QSTORE_OK && nfiles > 0 && fsync_dir(p->maildrop_dir) < 0) {
        /* The picked entries stay until a later fsync makes the unlinks durable. */
        msg_warn("fsync %s: %m", p->maildrop_dir);
        scan_gone_free(p);
    }
    vstr_free(why);
    vstr_free(take_why);
    return roomless ? QSTORE_FULL : rc;
}

/* scan_request - run the scan after delay_ms */
void scan_request(PICKUP *p, long long delay_ms)
{
    event_request_timer(scan_event, p, delay_ms);
}

/* scan_event - one pass of the scan: read the directory if needed, commit a batch */
void scan_event(void *ctx)
{
    PICKUP *p = ctx;

    if (p->todo_pos >= p->ntodo) {
        if (p->qmgr == NULL)
            pickup_connect_qmgr(p);
        p->progress = 0;
        p->wakeup = 0;
        scan_readdir(p);
        if (p->ntodo == 0) {
            scan_flush_gone(p);
            scan_request(p, PICKUP_SCAN_INTERVAL);
            return;
        }
    }
    if (scan_batch(p) == QSTORE_FULL) {
        scan_list_free(p);
        scan_request(p, PICKUP_FULL_RETRY);
        return;
    }
    if (p->todo_pos < p->ntodo) {
        scan_request(p, 0);
        return;
    }
    /* The list is done: new files may have come meanwhile, look again at once. */
    if (p->progress || p->wakeup) {
        scan_request(p, 0);
    } else {
        scan_flush_gone(p);
        scan_request(p, PICKUP_SCAN_INTERVAL);
    }
}

/* scan_flush_gone - delete the picked entries of unlinked files */
void scan_flush_gone(PICKUP *p)
{
    VSTR *why;
    QSTORE_TXN *txn;
    int rc;

    if (p->ngone == 0)
        return;
    why = vstr_alloc(100);
    /* The queue has one writer at a time: the SMTP clients' messages go first. */
    submit_commit(p->submit);
    if ((txn = qstore_begin(p->store, 1, why)) == NULL)
        msg_fatal("queue: %s", vstr_str(why));
    for (size_t i = 0; i < p->ngone; i++)
        qstore_picked_delete(txn, p->gone[i]);
    rc = qstore_commit(txn, why);
    if (rc == QSTORE_OK)
        scan_gone_free(p);
    else if (rc == QSTORE_ERROR)
        msg_fatal("queue: %s", vstr_str(why));
    /* QSTORE_FULL: keep the list; the next batch or idle scan tries again. */
    vstr_free(why);
}

/* A list of file names being collected from the picked database. */
typedef struct SCAN_STALE {
    PICKUP *p;
    char **names;
    size_t count;
} SCAN_STALE;

/* scan_stale_visit - collect a picked entry whose file is gone */
static int scan_stale_visit(const char *name, void *ctx)
{
    SCAN_STALE *stale = ctx;
    char *path = scan_path(stale->p->maildrop_dir, name);
    struct stat st;

    if (lstat(path, &st) < 0 && errno == ENOENT) {
        stale->names = myrealloc(stale->names, sizeof(*stale->names) * (stale->count + 1));
        stale->names[stale->count++] = mystrdup(name);
    }
    myfree(path);
    return 0;
}

/* scan_picked_cleanup - forget picked entries whose file no longer exists */
void scan_picked_cleanup(PICKUP *p)
{
    SCAN_STALE stale = {p, NULL, 0};
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn;
    int rc;

    if ((txn = qstore_begin(p->store, 1, why)) == NULL)
        msg_fatal("queue: %s", vstr_str(why));
    /* Collect first: deleting under the scan's cursor would disturb it. */
    qstore_picked_scan(txn, scan_stale_visit, &stale);
    for (size_t i = 0; i < stale.count; i++)
        qstore_picked_delete(txn, stale.names[i]);
    rc = qstore_commit(txn, why);
    if (rc == QSTORE_ERROR)
        msg_fatal("queue: %s", vstr_str(why));
    if (rc == QSTORE_OK && stale.count > 0 && msg_verbose)
        msg_info("removed %zu picked entries of files already gone", stale.count);
    for (size_t i = 0; i < stale.count; i++)
        myfree(stale.names[i]);
    myfree(stale.names);
    vstr_free(why);
    /* A pickup killed between a commit and its message to qmgr left due
     * mail qmgr has not heard of: a new connection makes qmgr resync. */
    pickup_connect_qmgr(p);
}
