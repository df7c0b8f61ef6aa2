/*
 * qdir - the queue directory's layout
 *
 * qdir_path()
 *	the absolute name of a file or subdirectory of the queue directory;
 *	the caller frees it.
 * qdir_create()
 *	create the queue directory and its subdirectories with their modes
 *	(an existing one is kept; its mode and, when running as root, its
 *	owner are corrected). Master runs it as root, so nothing in the tree
 *	mail_owner could have planted is trusted: each subdirectory is opened
 *	relative to the queue directory's descriptor without following a
 *	link (openat O_NOFOLLOW), checked through its own descriptor (a
 *	directory, owned by mail_owner or root), and only then given its
 *	owner and mode (fchown, fchmod); the files root's checks meet
 *	(db/data.mdb, db/lock.mdb, pid/master.pid) must be regular files of
 *	one link. Anything else is refused with its path and what to do, and
 *	nothing outside the queue is ever changed. The tree belongs to mail_owner and, for its
 *	group, to setgid_group, the group the relayq command is installed
 *	setgid to: the queue directory and public/ and pid/ are mode 0710,
 *	so only that group may pass through them to the sockets and the pid
 *	file; maildrop/ is mode 1730, so the group may drop a file but not
 *	list or remove others' files; private/, db/ and corrupt/ are the
 *	owner's alone. Any other user cannot even look inside.
 *
 * qdir_verify()
 *	the checks of qdir_create() on an existing tree, changing nothing:
 *	what "relayq check" reports before master would refuse to start.
 * qdir_maildrop_ready()
 *	whether a name in maildrop/ is a finished submission: not a dot
 *	file, not a "tmp.*" file the sendmail command is still writing.
 * qdir_maildrop_count()
 *	how many finished submissions wait in maildrop/ for pickup; -1 when
 *	the directory cannot be listed (mode 1730: only root and mail_owner
 *	may).
 *
 * Errors are returned with a reason; nothing here exits.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail_proto.h"
#include "mymalloc.h"
#include "qdir.h"

/* qdir_path - name of something in the queue directory */
char *qdir_path(const char *queue_directory, const char *relative)
{
    VSTR *buf = vstr_alloc(256);
    char *path;

    vstr_sprintf(buf, "%s/%s", queue_directory, relative);
    path = mystrdup(vstr_str(buf));
    vstr_free(buf);
    return path;
}

/* The subdirectories of the queue directory and their modes. */
static const struct {
    const char *name;
    mode_t mode;
} qdir_subdirs[] = {
    {QDIR_MAILDROP, 01730}, {QDIR_PRIVATE, 0700}, {QDIR_PUBLIC, 0710},
    {QDIR_PID, 0710},       {QDIR_DB, 0700},      {QDIR_CORRUPT, 0700},
};

/* Files inside the subdirectories that root's checks look at, by subdirectory. */
static const struct {
    const char *dir;
    const char *name;
} qdir_files[] = {
    {QDIR_DB, "data.mdb"},
    {QDIR_DB, "lock.mdb"},
    {QDIR_PID, "master.pid"},
};

/*
 * qdir_owner_ok - whether an entry's owner may be kept: mail_owner's (or,
 * for a run without root, this user's), or root's (the tree was made by
 * root before it was given away); anyone else planted it
 */
static int qdir_owner_ok(const char *path, const struct stat *st, uid_t owner, VSTR *why)
{
    if (st->st_uid == owner || st->st_uid == 0)
        return 1;
    vstr_sprintf(why,
                 "%s: owned by uid %ld, not by mail_owner (uid %ld): remove it or give it "
                 "to mail_owner",
                 path, (long)st->st_uid, (long)owner);
    return 0;
}

/*
 * qdir_open_sub - open a subdirectory relative to its parent without
 * following a link, creating it first when `fix`; then check what was
 * opened (a directory of the right owner) and, when `fix`, set its owner
 * and mode through the descriptor. The descriptor, or -1 with why
 * naming the path; with !fix a missing one is -2 (nothing to check).
 */
