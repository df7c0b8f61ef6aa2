/*
 * shared - provider limits shared by every relayq instance through Redis
 *
 * shared_create()
 *	the shared limits of shared_limits_server, or NULL when it is empty
 *	(every limit stays per instance). Connects from the event loop.
 * shared_reload()
 *	follow a changed configuration: the same object when
 *	shared_limits_server and shared_limits_fallback_share did not
 *	change, else a new one (grants in flight are answered as
 *	unavailable and asked for again).
 * shared_free()
 *	close the connection (reload with another server, exit).
 * shared_applies()
 *	whether a destination's limits are shared: a server is set and its
 *	destination_policy_maps entry does not say "local".
 * shared_dest_key()
 *	the name a destination's limits are shared under: its shared_key=,
 *	or "host:port" of the relay.
 * shared_rate_take()
 *	may one more message start to a destination whose rate is shared:
 *	1 (a token granted by the server, used now), 0 (not yet; *wait_ms
 *	says when to ask again), or -1 (the server is unavailable: the
 *	caller applies its local share of the rate, shared_fallback_share()).
 *	While the first connection to the server is being made, 0: a server
 *	not reached yet is not an unavailable one (shared_conn_settled()),
 *	and the same holds for shared_lease_take() and shared_auth_fresh().
 *	Grants are asked for ahead and in small batches when the rate is
 *	high, so the loop never waits on the server: a job starts only on a
 *	token already granted, and the grant's reply wakes the loop.
 * shared_rate_unget()
 *	give back the token shared_rate_take() granted, unused (a local
 *	limit stopped the job after all).
 * shared_lease_take()
 *	may a worker that has no connection to a destination whose
 *	concurrency is shared open one: 1 (a lease of the shared limit that
 *	no connection of this instance uses), 0 (not now; an acquisition is
 *	in flight or every slot was taken), -1 (the server is unavailable:
 *	the caller applies its share, dest.c).
 * shared_lease_users()
 *	connections of this instance to a destination, open or opening.
 * shared_stats()
 *	append a destination's shared limits to its "relayq stats" figures:
 *	shared=1, the shared rate (in thousandths), concurrency and leases
 *	held, daily quota and what was left (and so used) at the last
 *	answer, the instances counted, and whether local shares are in
 *	force.
 * shared_stats_instances()
 *	add the names of the instances in the group (myhostname and
 *	queue_directory of each; SHARED_NAMES_MAX of them, at
 *	most SHARED_NAME_LEN bytes each) to the stats reply, one "instance"
 *	attribute each; the count is shared_instances.
 * shared_auth_rejected(), shared_auth_ok(), shared_auth_fresh()
 *	a credential the relay rejected (5xx to AUTH, smtpout's auth_fail
 *	event with reason=rejected) is suspended for every instance for
 *	smtp_sasl_auth_failure_suspend (smtpout's own suspension lasts as
 *	long); a successful login clears the need of a probe; a new
 *	connection to a relay logs in only
 *	on the server's word (at most SHARED_AUTH_FRESH_MS old) that the
 *	credential is not suspended and no other instance probes it (while
 *	the server is unavailable, it does). A suspended destination is held
 *	(dest_hold) with the reason; after the suspension one instance
 *	claims the probe, the others wait for its outcome.
 * shared_fallback_share()
 *	the share of each limit this instance uses while the server is
 *	unavailable: shared_limits_fallback_share, or 1/N where N is the
 *	number of instances seen in the last SHARED_INSTANCE_TTL seconds.
 *
 * The rate is a GCRA (generic cell rate algorithm) in one Lua script:
 * the key holds the theoretical arrival time of the next message, in
 * microseconds of the server's clock (TIME), so the instances' clocks do
 * not matter; one round trip grants up to the batch asked for, or says
 * how long until the next message conforms. The burst tolerance is what
 * the batch needs, at least SHARED_BURST_MS, so that the time an
 * instance takes to ask again is not lost to the rate.
 *
 * Concurrency: leases in a sorted set per limit, scored by expiry on the
 * server's clock; one Lua script takes a lease while fewer than the
 * limit are live and renews those held. A connection (a worker whose
 * open connection goes to the relay, or that was given a job there)
 * needs a lease; every SHARED_TICK_MS the leases are renewed when due
 * (SHARED_RENEW_MS, lease time SHARED_LEASE_MS), those no connection uses
 * are given back once no mail waits, and when no mail has waited for
 * SHARED_IDLE_RELEASE_MS the relay's idle connections are asked to close
 * ("type=release" to the worker), so that other instances get the slots.
 *
 * Instances: every SHARED_REGISTER_MS each instance adds itself
 * (myhostname and queue_directory) to a sorted set scored by expiry,
 * drops the expired ones and learns how many there are (the N of 1/N)
 * and up to SHARED_NAMES_MAX of their names (for "relayq stats"),
 * logged when it changes ("shared limits: N instances in the group").
 * The last count is kept while the server is away; an instance that
 * never reached the server counts 1.
 *
 * When the server is unavailable (connection refused or lost, a request
 * not answered within shared_conn.c's timeout), the instance logs once
 * "shared limits unavailable (REASON): using a local share of S of each
 * limit", applies that share, and on the first answer after that logs
 * "shared limits available again after Ns". Nothing else changes: no
 * mail is deferred, bounced or held because of the server.
 *
 * Ownership: qmgr owns the SHARED object (qmgr_shared); each destination
 * owns its grants (QMGR_DEST.grants). Nothing here is fatal.
 */
