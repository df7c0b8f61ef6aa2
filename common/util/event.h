/*
 * event.h - a poll(2) event loop with timers and signal delivery
 */
#ifndef RELAYQ_EVENT_H
#define RELAYQ_EVENT_H

#define EVENT_READ 1
#define EVENT_WRITE 2

typedef void (*EVENT_FD_FN)(int fd, int events, void *ctx);
typedef void (*EVENT_TIMER_FN)(void *ctx);
typedef void (*EVENT_SIGNAL_FN)(int sig, void *ctx);

void event_enable_read(int fd, EVENT_FD_FN fn, void *ctx);
void event_enable_write(int fd, EVENT_FD_FN fn, void *ctx);
void event_disable_read(int fd);
void event_disable_write(int fd);
void event_disable_readwrite(int fd);
void event_request_timer(EVENT_TIMER_FN fn, void *ctx, long long delay_ms);
void event_cancel_timer(EVENT_TIMER_FN fn, void *ctx);
void event_on_signal(int sig, EVENT_SIGNAL_FN fn, void *ctx);
void event_after_pass(void (*fn)(void *ctx), void *ctx);
void event_loop(long long max_wait_ms);

#endif
