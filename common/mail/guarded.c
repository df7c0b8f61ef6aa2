/*
 * guarded - secrets in libsodium guarded memory
 *
 * guarded_alloc()
 *	sodium_malloc(): memory with guard pages, locked so it is never
 *	swapped out; the caller releases it with sodium_free(), which wipes it.
 * guarded_open()
 *	open a secret file named by an absolute path, and fstat() what was
 *	opened (not the name, which may change meanwhile): the descriptor,
 *	or -1 with a reason naming the file and `what` it is.
 * guarded_read_file()
 *	the whole of an open secret file (credentials, keys) of the size
 *	fstat() gave, into guarded memory with a NUL after it. A file that
 *	grew or shrank while being read is refused: its contents would be
 *	neither the old nor the new file. Returns NULL with the reason in why.
 *
 * Failures: running out of guarded memory is fatal (msg_fatal): a process
 * that cannot keep its secrets locked must not go on with them in plain
 * memory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "guarded.h"
#include "msg.h"

/* guarded_alloc - guarded memory, fatal when the system has none to give */
void *guarded_alloc(size_t len)
{
    void *ptr = sodium_malloc(len);

    if (ptr == NULL)
        msg_fatal("sodium_malloc %zu bytes: %m", len);
    return ptr;
}

/* guarded_open - open a secret file and stat what was opened */
int guarded_open(const char *path, const char *what, struct stat *st, VSTR *why)
{
    int fd;

    if (*path != '/') {
        vstr_sprintf(why, "%s: %s name is not an absolute path", path, what);
        return -1;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        vstr_sprintf(why, "%s: open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) < 0) {
        vstr_sprintf(why, "%s: fstat: %s", path, strerror(errno));
        (void)close(fd);
        return -1;
    }
    return fd;
}

/* guarded_read_file - a whole secret file into guarded memory, NUL-terminated */
char *guarded_read_file(int fd, const char *path, size_t size, VSTR *why)
{
    char *buf = guarded_alloc(size + 1);
    size_t got = 0;
    ssize_t n;

    /* One byte more than fstat said: a file that grew meanwhile is refused. */
    while (got <= size) {
        n = read(fd, buf + got, size + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vstr_sprintf(why, "%s: read: %s", path, strerror(errno));
            sodium_free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != size) {
        vstr_sprintf(why, "%s: the file changed while being read", path);
        sodium_free(buf);
        return NULL;
    }
    buf[got] = '\0';
    return buf;
}
