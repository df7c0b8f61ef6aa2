/*
 * conn - socket and TLS I/O of one smtpsink connection
 *
 * sink_tls_setup()
 *	load the certificate and key, build the priority cache and the
 *	session ticket key (so clients can resume sessions).
 * conn_create(), conn_destroy()
 *	a connection for an accepted non-blocking socket; a connection over
 *	--max-connections is greeted with 421 and closed.
 * conn_poll_events(), conn_tls_pending(), conn_service()
 *	what to poll for, whether GnuTLS holds buffered input, and handling
 *	of poll results: non-blocking TLS handshake, reading into the input
 *	buffer, running the SMTP engine (smtp.c), writing replies.
 * conn_timers(), conn_deadline()
 *	handshake timeout, --stall, --idle-close and closing timeouts.
 * conn_hold(), conn_backlog()
 *	--delay: take the replies that one step of the SMTP engine (the
 *	greeting, a command line, the end of a message) queued after `mark`
 *	out of the output buffer into the connection's queue of held
 *	replies, due --delay milliseconds from now; and the octets waiting,
 *	sent or held, for the engine's backlog limit.
 * conn_read_index()
 *	which read of the connection (1, 2, ...) carried a given octet of
 *	the unconsumed input; smtp.c uses it for "reads_in_transaction".
 *
 * Reads are counted exactly: every read(2) that returned data, or with
 * TLS every gnutls_record_recv() that returned decrypted data (one TLS
 * record at most, as the server code sees it; the handshake's own reads
 * are not counted), adds one to c->reads and to stats.reads. EOF, errors
 * and EAGAIN count nothing. For each read whose data is not consumed yet
 * the end offset is kept; with SINK_READ_MARKS of them the connection
 * stops reading until the SMTP engine consumes input, so the memory stays
 * bounded whatever the peer's write pattern.
 *
 * TLS faults act where a handshake would begin (after the 220 to
 * STARTTLS, or at once with --implicit-tls): --stall TLS leaves the
 * ClientHello unread for a while, --bad-reply TLS:garbage sends a line
 * of plain text instead of a ServerHello and closes.
 * conn_begin_close(), conn_abort()
 *	graceful close (flush, shut the write side, drain input so the peer
 *	sees our last reply instead of a reset) and immediate close.
 *
 * --delay never blocks: the held replies, oldest first, go into the
 * output buffer when conn_timers() finds them due, and conn_deadline()
 * gives the poll loop the earliest due time. Replies of one pipelined
 * batch are handled in one pass, so they are due together, each the delay
 * after its command was read; other connections are served meanwhile. A
 * close (QUIT, 421, EOF) waits for the held replies; STARTTLS starts its
 * handshake once its 220 has gone. A --drop-in-data drop discards the
 * replies still held: it is a sudden close.
 *
 * Failure policy: a socket or TLS error ends that connection only
 * ("close conn=N reason=error"); TLS setup problems at start-up are fatal.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtpsink.h"

#define READ_CHUNK (64 * 1024)
#define TLS_RECORD 16384
#define HANDSHAKE_MS 30000
#define CLOSE_FLUSH_MS 5000
#define DRAIN_MS 2000

static gnutls_certificate_credentials_t tls_cred;
static gnutls_priority_t tls_prio;
static gnutls_datum_t tls_ticket_key;

/* sink_tls_setup - prepare the server credentials shared by all sessions */
void sink_tls_setup(const char *cert, const char *key, const char *priority)
{
    int r;
    const char *err_pos = NULL;

    if ((r = gnutls_global_init()) < 0)
        sink_die("gnutls_global_init: %s", gnutls_strerror(r));
    if ((r = gnutls_certificate_allocate_credentials(&tls_cred)) < 0)
        sink_die("gnutls credentials: %s", gnutls_strerror(r));
    r = gnutls_certificate_set_x509_key_file(tls_cred, cert, key, GNUTLS_X509_FMT_PEM);
    if (r < 0)
        sink_die("load %s / %s: %s", cert, key, gnutls_strerror(r));
    if ((r = gnutls_priority_init(&tls_prio, priority, &err_pos)) < 0)
        sink_die("TLS priority \"%s\": %s at \"%s\"", priority, gnutls_strerror(r),
                 err_pos ? err_pos : "?");
    if ((r = gnutls_session_ticket_key_generate(&tls_ticket_key)) < 0)
        sink_die("session ticket key: %s", gnutls_strerror(r));
    sink_tls_enabled = 1;
}

