/*
 * qid.h - queue ids: short, unique, roughly time-ordered
 */
#ifndef RELAYQ_QID_H
#define RELAYQ_QID_H

#define QID_LEN 12 /* characters, without the terminator */

void qid_create(char *buf);
int qid_valid(const char *text);
long long qid_time(const char *qid);

#endif
