/*
 * hist.h - a histogram with fixed bucket bounds and integer counts
 */
#ifndef RELAYQ_HIST_H
#define RELAYQ_HIST_H

#include "vstr.h"

#define HIST_BOUNDS_MAX 16 /* finite bucket bounds; one more bucket holds the rest */

/*
 * Observations of one quantity, in integer units the owner chooses
 * (microseconds, messages): per bucket the observations at most its
 * bound and above the one before (the last bucket: above every bound),
 * their sum and their number.
 */
typedef struct HIST {
    long long bounds[HIST_BOUNDS_MAX]; /* ascending upper bounds */
    int nbounds;
    long long counts[HIST_BOUNDS_MAX + 1]; /* per bucket, not cumulative */
    long long sum;
    long long count;
} HIST;

void hist_init(HIST *h, const long long *bounds, int nbounds);
void hist_observe(HIST *h, long long value);
long long hist_cumulative(const HIST *h, int bucket);
void hist_encode(const HIST *h, VSTR *out);
int hist_decode(HIST *h, const char *text, VSTR *why);

#endif