#include "config.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"

#define SHARED_PREFIX "relayq:"     /* every key relayq writes starts with it */
#define SHARED_REGISTER_MS 5000     /* between registrations of the instance */
#define SHARED_INSTANCE_TTL 20      /* s: an instance counts that long after its last */
#define SHARED_BATCH_MS 50          /* a batch of tokens covers that much of the rate */
#define SHARED_DAILY_BATCH 10       /* tokens asked for at once under a quota without a rate */
#define SHARED_BATCH_MAX 50         /* most tokens asked for at once */
#define SHARED_BURST_MS 100         /* least burst tolerance of the rate */
#define SHARED_TOKEN_TTL_MS 1000    /* a granted token unused that long is dropped */
#define SHARED_REPLY_WAIT_MS 1000   /* a grant in flight: its reply wakes the loop first */
#define SHARED_LEASE_MS 15000       /* a lease not renewed is free again after that */
#define SHARED_RENEW_MS 5000        /* between renewals of the leases held */
#define SHARED_TICK_MS 500          /* between looks at the leases held */
#define SHARED_START_WAIT_MS 50     /* between looks while the first connection is made */
#define SHARED_AUTH_FRESH_MS 1000   /* a new connection logs in on an answer this recent */
#define SHARED_AUTH_PROBE_MS 30000  /* the longest one instance's probe of it holds the others */
#define SHARED_IDLE_RELEASE_MS 1000 /* no mail waits that long: idle connections close */
#define SHARED_NAMES_MAX 16         /* instances "relayq stats" names; the rest are counted */
#define SHARED_NAME_LEN 200         /* bytes of an instance's name kept */

/* The scripts, in the order of SHARED_SCRIPT_*. */
enum {
    SHARED_SCRIPT_RATE,
    SHARED_SCRIPT_REGISTER,
    SHARED_SCRIPT_LEASE,
    SHARED_SCRIPT_UNLEASE,
    SHARED_SCRIPT_AUTHFAIL,
    SHARED_SCRIPT_AUTHCHECK,
    SHARED_SCRIPT_AUTHOK
};

static const char *const shared_scripts[] = {
    /* Grants. KEYS[1]: the rate's state (GCRA), KEYS[2]: the daily
     * quota's counts per hour; ARGV: microseconds per message (0: no
     * rate), messages wanted, burst tolerance in microseconds, the daily
     * quota (0: none). The quota is a rolling window of 24 to 25 hours: a
     * message counts in its hour's bucket until 25 buckets later. Returns
     * {granted, microseconds until the rate allows one (none granted),
     * seconds until the quota frees one (none granted), quota left}. */
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local step = tonumber(ARGV[1])\n"
    "local want = tonumber(ARGV[2])\n"
    "local burst = tonumber(ARGV[3])\n"
    "local daily = tonumber(ARGV[4])\n"
    "local hour = math.floor(tonumber(t[1]) / 3600)\n"
    "local used, oldest = 0, hour\n"
    "if daily > 0 then\n"
    "  local h = redis.call('HGETALL', KEYS[2])\n"
    "  for i = 1, #h, 2 do\n"
    "    local b = tonumber(h[i])\n"
    "    if b < hour - 24 then redis.call('HDEL', KEYS[2], h[i])\n"
    "    else\n"
    "      used = used + tonumber(h[i + 1])\n"
    "      if b < oldest then oldest = b end\n"
    "    end\n"
    "  end\n"
    "  if used >= daily then\n"
    "    return {0, 0, (oldest + 25) * 3600 - tonumber(t[1]), 0}\n"
    "  end\n"
    "  if want > daily - used then want = daily - used end\n"
    "end\n"
    "local room = want\n"
    "if step > 0 then\n"
    "  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "  if tat < now then tat = now end\n"
    "  room = math.floor((now + burst + step - tat) / step)\n"
    "  if room < 1 then return {0, math.ceil(tat - burst - now), 0, daily - used} end\n"
    "  if room > want then room = want end\n"
    "  tat = tat + room * step\n"
    "  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',\n"
    "             math.ceil((tat - now) / 1000) + 1000)\n"
    "end\n"
    "if daily > 0 then\n"
    "  redis.call('HINCRBY', KEYS[2], string.format('%d', hour), room)\n"
    "  redis.call('EXPIRE', KEYS[2], 25 * 3600 + 60)\n"
    "end\n"
    "return {room, 0, 0, daily - used - room}\n",
    /* KEYS[1]: the instances, scored by expiry; ARGV: this instance,
     * seconds it counts, most names wanted. Returns how many instances
     * count now, then the first names of them. */
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local ttl = tonumber(ARGV[2])\n"
    "redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "redis.call('EXPIRE', KEYS[1], ttl * 2)\n"
    "local names = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)\n"
    "table.insert(names, 1, redis.call('ZCARD', KEYS[1]))\n"
    "return names\n",
    /* KEYS[1]: the leases, scored by expiry (ms); ARGV: the limit, the
     * lease time in ms, then lease ids. Each id held is renewed, each
     * other one taken while the limit allows. Returns 1 (held) or 0 per id. */
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local limit = tonumber(ARGV[1])\n"
    "local ttl = tonumber(ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local held = {}\n"
    "for i = 3, #ARGV do\n"
    "  if redis.call('ZSCORE', KEYS[1], ARGV[i]) or\n"
    "     redis.call('ZCARD', KEYS[1]) < limit then\n"
    "    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])\n"
    "    held[#held + 1] = 1\n"
    "  else\n"
    "    held[#held + 1] = 0\n"
    "  end\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], ttl * 2)\n"
    "return held\n",
    /* KEYS[1]: the leases; ARGV: lease ids given back. */
    "return redis.call('ZREM', KEYS[1], unpack(ARGV))\n",
    /* AUTH rejected. KEYS: the suspension, the need of a probe, the
     * prober; ARGV: this instance, the suspension in ms. The first
     * rejection of an interval sets it. Returns its ms left. */
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX')\n"
    "redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400)\n"
    "redis.call('DEL', KEYS[3])\n"
    "return redis.call('PTTL', KEYS[1])\n",
    /* May this instance log in. KEYS as above; ARGV: this instance, how
     * long a probe may take in ms. Returns {0} (yes), {1, ms, who} (the
     * credential is suspended), {2, ms} (another instance probes it):
     * after a suspension one instance tries first. */
    "local left = redis.call('PTTL', KEYS[1])\n"
    "if left > 0 then return {1, left, redis.call('GET', KEYS[1])} end\n"
    "if redis.call('EXISTS', KEYS[2]) == 0 then return {0} end\n"
    "local prober = redis.call('GET', KEYS[3])\n"
    "if prober == false then\n"
    "  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])\n"
    "  return {0}\n"
    "end\n"
    "if prober == ARGV[1] then return {0} end\n"
    "return {2, redis.call('PTTL', KEYS[3])}\n",
    /* AUTH accepted: the credential is good again. KEYS as above. */
    "return redis.call('DEL', KEYS[2], KEYS[3])\n",
    NULL,
};

