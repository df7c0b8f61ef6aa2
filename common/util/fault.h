/*
 * fault.h - crash points for the tests (only with --enable-fault-injection)
 *
 * FAULT_POINT("name") marks a place where a test may kill the process
 * (see fault.c). Without --enable-fault-injection it expands to nothing
 * that reaches the object code: production binaries hold neither the
 * point names nor the code that reads the environment.
 */
#ifndef RELAYQ_FAULT_H
#define RELAYQ_FAULT_H

#ifdef RELAYQ_FAULT_INJECTION
void fault_point(const char *name);
#define FAULT_POINT(name) fault_point(name)
#else
#define FAULT_POINT(name) ((void)0)
#endif

#endif