/* conn_log_close - log the close event once per connection */
void conn_log_close(struct conn *c, const char *reason)
{
    if (c->close_logged)
        return;
    c->close_logged = 1;
    sink_log("close conn=%lu reason=%s messages=%lu", c->id, reason, c->msgs);
}

static void conn_fill(struct conn *c);
static void conn_after_input(struct conn *c);

/* read_prune - forget the reads whose data has been consumed */
static void read_prune(struct conn *c)
{
    unsigned long long used = c->in_total - sbuf_avail(&c->in);

    while (c->read_first < c->read_n && c->read_ends[c->read_first] <= used)
        c->read_first++;
}

/* read_note - count a read that returned n octets and remember where they end */
static void read_note(struct conn *c, size_t n)
{
    read_prune(c);
    if (c->read_n == c->read_cap) {
        if (c->read_first > 0) {
            memmove(c->read_ends, c->read_ends + c->read_first,
                    (c->read_n - c->read_first) * sizeof(*c->read_ends));
            c->read_n -= c->read_first;
            c->read_first = 0;
        } else {
            /* conn_can_read() keeps at most SINK_READ_MARKS live ones */
            c->read_cap = c->read_cap ? c->read_cap * 2 : 16;
            c->read_ends = realloc(c->read_ends, c->read_cap * sizeof(*c->read_ends));
            if (c->read_ends == NULL)
                sink_die("out of memory");
        }
    }
    c->in_total += n;
    c->read_ends[c->read_n++] = c->in_total;
    c->reads++;
    stats.reads++;
}

/* conn_read_index - the number of the read that carried input octet c->in.pos + off */
unsigned long conn_read_index(struct conn *c, size_t off)
{
    unsigned long long at = c->in_total - sbuf_avail(&c->in) + off;
    size_t i;

    read_prune(c);
    for (i = c->read_first; i < c->read_n && c->read_ends[i] <= at; i++)
        ;
    return c->reads - (unsigned long)(c->read_n - i) + 1;
}

/* conn_hold - --delay: hold the replies queued after mark until the delay has passed */
void conn_hold(struct conn *c, size_t mark)
{
    size_t n = sbuf_avail(&c->out) > mark ? sbuf_avail(&c->out) - mark : 0;
    long long due = sink_now + cfg.delay_ms;
    struct reply_wait *w = c->wait_tail;

    if (cfg.delay_ms == 0 || n == 0 || (c->state != CS_SMTP && c->state != CS_CLOSING))
        return;
    /* The same due time: one pass of the loop, a pipelined batch, one entry. */
    if (w == NULL || w->due != due) {
        w = sink_alloc(sizeof(*w));
        memset(w, 0, sizeof(*w));
        w->due = due;
        if (c->wait_tail)
            c->wait_tail->next = w;
        else
            c->wait_head = w;
        c->wait_tail = w;
    }
    sbuf_append(&w->text, c->out.data + c->out.pos + mark, n);
    c->held += n;
    c->out.len -= n;
}

/* conn_backlog - reply octets not yet sent, held ones included */
size_t conn_backlog(const struct conn *c)
{
    return sbuf_avail(&c->out) + c->held;
}

/* conn_release - move the held replies that are due into the output; 1 when any */
static int conn_release(struct conn *c)
{
    int any = 0;

    while (c->wait_head && c->wait_head->due <= sink_now) {
        struct reply_wait *w = c->wait_head;

        sbuf_append(&c->out, w->text.data, w->text.len);
        c->held -= w->text.len;
        c->wait_head = w->next;
        if (c->wait_head == NULL)
            c->wait_tail = NULL;
        sbuf_free(&w->text);
        free(w);
        any = 1;
    }
    return any;
}

/* conn_can_read - whether the connection takes more input now */
static int conn_can_read(struct conn *c)
{
    read_prune(c); /* DATA content is consumed without conn_read_index() */
    return !c->eof && !c->stall_noread && sbuf_avail(&c->in) < SINK_IN_CAP &&
           c->read_n - c->read_first < SINK_READ_MARKS;
}

/* conn_tls_fail - log a TLS failure and drop the connection */
static void conn_tls_fail(struct conn *c, const char *reason)
{
    sink_log("tls-fail conn=%lu reason=%s", c->id, reason);
    conn_abort(c, "error", 0);
}

