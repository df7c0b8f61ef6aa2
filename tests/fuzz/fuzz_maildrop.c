/*
 * fuzz_maildrop - fuzz target for the maildrop file parser
 *
 * LLVMFuzzerTestOneInput()
 *	maildrop_parse() the input as pickup does with a file it read. An
 *	accepted envelope must be what pickup relies on: the content starts
 *	right after an empty line within the input, 1..MAILDROP_RCPT_MAX
 *	recipients that addr_check() accepts, a sender that it accepts or
 *	"", no NULL field; and it must survive a round trip through
 *	maildrop_encode_envelope() and maildrop_parse() unchanged, as if the
 *	sendmail command had written it. A rejection must have a reason.
 *
 * fuzz-sources: common/mail/maildrop.c common/mail/addr.c common/util/ipc.c
 * fuzz-sources: common/util/sock.c common/util/iostuff.c common/util/vstr.c common/util/htable.c
 * fuzz-sources: common/util/mymalloc.c common/util/msg.c common/mail/smtpd_proto.c
 * fuzz-libs: -lsodium
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
#include "maildrop.h"
#include "vstr.h"

/* fuzz_same_env - two envelopes with equal fields */
static int fuzz_same_env(const MAILDROP_ENV *a, const MAILDROP_ENV *b)
{
    if (a->uid != b->uid || a->posted != b->posted || a->nrcpt != b->nrcpt ||
        a->own_sender != b->own_sender || strcmp(a->sender, b->sender) != 0 ||
        strcmp(a->fullname, b->fullname) != 0 || strcmp(a->notify, b->notify) != 0 ||
        strcmp(a->ret, b->ret) != 0 || strcmp(a->envid, b->envid) != 0)
        return 0;
    for (size_t i = 0; i < a->nrcpt; i++)
        if (strcmp(a->rcpts[i], b->rcpts[i]) != 0)
            return 0;
    return 1;
}

/* LLVMFuzzerTestOneInput - one maildrop file */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    VSTR *why = vstr_alloc(64);
    MAILDROP_ENV env, again;
    size_t offset = 0;

    if (maildrop_parse((const char *)data, size, "origin.example", &env, &offset, why) < 0) {
        FUZZ_CHECK(vstr_len(why) > 0);
    } else {
        VSTR *wire = vstr_alloc(256);
        size_t offset2 = 0;

        FUZZ_CHECK(offset >= 2 && offset <= size && data[offset - 1] == '\n' &&
                   data[offset - 2] == '\n');
        FUZZ_CHECK(env.sender && env.fullname && env.notify && env.ret && env.envid);
        FUZZ_CHECK(env.nrcpt >= 1 && env.nrcpt <= MAILDROP_RCPT_MAX && env.rcpts != NULL);
        FUZZ_CHECK(env.uid >= 0 && env.posted >= 0);
        FUZZ_CHECK(addr_check(env.sender, strlen(env.sender), ADDR_ALLOW_EMPTY | ADDR_ALLOW_UTF8,
                              why) == 0);
        for (size_t i = 0; i < env.nrcpt; i++)
            FUZZ_CHECK(env.rcpts[i] != NULL &&
                       addr_check(env.rcpts[i], strlen(env.rcpts[i]), ADDR_ALLOW_UTF8, why) == 0);

        /* What sendmail would write for this envelope reads back the same. */
        maildrop_encode_envelope(&env, wire);
        vstr_strcat(wire, "Subject: x\n\nbody\n");
        FUZZ_CHECK(maildrop_parse(vstr_str(wire), vstr_len(wire), "origin.example", &again,
                                  &offset2, why) == 0);
        FUZZ_CHECK(fuzz_same_env(&env, &again));
        FUZZ_CHECK(strcmp(vstr_str(wire) + offset2, "Subject: x\n\nbody\n") == 0);
        maildrop_env_free(&again);
        maildrop_env_free(&env);
        vstr_free(wire);
    }
    vstr_free(why);
    return 0;
}
