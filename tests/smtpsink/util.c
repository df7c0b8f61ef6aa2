/*
 * util - buffers, base64, clock and the event log of smtpsink
 *
 * sbuf_*()
 *	growable byte buffers consumed from the front (socket input and
 *	output, message bodies, log lines).
 * sink_b64_decode()
 *	a small bounded base64 decoder for the AUTH exchanges.
 * sink_log(), sink_log_raw()
 *	append one line to the --log file with a single write(2), so that
 *	tests tailing the file never see half a line.
 * sink_clock()
 *	monotonic milliseconds.
 *
 * Failure policy: running out of memory or failing to open the log is
 * fatal (sink_die: message on stderr, exit 1) - smtpsink is a test tool
 * and a silent partial log would make tests lie. Log write errors after
 * that are ignored.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtpsink.h"

static int log_fd = -1;
static sbuf log_line;

/* sink_die - report a fatal problem on stderr and exit 1 */
void sink_die(const char *fmt, ...)
{
    va_list ap;

    fputs("smtpsink: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* sink_alloc - malloc that never returns NULL */
void *sink_alloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        sink_die("out of memory (%zu bytes)", size);
    return p;
}

/* sink_strndup - copy at most n bytes of s into a new string */
char *sink_strndup(const char *s, size_t n)
{
    char *p = sink_alloc(n + 1);

    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* sbuf_reserve - make room for extra more bytes at the end */
void sbuf_reserve(sbuf *b, size_t extra)
{
    size_t ncap;
    char *p;

    if (b->cap - b->len >= extra)
        return;
    /* Reuse the consumed front before growing. */
    if (b->pos > 0) {
        memmove(b->data, b->data + b->pos, b->len - b->pos);
        b->len -= b->pos;
        b->pos = 0;
        if (b->cap - b->len >= extra)
            return;
    }
    ncap = b->cap ? b->cap : 256;
    while (ncap - b->len < extra) {
        if (ncap > ((size_t)-1) / 2)
            sink_die("buffer too large");
        ncap *= 2;
    }
    p = realloc(b->data, ncap);
    if (p == NULL)
        sink_die("out of memory (%zu bytes)", ncap);
    b->data = p;
    b->cap = ncap;
}

/* sbuf_append - append n bytes */
void sbuf_append(sbuf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    sbuf_reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

/* sbuf_appendf - append printf-formatted text (no NUL is kept) */
void sbuf_appendf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    sbuf_reserve(b, 128);
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        sbuf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
    }
    b->len += (size_t)n;
}

/* sbuf_append_clean - append text with control characters replaced, for log fields */
void sbuf_append_clean(sbuf *b, const char *s, size_t n)
{
    size_t i;

    sbuf_reserve(b, n);
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        b->data[b->len++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
}

/* sbuf_consume - drop n bytes from the front */
void sbuf_consume(sbuf *b, size_t n)
{
    b->pos += n;
    if (b->pos >= b->len)
        b->pos = b->len = 0;
}

/* sbuf_reset - empty the buffer, keeping small allocations for reuse */
void sbuf_reset(sbuf *b)
{
    b->pos = b->len = 0;
    /* A 50 MB message must not stay pinned to an idle connection. */
    if (b->cap > 1024 * 1024)
        sbuf_free(b);
}

/* sbuf_free - release the buffer */
void sbuf_free(sbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->pos = b->len = b->cap = 0;
}

/* sink_clock - monotonic time in milliseconds */
long long sink_clock(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sink_log_open - open the event log for appending */
void sink_log_open(const char *path)
{
    log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log_fd < 0)
        sink_die("open %s: %s", path, strerror(errno));
}

/* sink_log_raw - write one complete line (without newline) to the log */
void sink_log_raw(const char *line, size_t len)
{
    ssize_t n;

    if (log_fd < 0)
        return;
    log_line.pos = log_line.len = 0;
    sbuf_append(&log_line, line, len);
    sbuf_append(&log_line, "\n", 1);
    /* One write per line: O_APPEND makes it atomic for readers. */
    do {
        n = write(log_fd, log_line.data, log_line.len);
    } while (n < 0 && errno == EINTR);
}

/* sink_log - format and write one event line */
void sink_log(const char *fmt, ...)
{
    va_list ap;
    int n;
    ssize_t w;

    if (log_fd < 0)
        return;
    log_line.pos = log_line.len = 0;
    sbuf_reserve(&log_line, 256);
    va_start(ap, fmt);
    n = vsnprintf(log_line.data, log_line.cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n + 1 >= log_line.cap) {
        sbuf_reserve(&log_line, (size_t)n + 2);
        va_start(ap, fmt);
        n = vsnprintf(log_line.data, log_line.cap, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
    }
    log_line.data[n] = '\n';
    do {
        w = write(log_fd, log_line.data, (size_t)n + 1);
    } while (w < 0 && errno == EINTR);
}

/* b64_value - value of one base64 digit, -1 when not one */
static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/*
 * sink_b64_decode - decode base64 into out (at most cap bytes); returns the
 * decoded length or -1 on bad input or overflow. Padding is optional.
 */
ssize_t sink_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    unsigned long acc = 0;
    int bits = 0;
    size_t i, n = 0, pad = 0;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        int v;

        if (ch == '=') {
            pad++;
            continue;
        }
        if (pad > 0)
            return -1; /* data after padding */
        v = b64_value(ch);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    if (pad > 2 || bits >= 6)
        return -1;
    return (ssize_t)n;
}
