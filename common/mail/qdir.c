/*
 * qdir - the queue directory's layout
 *
 * qdir_path()
 *	the absolute name of a file or subdirectory of the queue directory;
 *	the caller frees it.
 * qdir_create()
 *	create the queue directory and its subdirectories with their modes
 *	(an existing one is kept; its mode and, when running as root, its
 *	owner are corrected). The tree belongs to mail_owner and, for its
 *	group, to setgid_group, the group the relayq command is installed
 *	setgid to: the queue directory and public/ and pid/ are mode 0710,
 *	so only that group may pass through them to the sockets and the pid
 *	file; maildrop/ is mode 1730, so the group may drop a file but not
 *	list or remove others' files; private/, db/ and corrupt/ are the
 *	owner's alone. Any other user cannot even look inside.
 *
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

/* qdir_make - create one directory with its mode and owner */
static int qdir_make(const char *path, mode_t mode, uid_t owner, gid_t group, VSTR *why)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        vstr_sprintf(why, "create directory %s: %s", path, strerror(errno));
        return -1;
    }
    if (geteuid() == 0 && chown(path, owner, group) < 0) {
        vstr_sprintf(why, "chown %s: %s", path, strerror(errno));
        return -1;
    }
    if (chmod(path, mode) < 0) {
        vstr_sprintf(why, "chmod %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* qdir_create - create the queue directory tree */
int qdir_create(const char *queue_directory, uid_t owner, gid_t group, VSTR *why)
{
    static const struct {
        const char *name;
        mode_t mode;
    } subdirs[] = {
        {QDIR_MAILDROP, 01730}, {QDIR_PRIVATE, 0700}, {QDIR_PUBLIC, 0710},
        {QDIR_PID, 0710},       {QDIR_DB, 0700},      {QDIR_CORRUPT, 0700},
    };

    if (qdir_make(queue_directory, 0710, owner, group, why) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        char *path = qdir_path(queue_directory, subdirs[i].name);
        int ret = qdir_make(path, subdirs[i].mode, owner, group, why);

        myfree(path);
        if (ret < 0)
            return -1;
    }
    return 0;
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
