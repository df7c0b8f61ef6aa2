/*
 * fuzz.h - what every libFuzzer target of tests/fuzz shares: the entry
 * point's prototype and FUZZ_CHECK, which aborts (a crash the fuzzer
 * records) when an invariant of the code under test does not hold.
 */
#ifndef RELAYQ_FUZZ_H
#define RELAYQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