/* SHARED models this instance's membership in the group that shares limits. */
struct SHARED {
    SHARED_CONN *conn;
    char *url;                     /* shared_limits_server as configured */
    char *share_text;              /* shared_limits_fallback_share as configured */
    char *server;                  /* shared_limits_server without the password, for the log */
    char *instance;                /* this instance's name in the group */
    int instances;                 /* instances seen recently, at least 1 */
    char *names[SHARED_NAMES_MAX]; /* some of their names, at the last count */
    int nnames;
    double share;            /* shared_limits_fallback_share, 0: 1/instances */
    int fallback;            /* local shares in force (logged once) */
    long long down_ms;       /* when the fallback began */
    int register_pending;    /* a registration in flight */
    int counted;             /* instances is the server's count, not the default */
    unsigned long lease_seq; /* the last lease id made */
};

static void shared_register(void *ctx);
static void shared_tick(void *ctx);
static void shared_lease_forget(QMGR_DEST *dest);
static void shared_auth_check(SHARED *sh, QMGR_DEST *dest);
static void shared_tick(void *ctx);

/* shared_state - the connection went up or down */
static void shared_state(void *ctx, int up, const char *why)
{
    SHARED *sh = ctx;

    if (up) {
        if (sh->fallback)
            msg_info("shared limits available again from %s after %llds", sh->server,
                     (now_ms() - sh->down_ms + 500) / 1000);
        sh->fallback = 0;
        shared_register(sh);
        return;
    }
    if (sh->fallback)
        return;
    sh->fallback = 1;
    sh->down_ms = now_ms();
    msg_warn("shared limits unavailable (%s: %s): using a local share of %.3g of each limit%s",
             sh->server, why ? why : "no answer", shared_fallback_share(sh),
             sh->share > 0 ? "" : " (1/instances seen)");
}

/* shared_names_clear - forget the instances' names */
static void shared_names_clear(SHARED *sh)
{
    for (int i = 0; i < sh->nnames; i++)
        myfree(sh->names[i]);
    sh->nnames = 0;
}

/* shared_name_keep - keep an instance's name, bounded, control characters as '?' */
static void shared_name_keep(SHARED *sh, const char *name, size_t len)
{
    char *copy;

    if (sh->nnames == SHARED_NAMES_MAX)
        return;
    copy = mystrndup(name, len > SHARED_NAME_LEN ? SHARED_NAME_LEN : len);
    for (char *cp = copy; *cp; cp++)
        if ((unsigned char)*cp < 0x20 || *cp == 0x7f)
            *cp = '?';
    sh->names[sh->nnames++] = copy;
}

