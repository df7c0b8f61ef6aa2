/*
 * sched.h - qmgr's in-memory schedule: which messages are due, and when
 */
#ifndef RELAYQ_SCHED_H
#define RELAYQ_SCHED_H

#include <stddef.h>

#include "qid.h"

typedef struct SCHED SCHED;

SCHED *sched_create(void);
void sched_free(SCHED *sched);
void sched_set(SCHED *sched, const char *qid, long long due);
void sched_set_new(SCHED *sched, const char *qid, long long due);
void sched_retry_later(SCHED *sched, const char *qid, long long when);
int sched_take(SCHED *sched, long long now, char qid[QID_LEN + 1]);
void sched_release(SCHED *sched, const char *qid);
long long sched_next_due(const SCHED *sched);
int sched_is_active(const SCHED *sched, const char *qid);
int sched_known(const SCHED *sched, const char *qid);
int sched_is_new(const SCHED *sched, const char *qid);
unsigned sched_note_lost(SCHED *sched, const char *qid);
unsigned sched_lost_count(const SCHED *sched, const char *qid);
size_t sched_waiting(const SCHED *sched);
size_t sched_count(const SCHED *sched);
void sched_check(const SCHED *sched);

#endif
