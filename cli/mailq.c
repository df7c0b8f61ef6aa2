/*
 * mailq - list the mail queue
 *
 * mailq_main()
 *	"relayq mailq [-c FILE] [-v] [--json]", also run as "mailq" and as
 *	"sendmail -bp" (-v, which scripts pass to Postfix's mailq, is
 *	accepted: the listing is already complete): list every message in the queue in Postfix's
 *	"postqueue -p" layout, or with --json one "postqueue -j" object per
 *	message per line (the listing itself is qlist.c's). When corrupt/
 *	holds maildrop files that pickup set aside, a warning on standard
 *	error says how many (only root and mail_owner can see them); the
 *	listing on standard output keeps Postfix's layout for scripts.
 *
 * mail_owner reads the queue itself, and so does root once it has become
 * mail_owner for good (relayq_read_as_mail_owner), opened read-only, so
 * mailq never changes it and works while the daemons run or not. Which
 * messages are being delivered right now is qmgr's knowledge, asked over
 * public/control; when qmgr is not running, none are.
 *
 * Any other user cannot read db/: the command then asks qmgr for the
 * listing over public/control (the relayq command is installed setgid to
 * setgid_group to reach it), and qmgr answers only users that
 * authorized_mailq_users names (EX_NOPERM otherwise) and has its helper
 * showq send the listing in chunks of at most 512 KB, as Postfix's showq
 * serves postqueue.
 *
 * The listing is written to a temporary file while the LMDB read snapshot
 * is open and copied to standard output after it ends: a reader parked
 * on a slow pipe ("mailq | less") would otherwise pin old pages and let
 * the map fill up under the daemons.
 *
 * Before the listing's last line (Postfix's total, which scripts read
 * last), a line per relay whose limits shared with other instances hold
 * its mail: its daily quota used up, or the local shares in force while
 * the server is away (qmgr's stats, qstats.c; nothing when qmgr does not
 * answer, in the JSON layout, or for an empty queue).
 *
 * A queue that was never created (no mail ever queued) is empty. Other
 * failures to read it are fatal (EX_UNAVAILABLE, or EX_NOPERM).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qdir.h"
#include "qactive.h"
#include "qid.h"
#include "qlist.h"
#include "qstats.h"
#include "qstore.h"

#define MAILQ_ACTIVE_TIMEOUT_MS 2000
#define MAILQ_REMOTE_TIMEOUT_MS 30000 /* to reach qmgr, and for each chunk of its listing */

static VSTR *mailq_last; /* the listing's last line so far, held back */

/* mailq_out - listing text to standard output, all but its last line */
static void mailq_out(const char *data, size_t len)
{
    const char *nl;
    size_t take;

    if (mailq_last == NULL)
        mailq_last = vstr_alloc(128);
    while (len > 0) {
        if (vstr_len(mailq_last) > 0 && vstr_str(mailq_last)[vstr_len(mailq_last) - 1] == '\n') {
            fputs(vstr_str(mailq_last), stdout);
            vstr_reset(mailq_last);
        }
        nl = memchr(data, '\n', len);
        take = nl ? (size_t)(nl - data) + 1 : len;
        vstr_append(mailq_last, data, take);
        data += take;
        len -= take;
    }
}

/* mailq_shared - what holds a relay's mail among the limits shared with other instances */
static void mailq_shared(void)
{
    char *path = control_socket_path(SOCK_CONTROL);
    VSTR *why = vstr_alloc(100);
    QSTATS *stats = qstats_ask(path, MAILQ_ACTIVE_TIMEOUT_MS, why);

    /* No qmgr, or no answer: the listing alone, as without shared limits. */
    for (size_t i = 0; stats != NULL && i < stats->ndest; i++) {
        const QSTATS_DEST *d = stats->dests + i;

        if (!qstats_get(d, "shared"))
            continue;
        if (qstats_get(d, "shared_daily_known") && qstats_get(d, "shared_daily_left") == 0)
            printf("Shared limits of %s: the daily quota (%lld messages) is used up by %lld "
                   "instance%s; its mail is deferred until the window frees a slot\n",
                   d->name, qstats_get(d, "shared_daily"), qstats_get(d, "shared_instances"),
                   qstats_get(d, "shared_instances") == 1 ? "" : "s");
        if (qstats_get(d, "shared_fallback"))
            printf("Shared limits of %s: server unavailable; this instance applies its local "
                   "share of each limit\n",
                   d->name);
    }
    if (stats != NULL)
        qstats_free(stats);
    vstr_free(why);
    myfree(path);
}

/* mailq_finish - the shared limits that hold mail, then the listing's last line */
static void mailq_finish(int json)
{
    if (mailq_last == NULL)
        return;
    /* Postfix's last line ("-- N Kbytes in M Requests.") stays last; an
     * empty queue's line stays alone. */
    if (!json && strcmp(vstr_str(mailq_last), "Mail queue is empty\n") != 0)
        mailq_shared();
    fputs(vstr_str(mailq_last), stdout);
    vstr_free(mailq_last);
    mailq_last = NULL;
}

/* mailq_copy - the finished listing to standard output */
static void mailq_copy(FILE *from)
{
    char buf[65536];
    size_t n;

    rewind(from);
    while ((n = fread(buf, 1, sizeof(buf), from)) > 0)
        mailq_out(buf, n);
    if (ferror(from))
        msg_fatal_status(EX_IOERR, "read the temporary listing: %s", strerror(errno));
}

