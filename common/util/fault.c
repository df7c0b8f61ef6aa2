/*
 * fault - fault points: kill the process, or fail an operation, at a named
 *	place, for the tests
 *
 * Compiled only with --enable-fault-injection (common/Makefile.inc); the
 * FAULT_POINT() and FAULT_ERROR() macros of fault.h call fault_point()
 * and fault_error() then, and are a no-op and 0 otherwise.
 *
 * fault_point()
 *	note one pass of the named point; when the environment arms it for
 *	a crash and this is the Nth pass or a later one, and the marker file
 *	does not exist yet, create the marker, log "fault injection: crash
 *	at NAME" and kill the process with SIGKILL: no exit handler, no
 *	flush, as a kill -9 from outside.
 * fault_error()
 *	the same at a point that can fail, and also: when the environment
 *	arms it for an error and the pass and marker agree, create the
 *	marker, log "fault injection: ERROR at NAME" and return the error's
 *	code, which the caller acts on as if the operation had returned it.
 *	Returns 0 otherwise.
 *
 * The environment, read at the first pass of any point:
 *	RELAYQ_CRASH_AT=NAME[:N][,NAME[:N]]...	points armed for a crash (N
 *						defaults to 1: the first pass)
 *	RELAYQ_FAIL_AT=NAME[:N]=ERROR[,...]	points armed for an error:
 *						ENOSPC, EIO, MDB_MAP_FULL or
 *						MDB_TXN_FULL
 *	RELAYQ_CRASH_MARKER=/ABSOLUTE/PATH	required with either
 *
 * The marker makes a fault happen once: the process that creates it
 * (O_EXCL, so two processes at the same point never both fire) writes
 * "NAME PID" into it and dies or fails; a restarted process finds it and
 * runs on. Deleting the marker re-arms every process, which then fires at
 * its next pass of an armed point whose count has reached N. Passes are
 * counted per process, from its start. A point is armed once, for a crash
 * or for an error.
 *
 * Failures: a malformed variable, an unknown point or error name, an error
 * armed at a point that cannot fail, a point armed twice, a missing or
 * relative marker path, or a marker that cannot be created are fatal (a
 * test that asked for a fault must not run on without one); a call with a
 * name missing from the list below, or fault_point() at a point that can
 * fail, is a panic.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "fault.h"
#include "iostuff.h"
#include "msg.h"

/* Every point in the code; doc/internals.md says where each one is. */
static const struct {
    const char *name;
    int can_fail; /* FAULT_ERROR(): the caller acts on an error */
} fault_points[] = {
    {"pickup-mid-txn", 0},   {"pickup-after-commit", 0}, {"qmgr-after-result", 0},
    {"qmgr-mid-txn", 0},     {"smtpout-after-250", 0},   {"qstore-before-commit", 1},
    {"qmgr-bulk-commit", 1}, {"qmgr-seal-commit", 1},    {"pickup-submit-commit", 1},
};

/* The errors a point can be made to fail with. */
static const struct {
    const char *name;
    int code;
} fault_errors[] = {
    {"ENOSPC", ENOSPC},
    {"EIO", EIO},
    {"MDB_MAP_FULL", MDB_MAP_FULL},
    {"MDB_TXN_FULL", MDB_TXN_FULL},
};

#define FAULT_NPOINTS (sizeof(fault_points) / sizeof(fault_points[0]))
#define FAULT_NERRORS (sizeof(fault_errors) / sizeof(fault_errors[0]))

/* The pass at which each point is armed (0: not armed), with what, and passes so far. */
static unsigned long fault_at[FAULT_NPOINTS];
static int fault_with[FAULT_NPOINTS]; /* index in fault_errors[] + 1; 0: a crash */
static unsigned long fault_passes[FAULT_NPOINTS];
static const char *fault_marker;
static int fault_ready;

