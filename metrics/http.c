/*
 * http - the metrics endpoint: libmicrohttpd driven by the daemon's own event loop
 *
 * http_create()
 *	serve HTTP on a listening socket (master bound it: metrics_listen):
 *	GET or HEAD of /metrics gets the page callback's text, in the
 *	OpenMetrics format when the request's Accept names
 *	application/openmetrics-text, else in the Prometheus text format;
 *	any other path is 404, any other method 405. Fatal when
 *	libmicrohttpd cannot start.
 * http_free()
 *	stop serving: open connections are closed, the socket too.
 *
 * Why libmicrohttpd's epoll mode driven from event.c rather than its
 * internal polling thread: the page callback counts the queue and asks
 * qmgr, with the daemon's logging and allocation, which are not made
 * for threads. One thread does everything, in turn: a scrape waits at
 * most for the one before it, and qmgr never waits for a scraper (the
 * request to qmgr is one record each way, with a timeout; qmgr answers
 * it from memory). libmicrohttpd gives one descriptor (its epoll set)
 * to watch and says when it next needs a call for its timeouts.
 *
 * Bounds (the clients are untrusted): at most HTTP_CONNECTIONS_MAX
 * connections, HTTP_PER_IP_MAX from one address, HTTP_TIMEOUT_S of
 * silence before one is closed, HTTP_MEMORY_MAX bytes of request per
 * connection; a request with a body is refused (413).
 *
 * libmicrohttpd's own messages go to the log as warnings.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include <microhttpd.h>

#include "event.h"
#include "metrics.h"
#include "msg.h"
#include "mymalloc.h"

#define HTTP_CONNECTIONS_MAX 16     /* connections at once */
#define HTTP_PER_IP_MAX 4           /* from one client address */
#define HTTP_TIMEOUT_S 10           /* an idle connection is closed after this */
#define HTTP_MEMORY_MAX (32 * 1024) /* bytes of one connection's request */
#define HTTP_TIMER_MAX_MS 1000      /* the longest wait between two runs */
#define HTTP_PATH "/metrics"
#define HTTP_OPENMETRICS "application/openmetrics-text"

struct HTTP {
    struct MHD_Daemon *mhd;
    int epoll_fd; /* libmicrohttpd's epoll set, watched by event.c */
    HTTP_PAGE_FN page;
    void *ctx;
};

static void http_run(HTTP *http);

/* http_log - libmicrohttpd's messages, as warnings */
static void http_log(void *ctx, const char *fmt, va_list ap)
{
    VSTR *text = vstr_alloc(100);

    (void)ctx;
    vstr_vsprintf_append(text, fmt, ap);
    while (vstr_len(text) > 0 && vstr_str(text)[vstr_len(text) - 1] == '\n')
        vstr_truncate(text, vstr_len(text) - 1);
    msg_warn("http: %s", vstr_str(text));
    vstr_free(text);
}

/* http_reply - queue a response of a status and a text */
static enum MHD_Result http_reply(struct MHD_Connection *conn, unsigned status, const char *type,
                                  const char *text, size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_NO ||
        (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_NO)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* http_error - a short plain-text error page */
static enum MHD_Result http_error(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return http_reply(conn, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* http_request - libmicrohttpd's access handler: one request's answer */
static enum MHD_Result http_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    HTTP *http = cls;
    const char *accept;
    enum MHD_Result ret;
    int openmetrics;
    VSTR *body;

    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return http_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (*upload_data_size != 0)
        return http_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "no request body expected\n");
    if (strcmp(url, HTTP_PATH) != 0)
        return http_error(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
    accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    openmetrics = accept != NULL && strstr(accept, HTTP_OPENMETRICS) != NULL;
    body = vstr_alloc(8192);
    http->page(http->ctx, openmetrics, body);
    ret = http_reply(conn, MHD_HTTP_OK, openmetrics ? EXPOSE_OPENMETRICS_TYPE : EXPOSE_TEXT_TYPE,
                     vstr_str(body), vstr_len(body));
    vstr_free(body);
    return ret;
}

/* http_timer - libmicrohttpd's timeouts are due */
static void http_timer(void *ctx)
{
    http_run(ctx);
}

/* http_ready - the epoll set has events */
static void http_ready(int fd, int events, void *ctx)
{
    (void)fd;
    (void)events;
    http_run(ctx);
}

/* http_run - let libmicrohttpd work, then wait until it next needs to */
static void http_run(HTTP *http)
{
    MHD_UNSIGNED_LONG_LONG wait_ms = HTTP_TIMER_MAX_MS;

    if (MHD_run(http->mhd) == MHD_NO)
        msg_warn("http: libmicrohttpd could not run");
    if (MHD_get_timeout(http->mhd, &wait_ms) == MHD_NO || wait_ms > HTTP_TIMER_MAX_MS)
        wait_ms = HTTP_TIMER_MAX_MS;
    event_request_timer(http_timer, http, (long long)wait_ms);
}

/* http_create - serve the endpoint on a listening socket */
HTTP *http_create(int listen_fd, HTTP_PAGE_FN page, void *ctx)
{
    HTTP *http = mycalloc(1, sizeof(*http));
    const union MHD_DaemonInfo *info;

    http->page = page;
    http->ctx = ctx;
    http->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, http_request,
                                 http, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS_MAX,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP_MAX,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_MAX,
                                 MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL, MHD_OPTION_END);
    if (http->mhd == NULL)
        msg_fatal("cannot start the HTTP server (libmicrohttpd) on the metrics_listen socket");
    if ((info = MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL)
        msg_fatal("libmicrohttpd gives no epoll descriptor");
    http->epoll_fd = info->epoll_fd;
    event_enable_read(http->epoll_fd, http_ready, http);
    http_run(http);
    return http;
}

/* http_free - stop serving */
void http_free(HTTP *http)
{
    event_disable_readwrite(http->epoll_fd);
    event_cancel_timer(http_timer, http);
    MHD_stop_daemon(http->mhd);
    myfree(http);
}