/* shared_registered - the group's size and names, as the server counted them */
static void shared_registered(void *ctx, const redisReply *reply, const char *why)
{
    SHARED *sh = ctx;

    (void)why;
    sh->register_pending = 0;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer >= 1) {
        int n = reply->element[0]->integer > 100000 ? 100000 : (int)reply->element[0]->integer;

        shared_names_clear(sh);
        for (size_t i = 1; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                shared_name_keep(sh, reply->element[i]->str, reply->element[i]->len);

        /* Logged when it changes: the fallback share follows it. */
        if (n != sh->instances || !sh->counted)
            msg_info("shared limits: %d instance%s in the group", n, n == 1 ? "" : "s");
        sh->instances = n;
        sh->counted = 1;
    } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        msg_warn("shared limits: registering the instance: %.200s", reply->str);
}

/* shared_register - timer: say this instance is alive, learn how many are */
static void shared_register(void *ctx)
{
    SHARED *sh = ctx;
    char ttl[16], most[16];
    const char *argv[] = {SHARED_PREFIX "instances", sh->instance, ttl, most};

    event_request_timer(shared_register, sh, SHARED_REGISTER_MS);
    if (sh->register_pending)
        return;
    snprintf(ttl, sizeof(ttl), "%d", SHARED_INSTANCE_TTL);
    snprintf(most, sizeof(most), "%d", SHARED_NAMES_MAX);
    if (shared_conn_script(sh->conn, SHARED_SCRIPT_REGISTER, shared_registered, sh, 1, 4, argv) ==
        0)
        sh->register_pending = 1;
}

/* shared_create - the shared limits of the configured server, or NULL */
SHARED *shared_create(RESOLVER *resolver)
{
    const char *url = var_str(shared_limits_server);
    SHARED *sh;
    VSTR *why;
    char *host, *password;
    int port, db;

    if (*url == '\0')
        return NULL;
    sh = mycalloc(1, sizeof(*sh));
    why = vstr_alloc(100);
    sh->instances = 1;
    sh->url = mystrdup(url);
    sh->share_text = mystrdup(var_str(shared_limits_fallback_share));
    sh->share =
        *var_str(shared_limits_fallback_share) ? atof(var_str(shared_limits_fallback_share)) : 0;
    if (shared_conn_parse(url, &host, &port, &password, &db, why) < 0)
        msg_fatal("shared_limits_server: %s", vstr_str(why));
    vstr_sprintf(why, "redis://%s:%d/%d", host, port, db);
    sh->server = mystrdup(vstr_str(why));
    myfree(host);
    myfree(password);
    vstr_sprintf(why, "%s:%s", var_str(myhostname), var_str(queue_directory));
    sh->instance = mystrdup(vstr_str(why));
    if ((sh->conn = shared_conn_create(url, shared_scripts, resolver, shared_state, sh, why)) ==
        NULL)
        msg_fatal("shared_limits_server: %s", vstr_str(why));
    vstr_free(why);
    msg_info("sharing limits through %s as %s", sh->server, sh->instance);
    event_request_timer(shared_tick, sh, SHARED_TICK_MS);
    return sh;
}

/* shared_free - leave the group */
void shared_free(SHARED *sh)
{
    if (sh == NULL)
        return;
    event_cancel_timer(shared_register, sh);
    event_cancel_timer(shared_tick, sh);
    shared_conn_free(sh->conn);
    /* The server forgets the leases when they are not renewed. */
    for (QMGR_DEST *dest = dest_list(); dest; dest = dest->next)
        shared_lease_forget(dest);
    myfree(sh->url);
    myfree(sh->share_text);
    myfree(sh->server);
    myfree(sh->instance);
    shared_names_clear(sh);
    myfree(sh);
}

/* shared_reload - the same object, or a new one for a changed configuration */
SHARED *shared_reload(SHARED *sh, RESOLVER *resolver)
{
    if (sh != NULL && strcmp(sh->url, var_str(shared_limits_server)) == 0 &&
        strcmp(sh->share_text, var_str(shared_limits_fallback_share)) == 0)
        return sh;
    shared_free(sh);
    return shared_create(resolver);
}

/* shared_applies - are a destination's limits shared */
int shared_applies(const SHARED *sh, const QMGR_DEST *dest)
{
    return sh != NULL && !dest->shared_local;
}

/* shared_dest_key - the name a destination's limits are shared under */
const char *shared_dest_key(const QMGR_DEST *dest)
{
    return dest->shared_key ? dest->shared_key : dest->name;
}

/* shared_fallback_share - this instance's share while the server is away */
double shared_fallback_share(const SHARED *sh)
{
    return sh->share > 0 ? sh->share : 1.0 / sh->instances;
}

