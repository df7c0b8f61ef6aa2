/*
 * fuzz_ipc - fuzz target for the IPC record decoder and channel
 *
 * LLVMFuzzerTestOneInput()
 *	three views of the same bytes. (1) The whole input as one record
 *	for ipc_rec_decode(): an accepted record has "type" first and
 *	survives ipc_rec_encode() and ipc_rec_decode() unchanged; the strict
 *	rules of ipc_rec_check() are applied with the specs of qmgr's deliver
 *	and result records, and a record that passes has each required
 *	attribute. (2) The input written to one end of a socketpair in
 *	pieces of varying size and read with ipc_chan_fill() and
 *	ipc_chan_next() at the other end, as a daemon reads a peer. (3) The
 *	input cut at its empty lines by hand and each block given to
 *	ipc_rec_decode(). Views (2) and (3) must agree record for record, and
 *	on where the stream turns malformed.
 *
 * fuzz-sources: common/util/ipc.c common/util/sock.c common/util/iostuff.c
 * fuzz-sources: common/util/vstr.c common/util/mymalloc.c common/util/msg.c
 *
 * A broken invariant aborts; a socketpair that cannot be made is an
 * environment problem and exits. Nothing is kept between inputs.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "ipc.h"
#include "vstr.h"

#define FUZZ_RECORDS_MAX 4096 /* records compared between the two stream views */

/* The strict specs that the deliver and result records are read with. */
static const struct {
    const char *required;
    const char *optional;
} fuzz_specs[] = {
    {"id,queue_id,relay,port,sender,size,arrival_ms,active_ms", "rcpt*"},
    {"id,queue_id,relay,conn", "rcpt*"},
    {"event,dest", "reason,messages,resumed"},
};

/* fuzz_same_rec - two records with the same attributes in the same order */
static int fuzz_same_rec(const IPC_REC *a, const IPC_REC *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->attrs[i].name, b->attrs[i].name) != 0 ||
            strcmp(a->attrs[i].value, b->attrs[i].value) != 0)
            return 0;
    return 1;
}

/* fuzz_one_record - the whole input as the lines of one record */
static void fuzz_one_record(const char *data, size_t size)
{
    VSTR *why = vstr_alloc(64);
    VSTR *wire;
    IPC_REC *rec, *again;
    long long num;

    if (ipc_rec_decode(data, size, &rec, why) < 0) {
        FUZZ_CHECK(vstr_len(why) > 0);
        vstr_free(why);
        return;
    }
    FUZZ_CHECK(rec->count >= 1 && strcmp(rec->attrs[0].name, "type") == 0);
    FUZZ_CHECK(ipc_rec_type(rec) == rec->attrs[0].value);
    wire = vstr_alloc(size + 16);
    ipc_rec_encode(rec, wire);
    FUZZ_CHECK(vstr_len(wire) >= 2 && vstr_str(wire)[vstr_len(wire) - 1] == '\n' &&
               vstr_str(wire)[vstr_len(wire) - 2] == '\n');
    FUZZ_CHECK(ipc_rec_decode(vstr_str(wire), vstr_len(wire) - 1, &again, why) == 0);
    FUZZ_CHECK(fuzz_same_rec(rec, again));
    ipc_rec_free(again);
    vstr_free(wire);

    for (size_t i = 0; i < sizeof(fuzz_specs) / sizeof(fuzz_specs[0]); i++) {
        vstr_reset(why);
        if (ipc_rec_check(rec, fuzz_specs[i].required, fuzz_specs[i].optional, why) < 0) {
            FUZZ_CHECK(vstr_len(why) > 0);
            continue;
        }
        for (const char *cp = fuzz_specs[i].required; *cp;) {
            size_t word = strcspn(cp, ",");
            char name[64];

            snprintf(name, sizeof(name), "%.*s", (int)word, cp);
            FUZZ_CHECK(ipc_rec_get(rec, name) != NULL);
            cp += word + (cp[word] == ',');
        }
    }
    if (ipc_rec_get_long(rec, "id", 0, 1LL << 53, &num, why) == 0)
        FUZZ_CHECK(num >= 0 && num <= 1LL << 53);
    ipc_rec_free(rec);
    vstr_free(why);
}

/* fuzz_split_records - view (3): decode each block that ends at an empty line */
static size_t fuzz_split_records(const char *data, size_t size, IPC_REC **recs, int *bad)
{
    size_t count = 0;
    size_t start = 0;
    VSTR *why = vstr_alloc(64);

    *bad = 0;
    for (size_t i = 0; i < size && count < FUZZ_RECORDS_MAX; i++) {
        if (data[i] != '\n' || (i != start && data[i - 1] != '\n'))
            continue;
        if (ipc_rec_decode(data + start, i - start, &recs[count], why) < 0) {
            *bad = 1;
            break;
        }
        count++;
        start = i + 1;
    }
    vstr_free(why);
    return count;
}

/* fuzz_channel - view (2): the input through a socketpair and an IPC_CHAN */
static size_t fuzz_channel(const char *data, size_t size, IPC_REC **recs, int *bad)
{
    VSTR *why = vstr_alloc(64);
    IPC_CHAN *chan;
    IPC_REC *rec;
    size_t count = 0;
    size_t sent = 0;
    unsigned piece = (unsigned)size * 2654435761u; /* varied, yet the same for an input */
    int sv[2];
    int ret;
    int eof = 0;
    int open_end = 1; /* sv[1] still open */

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("fuzz_ipc: socketpair");
        exit(1);
    }
    chan = ipc_chan_create(sv[0]);
    *bad = 0;
    if (size == 0) {
        close(sv[1]);
        open_end = 0;
    }
    while (!eof && !*bad && count < FUZZ_RECORDS_MAX) {
        if (sent < size) {
            size_t n = 1 + (piece >> 16) % 600;

            piece = piece * 1103515245u + 12345u;
            if (n > size - sent)
                n = size - sent;
            /* The peer's buffer holds far more than one piece: this never blocks. */
            FUZZ_CHECK(write(sv[1], data + sent, n) == (ssize_t)n);
            sent += n;
            if (sent == size) {
                close(sv[1]);
                open_end = 0;
            }
        }
        ret = ipc_chan_fill(chan);
        FUZZ_CHECK(ret >= 0);
        eof = ret == 0;
        while (count < FUZZ_RECORDS_MAX && (ret = ipc_chan_next(chan, &rec, why)) != 0) {
            if (ret < 0) {
                FUZZ_CHECK(vstr_len(why) > 0);
                *bad = 1;
                break;
            }
            recs[count++] = rec;
        }
    }
    if (open_end)
        close(sv[1]);
    ipc_chan_free(chan);
    vstr_free(why);
    return count;
}

/* LLVMFuzzerTestOneInput - the input as one record and as a stream of records */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static IPC_REC *split[FUZZ_RECORDS_MAX], *chan[FUZZ_RECORDS_MAX];
    size_t nsplit, nchan;
    int bad_split, bad_chan;

    fuzz_one_record((const char *)data, size);

    nsplit = fuzz_split_records((const char *)data, size, split, &bad_split);
    nchan = fuzz_channel((const char *)data, size, chan, &bad_chan);
    FUZZ_CHECK(nsplit == nchan);
    if (nsplit < FUZZ_RECORDS_MAX)
        FUZZ_CHECK(bad_split == bad_chan);
    for (size_t i = 0; i < nsplit; i++) {
        FUZZ_CHECK(fuzz_same_rec(split[i], chan[i]));
        ipc_rec_free(split[i]);
        ipc_rec_free(chan[i]);
    }
    return 0;
}
