/*
 * stats - the queue and the connection pool, as qmgr sees them
 *
 * stats_main()
 *	"relayq stats [-c FILE] [--json]": ask qmgr (public/control) for
 *	its figures and print, per destination, the connections open, busy
 *	and idle, opened and closed (with the reasons), messages per
 *	connection, TLS handshakes and resumptions, AUTH successes and
 *	failures, timeouts; with --json one object on one line.
 *
 * The reply is checked strictly: every figure must be a number; a
 * malformed reply is EX_PROTOCOL. When qmgr does not listen, the mail
 * system is down: EX_UNAVAILABLE.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli.h"
#include "mail_proto.h"
#include "msg.h"
#include "mymalloc.h"

#define STATS_TIMEOUT_MS 10000
#define STATS_FIELDS_MAX 64

/* One destination's figures: its name and name=number pairs, in reply order. */
typedef struct STATS_DEST {
    char *name;
    char *keys[STATS_FIELDS_MAX];
    long long values[STATS_FIELDS_MAX];
    int count;
} STATS_DEST;

/* stats_parse_dest - split "NAME k=v k=v ..." or exit EX_PROTOCOL */
static void stats_parse_dest(const char *text, STATS_DEST *dest)
{
    char *copy = mystrdup(text), *save = NULL, *word;

    memset(dest, 0, sizeof(*dest));
    if ((word = strtok_r(copy, " ", &save)) == NULL)
        msg_fatal_status(EX_PROTOCOL, "malformed stats reply from qmgr");
    dest->name = mystrdup(word);
    while ((word = strtok_r(NULL, " ", &save)) != NULL) {
        char *eq = strchr(word, '='), *end;

        if (eq == NULL || dest->count == STATS_FIELDS_MAX)
            msg_fatal_status(EX_PROTOCOL, "malformed stats reply from qmgr");
        *eq = '\0';
        dest->values[dest->count] = strtoll(eq + 1, &end, 10);
        if (*end != '\0' || end == eq + 1)
            msg_fatal_status(EX_PROTOCOL, "malformed stats reply from qmgr");
        dest->keys[dest->count++] = mystrdup(word);
    }
    myfree(copy);
}

/* stats_get - one figure of a destination, 0 when absent */
static long long stats_get(const STATS_DEST *dest, const char *key)
{
    for (int i = 0; i < dest->count; i++)
        if (strcmp(dest->keys[i], key) == 0)
            return dest->values[i];
    return 0;
}

/* stats_free_dest - release a parsed destination */
static void stats_free_dest(STATS_DEST *dest)
{
    myfree(dest->name);
    for (int i = 0; i < dest->count; i++)
        myfree(dest->keys[i]);
}

/* stats_per_connection - messages per connection, one decimal */
static double stats_per_connection(const STATS_DEST *dest)
{
    long long conns = stats_get(dest, "opened");

    /* Connections opened before a qmgr restart still count as one each. */
    if (conns < stats_get(dest, "open"))
        conns = stats_get(dest, "open");
    return conns > 0 ? (double)stats_get(dest, "messages") / (double)conns : 0.0;
}

/* stats_print_text - the human-readable report */
static void stats_print_text(const IPC_REC *reply, STATS_DEST *dests, size_t ndest)
{
    printf("queue: %s messages, %s active, %s deferred, %s on hold\n",
           ipc_rec_get(reply, "messages"), ipc_rec_get(reply, "active"),
           ipc_rec_get(reply, "deferred"), ipc_rec_get(reply, "hold"));
    for (size_t i = 0; i < ndest; i++) {
        STATS_DEST *d = dests + i;
        const char *sep = "";

        printf("destination %s\n", d->name);
        if (stats_get(d, "suspended"))
            printf("  suspended: down for %lld s, next probe in %lld s, %lld messages parked\n",
                   stats_get(d, "suspended_for"), stats_get(d, "next_probe_in"),
                   stats_get(d, "parked"));
        printf("  connections: %lld open (%lld busy, %lld idle), %lld opened, %lld closed\n",
               stats_get(d, "open"), stats_get(d, "busy"), stats_get(d, "idle"),
               stats_get(d, "opened"), stats_get(d, "closed"));
        printf("  closed by:  ");
        for (int k = 0; k < d->count; k++)
            if (strncmp(d->keys[k], "closed_", 7) == 0 && d->values[k] > 0) {
                printf("%s %s=%lld", sep, d->keys[k] + 7, d->values[k]);
                sep = ",";
            }
        printf("%s\n", *sep ? "" : " nothing yet");
        printf("  messages: %lld delivered, %.1f per connection; recipients: %lld sent, "
               "%lld deferred, %lld bounced; %lld jobs queued\n",
               stats_get(d, "messages"), stats_per_connection(d), stats_get(d, "rcpt_sent"),
               stats_get(d, "rcpt_deferred"), stats_get(d, "rcpt_bounced"), stats_get(d, "queued"));
        printf("  tls: %lld handshakes, %lld resumed; auth: %lld ok, %lld failed; timeouts: %lld\n",
               stats_get(d, "tls"), stats_get(d, "tls_resumed"), stats_get(d, "auth_ok"),
               stats_get(d, "auth_fail"), stats_get(d, "timeouts"));
    }
}

