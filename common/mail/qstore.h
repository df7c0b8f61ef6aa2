/*
 * qstore.h - the durable mail queue: one LMDB environment
 */
#ifndef RELAYQ_QSTORE_H
#define RELAYQ_QSTORE_H

#include <stddef.h>

#include "qid.h"
#include "qrecord.h"
#include "seal.h"
#include "vstr.h"

/* Results; negative ones are errors with a reason. */
#define QSTORE_OK 0
#define QSTORE_NOTFOUND 1    /* no such record */
#define QSTORE_EXISTS 2      /* a record to create is there already */
#define QSTORE_ERROR (-1)    /* an error of the environment (I/O, corruption) */
#define QSTORE_FULL (-2)     /* map, transaction or disk full: retry after deliveries free room */
#define QSTORE_TAMPERED (-3) /* a sealed record fails authentication: set the message aside */

#define QSTORE_READONLY 1 /* qstore_open: commands that only look */

typedef struct QSTORE QSTORE;
typedef struct QSTORE_TXN QSTORE_TXN;

/* Told of one committed schedule change: the message's entry is now `when` (0: none). */
typedef void (*QSTORE_SCHEDULE_HOOK)(void *ctx, const char *qid, long long when);

QSTORE *qstore_open(const char *dir, size_t map_size, int flags, VSTR *why);
void qstore_close(QSTORE *store);
void qstore_set_keyring(QSTORE *store, SEAL_RING *ring);
const SEAL_RING *qstore_keyring(const QSTORE *store);
int qstore_reload_keys(QSTORE *store, VSTR *why);
int qstore_reader_check(QSTORE *store);
void qstore_set_mapped_limit(QSTORE *store, size_t bytes);
void qstore_set_resident_limit(QSTORE *store, size_t bytes);
long long qstore_sealed_only(QSTORE_TXN *txn);
int qstore_clear_left(QSTORE_TXN *txn);
int qstore_mark_sealed_only(QSTORE_TXN *txn, long long now);
void qstore_set_schedule_hook(QSTORE *store, QSTORE_SCHEDULE_HOOK hook, void *ctx);

QSTORE_TXN *qstore_begin(QSTORE *store, int write, VSTR *why);
int qstore_commit(QSTORE_TXN *txn, VSTR *why);
int qstore_commit_at(QSTORE_TXN *txn, const char *point, VSTR *why);
void qstore_abort(QSTORE_TXN *txn);
int qstore_txn_error(const QSTORE_TXN *txn);
const char *qstore_txn_reason(const QSTORE_TXN *txn);
int qstore_room(QSTORE_TXN *txn, size_t len, VSTR *why);

int qstore_message_put(QSTORE_TXN *txn, const QMSG *msg, int create);
int qstore_message_get(QSTORE_TXN *txn, const char *qid, QMSG *msg);
int qstore_message_reschedule(QSTORE_TXN *txn, QMSG *msg, long long next_attempt);
int qstore_message_delete(QSTORE_TXN *txn, const char *qid);
int qstore_message_scan(QSTORE_TXN *txn, const char *after, int (*fn)(const QMSG *msg, void *ctx),
                        void *ctx);

int qstore_rcpt_put(QSTORE_TXN *txn, const char *qid, const QRCPT *rcpt);
int qstore_rcpts_get(QSTORE_TXN *txn, const char *qid, QRCPT **list, size_t *count);
void qstore_rcpts_free(QRCPT *list, size_t count);

int qstore_attempt_put(QSTORE_TXN *txn, const char *qid, const QATTEMPT *attempt);
int qstore_attempts_get(QSTORE_TXN *txn, const char *qid, QATTEMPT **list, size_t *count);
void qstore_attempts_free(QATTEMPT *list, size_t count);

int qstore_body_put(QSTORE_TXN *txn, const char *qid, const char *data, size_t len);
int qstore_body_get(QSTORE_TXN *txn, const char *qid, VSTR *out);
int qstore_body_verify(QSTORE_TXN *txn, const char *qid);
int qstore_seal_ids(QSTORE_TXN *txn, const char *qid, unsigned *envelope, unsigned *body);

int qstore_schedule_scan(QSTORE_TXN *txn, long long upto,
                         int (*fn)(const char *qid, long long when, void *ctx), void *ctx);

int qstore_picked_put(QSTORE_TXN *txn, const char *name, const char *qid);
int qstore_picked_get(QSTORE_TXN *txn, const char *name, char *qid);
int qstore_picked_delete(QSTORE_TXN *txn, const char *name);
int qstore_picked_scan(QSTORE_TXN *txn, int (*fn)(const char *name, void *ctx), void *ctx);

int qstore_count(QSTORE_TXN *txn, size_t *messages, size_t *scheduled);
int qstore_count_rcpts(QSTORE_TXN *txn, size_t *recipients);
int qstore_count_more(QSTORE_TXN *txn, long long after, size_t *aside, size_t *later);
int qstore_oldest(QSTORE_TXN *txn, char qid[QID_LEN + 1]);
void qstore_map_use(QSTORE *store, size_t *used, size_t *size);

int qstore_aside_put(QSTORE_TXN *txn, const char *qid, long long when, const char *reason);
int qstore_aside_get(QSTORE_TXN *txn, const char *qid, VSTR *reason);
int qstore_aside_scan(QSTORE_TXN *txn,
                      int (*fn)(const char *qid, long long when_ms, const char *reason, void *ctx),
                      void *ctx);

#endif
