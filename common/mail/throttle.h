/*
 * throttle.h - is a deferral the relay asking relayq to slow down
 */
#ifndef RELAYQ_THROTTLE_H
#define RELAYQ_THROTTLE_H

#define THROTTLE_NONE 0       /* an ordinary deferral: the message's backoff */
#define THROTTLE_SLOW_DOWN 1  /* the relay asks for less traffic: slower, retried soon */
#define THROTTLE_RCPT_LIMIT 2 /* the transaction had too many recipients */

int throttle_classify(const char *dsn, const char *reason);

#endif