/* conn_handshake - advance the non-blocking TLS handshake */
static void conn_handshake(struct conn *c)
{
    int r, tries = 0;

    do {
        r = gnutls_handshake(c->tls);
    } while (r < 0 && r != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(r) && ++tries < 16);
    if (r == GNUTLS_E_AGAIN || (r < 0 && !gnutls_error_is_fatal(r)))
        return; /* poll for the direction GnuTLS asks for */
    if (r < 0) {
        conn_tls_fail(c, gnutls_strerror(r));
        return;
    }
    c->tls_active = 1;
    c->state = CS_SMTP;
    stats.tls++;
    sink_log("tls conn=%lu proto=%s cipher=%s resumed=%s", c->id,
             gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)),
             gnutls_cipher_get_name(gnutls_cipher_get(c->tls)),
             gnutls_session_is_resumed(c->tls) ? "yes" : "no");
    smtp_tls_done(c);
}

/* conn_start_tls - begin a server-side TLS handshake on the socket */
static void conn_start_tls(struct conn *c)
{
    int r;

    if ((r = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK)) < 0) {
        c->tls = NULL;
        conn_tls_fail(c, gnutls_strerror(r));
        return;
    }
    if ((r = gnutls_priority_set(c->tls, tls_prio)) < 0 ||
        (r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, tls_cred)) < 0 ||
        (r = gnutls_session_ticket_enable_server(c->tls, &tls_ticket_key)) < 0) {
        conn_tls_fail(c, gnutls_strerror(r));
        return;
    }
    gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
    /* Our own deadline applies; GnuTLS's would only be checked on calls. */
    gnutls_handshake_set_timeout(c->tls, 0);
    gnutls_transport_set_int(c->tls, c->fd);
    c->state = CS_HANDSHAKE;
    c->hs_deadline = sink_now + HANDSHAKE_MS;
    conn_handshake(c);
    /* A fast client can finish the whole handshake within this first call
     * (its Finished arrives while GnuTLS reads again): the session then
     * starts here, or the greeting of an implicit-TLS port would wait for
     * input that never comes. */
    if (c->state == CS_SMTP) {
        conn_fill(c);
        if (c->state == CS_SMTP)
            conn_after_input(c);
    }
}

/* conn_tls_begin - the handshake is due: start it, or play --stall TLS or --bad-reply TLS */
static void conn_tls_begin(struct conn *c)
{
    if (sink_stall_starts(c, CMD_TLS)) {
        c->starttls_pending = 1; /* conn_flush() comes back here when the stall ends */
        return;
    }
    c->stall_done = 0;
    if (cfg.bad_reply[CMD_TLS] != BAD_NONE && sink_fault_take(&cfg.bad_limit[CMD_TLS])) {
        sink_log("fault conn=%lu cmd=TLS bad-reply=garbage", c->id);
        sbuf_append(&c->out, SINK_GARBAGE, sizeof(SINK_GARBAGE) - 1);
        conn_begin_close(c, "tls-fault");
        conn_flush(c);
        return;
    }
    conn_start_tls(c);
}

/* conn_create - set up a connection for an accepted socket */
struct conn *conn_create(int fd, const char *addr, int over_limit)
{
    struct conn *c = sink_alloc(sizeof(*c));

    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->id = ++stats.connections;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->state = CS_SMTP;
    c->last_activity = sink_now;
    sink_log("connect conn=%lu addr=%s", c->id, c->addr);
    if (over_limit) {
        /* Refuse in plaintext even on an implicit-TLS port: cheap and clear. */
        smtp_reply(c, "GREETING", "421 4.7.0 too many connections");
        conn_hold(c, 0);
        return c;
    }
    smtp_start(c);
    if (cfg.implicit_tls)
        conn_tls_begin(c);
    else
        smtp_process(c);
    return c;
}