/* shared_granted - the server answered a grant request */
static void shared_granted(void *ctx, const redisReply *reply, const char *why)
{
    QMGR_DEST *dest = ctx;
    QMGR_GRANTS *g = &dest->grants;
    long long now = now_ms();
    VSTR *reason;

    (void)why;
    g->pending = 0;
    if (reply == NULL)
        return; /* unavailable: shared_state() saw it first */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_INTEGER ||
        reply->element[3]->type != REDIS_REPLY_INTEGER) {
        msg_warn("%s: shared rate: unexpected reply%s%.200s", dest->name,
                 reply->type == REDIS_REPLY_ERROR ? ": " : "",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        /* Not a reason to stop: ask again a little later. */
        g->not_before_ms = now + SHARED_REPLY_WAIT_MS;
        return;
    }
    g->daily_left = reply->element[3]->integer;
    g->daily_known = 1;
    g->fallback_sent = 0;
    if (reply->element[0]->integer > 0) {
        g->tokens += (int)reply->element[0]->integer;
        g->granted_ms = now;
    } else if (reply->element[2]->integer > 0) {
        /* The daily quota is used up: the mail waits until the window frees a slot. */
        reason = vstr_alloc(100);
        vstr_sprintf(reason, "daily quota of %d messages for %s reached (rolling 24 h)",
                     dest->daily, shared_dest_key(dest));
        dest_hold(dest, reply->element[2]->integer * 1000, vstr_str(reason));
        vstr_free(reason);
    } else {
        g->not_before_ms = now + (reply->element[1]->integer + 999) / 1000;
    }
}

/* shared_rate_ask - ask the server for a batch of tokens; 0, or -1 when unavailable */
static int shared_rate_ask(SHARED *sh, QMGR_DEST *dest)
{
    double rate = dest->rate_limit;
    double step = rate > 0 ? 1e6 / rate : 0;
    long long batch = rate > 0 ? (long long)(rate * SHARED_BATCH_MS / 1000.0 + 0.5)
                               : SHARED_DAILY_BATCH,
              burst;
    char keys[2][512], step_arg[32], want_arg[32], burst_arg[32], daily_arg[16];
    const char *argv[] = {keys[0], keys[1], step_arg, want_arg, burst_arg, daily_arg};

    if (batch < 1)
        batch = 1;
    if (batch > SHARED_BATCH_MAX)
        batch = SHARED_BATCH_MAX;
    /* Never more than the mail that waits: unused tokens are lost to all. */
    if (batch > (long long)dest->jobs.count)
        batch = dest->jobs.count > 0 ? (long long)dest->jobs.count : 1;
    burst = (long long)(step * (double)(batch - 1));
    if (burst < SHARED_BURST_MS * 1000LL)
        burst = SHARED_BURST_MS * 1000LL;
    snprintf(keys[0], sizeof(keys[0]), SHARED_PREFIX "rate:%s", shared_dest_key(dest));
    snprintf(keys[1], sizeof(keys[1]), SHARED_PREFIX "daily:%s", shared_dest_key(dest));
    snprintf(step_arg, sizeof(step_arg), "%.0f", rate > 0 && step < 1 ? 1 : step);
    snprintf(want_arg, sizeof(want_arg), "%lld", batch);
    snprintf(burst_arg, sizeof(burst_arg), "%lld", burst);
    snprintf(daily_arg, sizeof(daily_arg), "%d", dest->daily);
    if (shared_conn_script(sh->conn, SHARED_SCRIPT_RATE, shared_granted, dest, 2, 6, argv) < 0)
        return -1;
    dest->grants.pending = 1;
    return 0;
}

/* shared_rate_take - may a message start under the shared rate and daily quota */
int shared_rate_take(SHARED *sh, QMGR_DEST *dest, long long *wait_ms)
{
    long long now = now_ms();
    QMGR_GRANTS *g = &dest->grants;

    if (!shared_conn_up(sh->conn)) {
        g->tokens = 0;
        if (!shared_conn_settled(sh->conn)) {
            *wait_ms = SHARED_START_WAIT_MS;
            return 0;
        }
        return -1;
    }
    if (g->tokens > 0 && now - g->granted_ms > SHARED_TOKEN_TTL_MS)
        g->tokens = 0; /* kept too long: spending them now would be a burst */
    if (g->tokens > 0) {
        g->tokens--;
        /* Ask ahead for the next batch while this one is spent. */
        if (g->tokens == 0 && !g->pending && dest->jobs.count > 1 && now >= g->not_before_ms)
            (void)shared_rate_ask(sh, dest);
        return 1;
    }
    if (g->pending) {
        *wait_ms = SHARED_REPLY_WAIT_MS;
        return 0;
    }
    if (now < g->not_before_ms) {
        *wait_ms = g->not_before_ms - now;
        return 0;
    }
    if (shared_rate_ask(sh, dest) < 0)
        return -1;
    *wait_ms = SHARED_REPLY_WAIT_MS;
    return 0;
}

/*
 * shared_daily_fallback - while the server is away: may one more message
 * go under this instance's share of what was left of the daily quota at
 * the server's last answer (when it never answered, the quota is not
 * enforced until it does). Counts the message.
 */
int shared_daily_fallback(const SHARED *sh, QMGR_DEST *dest)
{
    QMGR_GRANTS *g = &dest->grants;

    if (dest->daily <= 0 || !g->daily_known)
        return 1;
    if ((double)g->fallback_sent >= (double)g->daily_left * shared_fallback_share(sh))
        return 0;
    g->fallback_sent++;
    return 1;
}

