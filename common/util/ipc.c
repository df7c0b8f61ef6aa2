/*
 * ipc - self-describing records over UNIX stream sockets
 *
 * ipc_rec_create(), ipc_rec_add*(), ipc_rec_free()
 *	build a record; "type" is its first attribute.
 * ipc_rec_get(), ipc_rec_get_long()
 *	look up the first attribute of a name; the long variant checks syntax
 *	and bounds and says what is wrong.
 * ipc_rec_check()
 *	the strict decoder's rule: every name in the comma-separated
 *	`required` list is present exactly once, every other attribute is in
 *	`required` or `optional` (names ending in "*" in `optional` may repeat).
 *	"type" is always allowed.
 * ipc_rec_encode(), ipc_rec_decode()
 *	append the wire form of a record; decode the lines of one record
 *	(without the empty line that ends it), strictly: 0 or -1 with why.
 * ipc_chan_*()
 *	a channel buffers both directions of a non-blocking descriptor:
 *	ipc_chan_send() queues a record, ipc_chan_flush() writes what the
 *	socket takes (1: all written, 0: more pending, -1: error),
 *	ipc_chan_fill() reads what is there (>0 read, 0 end of file,
 *	-1 error; EAGAIN counts as >0), ipc_chan_next() takes one complete
 *	record (1), none yet (0), or a malformed stream (-1 with a reason);
 *	a record longer than IPC_RECORD_MAX, or than the smaller bound
 *	ipc_chan_set_record_max() gave the channel, is malformed as soon as
 *	that many bytes of it are buffered, so a peer that never ends its
 *	record holds no more than that.
 *	ipc_chan_send_raw() and ipc_chan_take_raw() carry bytes as they
 *	are, after a record that announced how many (a message's content):
 *	take_raw moves what is buffered past the last record, up to a
 *	bound, and the next ipc_chan_next() starts after it.
 *	ipc_chan_buffered() is what it read and no record took yet;
 *	ipc_chan_pending() is what the channel still holds to write,
 *	ipc_chan_unread() that plus what the socket holds and the peer has
 *	not read (SIOCOUTQ, counted with the kernel's overhead): a server
 *	that streams to a peer can wait for a slow reader with it.
 * ipc_chan_recv_wait(), ipc_chan_send_wait()
 *	blocking variants with a deadline, for command-line clients;
 *	send_wait with no record writes what is queued (raw bytes).
 * ipc_client_open()
 *	connect to a server socket and check the protocol it announces in
 *	its first record ("type=hello", "protocol=NAME").
 *
 * The channel owns its descriptor and closes it in ipc_chan_free().
 * A peer that sends a malformed record is an error for the caller to end
 * the connection; nothing here exits.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/sockios.h>
#include <unistd.h>

#include "iostuff.h"
#include "ipc.h"
#include "mymalloc.h"
#include "sock.h"

struct IPC_CHAN {
    int fd;
    VSTR *in;      /* bytes read, not yet decoded */
    size_t in_off; /* decoded prefix of `in` */
    VSTR *out;     /* bytes queued, not yet written */
    size_t out_off;
    size_t record_max; /* bytes of one record from the peer */
};

/* ipc_rec_create - start a record of the given type */
IPC_REC *ipc_rec_create(const char *type)
{
    IPC_REC *rec = mycalloc(1, sizeof(*rec));

    if (type)
        ipc_rec_add(rec, "type", type);
    return rec;
}

/* ipc_rec_free - release a record */
void ipc_rec_free(IPC_REC *rec)
{
    if (rec == NULL)
        return;
    for (size_t i = 0; i < rec->count; i++) {
        myfree(rec->attrs[i].name);
        myfree(rec->attrs[i].value);
    }
    myfree(rec->attrs);
    myfree(rec);
}

/* ipc_rec_add_owned - append an attribute whose strings the record takes */
static void ipc_rec_add_owned(IPC_REC *rec, char *name, char *value)
{
    if (rec->count == rec->cap) {
        rec->cap = rec->cap ? rec->cap * 2 : 8;
        rec->attrs = myrealloc(rec->attrs, sizeof(*rec->attrs) * rec->cap);
    }
    rec->attrs[rec->count].name = name;
    rec->attrs[rec->count].value = value;
    rec->count++;
}

/* ipc_rec_add - append an attribute */
void ipc_rec_add(IPC_REC *rec, const char *name, const char *value)
{
    ipc_rec_add_owned(rec, mystrdup(name), mystrdup(value ? value : ""));
}

/* ipc_rec_addf - append a formatted attribute */
void ipc_rec_addf(IPC_REC *rec, const char *name, const char *fmt, ...)
{
    VSTR *buf = vstr_alloc(64);
    va_list ap;

    va_start(ap, fmt);
    vstr_vsprintf_append(buf, fmt, ap);
    va_end(ap);
    ipc_rec_add(rec, name, vstr_str(buf));
    vstr_free(buf);
}

