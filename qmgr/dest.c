/*
 * dest - destinations: where jobs go, with their queues and windows
 *
 * dest_for_relayhost()
 *	the destination of every recipient while relayq routes all mail to
 *	relayhost; made on first use from the configuration.
 * dest_enqueue(), dest_dequeue()
 *	a destination's FIFO queue of jobs waiting for a worker.
 * dest_list()
 *	the first destination, for walking all of them.
 * dest_by_name()
 *	the destination "host:port" (made when new: a worker may report a
 *	connection that a restarted qmgr has not routed to yet); NULL when
 *	the name has no port.
 * dest_reload()
 *	apply a re-read configuration: a changed relayhost makes a new
 *	destination for new jobs (queued ones keep theirs); the concurrency
 *	limit is updated everywhere.
 *
 * Destinations live as long as the process. A relayhost that does not
 * parse is fatal: master checked it before starting anything.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"

static QMGR_DEST *dest_head;
static QMGR_DEST *dest_current;

/* dest_find_or_create - the destination of a host and port */
static QMGR_DEST *dest_find_or_create(const char *host, unsigned port)
{
    VSTR *name = vstr_alloc(64);
    QMGR_DEST *dest;

    vstr_sprintf(name, "%s:%u", host, port);
    for (dest = dest_head; dest; dest = dest->next)
        if (strcmp(dest->name, vstr_str(name)) == 0)
            break;
    if (dest == NULL) {
        dest = mycalloc(1, sizeof(*dest));
        dest->name = mystrdup(vstr_str(name));
        dest->host = mystrdup(host);
        dest->port = port;
        dest->next = dest_head;
        dest_head = dest;
    }
    dest->limit = (int)var_int("default_destination_concurrency_limit");
    vstr_free(name);
    return dest;
}

/* dest_reload - follow a changed configuration */
void dest_reload(void)
{
    dest_current = NULL;
    for (QMGR_DEST *dest = dest_head; dest; dest = dest->next)
        dest->limit = (int)var_int("default_destination_concurrency_limit");
}

/* dest_for_relayhost - the destination that relayhost names */
QMGR_DEST *dest_for_relayhost(void)
{
    if (dest_current == NULL) {
        RELAY_ADDR relay;
        VSTR *why = vstr_alloc(100);

        if (params_parse_relay(var_str("relayhost"), &relay, why) < 0)
            msg_fatal("%s: %s", config_path(var_config), vstr_str(why));
        vstr_free(why);
        dest_current = dest_find_or_create(relay.host, relay.port);
    }
    return dest_current;
}

/* dest_by_name - the destination of a "host:port" name */
QMGR_DEST *dest_by_name(const char *name)
{
    const char *colon = strrchr(name, ':');
    char *end, *host;
    unsigned long port;
    QMGR_DEST *dest;

    for (dest = dest_head; dest; dest = dest->next)
        if (strcmp(dest->name, name) == 0)
            return dest;
    if (colon == NULL || colon == name)
        return NULL;
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port == 0 || port > 65535)
        return NULL;
    host = mystrndup(name, (size_t)(colon - name));
    dest = dest_find_or_create(host, (unsigned)port);
    myfree(host);
    return dest;
}

/* dest_enqueue - add a job at the tail */
void dest_enqueue(QMGR_DEST *dest, QMGR_JOB *job)
{
    job->dest = dest;
    job->next = NULL;
    if (dest->tail)
        dest->tail->next = job;
    else
        dest->head = job;
    dest->tail = job;
    dest->queued++;
}

/* dest_dequeue - take the job at the head, or NULL */
QMGR_JOB *dest_dequeue(QMGR_DEST *dest)
{
    QMGR_JOB *job = dest->head;

    if (job) {
        dest->head = job->next;
        if (dest->head == NULL)
            dest->tail = NULL;
        job->next = NULL;
        dest->queued--;
    }
    return job;
}

/* dest_list - the first destination */
QMGR_DEST *dest_list(void)
{
    return dest_head;
}