/* shared_rate_unget - a granted token was not used */
void shared_rate_unget(QMGR_DEST *dest)
{
    dest->grants.tokens++;
}

/* shared_lease_forget - drop the leases a destination holds, in memory only */
static void shared_lease_forget(QMGR_DEST *dest)
{
    QMGR_LEASES *l = &dest->leases;

    for (int i = 0; i < l->count; i++)
        myfree(l->ids[i]);
    myfree(l->ids);
    myfree(l->asking);
    memset(l, 0, sizeof(*l));
}

/* shared_lease_key - the server's key of a destination's leases */
static void shared_lease_key(const QMGR_DEST *dest, char *key, size_t size)
{
    snprintf(key, size, SHARED_PREFIX "conc:%s", shared_dest_key(dest));
}

/* shared_lease_users - connections of this instance to the destination, open or opening */
int shared_lease_users(const QMGR_DEST *dest, const QMGR_PEER *except)
{
    int users = 0;

    for (const QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next)
        if (peer != except && peer->kind == PEER_WORKER &&
            (peer->conn_dest == dest || (peer->job != NULL && peer->job->dest == dest)))
            users++;
    return users;
}

/* shared_leased - the server answered an acquisition or a renewal */
static void shared_leased(void *ctx, const redisReply *reply, const char *why)
{
    QMGR_DEST *dest = ctx;
    QMGR_LEASES *l = &dest->leases;
    int kept = 0;

    (void)why;
    l->pending = 0;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL)
            msg_warn("%s: shared concurrency: unexpected reply%s%.200s", dest->name,
                     reply->type == REDIS_REPLY_ERROR ? ": " : "",
                     reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        myfree(l->asking);
        l->asking = NULL;
        return;
    }
    if (l->asking != NULL) {
        /* An acquisition: one id. */
        if (reply->elements == 1 && reply->element[0]->type == REDIS_REPLY_INTEGER &&
            reply->element[0]->integer == 1) {
            l->ids = myrealloc(l->ids, sizeof(*l->ids) * (size_t)(l->count + 1));
            l->ids[l->count++] = l->asking;
        } else {
            myfree(l->asking);
            /* Every slot is taken: ask again soon (slots free as connections close). */
            l->not_before_ms = now_ms() + SHARED_TICK_MS;
        }
        l->asking = NULL;
        return;
    }
    /* A renewal of the first elements ids: a lease the server gave away
     * meanwhile (it restarted, or did not hear from us in time) is lost. */
    for (int i = 0; i < l->count; i++) {
        if ((size_t)i < reply->elements && reply->element[i]->type == REDIS_REPLY_INTEGER &&
            reply->element[i]->integer == 0) {
            myfree(l->ids[i]);
            continue;
        }
        l->ids[kept++] = l->ids[i];
    }
    if (kept < l->count)
        msg_info("%s: %d lease%s of the shared concurrency lost", dest->name, l->count - kept,
                 l->count - kept == 1 ? "" : "s");
    l->count = kept;
}

/* shared_lease_call - send a lease script for a destination; 0, or -1 */
static int shared_lease_call(SHARED *sh, QMGR_DEST *dest, int script, char **ids, int nids,
                             SHARED_CONN_FN fn)
{
    char key[512], limit[16], ttl[16];
    const char **argv = mycalloc((size_t)nids + 3, sizeof(*argv));
    int argc = 0, ret;

    shared_lease_key(dest, key, sizeof(key));
    argv[argc++] = key;
    if (script == SHARED_SCRIPT_LEASE) {
        snprintf(limit, sizeof(limit), "%d", dest->limit);
        snprintf(ttl, sizeof(ttl), "%d", SHARED_LEASE_MS);
        argv[argc++] = limit;
        argv[argc++] = ttl;
    }
    for (int i = 0; i < nids; i++)
        argv[argc++] = ids[i];
    ret = shared_conn_script(sh->conn, script, fn, dest, 1, argc, argv);
    myfree(argv);
    return ret;
}

/* shared_ignore - a reply nobody waits for */
static void shared_ignore(void *ctx, const redisReply *reply, const char *why)
{
    (void)ctx;
    (void)reply;
    (void)why;
}

/* shared_lease_take - may a worker not connected to the destination open a connection */
int shared_lease_take(SHARED *sh, QMGR_DEST *dest, const QMGR_PEER *worker, long long *wait_ms)
{
    QMGR_LEASES *l = &dest->leases;
    long long now = now_ms();
    char id[300];

    if (!shared_conn_up(sh->conn)) {
        if (!shared_conn_settled(sh->conn)) {
            *wait_ms = SHARED_START_WAIT_MS;
            return 0;
        }
        return -1;
    }
    if (shared_lease_users(dest, worker) < l->count)
        return 1;
    *wait_ms = SHARED_REPLY_WAIT_MS;
    if (l->pending)
        return 0;
    if (now < l->not_before_ms || l->count >= dest->limit) {
        *wait_ms = l->not_before_ms > now ? l->not_before_ms - now : SHARED_TICK_MS;
        return 0;
    }
    snprintf(id, sizeof(id), "%s:%lu", sh->instance, ++sh->lease_seq);
    l->asking = mystrdup(id);
    if (shared_lease_call(sh, dest, SHARED_SCRIPT_LEASE, &l->asking, 1, shared_leased) < 0) {
        myfree(l->asking);
        l->asking = NULL;
        return -1;
    }
    l->pending = 1;
    return 0;
}