/* ipc_rec_add_long - append a numeric attribute */
void ipc_rec_add_long(IPC_REC *rec, const char *name, long long value)
{
    ipc_rec_addf(rec, name, "%lld", value);
}

/* ipc_rec_type - the record's type, "" when it has none */
const char *ipc_rec_type(const IPC_REC *rec)
{
    const char *type = ipc_rec_get(rec, "type");

    return type ? type : "";
}

/* ipc_rec_get - first value of a name, or NULL */
const char *ipc_rec_get(const IPC_REC *rec, const char *name)
{
    for (size_t i = 0; i < rec->count; i++)
        if (strcmp(rec->attrs[i].name, name) == 0)
            return rec->attrs[i].value;
    return NULL;
}

/* ipc_rec_get_long - a bounded number */
int ipc_rec_get_long(const IPC_REC *rec, const char *name, long long min, long long max,
                     long long *value, VSTR *why)
{
    const char *text = ipc_rec_get(rec, name);
    char *end;
    long long n;

    if (text == NULL) {
        vstr_sprintf(why, "record \"%s\": missing attribute %s", ipc_rec_type(rec), name);
        return -1;
    }
    errno = 0;
    n = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno == ERANGE || n < min || n > max) {
        vstr_sprintf(why, "record \"%s\": bad %s value \"%.40s\"", ipc_rec_type(rec), name, text);
        return -1;
    }
    *value = n;
    return 0;
}

/* ipc_list_has - is name in a comma-separated list; *repeat says it ends in "*" */
static int ipc_list_has(const char *list, const char *name, int *repeat)
{
    size_t len = strlen(name);

    while (list && *list) {
        size_t word = strcspn(list, ",");
        int star = word > 0 && list[word - 1] == '*';
        size_t base = star ? word - 1 : word;

        if (base == len && strncmp(list, name, len) == 0) {
            if (repeat)
                *repeat = star;
            return 1;
        }
        list += word;
        if (*list == ',')
            list++;
    }
    return 0;
}

/* ipc_rec_check - the strict decoder's presence and uniqueness rules */
int ipc_rec_check(const IPC_REC *rec, const char *required, const char *optional, VSTR *why)
{
    const char *list = required;

    for (size_t i = 0; i < rec->count; i++) {
        const char *name = rec->attrs[i].name;
        int repeat = 0;

        if (i == 0 && strcmp(name, "type") == 0)
            continue;
        if (!ipc_list_has(required, name, NULL) && !ipc_list_has(optional, name, &repeat)) {
            vstr_sprintf(why, "record \"%s\": unexpected attribute %s", ipc_rec_type(rec), name);
            return -1;
        }
        if (!repeat)
            for (size_t j = i + 1; j < rec->count; j++)
                if (strcmp(rec->attrs[j].name, name) == 0) {
                    vstr_sprintf(why, "record \"%s\": attribute %s repeated", ipc_rec_type(rec),
                                 name);
                    return -1;
                }
    }
    while (list && *list) {
        size_t word = strcspn(list, ",");
        char name[64];

        snprintf(name, sizeof(name), "%.*s", (int)word, list);
        if (ipc_rec_get(rec, name) == NULL) {
            vstr_sprintf(why, "record \"%s\": missing attribute %s", ipc_rec_type(rec), name);
            return -1;
        }
        list += word;
        if (*list == ',')
            list++;
    }
    return 0;
}

/* ipc_rec_encode - append the wire form */
void ipc_rec_encode(const IPC_REC *rec, VSTR *out)
{
    for (size_t i = 0; i < rec->count; i++) {
        vstr_strcat(out, rec->attrs[i].name);
        vstr_addch(out, '=');
        for (const unsigned char *cp = (const unsigned char *)rec->attrs[i].value; *cp; cp++) {
            if (*cp == '%' || *cp == '\r' || *cp == '\n')
                vstr_sprintf_append(out, "%%%02X", *cp);
            else
                vstr_addch(out, *cp);
        }
        vstr_addch(out, '\n');
    }
    vstr_addch(out, '\n');
}

