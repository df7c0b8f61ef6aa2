/*
 * iostuff - small file-descriptor helpers
 *
 * non_blocking(), close_on_exec()
 *	set or clear O_NONBLOCK / FD_CLOEXEC; return -1 with errno on failure.
 * write_all()
 *	write the whole buffer to a blocking descriptor, retrying on EINTR and
 *	short writes; returns len or -1.
 * fsync_dir()
 *	fsync a directory so that a rename or unlink in it is durable.
 * read_file()
 *	read a whole file of at most limit bytes into memory the caller frees;
 *	-1 with errno (EFBIG when over the limit).
 * now_ms()
 *	monotonic time in milliseconds, for timers and deadlines.
 * now_us()
 *	the same clock in microseconds (short durations: a commit's time).
 * wall_ms()
 *	wall-clock time in milliseconds since the epoch, for timestamps that
 *	other processes read (arrival and activation times).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "iostuff.h"
#include "mymalloc.h"

/* non_blocking - set or clear O_NONBLOCK */
int non_blocking(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -1;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags);
}

/* close_on_exec - set or clear FD_CLOEXEC */
int close_on_exec(int fd, int on)
{
    int flags = fcntl(fd, F_GETFD);

    if (flags < 0)
        return -1;
    flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
    return fcntl(fd, F_SETFD, flags);
}

/* write_all - write everything or fail */
ssize_t write_all(int fd, const void *buf, size_t len)
{
    const char *cp = buf;
    size_t left = len;

    while (left > 0) {
        ssize_t n = write(fd, cp, left);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        cp += n;
        left -= (size_t)n;
    }
    return (ssize_t)len;
}

/* fsync_dir - make directory entry changes durable */
int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret;

    if (fd < 0)
        return -1;
    ret = fsync(fd);
    close(fd);
    return ret;
}

/* read_file - read a bounded file into memory */
int read_file(const char *path, size_t limit, void **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf;
    size_t got = 0;

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -1;
    }
    if ((size_t)st.st_size > limit) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    buf = mymalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

/* now_ms - monotonic milliseconds */
long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* now_us - monotonic microseconds, for durations shorter than a millisecond */
long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* wall_ms - wall-clock milliseconds since the epoch */
long long wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
