/*
 * unit_ipc - tests of the IPC record encoding and its strict decoder
 *
 * Round trips of values that need escaping, a table of malformed wire
 * inputs that must be rejected with a reason, the presence and
 * repetition rules of ipc_rec_check, and a channel over a socketpair fed
 * one byte at a time.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "tap.h"

/* Wire inputs the decoder must refuse. */
static const struct {
    const char *wire;
    const char *what;
} bad_records[] = {
    {"noequals\n", "a line without ="},
    {"=value\n", "an empty name"},
    {"Type=x\n", "an upper-case name"},
    {"type=a%zz\n", "a bad escape"},
    {"type=a%00\n", "an escaped NUL"},
    {"type=a%4\n", "a truncated escape"},
    {"name=x\n", "a record whose first attribute is not type"},
    {"", "an empty record"},
};

/* Check cases for ipc_rec_check. */
static const struct {
    const char *wire;
    const char *required;
    const char *optional;
    int ok;
    const char *what;
} check_cases[] = {
    {"type=r\nid=1\nqueue_id=Q\n", "id,queue_id", "", 1, "all required present"},
    {"type=r\nid=1\n", "id,queue_id", "", 0, "a required attribute missing"},
    {"type=r\nid=1\nid=2\nqueue_id=Q\n", "id,queue_id", "", 0, "a required attribute repeated"},
    {"type=r\nid=1\nqueue_id=Q\nextra=1\n", "id,queue_id", "", 0, "an unknown attribute"},
    {"type=r\nid=1\nrcpt=a\nrcpt=b\n", "id", "rcpt*", 1, "a repeatable optional attribute"},
    {"type=r\nid=1\nnote=a\nnote=b\n", "id", "note", 0, "a non-repeatable optional repeated"},
    {"type=r\n", "", "queue_id*,domain*", 1, "nothing required, nothing given"},
};

int main(void)
{
    VSTR *wire = vstr_alloc(100), *why = vstr_alloc(100);
    IPC_REC *rec, *back;
    int fds[2];
    long long number;

    /* Round trip with every character that needs escaping. */
    rec = ipc_rec_create("deliver");
    ipc_rec_add(rec, "text", "100% sure\r\nsecond line\n");
    ipc_rec_add_long(rec, "count", -42);
    ipc_rec_add(rec, "empty", "");
    ipc_rec_encode(rec, wire);
    tap_ok(strchr(vstr_str(wire), '\r') == NULL, "CR never appears raw on the wire");
    tap_ok(ipc_rec_decode(vstr_str(wire), vstr_len(wire) - 1, &back, why) == 0,
           "the encoded record decodes");
    tap_ok(strcmp(ipc_rec_type(back), "deliver") == 0 &&
               strcmp(ipc_rec_get(back, "text"), "100% sure\r\nsecond line\n") == 0 &&
               strcmp(ipc_rec_get(back, "empty"), "") == 0,
           "values survive the round trip unchanged");
    tap_ok(ipc_rec_get_long(back, "count", -100, 100, &number, why) == 0 && number == -42,
           "a number reads back");
    tap_ok(ipc_rec_get_long(back, "count", 0, 100, &number, why) < 0 &&
               strstr(vstr_str(why), "bad count") != NULL,
           "a number out of bounds is refused: %s", vstr_str(why));
    tap_ok(ipc_rec_get_long(back, "text", 0, 100, &number, why) < 0,
           "text where a number belongs is refused");
    ipc_rec_free(back);

    for (size_t i = 0; i < sizeof(bad_records) / sizeof(bad_records[0]); i++) {
        int ret = ipc_rec_decode(bad_records[i].wire, strlen(bad_records[i].wire), &back, why);

        tap_ok(ret < 0 && vstr_len(why) > 0, "refused: %s (%s)", bad_records[i].what,
               vstr_str(why));
        if (ret == 0)
            ipc_rec_free(back);
    }
    for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        int ok = 0;

        if (ipc_rec_decode(check_cases[i].wire, strlen(check_cases[i].wire), &back, why) == 0) {
            ok = ipc_rec_check(back, check_cases[i].required, check_cases[i].optional, why) == 0;
            ipc_rec_free(back);
        }
        tap_ok(ok == check_cases[i].ok, "check: %s", check_cases[i].what);
    }

    /* A channel fed one byte at a time yields exactly one record. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return 1;
    {
        IPC_CHAN *reader = ipc_chan_create(fds[0]);
        int complete = 0, early = 0;

        for (size_t i = 0; i < vstr_len(wire); i++) {
            if (write(fds[1], vstr_str(wire) + i, 1) != 1)
                break;
            ipc_chan_fill(reader);
            if (ipc_chan_next(reader, &back, why) > 0) {
                if (i + 1 < vstr_len(wire))
                    early = 1;
                complete++;
                ipc_rec_free(back);
            }
        }
        tap_ok(complete == 1 && !early,
               "a record split into single bytes is decoded once, at its end");
        close(fds[1]);
        tap_ok(ipc_chan_fill(reader) == 0, "end of file is reported as 0");
        ipc_chan_free(reader);
    }
    ipc_rec_free(rec);
    vstr_free(wire);
    vstr_free(why);
    return tap_done();
}