/* ipc_hex - value of a hex digit, or -1 */
static int ipc_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* ipc_decode_line - add one "name=value" line to a record */
static int ipc_decode_line(IPC_REC *rec, const char *line, size_t len, VSTR *why)
{
    const char *eq = memchr(line, '=', len);
    int shown = len > 40 ? 40 : (int)len; /* how much of the line a reason quotes */
    char *value, *vp;

    if (eq == NULL || eq == line) {
        vstr_sprintf(why, "malformed record line \"%.*s\"", shown, line);
        return -1;
    }
    for (const char *cp = line; cp < eq; cp++)
        if (!((*cp >= 'a' && *cp <= 'z') || (*cp >= '0' && *cp <= '9') || *cp == '_')) {
            vstr_sprintf(why, "bad attribute name in record line \"%.*s\"", shown, line);
            return -1;
        }
    if (rec->count >= IPC_ATTRS_MAX) {
        vstr_sprintf(why, "record has more than %d attributes", IPC_ATTRS_MAX);
        return -1;
    }
    vp = value = mymalloc(len - (size_t)(eq - line));
    for (const char *cp = eq + 1; cp < line + len; cp++) {
        if (*cp == '\0') {
            myfree(value);
            vstr_sprintf(why, "NUL byte in record");
            return -1;
        }
        if (*cp == '%') {
            int hi = cp + 2 < line + len ? ipc_hex(cp[1]) : -1;
            int lo = hi >= 0 ? ipc_hex(cp[2]) : -1;

            if (lo < 0 || (hi == 0 && lo == 0)) {
                myfree(value);
                vstr_sprintf(why, "bad %%-escape in record line \"%.*s\"", shown, line);
                return -1;
            }
            *vp++ = (char)(hi * 16 + lo);
            cp += 2;
        } else {
            *vp++ = *cp;
        }
    }
    *vp = '\0';
    ipc_rec_add_owned(rec, mystrndup(line, (size_t)(eq - line)), value);
    return 0;
}

/* ipc_rec_decode - decode the lines of one record (without its empty line) */
int ipc_rec_decode(const char *data, size_t len, IPC_REC **recp, VSTR *why)
{
    const char *end = data + len;
    IPC_REC *rec = ipc_rec_create(NULL);

    for (const char *line = data; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));

        if (nl == NULL)
            nl = end;
        if (ipc_decode_line(rec, line, (size_t)(nl - line), why) < 0) {
            ipc_rec_free(rec);
            return -1;
        }
        line = nl + 1;
    }
    if (rec->count == 0 || strcmp(rec->attrs[0].name, "type") != 0) {
        ipc_rec_free(rec);
        vstr_sprintf(why, "record without a type");
        return -1;
    }
    *recp = rec;
    return 0;
}

/* ipc_chan_create - wrap a descriptor */
IPC_CHAN *ipc_chan_create(int fd)
{
    IPC_CHAN *chan = mycalloc(1, sizeof(*chan));

    chan->fd = fd;
    chan->in = vstr_alloc(4096);
    chan->out = vstr_alloc(4096);
    chan->record_max = IPC_RECORD_MAX;
    return chan;
}

/* ipc_chan_set_record_max - a tighter bound on the records the peer may send */
void ipc_chan_set_record_max(IPC_CHAN *chan, size_t bytes)
{
    if (bytes < IPC_RECORD_MAX)
        chan->record_max = bytes;
}

/* ipc_chan_free - close the descriptor and release the buffers */
void ipc_chan_free(IPC_CHAN *chan)
{
    if (chan == NULL)
        return;
    if (chan->fd >= 0)
        close(chan->fd);
    vstr_free(chan->in);
    vstr_free(chan->out);
    myfree(chan);
}

/* ipc_chan_fd - the channel's descriptor */
int ipc_chan_fd(const IPC_CHAN *chan)
{
    return chan->fd;
}

/* ipc_chan_send - queue a record for writing */
void ipc_chan_send(IPC_CHAN *chan, const IPC_REC *rec)
{
    ipc_rec_encode(rec, chan->out);
}

/* ipc_chan_send_raw - queue bytes as they are: the payload a record before them announced */
void ipc_chan_send_raw(IPC_CHAN *chan, const void *data, size_t len)
{
    vstr_append(chan->out, data, len);
}

/* ipc_chan_take_raw - move up to max bytes read after the last record to out, as they are */
size_t ipc_chan_take_raw(IPC_CHAN *chan, VSTR *out, size_t max)
{
    size_t take = vstr_len(chan->in) - chan->in_off;

    if (take > max)
        take = max;
    vstr_append(out, vstr_str(chan->in) + chan->in_off, take);
    chan->in_off += take;
    return take;
}

/* ipc_chan_buffered - bytes read and not yet taken as a record */
size_t ipc_chan_buffered(const IPC_CHAN *chan)
{
    return vstr_len(chan->in) - chan->in_off;
}

/* ipc_chan_pending - bytes queued and not yet written */
size_t ipc_chan_pending(const IPC_CHAN *chan)
{
    return vstr_len(chan->out) - chan->out_off;
}

/* ipc_chan_unread - bytes sent or queued that the peer has not read */
size_t ipc_chan_unread(const IPC_CHAN *chan)
{
    int queued = 0;

    /* Where the system cannot tell, the channel's own buffer is the measure. */
    if (ioctl(chan->fd, SIOCOUTQ, &queued) < 0 || queued < 0)
        queued = 0;
    return ipc_chan_pending(chan) + (size_t)queued;
}

