/*
 * metrics.h - the metrics daemon's private structures and functions
 */
#ifndef RELAYQ_METRICS_H
#define RELAYQ_METRICS_H

#include "qcount.h"
#include "qstats.h"
#include "qstore.h"
#include "vstr.h"

/* The two formats a scrape may ask for, and their media types. */
#define EXPOSE_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define EXPOSE_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* expose.c: the figures, as exposition text. */
void expose_write(VSTR *out, const QCOUNT *count, const QSTATS *stats, int openmetrics);

/*
 * http.c: the HTTP endpoint. The page callback writes the body of a
 * scrape of /metrics (openmetrics: the client asked for that format).
 */
typedef struct HTTP HTTP;
typedef void (*HTTP_PAGE_FN)(void *ctx, int openmetrics, VSTR *body);

HTTP *http_create(int listen_fd, HTTP_PAGE_FN page, void *ctx);
void http_free(HTTP *http);

/*
 * The daemon: the queue it counts, the qmgr it asks, the endpoint it
 * serves. One per process, passed to every callback.
 */
typedef struct METRICS {
    QSTORE *store;      /* the queue, read-only */
    char *control_path; /* qmgr's public/control */
    char *master_path;  /* master's public/master: restarts per daemon */
    HTTP *http;         /* the endpoint, NULL once stopped */
    int qmgr_down;      /* the last scrape found qmgr silent (logged once) */
    int master_down;    /* the last scrape found master silent (logged once) */
    int queue_failed;   /* the last scrape could not count the queue (logged once) */
} METRICS;

#endif