/* fault_index - the index of a point name of length len, or -1 */
static int fault_index(const char *name, size_t len)
{
    for (size_t i = 0; i < FAULT_NPOINTS; i++)
        if (strlen(fault_points[i].name) == len && strncmp(fault_points[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* fault_error_index - the index in fault_errors[] of an error name of length len, or -1 */
static int fault_error_index(const char *name, size_t len)
{
    for (size_t i = 0; i < FAULT_NERRORS; i++)
        if (strlen(fault_errors[i].name) == len && strncmp(fault_errors[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* fault_arm - parse one "NAME[:N]" item of RELAYQ_CRASH_AT, or "NAME[:N]=ERROR" of RELAYQ_FAIL_AT
 */
static void fault_arm(const char *var, const char *spec, const char *item, size_t len)
{
    int fail = strcmp(var, "RELAYQ_FAIL_AT") == 0;
    const char *equals = memchr(item, '=', len);
    size_t point_len = equals ? (size_t)(equals - item) : len;
    const char *colon = memchr(item, ':', point_len);
    size_t name_len = colon ? (size_t)(colon - item) : point_len;
    unsigned long at = 1;
    int index, error = -1;

    if ((index = fault_index(item, name_len)) < 0)
        msg_fatal("%s=%s: unknown fault point \"%.*s\"", var, spec, (int)name_len, item);
    if (fault_at[index] != 0)
        msg_fatal("%s=%s: %s is armed twice", var, spec, fault_points[index].name);
    if (fail != (equals != NULL))
        msg_fatal("%s=%s: %s", var, spec,
                  fail ? "each item needs \"=ERROR\"" : "no \"=ERROR\" here: use RELAYQ_FAIL_AT");
    if (fail) {
        if ((error = fault_error_index(equals + 1, len - point_len - 1)) < 0)
            msg_fatal("%s=%s: unknown error \"%.*s\"", var, spec, (int)(len - point_len - 1),
                      equals + 1);
        if (!fault_points[index].can_fail)
            msg_fatal("%s=%s: %s can crash but not fail", var, spec, fault_points[index].name);
    }
    if (colon) {
        char digits[21], *end;
        size_t ndigits = point_len - name_len - 1;

        if (ndigits == 0 || ndigits >= sizeof(digits) || strspn(colon + 1, "0123456789") < ndigits)
            msg_fatal("%s=%s: bad pass count after \"%.*s:\"", var, spec, (int)name_len, item);
        memcpy(digits, colon + 1, ndigits);
        digits[ndigits] = '\0';
        errno = 0;
        at = strtoul(digits, &end, 10);
        if (errno != 0 || at == 0)
            msg_fatal("%s=%s: pass count of %s must be 1 or more", var, spec,
                      fault_points[index].name);
    }
    fault_at[index] = at;
    fault_with[index] = error + 1;
}

/* fault_parse - arm the points one variable lists; whether it lists any */
static int fault_parse(const char *var)
{
    const char *spec = getenv(var);
    const char *item, *end;

    if (spec == NULL || *spec == '\0')
        return 0;
    for (item = spec; *item; item = *end ? end + 1 : end) {
        end = item + strcspn(item, ",");
        if (end == item)
            msg_fatal("%s=%s: empty item", var, spec);
        fault_arm(var, spec, item, (size_t)(end - item));
    }
    return 1;
}

/* fault_init - read the armed points and the marker from the environment */
static void fault_init(void)
{
    int crash = fault_parse("RELAYQ_CRASH_AT");
    int fail = fault_parse("RELAYQ_FAIL_AT");

    fault_ready = 1;
    if (!crash && !fail)
        return;
    fault_marker = getenv("RELAYQ_CRASH_MARKER");
    if (fault_marker == NULL || fault_marker[0] != '/')
        msg_fatal("%s is set: RELAYQ_CRASH_MARKER must name a file by its absolute path (it "
                  "keeps a restarted process from failing again)",
                  crash ? "RELAYQ_CRASH_AT" : "RELAYQ_FAIL_AT");
}

/* fault_claim - create the marker; 0 when another process (or an earlier pass) has it */
static int fault_claim(int index)
{
    char line[100];
    int fd, len;

    fd = open(fault_marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        msg_fatal("fault injection: create %s: %m", fault_marker);
    }
    len = snprintf(line, sizeof(line), "%s %ld\n", fault_points[index].name, (long)getpid());
    if (write_all(fd, line, (size_t)len) < 0)
        msg_fatal("fault injection: write %s: %m", fault_marker);
    (void)close(fd);
    return 1;
}

/* fault_pass - count a pass; die, or return the error's code, when the point fires; else 0 */
static int fault_pass(const char *name)
{
    int index = fault_index(name, strlen(name));

    if (index < 0)
        msg_panic("fault injection: \"%s\" is not in the list of fault points", name);
    if (!fault_ready)
        fault_init();
    fault_passes[index]++;
    if (fault_at[index] == 0 || fault_passes[index] < fault_at[index] || !fault_claim(index))
        return 0;
    if (fault_with[index] == 0) {
        msg_info("fault injection: crash at %s (pass %lu)", name, fault_passes[index]);
        (void)kill(getpid(), SIGKILL);
        msg_panic("fault injection: still alive after SIGKILL");
    }
    msg_info("fault injection: %s at %s (pass %lu)", fault_errors[fault_with[index] - 1].name, name,
             fault_passes[index]);
    return fault_errors[fault_with[index] - 1].code;
}

/* fault_point - count a pass of a crash point; die when it is armed and due */
void fault_point(const char *name)
{
    int index = fault_index(name, strlen(name));

    if (index >= 0 && fault_points[index].can_fail)
        msg_panic("fault injection: %s can fail: pass it with fault_error()", name);
    (void)fault_pass(name);
}

/* fault_error - count a pass of a point that can fail; the error to act on, or 0 */
int fault_error(const char *name)
{
    int index = fault_index(name, strlen(name));

    if (index >= 0 && !fault_points[index].can_fail)
        msg_panic("fault injection: %s cannot fail: pass it with fault_point()", name);
    return fault_pass(name);
}