/* conn_destroy - release everything the connection holds */
void conn_destroy(struct conn *c)
{
    if (c->tls)
        gnutls_deinit(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    sbuf_free(&c->in);
    sbuf_free(&c->out);
    free(c->read_ends);
    while (c->wait_head) {
        struct reply_wait *w = c->wait_head;

        c->wait_head = w->next;
        sbuf_free(&w->text);
        free(w);
    }
    smtp_free(c);
    free(c);
}

/* conn_abort - close the socket now; try_flush sends what is queued first (one attempt) */
void conn_abort(struct conn *c, const char *reason, int try_flush)
{
    conn_log_close(c, reason);
    if (try_flush && sbuf_avail(&c->out) > 0 && !c->tls_active)
        (void)send(c->fd, c->out.data + c->out.pos, sbuf_avail(&c->out),
                   MSG_NOSIGNAL | MSG_DONTWAIT);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = CS_DEAD;
}

/* conn_begin_close - stop reading commands; close once the replies are out */
void conn_begin_close(struct conn *c, const char *reason)
{
    if (c->state != CS_SMTP && c->state != CS_HANDSHAKE)
        return;
    conn_log_close(c, reason);
    c->state = CS_CLOSING;
    c->close_deadline = sink_now + CLOSE_FLUSH_MS + cfg.delay_ms;
    c->starttls_pending = 0;
}

/* conn_shutdown - all replies sent: shut the write side and drain the peer */
static void conn_shutdown(struct conn *c)
{
    if (c->tls_active)
        (void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
    /*
     * Closing with unread input would make the kernel send a reset that
     * can destroy our last reply in flight; drain until the peer closes.
     */
    shutdown(c->fd, SHUT_WR);
    c->state = CS_DRAIN;
    c->close_deadline = sink_now + DRAIN_MS;
}

/* conn_flush - write queued output without blocking */
void conn_flush(struct conn *c)
{
    if (c->state != CS_SMTP && c->state != CS_CLOSING)
        return;
    while (sbuf_avail(&c->out) > 0) {
        ssize_t n;

        if (c->tls_active) {
            size_t size = c->tls_send_pending;

            if (size == 0)
                size = sbuf_avail(&c->out) < TLS_RECORD ? sbuf_avail(&c->out) : TLS_RECORD;
            n = gnutls_record_send(c->tls, c->out.data + c->out.pos, size);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                /* GnuTLS keeps the record; the retry must ask for the same size. */
                c->tls_send_pending = size;
                if (n == GNUTLS_E_AGAIN)
                    return;
                continue;
            }
            if (n < 0) {
                conn_abort(c, "error", 0);
                return;
            }
            c->tls_send_pending = 0;
        } else {
            n = send(c->fd, c->out.data + c->out.pos, sbuf_avail(&c->out), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                conn_abort(c, "error", 0);
                return;
            }
        }
        sbuf_consume(&c->out, (size_t)n);
    }
    if (c->held > 0) {
        /* --delay: the close or the handshake waits for the held replies. */
    } else if (c->state == CS_CLOSING) {
        conn_shutdown(c);
    } else if (c->starttls_pending) {
        /* The 220 is on the wire; whatever comes next is the ClientHello. */
        c->starttls_pending = 0;
        conn_tls_begin(c);
    }
}

/* conn_fill - read what the socket (or TLS layer) has, up to the input cap */
static void conn_fill(struct conn *c)
{
    int tries = 0;

    while (conn_can_read(c)) {
        size_t room;
        ssize_t n;

        sbuf_reserve(&c->in, READ_CHUNK);
        room = c->in.cap - c->in.len;
        if (c->tls_active) {
            n = gnutls_record_recv(c->tls, c->in.data + c->in.len, room);
            if (n == GNUTLS_E_AGAIN)
                return;
            if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
                c->eof = 1;
                return;
            }
            if (n < 0) {
                /* Warnings, refused renegotiation and the like: keep going. */
                if (!gnutls_error_is_fatal((int)n) && ++tries < 16)
                    continue;
                conn_abort(c, "error", 0);
                return;
            }
        } else {
            n = read(c->fd, c->in.data + c->in.len, room);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                conn_abort(c, "error", 0);
                return;
            }
            if (n == 0) {
                c->eof = 1;
                return;
            }
        }
        c->in.len += (size_t)n;
        read_note(c, (size_t)n);
        c->last_activity = sink_now;
        /* A short read drained the socket; GnuTLS leftovers are polled separately. */
        if ((size_t)n < room)
            return;
    }
}

/* conn_drain - discard input after our side has finished */
static void conn_drain(struct conn *c)
{
    char scratch[16384];
    ssize_t n;

    for (;;) {
        n = read(c->fd, scratch, sizeof(scratch));
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break; /* EOF or error: the peer is gone */
    }
    conn_abort(c, "eof", 0);
}

/* conn_poll_events - the poll(2) events this connection waits for */
short conn_poll_events(struct conn *c)
{
    short ev = 0;

    switch (c->state) {
    case CS_HANDSHAKE:
        return gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN;
    case CS_SMTP:
        if (!c->starttls_pending && conn_can_read(c))
            ev |= POLLIN;
        if (sbuf_avail(&c->out) > 0)
            ev |= POLLOUT;
        return ev;
    case CS_CLOSING:
        return sbuf_avail(&c->out) > 0 ? POLLOUT : 0; /* else --delay holds the rest */
    case CS_DRAIN:
        return POLLIN;
    case CS_DEAD:
        break;
    }
    return 0;
}

