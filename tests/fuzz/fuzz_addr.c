/*
 * fuzz_addr - fuzz target for the envelope address and address-list parsers
 *
 * LLVMFuzzerTestOneInput()
 *	run addr_check() on the input, as a length-bounded buffer that is not
 *	NUL-terminated (its contract), with each of the four flag
 *	combinations; run addr_domain() and addr_needs_utf8() on a terminated
 *	copy; and addr_extract_list() on the input as a header value, with
 *	addr_check() on every address it reports (as "sendmail -t" does).
 *	Invariants: the flags only widen what is accepted (ALLOW_EMPTY only
 *	for the empty address, ALLOW_UTF8 only for 8-bit addresses); an
 *	accepted address fits ADDR_MAX_PATH, has an "@" and a non-empty
 *	domain; a rejection has a reason; addr_extract_list() reports as many
 *	addresses as it returns, and none when it fails.
 *
 * fuzz-sources: common/mail/addr.c common/util/vstr.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c
 *
 * A broken invariant aborts; nothing is kept between inputs.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "addr.h"
#include "vstr.h"

/* What the address-list callback saw. */
typedef struct FUZZ_FOUND {
    int count;
    VSTR *why;
} FUZZ_FOUND;

/* fuzz_found - one address reported by addr_extract_list() */
static void fuzz_found(const char *addr, void *ctx)
{
    FUZZ_FOUND *found = ctx;
    size_t len = strlen(addr);

    found->count++;
    if (addr_check(addr, len, ADDR_ALLOW_UTF8, found->why) < 0)
        FUZZ_CHECK(vstr_len(found->why) > 0);
    else
        FUZZ_CHECK(len > 0 && *addr_domain(addr) != '\0');
}

/* LLVMFuzzerTestOneInput - one address, and the same bytes as an address list */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *addr = (const char *)data;
    VSTR *why = vstr_alloc(64);
    FUZZ_FOUND found;
    char *copy;
    int ok[4];
    int ret;

    for (int flags = 0; flags < 4; flags++) {
        vstr_reset(why);
        ok[flags] = addr_check(addr, size, flags, why) == 0;
        if (!ok[flags])
            FUZZ_CHECK(vstr_len(why) > 0);
    }
    if (size == 0) {
        FUZZ_CHECK(!ok[0] && ok[ADDR_ALLOW_EMPTY] && !ok[ADDR_ALLOW_UTF8] &&
                   ok[ADDR_ALLOW_EMPTY | ADDR_ALLOW_UTF8]);
    } else {
        FUZZ_CHECK(ok[0] == ok[ADDR_ALLOW_EMPTY]);
        FUZZ_CHECK(ok[ADDR_ALLOW_UTF8] == ok[ADDR_ALLOW_EMPTY | ADDR_ALLOW_UTF8]);
        FUZZ_CHECK(!ok[0] || ok[ADDR_ALLOW_UTF8]);
    }

    copy = malloc(size + 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    if (size > 0 && ok[ADDR_ALLOW_UTF8]) {
        const char *domain = addr_domain(copy);

        FUZZ_CHECK(size <= ADDR_MAX_PATH && strlen(copy) == size);
        FUZZ_CHECK(domain > copy && domain < copy + size && domain[-1] == '@');
        FUZZ_CHECK(strlen(domain) <= ADDR_MAX_DOMAIN);
        FUZZ_CHECK(addr_needs_utf8(copy) == !ok[0]);
    }
    free(copy);

    found.count = 0;
    found.why = vstr_alloc(64);
    vstr_reset(why);
    ret = addr_extract_list(addr, size, fuzz_found, &found, why);
    FUZZ_CHECK(ret >= -1);
    if (ret < 0)
        FUZZ_CHECK(found.count == 0 && vstr_len(why) > 0);
    else
        FUZZ_CHECK(found.count == ret);
    vstr_free(found.why);
    vstr_free(why);
    return 0;
}