/* shared_lease_release - give back a lease no connection uses */
static void shared_lease_release(SHARED *sh, QMGR_DEST *dest)
{
    QMGR_LEASES *l = &dest->leases;
    char *id = l->ids[--l->count];

    (void)shared_lease_call(sh, dest, SHARED_SCRIPT_UNLEASE, &id, 1, shared_ignore);
    myfree(id);
}

/* shared_lease_idle - ask the idle connections of a relay without waiting mail to close */
static void shared_lease_idle(QMGR_DEST *dest)
{
    IPC_REC *rec = NULL;

    for (QMGR_PEER *peer = qmgr_peers; peer; peer = peer->next) {
        if (peer->kind != PEER_WORKER || peer->job != NULL || peer->conn_dest != dest)
            continue;
        if (rec == NULL) {
            rec = ipc_rec_create("release");
            ipc_rec_add(rec, "dest", dest->name);
        }
        ipc_chan_send(peer->chan, rec);
    }
    if (rec != NULL)
        ipc_rec_free(rec);
}

/*
 * shared_tick - timer: keep the leases held alive, give back those no
 * connection uses once no mail waits, and close the idle connections of
 * a relay whose mail ran out, so that other instances get their slots.
 */
static void shared_tick(void *ctx)
{
    SHARED *sh = ctx;
    long long now = now_ms();

    event_request_timer(shared_tick, sh, SHARED_TICK_MS);
    for (QMGR_DEST *dest = dest_list(); dest; dest = dest->next) {
        QMGR_LEASES *l = &dest->leases;

        if (var_bool(smtp_sasl_auth_enable) && shared_applies(sh, dest) &&
            (dest->jobs.count > 0 || dest->auth_held))
            shared_auth_check(sh, dest);

        if (!dest->limit_shared || !shared_applies(sh, dest)) {
            /* Not shared (any more, after a reload): the server forgets them. */
            if (l->count > 0 && !l->pending)
                shared_lease_forget(dest);
            continue;
        }
        if (l->count == 0 && dest->jobs.count > 0)
            continue;
        if (dest->jobs.count > 0) {
            l->empty_ms = 0;
        } else if (l->empty_ms == 0) {
            l->empty_ms = now;
        } else if (now - l->empty_ms >= SHARED_IDLE_RELEASE_MS) {
            shared_lease_idle(dest);
        }
        if (!shared_conn_up(sh->conn) || l->pending)
            continue;
        while (l->count > 0 && dest->jobs.count == 0 && shared_lease_users(dest, NULL) < l->count)
            shared_lease_release(sh, dest);
        if (l->count > 0 && now - l->renewed_ms >= SHARED_RENEW_MS &&
            shared_lease_call(sh, dest, SHARED_SCRIPT_LEASE, l->ids, l->count, shared_leased) ==
                0) {
            l->pending = 1;
            l->renewed_ms = now;
        }
    }
}

/* shared_stats - a destination's shared limits, as stats figures */
void shared_stats(const SHARED *sh, const QMGR_DEST *dest, VSTR *line)
{
    /* Known: a quota is set and the server answered about it. */
    int known = dest->daily > 0 && dest->grants.daily_known;
    long long left = known && dest->grants.daily_left > 0 ? dest->grants.daily_left : 0;

    if (!shared_applies(sh, dest))
        return;
    if (left > dest->daily)
        left = dest->daily;
    vstr_sprintf_append(line,
                        " shared=1 shared_rate_milli=%lld shared_concurrency=%d shared_leases=%d "
                        "shared_daily=%d shared_daily_known=%d shared_daily_left=%lld "
                        "shared_daily_used=%lld shared_instances=%d shared_fallback=%d",
                        (long long)(dest->rate_limit * 1000 + 0.5),
                        dest->limit_shared ? dest->limit : 0, dest->leases.count, dest->daily,
                        known, left, known ? dest->daily - left : 0, sh->instances,
                        !shared_conn_up(sh->conn));
}

/* shared_stats_instances - the instances' names, one "instance" figure each */
void shared_stats_instances(const SHARED *sh, IPC_REC *reply)
{
    if (sh == NULL)
        return;
    for (int i = 0; i < sh->nnames; i++)
        ipc_rec_add(reply, "instance", sh->names[i]);
}

/* shared_auth_keys - the server's keys of a destination's credential state */
static void shared_auth_keys(const QMGR_DEST *dest, char keys[3][512])
{
    snprintf(keys[0], 512, SHARED_PREFIX "auth:%s", shared_dest_key(dest));
    snprintf(keys[1], 512, SHARED_PREFIX "authwait:%s", shared_dest_key(dest));
    snprintf(keys[2], 512, SHARED_PREFIX "authprobe:%s", shared_dest_key(dest));
}

