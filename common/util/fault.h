/*
 * fault.h - crash and error points for the tests (only with --enable-fault-injection)
 *
 * FAULT_POINT("name") marks a place where a test may kill the process;
 * FAULT_ERROR("name") one where it may also make an operation fail: it
 * is 0, or the error to act on (see fault.c). Without
 * --enable-fault-injection FAULT_POINT expands to nothing and FAULT_ERROR
 * to 0, so production binaries hold neither the point names nor the code
 * that reads the environment.
 */
#ifndef RELAYQ_FAULT_H
#define RELAYQ_FAULT_H

#ifdef RELAYQ_FAULT_INJECTION
void fault_point(const char *name);
int fault_error(const char *name);
#define FAULT_POINT(name) fault_point(name)
#define FAULT_ERROR(name) fault_error(name)
#else
#define FAULT_POINT(name) ((void)0)
#define FAULT_ERROR(name) 0
#endif

#endif