static int qdir_open_sub(int parent, const char *queue_directory, const char *name, mode_t mode,
                         uid_t owner, gid_t group, int fix, VSTR *why)
{
    char *path = qdir_path(queue_directory, name);
    struct stat st;
    int fd;

    if (fix && mkdirat(parent, name, mode) < 0 && errno != EEXIST) {
        vstr_sprintf(why, "create directory %s: %s", path, strerror(errno));
        myfree(path);
        return -1;
    }
    if ((fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        if (!fix && errno == ENOENT) {
            myfree(path);
            return -2;
        }
        struct stat lst;

        /* O_DIRECTORY meeting a link says ENOTDIR, not ELOOP: ask what it is. */
        if (errno == ELOOP || errno == ENOTDIR)
            vstr_sprintf(why,
                         "%s: %s, not a directory: relayq never follows links in its queue; "
                         "remove it",
                         path,
                         fstatat(parent, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                                 S_ISLNK(lst.st_mode)
                             ? "a symbolic link"
                             : "a file");
        else
            vstr_sprintf(why, "open %s: %s", path, strerror(errno));
        myfree(path);
        return -1;
    }
    if (fstat(fd, &st) < 0 || !qdir_owner_ok(path, &st, owner, why) ||
        (fix && geteuid() == 0 && fchown(fd, owner, group) < 0) || (fix && fchmod(fd, mode) < 0)) {
        if (vstr_len(why) == 0)
            vstr_sprintf(why, "%s: %s", path, strerror(errno));
        (void)close(fd);
        myfree(path);
        return -1;
    }
    myfree(path);
    return fd;
}

/* qdir_check_file - a file root's checks look at must be a regular file of ours, if there */
static int qdir_check_file(int dir_fd, const char *queue_directory, const char *dir,
                           const char *name, uid_t owner, VSTR *why)
{
    VSTR *path = vstr_alloc(256);
    struct stat st;
    int ret = 0;

    vstr_sprintf(path, "%s/%s/%s", queue_directory, dir, name);
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT) {
            vstr_sprintf(why, "%s: %s", vstr_str(path), strerror(errno));
            ret = -1;
        }
    } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        vstr_sprintf(why, "%s: %s: relayq never follows links in its queue; remove it",
                     vstr_str(path),
                     S_ISLNK(st.st_mode)   ? "a symbolic link, not a file"
                     : S_ISREG(st.st_mode) ? "a file with another hard link"
                                           : "not a regular file");
        ret = -1;
    } else if (!qdir_owner_ok(vstr_str(path), &st, owner, why)) {
        ret = -1;
    }
    vstr_free(path);
    return ret;
}

/* qdir_walk - check, and with fix create and correct, the queue directory tree */
static int qdir_walk(const char *queue_directory, uid_t owner, gid_t group, int fix, VSTR *why)
{
    struct stat st;
    int top, sub;
    int ret = 0;

    vstr_reset(why);
    if (fix && mkdir(queue_directory, 0710) < 0 && errno != EEXIST) {
        vstr_sprintf(why, "create directory %s: %s", queue_directory, strerror(errno));
        return -1;
    }
    /* The queue directory's own name is the administrator's, in a parent root owns. */
    if ((top = open(queue_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        if (!fix && errno == ENOENT)
            return 0;
        vstr_sprintf(why, "open %s: %s", queue_directory, strerror(errno));
        return -1;
    }
    if (fstat(top, &st) < 0 || !qdir_owner_ok(queue_directory, &st, owner, why) ||
        (fix && geteuid() == 0 && fchown(top, owner, group) < 0) ||
        (fix && fchmod(top, 0710) < 0)) {
        if (vstr_len(why) == 0)
            vstr_sprintf(why, "%s: %s", queue_directory, strerror(errno));
        (void)close(top);
        return -1;
    }
    for (size_t i = 0; ret == 0 && i < sizeof(qdir_subdirs) / sizeof(qdir_subdirs[0]); i++) {
        sub = qdir_open_sub(top, queue_directory, qdir_subdirs[i].name, qdir_subdirs[i].mode, owner,
                            group, fix, why);
        if (sub == -2)
            continue;
        if (sub < 0) {
            ret = -1;
            break;
        }
        for (size_t j = 0; ret == 0 && j < sizeof(qdir_files) / sizeof(qdir_files[0]); j++)
            if (strcmp(qdir_files[j].dir, qdir_subdirs[i].name) == 0)
                ret = qdir_check_file(sub, queue_directory, qdir_files[j].dir, qdir_files[j].name,
                                      owner, why);
        (void)close(sub);
    }
    (void)close(top);
    return ret;
}

/* qdir_create - create the queue directory tree, or refuse what is not ours */
int qdir_create(const char *queue_directory, uid_t owner, gid_t group, VSTR *why)
{
    return qdir_walk(queue_directory, owner, group, 1, why);
}

/* qdir_verify - what qdir_create() would refuse, without changing anything */
int qdir_verify(const char *queue_directory, uid_t owner, VSTR *why)
{
    return qdir_walk(queue_directory, owner, (gid_t)-1, 0, why);
}

/* qdir_maildrop_ready - a finished submission, not one being written */
int qdir_maildrop_ready(const char *name)
{
    return name[0] != '.' && strncmp(name, "tmp.", 4) != 0;
}

/* qdir_maildrop_count - finished submissions waiting for pickup, or -1 */
long qdir_maildrop_count(const char *queue_directory)
{
    char *path = qdir_path(queue_directory, QDIR_MAILDROP);
    DIR *dir = opendir(path);
    struct dirent *dp;
    long count = 0;

    myfree(path);
    if (dir == NULL)
        return -1;
    while ((dp = readdir(dir)) != NULL)
        if (qdir_maildrop_ready(dp->d_name))
            count++;
    closedir(dir);
    return count;
}
