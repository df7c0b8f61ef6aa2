/*
 * ipc.h - self-describing records over UNIX stream sockets
 *
 * A record is a list of name=value attributes; the first is always
 * "type". On the wire each attribute is one line "name=value\n" (value
 * with %, CR, LF and NUL percent-encoded) and an empty line ends the record.
 */
#ifndef RELAYQ_IPC_H
#define RELAYQ_IPC_H

#include <stddef.h>

#include "vstr.h"

#define IPC_RECORD_MAX (8 * 1024 * 1024) /* bytes of one encoded record */
#define IPC_ATTRS_MAX 100000             /* attributes in one record */

/* One attribute. */
typedef struct IPC_ATTR {
    char *name;
    char *value;
} IPC_ATTR;

/* One record: its attributes in order, "type" first. */
typedef struct IPC_REC {
    IPC_ATTR *attrs;
    size_t count;
    size_t cap;
} IPC_REC;

IPC_REC *ipc_rec_create(const char *type);
void ipc_rec_free(IPC_REC *rec);
void ipc_rec_add(IPC_REC *rec, const char *name, const char *value);
void ipc_rec_addf(IPC_REC *rec, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ipc_rec_add_long(IPC_REC *rec, const char *name, long long value);
const char *ipc_rec_type(const IPC_REC *rec);
const char *ipc_rec_get(const IPC_REC *rec, const char *name);
int ipc_rec_check(const IPC_REC *rec, const char *required, const char *optional, VSTR *why);
int ipc_rec_get_long(const IPC_REC *rec, const char *name, long long min, long long max,
                     long long *value, VSTR *why);
void ipc_rec_encode(const IPC_REC *rec, VSTR *out);
int ipc_rec_decode(const char *data, size_t len, IPC_REC **rec, VSTR *why);

/* A buffered, non-blocking record channel on one descriptor. */
typedef struct IPC_CHAN IPC_CHAN;

IPC_CHAN *ipc_chan_create(int fd);
void ipc_chan_free(IPC_CHAN *chan);
int ipc_chan_fd(const IPC_CHAN *chan);
void ipc_chan_send(IPC_CHAN *chan, const IPC_REC *rec);
int ipc_chan_flush(IPC_CHAN *chan);
void ipc_chan_set_record_max(IPC_CHAN *chan, size_t bytes);
void ipc_chan_send_raw(IPC_CHAN *chan, const void *data, size_t len);
size_t ipc_chan_take_raw(IPC_CHAN *chan, VSTR *out, size_t max);
size_t ipc_chan_buffered(const IPC_CHAN *chan);
size_t ipc_chan_pending(const IPC_CHAN *chan);
size_t ipc_chan_unread(const IPC_CHAN *chan);
int ipc_chan_fill(IPC_CHAN *chan);
int ipc_chan_next(IPC_CHAN *chan, IPC_REC **rec, VSTR *why);
IPC_REC *ipc_chan_recv_wait(IPC_CHAN *chan, int timeout_ms, VSTR *why);
int ipc_chan_send_wait(IPC_CHAN *chan, const IPC_REC *rec, int timeout_ms, VSTR *why);
IPC_CHAN *ipc_client_open(const char *path, const char *protocol, int timeout_ms, VSTR *why);

#endif