/* ipc_chan_flush - write what the descriptor takes */
int ipc_chan_flush(IPC_CHAN *chan)
{
    while (chan->out_off < vstr_len(chan->out)) {
        ssize_t n = send(chan->fd, vstr_str(chan->out) + chan->out_off,
                         vstr_len(chan->out) - chan->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        chan->out_off += (size_t)n;
    }
    vstr_reset(chan->out);
    chan->out_off = 0;
    return 1;
}

/* ipc_chan_fill - read what is available */
int ipc_chan_fill(IPC_CHAN *chan)
{
    char buf[65536];
    ssize_t n;

    if (chan->in_off > 0) {
        vstr_consume(chan->in, chan->in_off);
        chan->in_off = 0;
    }
    n = recv(chan->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 1 : -1;
    if (n == 0)
        return 0;
    vstr_append(chan->in, buf, (size_t)n);
    return 1;
}

/* ipc_chan_next - decode one complete record from the input buffer */
int ipc_chan_next(IPC_CHAN *chan, IPC_REC **recp, VSTR *why)
{
    const char *start = vstr_str(chan->in) + chan->in_off;
    size_t avail = vstr_len(chan->in) - chan->in_off;
    const char *end = NULL;

    /* A record ends at the first empty line. */
    for (const char *cp = start; cp < start + avail; cp++) {
        cp = memchr(cp, '\n', (size_t)(start + avail - cp));
        if (cp == NULL)
            break;
        if (cp == start || cp[-1] == '\n') {
            end = cp;
            break;
        }
    }
    if (end == NULL) {
        if (avail > chan->record_max) {
            vstr_sprintf(why, "record longer than %zu bytes", chan->record_max);
            return -1;
        }
        return 0;
    }
    if (ipc_rec_decode(start, (size_t)(end - start), recp, why) < 0)
        return -1;
    chan->in_off += (size_t)(end - start) + 1;
    return 1;
}

/* ipc_wait - wait for the descriptor to become ready, up to a deadline */
static int ipc_wait(int fd, short events, long long deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    long long left = deadline - now_ms();
    int n;

    if (left <= 0)
        return 0;
    do {
        n = poll(&pfd, 1, (int)left);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* ipc_chan_send_wait - send a record (NULL: only what is queued), waiting up to timeout_ms */
int ipc_chan_send_wait(IPC_CHAN *chan, const IPC_REC *rec, int timeout_ms, VSTR *why)
{
    long long deadline = now_ms() + timeout_ms;
    int ret;

    if (rec != NULL)
        ipc_chan_send(chan, rec);
    while ((ret = ipc_chan_flush(chan)) == 0)
        if (ipc_wait(chan->fd, POLLOUT, deadline) <= 0) {
            vstr_sprintf(why, "timed out sending a request");
            return -1;
        }
    if (ret < 0) {
        vstr_sprintf(why, "send: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ipc_chan_recv_wait - receive one record, waiting up to timeout_ms */
IPC_REC *ipc_chan_recv_wait(IPC_CHAN *chan, int timeout_ms, VSTR *why)
{
    long long deadline = now_ms() + timeout_ms;
    IPC_REC *rec = NULL;
    int ret;

    while ((ret = ipc_chan_next(chan, &rec, why)) == 0) {
        if (ipc_wait(chan->fd, POLLIN, deadline) <= 0) {
            vstr_sprintf(why, "timed out waiting for a reply");
            return NULL;
        }
        ret = ipc_chan_fill(chan);
        if (ret == 0) {
            vstr_sprintf(why, "connection closed by the server");
            return NULL;
        }
        if (ret < 0) {
            vstr_sprintf(why, "receive: %s", strerror(errno));
            return NULL;
        }
    }
    return ret > 0 ? rec : NULL;
}

/* ipc_client_open - connect and check the announced protocol */
IPC_CHAN *ipc_client_open(const char *path, const char *protocol, int timeout_ms, VSTR *why)
{
    int fd = unix_connect(path, why);
    IPC_CHAN *chan;
    IPC_REC *hello;
    const char *got;

    if (fd < 0)
        return NULL;
    chan = ipc_chan_create(fd);
    if ((hello = ipc_chan_recv_wait(chan, timeout_ms, why)) == NULL) {
        ipc_chan_free(chan);
        return NULL;
    }
    got = ipc_rec_get(hello, "protocol");
    if (strcmp(ipc_rec_type(hello), "hello") != 0 || got == NULL || strcmp(got, protocol) != 0) {
        vstr_sprintf(why, "%s: expected protocol %s, got \"%.40s\"", path, protocol,
                     got ? got : ipc_rec_type(hello));
        ipc_rec_free(hello);
        ipc_chan_free(chan);
        return NULL;
    }
    ipc_rec_free(hello);
    return chan;
}
