/*
 * driver - run a fuzz target over files without libFuzzer
 *
 * main()
 *	for each argument, a file or a directory of files (not recursive),
 *	read the file into a buffer of exactly its size and call the target's
 *	LLVMFuzzerTestOneInput() once with it, after LLVMFuzzerInitialize()
 *	when the target has one. This is how make check runs every seed and
 *	regression input with an ordinary compiler (gcc or clang, with or
 *	without sanitizers); libFuzzer brings its own main().
 *
 * The buffer is allocated to the exact size so that AddressSanitizer
 * sees a read past the end of the input, as it would under libFuzzer.
 *
 * Failures: an unreadable file or directory is reported and makes the
 * exit status 1; the target reports a broken invariant by aborting.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* driver_run_file - feed one file to the target; -1 when it cannot be read */
static int driver_run_file(const char *path)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    ssize_t n;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* malloc(0) may return NULL; one spare byte keeps the pointer valid, not readable. */
    if ((buf = malloc((size_t)st.st_size ? (size_t)st.st_size : 1)) == NULL) {
        fprintf(stderr, "driver: %s: out of memory\n", path);
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    fprintf(stderr, "driver: %s (%zu bytes)\n", path, got);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

/* driver_run_dir - feed every regular file of a directory, in name order */
static int driver_run_dir(const char *path)
{
    struct dirent **names;
    char file[4096];
    int count;
    int ret = 0;

    if ((count = scandir(path, &names, NULL, alphasort)) < 0) {
        fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        struct stat st;

        snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
            driver_run_file(file) < 0)
            ret = -1;
        free(names[i]);
    }
    free(names);
    return ret;
}

/* main - run the target over the files and directories named */
int main(int argc, char **argv)
{
    struct stat st;
    int ret = 0;

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (driver_run_dir(argv[i]) < 0)
                ret = 1;
        } else if (driver_run_file(argv[i]) < 0) {
            ret = 1;
        }
    }
    return ret;
}