/* stats_print_json - one JSON object on one line */
static void stats_print_json(const IPC_REC *reply, STATS_DEST *dests, size_t ndest)
{
    printf("{\"queue\": {\"messages\": %s, \"active\": %s, \"deferred\": %s, \"hold\": %s}, "
           "\"destinations\": [",
           ipc_rec_get(reply, "messages"), ipc_rec_get(reply, "active"),
           ipc_rec_get(reply, "deferred"), ipc_rec_get(reply, "hold"));
    for (size_t i = 0; i < ndest; i++) {
        STATS_DEST *d = dests + i;

        /* Destination names are host:port, checked by qmgr: no quoting needed
         * beyond what a host name can hold, but escape anyway. */
        printf("%s{\"name\": \"", i ? ", " : "");
        for (const char *cp = d->name; *cp; cp++)
            printf(*cp == '"' || *cp == '\\' ? "\\%c" : "%c", *cp);
        printf("\"");
        for (int k = 0; k < d->count; k++)
            printf(", \"%s\": %lld", d->keys[k], d->values[k]);
        printf(", \"messages_per_connection\": %.1f}", stats_per_connection(d));
    }
    printf("]}\n");
}

/* stats_main - "relayq stats [-c FILE] [--json]" */
int stats_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'}, {0, 0, 0, 0}};
    IPC_REC *req = ipc_rec_create("stats"), *reply = NULL;
    VSTR *why = vstr_alloc(100);
    const char *config = NULL;
    STATS_DEST *dests;
    size_t ndest = 0;
    int json = 0, ch;

    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+c:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            relayq_usage("stats", NULL);
        }
    }
    if (optind != argc)
        relayq_usage("stats", NULL);
    relayq_load_config(config);
    relayq_read_as_mail_owner();

    reply = control_qmgr(req, "stats request", STATS_TIMEOUT_MS);
    if (strcmp(ipc_rec_type(reply), "stats") != 0 ||
        ipc_rec_check(reply, "messages,active,deferred,hold", "dest*", why) < 0)
        msg_fatal_status(EX_PROTOCOL, "unexpected reply from qmgr: %s",
                         strcmp(ipc_rec_type(reply), "stats") ? ipc_rec_type(reply)
                                                              : vstr_str(why));
    {
        static const char *const counts[] = {"messages", "active", "deferred", "hold"};
        long long n;

        for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
            if (ipc_rec_get_long(reply, counts[i], 0, 1LL << 62, &n, why) < 0)
                msg_fatal_status(EX_PROTOCOL, "unexpected reply from qmgr: %s", vstr_str(why));
    }
    dests = mycalloc(reply->count, sizeof(*dests));
    for (size_t i = 1; i < reply->count; i++)
        if (strcmp(reply->attrs[i].name, "dest") == 0)
            stats_parse_dest(reply->attrs[i].value, dests + ndest++);
    if (json)
        stats_print_json(reply, dests, ndest);
    else
        stats_print_text(reply, dests, ndest);
    for (size_t i = 0; i < ndest; i++)
        stats_free_dest(dests + i);
    myfree(dests);
    ipc_rec_free(reply);
    ipc_rec_free(req);
    vstr_free(why);
    return 0;
}
