/*
 * chat - the session's conversation with the relay: bytes out, replies in
 *
 * chat_out_reset()
 *	forget the unwritten output; output that carried a secret (AUTH) is
 *	wiped from the buffer first.
 * chat_flush()
 *	write what the transport takes and watch the descriptor for room
 *	when it takes less. In SESS_BODY a write that made progress restarts
 *	the body's timer, and the last byte of the body moves the session on
 *	to SESS_DOT.
 * chat_send()
 *	queue one command line (CRLF added) and start writing it.
 * chat_read_again()
 *	a zero-delay timer: read what the transport holds although the
 *	descriptor is not ready (a TLS record decoded in full waits inside
 *	GnuTLS, where poll(2) cannot see it).
 * chat_event()
 *	the readiness callback of the relay connection: the end of the TCP
 *	handshake, a step of the TLS handshake, room to write, input.
 *
 * Input is read in CHAT_READ_CHUNK pieces, cut into lines (at most
 * SMTP_REPLY_LINE_MAX bytes each) and fed to the session's
 * SMTP_REPLY_PARSER; every complete reply goes to proto_reply(). A
 * reply may close the connection or move it into the TLS handshake, so
 * parsing stops as soon as the session's generation or state says so.
 *
 * Ownership: the buffers, the parser and the connection are the
 * session's; chat only moves bytes through them. A failed write, the end
 * of the stream and a malformed reply are handed to trouble.c, which
 * decides the job; nothing here is fatal.
 */
#include "config.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <string.h>

#include "event.h"
#include "msg.h"
#include "smtp_reply.h"
#include "smtpout.h"

/* chat_out_reset - forget unwritten output; wipe it when it held a secret */
void chat_out_reset(SESSION *s)
{
    if (s->out_secret) {
        sodium_memzero(s->out->data, s->out->cap);
        s->out_secret = 0;
    }
    s->out_off = 0;
    vstr_reset(s->out);
}

/* chat_flush - write what the transport takes; watch for room when it takes less */
void chat_flush(SESSION *s)
{
    int progress = 0;

    while (s->conn != NULL && s->out_off < vstr_len(s->out)) {
        ssize_t n =
            conn_write(s->conn, vstr_str(s->out) + s->out_off, vstr_len(s->out) - s->out_off);

        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            /* Report from a timer: callers are in the middle of a reply or a job. */
            s->out_error = n < 0 ? errno : EPIPE;
            chat_out_reset(s);
            event_disable_write(s->conn->fd);
            event_request_timer(trouble_write_failed, s, 0);
            return;
        }
        s->out_off += (size_t)n;
        progress = 1;
    }
    if (s->conn == NULL)
        return;
    if (s->out_off < vstr_len(s->out)) {
        event_enable_write(s->conn->fd, chat_event, s);
        /* No progress for smtp_data_xfer_timeout is what times out a body. */
        if (progress && s->state == SESS_BODY)
            session_arm(s, SESS_BODY);
        return;
    }
    chat_out_reset(s);
    event_disable_write(s->conn->fd);
    if (s->state == SESS_BODY)
        session_arm(s, SESS_DOT);
}

/* chat_send - queue one command line (CRLF added) and start writing */
void chat_send(SESSION *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vstr_vsprintf_append(s->out, fmt, ap);
    va_end(ap);
    vstr_strcat(s->out, "\r\n");
    chat_flush(s);
}

/* chat_input - read what arrived and act on every complete reply */
static void chat_input(SESSION *s)
{
    char buf[CHAT_READ_CHUNK];
    unsigned gen = s->gen;
    int eof = 0, err = 0;
    VSTR *why;

    for (;;) {
        ssize_t n = conn_read(s->conn, buf, sizeof(buf));

        if (n > 0) {
            vstr_append(s->in, buf, (size_t)n);
            if (vstr_len(s->in) > 4 * SMTP_REPLY_LINE_MAX)
                break; /* parse what we have before reading more */
            continue;
        }
        if (n == 0)
            eof = 1;
        else if (errno != EAGAIN)
            err = errno;
        break;
    }
    why = vstr_alloc(64);
    while (s->gen == gen && s->state != SESS_TLS && vstr_len(s->in) > 0) {
        char *data = vstr_str(s->in);
        char *nl = memchr(data, '\n', vstr_len(s->in));
        size_t len;
        int ret;

        if (nl == NULL) {
            if (vstr_len(s->in) > SMTP_REPLY_LINE_MAX + 2) {
                vstr_sprintf(why, "reply line longer than %d bytes", SMTP_REPLY_LINE_MAX);
                trouble_protocol_error(s, vstr_str(why));
            }
            break;
        }
        len = (size_t)(nl - data);
        if (len > 0 && data[len - 1] == '\r')
            len--;
        ret = smtp_reply_feed_line(s->parser, data, len, s->reply, why);
        vstr_consume(s->in, (size_t)(nl - data) + 1);
        if (ret == SMTP_REPLY_ERROR) {
            trouble_protocol_error(s, vstr_str(why));
            break;
        }
        if (ret == SMTP_REPLY_DONE) {
            if (msg_verbose)
                msg_info("< %s: %d %s", vstr_str(s->label), s->reply->code,
                         vstr_str(s->reply->text));
            proto_reply(s, s->reply);
        }
    }
    vstr_free(why);
    if (s->gen != gen || s->conn == NULL)
        return;
    if (s->state == SESS_TLS) /* bytes after "220" sent in plaintext are discarded */
        vstr_reset(s->in);
    else if (!eof && !err && conn_pending(s->conn))
        event_request_timer(chat_read_again, s, 0); /* poll(2) cannot see TLS's buffer */
    if (eof || err)
        trouble_lost(s, err ? strerror(err) : "end of file");
}

/* chat_read_again - read what the transport holds without the descriptor being ready */
void chat_read_again(void *ctx)
{
    SESSION *s = ctx;

    if (s->conn != NULL && s->state != SESS_CONNECTING && s->state != SESS_TLS)
        chat_input(s);
}

/* chat_event - readiness of the relay connection */
void chat_event(int fd, int events, void *ctx)
{
    SESSION *s = ctx;

    (void)fd;
    if (s->conn == NULL)
        return;
    if (s->state == SESS_CONNECTING) {
        if (events & EVENT_WRITE)
            proto_connected(s);
        return;
    }
    if (s->state == SESS_TLS) {
        proto_tls_step(s);
        return;
    }
    if (events & EVENT_WRITE)
        chat_flush(s);
    if ((events & EVENT_READ) && s->conn != NULL)
        chat_input(s);
}
