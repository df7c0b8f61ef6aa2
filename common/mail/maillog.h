/*
 * maillog.h - where a daemon's log lines go, from its configuration
 */
#ifndef RELAYQ_MAILLOG_H
#define RELAYQ_MAILLOG_H

void maillog_start(void);
void maillog_reload(void);

#endif