/* mailq_remote - the listing from qmgr, for a user who cannot read the queue */
static void mailq_remote(int json, const char *local_reason)
{
    char *path = control_socket_path(SOCK_CONTROL);
    IPC_REC *req = ipc_rec_create("list");
    IPC_REC *reply;
    VSTR *why = vstr_alloc(100);
    const char *data;
    IPC_CHAN *chan;

    ipc_rec_add_long(req, "json", json);
    /* qmgr may be busy (loading a big schedule at start): wait as for a chunk. */
    if ((chan = ipc_client_open(path, PROTO_CONTROL, MAILQ_REMOTE_TIMEOUT_MS, why)) == NULL)
        msg_fatal_status(strstr(local_reason, "ermission denied") ? EX_NOPERM : EX_UNAVAILABLE,
                         "cannot read the queue (%s), and qmgr cannot list it (%s)", local_reason,
                         vstr_str(why));
    if (ipc_chan_send_wait(chan, req, MAILQ_REMOTE_TIMEOUT_MS, why) < 0)
        msg_fatal_status(EX_UNAVAILABLE, "no answer from qmgr: %s", vstr_str(why));
    for (;;) {
        if ((reply = ipc_chan_recv_wait(chan, MAILQ_REMOTE_TIMEOUT_MS, why)) == NULL)
            msg_fatal_status(EX_UNAVAILABLE, "no answer from qmgr: %s", vstr_str(why));
        control_refused(reply, "listing");
        if (strcmp(ipc_rec_type(reply), "end") == 0)
            break;
        if (strcmp(ipc_rec_type(reply), "list") != 0 || ipc_rec_check(reply, "data", "", why) < 0 ||
            (data = ipc_rec_get(reply, "data")) == NULL)
            msg_fatal_status(EX_SOFTWARE, "qmgr sent a malformed listing: %s", vstr_str(why));
        mailq_out(data, strlen(data));
        ipc_rec_free(reply);
    }
    ipc_rec_free(reply);
    ipc_rec_free(req);
    ipc_chan_free(chan);
    vstr_free(why);
    myfree(path);
}

/* mailq_local - list the queue from its LMDB environment */
static void mailq_local(QSTORE *store, const QLIST_OPTS *opts)
{
    VSTR *why = vstr_alloc(100);
    QSTORE_TXN *txn;
    FILE *out;
    int ret;

    if ((txn = qstore_begin(store, 0, why)) == NULL)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", vstr_str(why));
    if ((out = tmpfile()) == NULL)
        out = stdout;
    ret = qlist_write(txn, opts, out, why);
    qstore_abort(txn);
    if (ret < 0)
        msg_fatal_status(EX_UNAVAILABLE, "cannot read the queue: %s", vstr_str(why));
    if (out != stdout) {
        mailq_copy(out);
        fclose(out);
    }
    vstr_free(why);
}

/* mailq_corrupt - warn about the maildrop files pickup set aside, if we may look */
static void mailq_corrupt(void)
{
    char *path = qdir_path(var_str(queue_directory), QDIR_CORRUPT);
    DIR *dir = opendir(path);
    struct dirent *dp;
    size_t count = 0;

    /* corrupt/ is mail_owner's, mode 0700: other users are not told. */
    if (dir != NULL) {
        while ((dp = readdir(dir)) != NULL)
            if (dp->d_name[0] != '.')
                count++;
        closedir(dir);
    }
    if (count > 0)
        msg_warn("%zu file%s in %s/ that pickup could not queue (see relayq(1), INPUT)", count,
                 count == 1 ? "" : "s", path);
    myfree(path);
}

/* mailq_main - "relayq mailq [-c FILE] [-v] [--json]" */
int mailq_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
    QACTIVE *active;
    char *control_path;
    QLIST_OPTS opts;
    const char *config = NULL;
    char *dbdir;
    char *datafile;
    struct stat st;
    QSTORE *store;
    VSTR *why = vstr_alloc(100);
    int ch;

    memset(&opts, 0, sizeof(opts));
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:jv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            opts.json = 1;
            break;
        case 'v':
            break;
        default:
            relayq_usage("mailq", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("mailq", NULL);
    relayq_load_config(config);
    relayq_read_as_mail_owner();
    /* Only root and mail_owner may list maildrop/ (mode 1730); others see -1, nothing. */
    opts.maildrop = qdir_maildrop_count(var_str(queue_directory));

    dbdir = qdir_path(var_str(queue_directory), QDIR_DB);
    datafile = qdir_path(dbdir, "data.mdb");
    if (stat(datafile, &st) < 0 && errno == ENOENT) {
        qlist_write_empty(&opts, stdout);
    } else if ((store = qstore_open(dbdir, (size_t)var_int(queue_map_size), QSTORE_READONLY,
                                    why)) == NULL) {
        /* Created but never committed to: no database exists yet. */
        if (strstr(vstr_str(why), "queue not created yet") != NULL)
            qlist_write_empty(&opts, stdout);
        else
            mailq_remote(opts.json, vstr_str(why));
    } else {
        control_path = control_socket_path(SOCK_CONTROL);
        active = qactive_ask(control_path, MAILQ_ACTIVE_TIMEOUT_MS);
        opts.is_active = qactive_has;
        opts.ctx = active;
        mailq_local(store, &opts);
        qstore_close(store);
        qactive_free(active);
        myfree(control_path);
    }
    mailq_finish(opts.json);
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal_status(EX_IOERR, "write the listing: %s", strerror(errno));
    mailq_corrupt();
    vstr_free(why);
    myfree(dbdir);
    myfree(datafile);
    return 0;
}
