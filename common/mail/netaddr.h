/*
 * netaddr.h - listening addresses and client networks, as relayq.conf writes them
 */
#ifndef RELAYQ_NETADDR_H
#define RELAYQ_NETADDR_H

#include <sys/socket.h>

#include "vstr.h"

/* One parsed listening address; a non-zero return stops the walk. */
typedef int (*NETADDR_LISTEN_FN)(const char *word, const struct sockaddr *sa, socklen_t len,
                                 void *ctx);

typedef struct NETMASK_LIST NETMASK_LIST;

int netaddr_listen_parse(const char *word, struct sockaddr_storage *ss, socklen_t *len, VSTR *why);
int netaddr_listen_each(const char *list, NETADDR_LISTEN_FN each, void *ctx, VSTR *why);
NETMASK_LIST *netmask_list_parse(const char *list, VSTR *why);
int netmask_list_match(const NETMASK_LIST *nl, const struct sockaddr *sa);
void netmask_list_free(NETMASK_LIST *nl);

#endif
