/*
 * fault - crash points: kill the process at a named place, for the tests
 *
 * Compiled only with --enable-fault-injection (common/Makefile.inc); the
 * FAULT_POINT() macro of fault.h calls fault_point() then, and is a no-op
 * otherwise.
 *
 * fault_point()
 *	note one pass of the named point; when the environment arms it and
 *	this is the Nth pass or a later one, and the marker file does not
 *	exist yet, create the marker, log "fault injection: crash at NAME"
 *	and kill the process with SIGKILL: no exit handler, no flush, as a
 *	kill -9 from outside.
 *
 * The environment, read at the first pass of any point:
 *	RELAYQ_CRASH_AT=NAME[:N][,NAME[:N]]...	the armed points (N defaults
 *						to 1: the first pass)
 *	RELAYQ_CRASH_MARKER=/ABSOLUTE/PATH	required with RELAYQ_CRASH_AT
 *
 * The marker makes a crash happen once: the process that creates it
 * (O_EXCL, so two processes at the same point never both die) writes
 * "NAME PID" into it and dies; a restarted process finds it and runs on.
 * Deleting the marker re-arms every process, which then dies at its next
 * pass of an armed point whose count has reached N. Passes are counted
 * per process, from its start.
 *
 * Failures: a malformed RELAYQ_CRASH_AT, an unknown point name, a missing
 * or relative marker path, or a marker that cannot be created are fatal
 * (a test that asked for a crash must not run on without one); a call
 * with a name missing from the list below is a panic.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "iostuff.h"
#include "msg.h"

/* Every point in the code; doc/internals.md says where each one is. */
static const char *const fault_names[] = {
    "pickup-mid-txn", "pickup-after-commit", "qmgr-after-result",
    "qmgr-mid-txn",   "smtpout-after-250",   "qstore-before-commit",
};

#define FAULT_NPOINTS (sizeof(fault_names) / sizeof(fault_names[0]))

/* The pass at which each point is armed (0: not armed), and passes so far. */
static unsigned long fault_at[FAULT_NPOINTS];
static unsigned long fault_passes[FAULT_NPOINTS];
static const char *fault_marker;
static int fault_ready;

/* fault_index - the index of a point name of length len, or -1 */
static int fault_index(const char *name, size_t len)
{
    for (size_t i = 0; i < FAULT_NPOINTS; i++)
        if (strlen(fault_names[i]) == len && strncmp(fault_names[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* fault_arm - parse one "NAME[:N]" item of RELAYQ_CRASH_AT */
static void fault_arm(const char *spec, const char *item, size_t len)
{
    const char *colon = memchr(item, ':', len);
    size_t name_len = colon ? (size_t)(colon - item) : len;
    unsigned long at = 1;
    int index;

    if ((index = fault_index(item, name_len)) < 0)
        msg_fatal("RELAYQ_CRASH_AT=%s: unknown crash point \"%.*s\"", spec, (int)name_len, item);
    if (colon) {
        char digits[21], *end;
        size_t ndigits = len - name_len - 1;

        if (ndigits == 0 || ndigits >= sizeof(digits) || strspn(colon + 1, "0123456789") < ndigits)
            msg_fatal("RELAYQ_CRASH_AT=%s: bad pass count after \"%.*s:\"", spec, (int)name_len,
                      item);
        memcpy(digits, colon + 1, ndigits);
        digits[ndigits] = '\0';
        errno = 0;
        at = strtoul(digits, &end, 10);
        if (errno != 0 || at == 0)
            msg_fatal("RELAYQ_CRASH_AT=%s: pass count of %s must be 1 or more", spec,
                      fault_names[index]);
    }
    fault_at[index] = at;
}

/* fault_init - read the armed points and the marker from the environment */
static void fault_init(void)
{
    const char *spec = getenv("RELAYQ_CRASH_AT");
    const char *item, *end;

    fault_ready = 1;
    if (spec == NULL || *spec == '\0')
        return;
    for (item = spec; *item; item = *end ? end + 1 : end) {
        end = item + strcspn(item, ",");
        if (end == item)
            msg_fatal("RELAYQ_CRASH_AT=%s: empty item", spec);
        fault_arm(spec, item, (size_t)(end - item));
    }
    fault_marker = getenv("RELAYQ_CRASH_MARKER");
    if (fault_marker == NULL || fault_marker[0] != '/')
        msg_fatal("RELAYQ_CRASH_AT is set: RELAYQ_CRASH_MARKER must name a file by its "
                  "absolute path (it keeps a restarted process from crashing again)");
}

/* fault_crash - claim the marker and die, or return when it is taken */
static void fault_crash(int index)
{
    char line[100];
    int fd, len;

    fd = open(fault_marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return;
        msg_fatal("fault injection: create %s: %m", fault_marker);
    }
    len = snprintf(line, sizeof(line), "%s %ld\n", fault_names[index], (long)getpid());
    if (write_all(fd, line, (size_t)len) < 0)
        msg_fatal("fault injection: write %s: %m", fault_marker);
    (void)close(fd);
    msg_info("fault injection: crash at %s (pass %lu)", fault_names[index], fault_passes[index]);
    (void)kill(getpid(), SIGKILL);
    msg_panic("fault injection: still alive after SIGKILL");
}

/* fault_point - count a pass of a crash point; die when it is armed and due */
void fault_point(const char *name)
{
    int index = fault_index(name, strlen(name));

    if (index < 0)
        msg_panic("fault_point: \"%s\" is not in the list of crash points", name);
    if (!fault_ready)
        fault_init();
    fault_passes[index]++;
    if (fault_at[index] != 0 && fault_passes[index] >= fault_at[index])
        fault_crash(index);
}
