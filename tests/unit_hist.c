/*
 * unit_hist - the histogram object: buckets, encoding, strict decoding
 *
 * A table of observations over bounds 10, 100, 1000, each with the
 * bucket it must land in; then an encode/decode round trip, and a table
 * of malformed lines the decoder must refuse.
 */
#include "config.h"

#include <string.h>

#include "hist.h"
#include "tap.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const long long bounds[] = {10, 100, 1000};

/* One observation and the bucket it belongs to. */
struct observe_case {
    long long value;
    int bucket;
    const char *why;
};

static const struct observe_case observations[] = {
    {0, 0, "zero: the first bucket"}, {10, 0, "on a bound: that bound's bucket (le)"},
    {11, 1, "just above: the next"},  {100, 1, "the second bound"},
    {999, 2, "below the last bound"}, {1001, 3, "above every bound: +Inf"},
    {-5, 0, "negative counts as 0"},
};

/* A line the decoder must refuse. */
struct bad_case {
    const char *text;
    const char *why;
};

static const struct bad_case bad[] = {
    {"", "empty"},
    {"5", "no count"},
    {"5 1", "no buckets"},
    {"5 1 10:1", "no +Inf bucket"},
    {"5 2 10:1 +Inf:0", "buckets do not add up"},
    {"5 1 100:1 10:0 +Inf:0", "bounds not ascending"},
    {"5 1 10:1 +Inf:0 x", "trailing text"},
    {"5 1 10:-1 +Inf:2", "negative count"},
    {"5 1 10:1  +Inf:0", "two spaces"},
    {"5 1 a:1 +Inf:0", "bound not a number"},
    {"5 1 1:0 2:0 3:0 4:0 5:0 6:0 7:0 8:0 9:0 10:0 11:0 12:0 13:0 14:0 15:0 16:0 17:1 +Inf:0",
     "too many bounds"},
};

int main(void)
{
    HIST h, back;
    VSTR *text = vstr_alloc(100), *why = vstr_alloc(100);
    long long sum = 0;

    tap_plan((int)NELEM(observations) + (int)NELEM(bad) + 7);
    for (size_t i = 0; i < NELEM(observations); i++) {
        long long before;

        hist_init(&h, bounds, (int)NELEM(bounds));
        before = h.counts[observations[i].bucket];
        hist_observe(&h, observations[i].value);
        tap_ok(h.counts[observations[i].bucket] == before + 1 && h.count == 1, "%s (%lld)",
               observations[i].why, observations[i].value);
    }
    hist_init(&h, bounds, (int)NELEM(bounds));
    for (size_t i = 0; i < NELEM(observations); i++) {
        hist_observe(&h, observations[i].value);
        sum += observations[i].value < 0 ? 0 : observations[i].value;
    }
    tap_ok(h.count == (long long)NELEM(observations) && h.sum == sum, "count %lld and sum %lld",
           h.count, h.sum);
    tap_ok(hist_cumulative(&h, 0) == 3 && hist_cumulative(&h, 1) == 5 &&
               hist_cumulative(&h, 2) == 6 && hist_cumulative(&h, 3) == 7,
           "cumulative counts 3 5 6 7 (le 10, 100, 1000, +Inf)");
    hist_encode(&h, text);
    tap_ok(strcmp(vstr_str(text), "2121 7 10:3 100:2 1000:1 +Inf:1") == 0, "encoded: %s",
           vstr_str(text));
    tap_ok(hist_decode(&back, vstr_str(text), why) == 0 && memcmp(&back, &h, sizeof(h)) == 0,
           "decoded: the same histogram");
    hist_init(&h, NULL, 0);
    hist_observe(&h, 42);
    vstr_reset(text);
    hist_encode(&h, text);
    tap_ok(strcmp(vstr_str(text), "42 1 +Inf:1") == 0, "no bounds: one bucket (%s)",
           vstr_str(text));
    tap_ok(hist_decode(&back, vstr_str(text), why) == 0 && back.nbounds == 0 && back.counts[0] == 1,
           "which decodes");
    hist_init(&h, bounds, (int)NELEM(bounds));
    vstr_reset(text);
    hist_encode(&h, text);
    tap_ok(hist_decode(&back, vstr_str(text), why) == 0 && back.count == 0 && back.nbounds == 3,
           "an empty histogram keeps its bounds (%s)", vstr_str(text));
    for (size_t i = 0; i < NELEM(bad); i++) {
        vstr_reset(why);
        tap_ok(hist_decode(&back, bad[i].text, why) < 0 && vstr_len(why) > 0, "refused: %s (%s)",
               bad[i].why, vstr_str(why));
    }
    vstr_free(text);
    vstr_free(why);
    return tap_done();
}
