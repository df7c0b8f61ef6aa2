/*
 * qactive.h - the messages qmgr is delivering, for mailq's "*" mark
 */
#ifndef RELAYQ_QACTIVE_H
#define RELAYQ_QACTIVE_H

typedef struct QACTIVE QACTIVE;

QACTIVE *qactive_ask(const char *control_path, int timeout_ms);
int qactive_has(const char *queue_id, void *ctx);
void qactive_free(QACTIVE *active);

#endif