/* conn_tls_pending - whether GnuTLS holds decrypted input poll cannot see */
int conn_tls_pending(struct conn *c)
{
    return c->state == CS_SMTP && c->tls_active && conn_can_read(c) &&
           gnutls_record_check_pending(c->tls) > 0;
}

/* conn_after_input - run the SMTP engine and handle end of input */
static void conn_after_input(struct conn *c)
{
    for (;;) {
        int backed_up;

        smtp_process(c);
        /* smtp_process stops, input left, while the output is backed up. */
        backed_up = c->state == CS_SMTP && conn_backlog(c) > SINK_OUT_HIGH;
        if (!backed_up && c->state == CS_SMTP && c->eof) {
            /* A stalled peer that hung up gets no more answers. */
            if (c->stall_until)
                conn_abort(c, "eof", 0);
            else
                conn_begin_close(c, "eof");
        }
        conn_flush(c);
        /*
         * A flush that drained the output is no poll event: the commands
         * already buffered (a client that pipelined thousands of them and
         * now waits for the replies) must be handled here, or never.
         */
        if (!backed_up || c->state != CS_SMTP || conn_backlog(c) > SINK_OUT_HIGH)
            return;
    }
}

/* conn_service - handle poll results for one connection */
void conn_service(struct conn *c, short revents)
{
    switch (c->state) {
    case CS_DRAIN:
        if (revents)
            conn_drain(c);
        return;
    case CS_HANDSHAKE:
        if (!revents)
            return;
        conn_handshake(c);
        if (c->state != CS_SMTP)
            return;
        /* Client data may have arrived with its Finished message. */
        conn_fill(c);
        if (c->state == CS_SMTP)
            conn_after_input(c);
        return;
    case CS_CLOSING:
        if (revents)
            conn_flush(c);
        return;
    case CS_SMTP:
        break;
    case CS_DEAD:
        return;
    }
    if (revents & POLLOUT) {
        conn_flush(c);
        if (c->state != CS_SMTP)
            return;
    }
    /* While STARTTLS is pending, the socket belongs to the coming handshake. */
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->starttls_pending && !c->stall_noread) {
        conn_fill(c);
        if (c->state != CS_SMTP)
            return;
    }
    conn_after_input(c);
}

/* conn_timers - fire the connection's expired timers */
void conn_timers(struct conn *c)
{
    switch (c->state) {
    case CS_HANDSHAKE:
        if (sink_now >= c->hs_deadline)
            conn_tls_fail(c, "handshake timeout");
        return;
    case CS_CLOSING:
    case CS_DRAIN:
        conn_release(c); /* the main loop flushes a closing connection next */
        if (sink_now >= c->close_deadline)
            conn_abort(c, "error", 0);
        return;
    case CS_DEAD:
        return;
    case CS_SMTP:
        break;
    }
    /* Replies that went out may let the engine take the input it left. */
    if (conn_release(c)) {
        conn_after_input(c);
        if (c->state != CS_SMTP)
            return;
    }
    if (c->stall_until && sink_now >= c->stall_until) {
        c->stall_until = 0;
        c->stall_noread = 0;
        c->stall_done = 1;
        c->last_activity = sink_now;
        conn_after_input(c);
        return;
    }
    if (cfg.idle_ms > 0 && !c->stall_until && !c->starttls_pending && c->held == 0 &&
        sink_now - c->last_activity >= cfg.idle_ms) {
        /* Not smtp_reply: this is no answer to a command, and no "reject". */
        sbuf_append(&c->out, "421 4.4.2 idle timeout\r\n", 24);
        conn_begin_close(c, "idle");
        conn_flush(c);
    }
}

/* conn_deadline - the earliest timer of the connection, 0 when none */
long long conn_deadline(struct conn *c)
{
    long long d = 0;

    switch (c->state) {
    case CS_HANDSHAKE:
        return c->hs_deadline;
    case CS_CLOSING:
        return c->wait_head && c->wait_head->due < c->close_deadline ? c->wait_head->due
                                                                     : c->close_deadline;
    case CS_DRAIN:
        return c->close_deadline;
    case CS_DEAD:
        return 0;
    case CS_SMTP:
        break;
    }
    if (c->stall_until)
        d = c->stall_until;
    else if (cfg.idle_ms > 0 && !c->starttls_pending && c->held == 0)
        d = c->last_activity + cfg.idle_ms;
    if (c->wait_head && (d == 0 || c->wait_head->due < d))
        d = c->wait_head->due;
    return d;
}