/* shared_auth_hold - hold a destination back for its credential */
static void shared_auth_hold(QMGR_DEST *dest, long long wait_ms, const char *who)
{
    VSTR *reason = vstr_alloc(100);

    vstr_sprintf(reason,
                 "SASL authentication rejected by the relay (seen by %.200s); the credential is "
                 "suspended for every instance",
                 who);
    dest->auth_held = 1;
    /* Longer than the server's suspension: its answer, not this clock,
     * says when this instance may try (shared_auth_checked). */
    dest_hold(dest, wait_ms + 2 * SHARED_TICK_MS + 1000, vstr_str(reason));
    vstr_free(reason);
}

/* shared_auth_set - the suspension after a rejection, as the server set it */
static void shared_auth_set(void *ctx, const redisReply *reply, const char *why)
{
    QMGR_DEST *dest = ctx;

    (void)why;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0 &&
        qmgr_shared != NULL)
        shared_auth_hold(dest, reply->integer, qmgr_shared->instance);
}

/* shared_auth_rejected - this instance's relay rejected the credential (5xx) */
void shared_auth_rejected(SHARED *sh, QMGR_DEST *dest)
{
    char keys[3][512], ms[32];
    const char *argv[5];

    if (!shared_applies(sh, dest))
        return;
    argv[0] = keys[0];
    argv[1] = keys[1];
    argv[2] = keys[2];
    argv[3] = sh->instance;
    argv[4] = ms;
    shared_auth_keys(dest, keys);
    snprintf(ms, sizeof(ms), "%lld", var_int(smtp_sasl_auth_failure_suspend) * 1000LL);
    (void)shared_conn_script(sh->conn, SHARED_SCRIPT_AUTHFAIL, shared_auth_set, dest, 3, 5, argv);
}

/* shared_auth_ok - a login with the credential succeeded: no probe is needed */
void shared_auth_ok(SHARED *sh, QMGR_DEST *dest)
{
    char keys[3][512];
    const char *argv[] = {keys[0], keys[1], keys[2]};

    if (!shared_applies(sh, dest))
        return;
    shared_auth_keys(dest, keys);
    (void)shared_conn_script(sh->conn, SHARED_SCRIPT_AUTHOK, shared_ignore, dest, 3, 3, argv);
}

/* shared_auth_checked - the credential's state on the server */
static void shared_auth_checked(void *ctx, const redisReply *reply, const char *why)
{
    QMGR_DEST *dest = ctx;
    long long now = now_ms();

    (void)why;
    dest->auth_checking = 0;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER)
        return;
    switch (reply->element[0]->integer) {
    case 0:
        /* Free, or this instance probes: one message goes now. */
        dest->auth_free_ms = now;
        if (dest->auth_held && dest->suspend.probe_at_ms > now)
            dest->suspend.probe_at_ms = now;
        break;
    case 1:
        if (reply->elements == 3 && reply->element[1]->type == REDIS_REPLY_INTEGER &&
            reply->element[2]->type == REDIS_REPLY_STRING)
            shared_auth_hold(dest, reply->element[1]->integer, reply->element[2]->str);
        break;
    default:
        /* Another instance probes the credential: wait for its outcome. */
        if (reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_INTEGER)
            shared_auth_hold(dest, reply->element[1]->integer, "another instance");
        break;
    }
}

/* shared_auth_check - ask the server whether this instance may log in to the relay */
static void shared_auth_check(SHARED *sh, QMGR_DEST *dest)
{
    char keys[3][512], ms[32];
    const char *argv[] = {keys[0], keys[1], keys[2], sh->instance, ms};

    if (dest->auth_checking)
        return;
    shared_auth_keys(dest, keys);
    snprintf(ms, sizeof(ms), "%d", SHARED_AUTH_PROBE_MS);
    if (shared_conn_script(sh->conn, SHARED_SCRIPT_AUTHCHECK, shared_auth_checked, dest, 3, 5,
                           argv) == 0)
        dest->auth_checking = 1;
}

/*
 * shared_auth_fresh - may a new connection log in to the relay: the server
 * said so less than SHARED_AUTH_FRESH_MS ago (or it is unavailable, or
 * AUTH is off). Else ask it, and 0 with the time to wait for its answer.
 */
int shared_auth_fresh(SHARED *sh, QMGR_DEST *dest, long long *wait_ms)
{
    if (!var_bool(smtp_sasl_auth_enable) || !shared_applies(sh, dest))
        return 1;
    if (!shared_conn_up(sh->conn) && !shared_conn_settled(sh->conn)) {
        *wait_ms = SHARED_START_WAIT_MS;
        return 0;
    }
    if (!shared_conn_up(sh->conn) || now_ms() - dest->auth_free_ms <= SHARED_AUTH_FRESH_MS)
        return 1;
    shared_auth_check(sh, dest);
    *wait_ms = SHARED_REPLY_WAIT_MS;
    return 0;
}
