/*
 * hist - a histogram with fixed bucket bounds and integer counts
 *
 * hist_init()
 *	empty the histogram and give it its bucket bounds (ascending, at
 *	most HIST_BOUNDS_MAX, copied). Bounds that are not ascending, or too
 *	many, are a broken invariant: panic.
 * hist_observe()
 *	count one observation (negative values count as 0: a clock that
 *	stepped back is not a reason to lose the observation).
 * hist_cumulative()
 *	the observations at most the bound of bucket `bucket` (nbounds: all
 *	of them), as Prometheus's `_bucket{le=...}` series show them.
 * hist_encode()
 *	append the histogram as one line of text for an IPC attribute:
 *	"SUM COUNT BOUND:N BOUND:N ... +Inf:N", counts per bucket.
 * hist_decode()
 *	the reverse, strictly: the bounds come from the text (so the reader
 *	needs no table of them), ascending, every number decimal, the
 *	buckets adding up to COUNT and nothing left over. 0, or -1 with a
 *	reason (the histogram is then undefined).
 *
 * The histogram is a plain value: no allocation, nothing to free. It
 * knows nothing of what it measures; its owner chooses the unit, and the
 * one who shows it the scale (microseconds shown as seconds, say).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "msg.h"

#define HIST_VALUE_MAX (1LL << 62) /* the largest figure decoded */

/* hist_init - an empty histogram with these bounds */
void hist_init(HIST *h, const long long *bounds, int nbounds)
{
    memset(h, 0, sizeof(*h));
    if (nbounds < 0 || nbounds > HIST_BOUNDS_MAX)
        msg_panic("hist_init: %d bounds", nbounds);
    for (int i = 0; i < nbounds; i++) {
        if (i > 0 && bounds[i] <= bounds[i - 1])
            msg_panic("hist_init: bounds not ascending");
        h->bounds[i] = bounds[i];
    }
    h->nbounds = nbounds;
}

/* hist_observe - count one observation */
void hist_observe(HIST *h, long long value)
{
    int i;

    if (value < 0)
        value = 0;
    for (i = 0; i < h->nbounds && value > h->bounds[i]; i++)
        /* the first bucket whose bound holds it */;
    h->counts[i]++;
    h->sum += value;
    h->count++;
}

/* hist_cumulative - observations at most bucket's bound */
long long hist_cumulative(const HIST *h, int bucket)
{
    long long total = 0;

    for (int i = 0; i <= bucket && i <= h->nbounds; i++)
        total += h->counts[i];
    return total;
}

/* hist_encode - "SUM COUNT BOUND:N ... +Inf:N" */
void hist_encode(const HIST *h, VSTR *out)
{
    vstr_sprintf_append(out, "%lld %lld", h->sum, h->count);
    for (int i = 0; i < h->nbounds; i++)
        vstr_sprintf_append(out, " %lld:%lld", h->bounds[i], h->counts[i]);
    vstr_sprintf_append(out, " +Inf:%lld", h->counts[h->nbounds]);
}

/* hist_number - one decimal number ending at `stop`; NULL when it is not */
static const char *hist_number(const char *cp, int stop, long long *value)
{
    char *end;

    if (*cp < '0' || *cp > '9')
        return NULL;
    *value = strtoll(cp, &end, 10);
    if (*end != stop || *value > HIST_VALUE_MAX)
        return NULL;
    return end;
}

/* hist_decode - the histogram an encoded line describes; 0, or -1 with a reason */
int hist_decode(HIST *h, const char *text, VSTR *why)
{
    const char *cp = text;
    long long total = 0;

    memset(h, 0, sizeof(*h));
    if ((cp = hist_number(cp, ' ', &h->sum)) == NULL ||
        (cp = hist_number(cp + 1, ' ', &h->count)) == NULL) {
        vstr_strcpy(why, "histogram: no sum and count");
        return -1;
    }
    for (cp++;; cp++) {
        if (strncmp(cp, "+Inf:", 5) == 0) {
            if ((cp = hist_number(cp + 5, '\0', &h->counts[h->nbounds])) == NULL) {
                vstr_strcpy(why, "histogram: malformed last bucket");
                return -1;
            }
            total += h->counts[h->nbounds];
            break;
        }
        if (h->nbounds == HIST_BOUNDS_MAX ||
            (cp = hist_number(cp, ':', &h->bounds[h->nbounds])) == NULL ||
            (h->nbounds > 0 && h->bounds[h->nbounds] <= h->bounds[h->nbounds - 1]) ||
            (cp = hist_number(cp + 1, ' ', &h->counts[h->nbounds])) == NULL) {
            vstr_strcpy(why, "histogram: malformed, unordered or too many buckets");
            return -1;
        }
        total += h->counts[h->nbounds++];
    }
    if (total != h->count) {
        vstr_strcpy(why, "histogram: the buckets do not add up to the count");
        return -1;
    }
    return 0;
}
