/*
 * route - where each recipient's mail goes
 *
 * route_init(), route_reload()
 *	read transport_maps and sender_dependent_relayhost_maps (text files,
 *	common/mail/maps.c) and check every relay list in them and in
 *	relayhost. At start an error is fatal (file:line: reason); on reload
 *	it is a warning and the old tables stay (returns -1).
 * route_for()
 *	the route of one recipient: transport_maps by the recipient's domain
 *	(the domain, then ".parent" entries for each parent domain, then
 *	"*"), else sender_dependent_relayhost_maps by the sender (the address,
 *	then "@domain"), else relayhost. A transport_maps value may carry
 *	Postfix's "smtp:" or "relay:" prefix; an empty next hop (":" or
 *	"smtp:") means the default route. Values are relay lists, e.g.
 *	"[smtp1.example.net]:587, [smtp2.example.net]:587": relays are tried
 *	in order.
 * route_pick()
 *	the first relay of a route that is not suspended (dest.c), or that
 *	is suspended with its probe due and no job yet (this message is the
 *	probe); when none is, the first.
 *
 * Routes are made once per distinct relay list and live as long as the
 * process; credentials and TLS policy follow the relay a job goes to.
 */
#include "config.h"

#include <string.h>

#include "htable.h"
#include "maps.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"

static HTABLE *route_cache;   /* relay list -> QMGR_ROUTE */
static MAPS *route_transport; /* transport_maps */
static MAPS *route_sender;    /* sender_dependent_relayhost_maps */

/* route_add_dest - params_parse_relays callback: one more relay of a route */
static void route_add_dest(const RELAY_ADDR *relay, void *ctx)
{
    QMGR_ROUTE *route = ctx;

    route->dests = myrealloc(route->dests, sizeof(*route->dests) * (route->ndests + 1));
    route->dests[route->ndests++] = dest_find(relay->host, relay->port);
}

/* route_parse - the route of a relay list, made and cached on first use; NULL + why */
static QMGR_ROUTE *route_parse(const char *spec, VSTR *why)
{
    QMGR_ROUTE *route = route_cache ? htable_get(route_cache, spec) : NULL;

    if (route)
        return route;
    route = mycalloc(1, sizeof(*route));
    route->spec = mystrdup(spec);
    if (params_parse_relays(spec, route_add_dest, route, why) < 0) {
        myfree(route->dests);
        myfree(route->spec);
        myfree(route);
        return NULL;
    }
    if (route->ndests == 0) {
        vstr_sprintf(why, "empty relay list \"%s\"", spec);
        myfree(route->spec);
        myfree(route);
        return NULL;
    }
    if (route_cache == NULL)
        route_cache = htable_create(16);
    htable_put(route_cache, spec, route);
    return route;
}

/* Checking every value of a map while it loads. */
typedef struct ROUTE_CHECK {
    VSTR *why;
    int transport; /* values may have a transport prefix or be empty */
    int bad;
} ROUTE_CHECK;

/* route_check_value - htable_walk callback: does a value parse */
static void route_check_value(const char *key, void *value, void *ctx)
{
    ROUTE_CHECK *check = ctx;
    const char *spec = check->transport ? params_nexthop(value) : value;
    VSTR *why;

    if (check->bad || *spec == '\0')
        return;
    why = vstr_alloc(100);
    if (route_parse(spec, why) == NULL) {
        vstr_sprintf(check->why, "entry \"%s\": %s", key, vstr_str(why));
        check->bad = 1;
    }
    vstr_free(why);
}

/* route_load - open one map and check its values; 0 or -1 with why */
static int route_load(const char *param, int transport, MAPS **out, VSTR *why)
{
    ROUTE_CHECK check = {.why = vstr_alloc(100), .transport = transport};
    MAPS *map = maps_open(config_str(var_config, param), why);
    VSTR *reason;

    if (map == NULL && vstr_len(why) > 0) {
        vstr_free(check.why);
        return -1;
    }
    if (map != NULL) {
        maps_walk(map, route_check_value, &check);
        if (check.bad) {
            reason = vstr_alloc(100);
            vstr_sprintf(reason, "%s: %s: %s", param, maps_path(map), vstr_str(check.why));
            vstr_strcpy(why, vstr_str(reason));
            vstr_free(reason);
            maps_free(map);
            vstr_free(check.why);
            return -1;
        }
    }
    vstr_free(check.why);
    *out = map;
    return 0;
}

/* route_reload - read the routing tables again */
int route_reload(void)
{
    VSTR *why = vstr_alloc(100);
    MAPS *transport = NULL, *sender = NULL;

    vstr_reset(why);
    if (route_parse(var_str(relayhost), why) == NULL ||
        route_load("transport_maps", 1, &transport, why) < 0 ||
        route_load("sender_dependent_relayhost_maps", 0, &sender, why) < 0) {
        msg_warn("routing tables not reloaded: %s", vstr_str(why));
        maps_free(transport);
        vstr_free(why);
        return -1;
    }
    maps_free(route_transport);
    maps_free(route_sender);
    route_transport = transport;
    route_sender = sender;
    vstr_free(why);
    return 0;
}

/* route_init - the routing tables at start, or a fatal error */
void route_init(void)
{
    VSTR *why = vstr_alloc(100);

    if (route_parse(var_str(relayhost), why) == NULL)
        msg_fatal("%s: relayhost: %s", config_path(var_config), vstr_str(why));
    vstr_reset(why);
    if (route_load("transport_maps", 1, &route_transport, why) < 0 ||
        route_load("sender_dependent_relayhost_maps", 0, &route_sender, why) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
}

/* route_lookup - a relay list for a recipient or sender, or NULL */
static const char *route_lookup(const char *sender, const char *rcpt)
{
    const char *domain = strrchr(rcpt, '@'), *value, *dot;

    if (route_transport && domain) {
        domain++;
        if ((value = maps_find(route_transport, domain)) != NULL && *params_nexthop(value))
            return params_nexthop(value);
        for (dot = strchr(domain, '.'); dot; dot = strchr(dot + 1, '.'))
            if ((value = maps_find(route_transport, dot)) != NULL && *params_nexthop(value))
                return params_nexthop(value);
        if ((value = maps_find(route_transport, "*")) != NULL && *params_nexthop(value))
            return params_nexthop(value);
    }
    if (route_sender && *sender) {
        if ((value = maps_find(route_sender, sender)) != NULL)
            return value;
        if ((domain = strrchr(sender, '@')) != NULL &&
            (value = maps_find(route_sender, domain)) != NULL)
            return value;
    }
    return NULL;
}

/* route_for - the route of one recipient */
QMGR_ROUTE *route_for(const char *sender, const char *rcpt)
{
    const char *spec = route_lookup(sender, rcpt);
    VSTR *why = vstr_alloc(100);
    QMGR_ROUTE *route = route_parse(spec ? spec : var_str(relayhost), why);

    /* Every value was checked when its table loaded. */
    if (route == NULL)
        msg_panic("route for <%s>: %s", rcpt, vstr_str(why));
    vstr_free(why);
    return route;
}

/* route_pick - the relay to try now */
QMGR_DEST *route_pick(const QMGR_ROUTE *route)
{
    /* A relay earlier in the list gets its probe before a later one takes its mail. */
    for (size_t i = 0; i < route->ndests; i++)
        if (!dest_suspended(route->dests[i]) || dest_probe_wanted(route->dests[i]))
            return route->dests[i];
    return route->dests[0];
}
