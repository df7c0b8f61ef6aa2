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
 *	Grants are asked for ahead and in small batches when the rate is
 *	high, so the loop never waits on the server: a job starts only on a
 *	token already granted, and the grant's reply wakes the loop.
 * shared_rate_unget()
 *	give back the token shared_rate_take() granted, unused (a local
 *	limit stopped the job after all).
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
 * Instances: every SHARED_REGISTER_MS each instance adds itself
 * (myhostname and queue_directory) to a sorted set scored by expiry,
 * drops the expired ones and learns how many there are: the N of 1/N,
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

#define SHARED_PREFIX "relayq:"   /* every key relayq writes starts with it */
#define SHARED_REGISTER_MS 5000   /* between registrations of the instance */
#define SHARED_INSTANCE_TTL 20    /* s: an instance counts that long after its last */
#define SHARED_BATCH_MS 50        /* a batch of tokens covers that much of the rate */
#define SHARED_BATCH_MAX 50       /* most tokens asked for at once */
#define SHARED_BURST_MS 100       /* least burst tolerance of the rate */
#define SHARED_TOKEN_TTL_MS 1000  /* a granted token unused that long is dropped */
#define SHARED_REPLY_WAIT_MS 1000 /* a grant in flight: its reply wakes the loop first */

/* The scripts, in the order of SHARED_SCRIPT_*. */
enum { SHARED_SCRIPT_RATE, SHARED_SCRIPT_REGISTER };

static const char *const shared_scripts[] = {
    /* GCRA. KEYS[1]: the rate's state; ARGV: microseconds per message,
     * messages wanted, burst tolerance in microseconds. Returns {granted,
     * microseconds until the next one conforms (when none was)}. */
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local step = tonumber(ARGV[1])\n"
    "local want = tonumber(ARGV[2])\n"
    "local burst = tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat < now then tat = now end\n"
    "local room = math.floor((now + burst + step - tat) / step)\n"
    "if room < 1 then return {0, math.ceil(tat - burst - now)} end\n"
    "if room > want then room = want end\n"
    "tat = tat + room * step\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',\n"
    "           math.ceil((tat - now) / 1000) + 1000)\n"
    "return {room, 0}\n",
    /* KEYS[1]: the instances, scored by expiry; ARGV: this instance,
     * seconds it counts. Returns how many instances count now. */
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local ttl = tonumber(ARGV[2])\n"
    "redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "redis.call('EXPIRE', KEYS[1], ttl * 2)\n"
    "return redis.call('ZCARD', KEYS[1])\n",
    NULL,
};

/* SHARED models this instance's membership in the group that shares limits. */
struct SHARED {
    SHARED_CONN *conn;
    char *url;            /* shared_limits_server as configured */
    char *share_text;     /* shared_limits_fallback_share as configured */
    char *server;         /* shared_limits_server without the password, for the log */
    char *instance;       /* this instance's name in the group */
    int instances;        /* instances seen recently, at least 1 */
    double share;         /* shared_limits_fallback_share, 0: 1/instances */
    int fallback;         /* local shares in force (logged once) */
    long long down_ms;    /* when the fallback began */
    int register_pending; /* a registration in flight */
    int counted;          /* instances is the server's count, not the default */
};

static void shared_register(void *ctx);

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

/* shared_registered - the group's size, as the server counted it */
static void shared_registered(void *ctx, const redisReply *reply, const char *why)
{
    SHARED *sh = ctx;

    (void)why;
    sh->register_pending = 0;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 1) {
        int n = reply->integer > 100000 ? 100000 : (int)reply->integer;

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
    char ttl[16];
    const char *argv[] = {SHARED_PREFIX "instances", sh->instance, ttl};

    event_request_timer(shared_register, sh, SHARED_REGISTER_MS);
    if (sh->register_pending)
        return;
    snprintf(ttl, sizeof(ttl), "%d", SHARED_INSTANCE_TTL);
    if (shared_conn_script(sh->conn, SHARED_SCRIPT_REGISTER, shared_registered, sh, 1, 3, argv) ==
        0)
        sh->register_pending = 1;
}

/* shared_create - the shared limits of the configured server, or NULL */
SHARED *shared_create(void)
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
    if ((sh->conn = shared_conn_create(url, shared_scripts, shared_state, sh, why)) == NULL)
        msg_fatal("shared_limits_server: %s", vstr_str(why));
    vstr_free(why);
    msg_info("sharing limits through %s as %s", sh->server, sh->instance);
    return sh;
}

/* shared_free - leave the group */
void shared_free(SHARED *sh)
{
    if (sh == NULL)
        return;
    event_cancel_timer(shared_register, sh);
    shared_conn_free(sh->conn);
    myfree(sh->url);
    myfree(sh->share_text);
    myfree(sh->server);
    myfree(sh->instance);
    myfree(sh);
}

/* shared_reload - the same object, or a new one for a changed configuration */
SHARED *shared_reload(SHARED *sh)
{
    if (sh != NULL && strcmp(sh->url, var_str(shared_limits_server)) == 0 &&
        strcmp(sh->share_text, var_str(shared_limits_fallback_share)) == 0)
        return sh;
    shared_free(sh);
    return shared_create();
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
    long long now = now_ms();

    (void)why;
    dest->grants.pending = 0;
    if (reply == NULL)
        return; /* unavailable: shared_state() saw it first */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        msg_warn("%s: shared rate: unexpected reply%s%.200s", dest->name,
                 reply->type == REDIS_REPLY_ERROR ? ": " : "",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        /* Not a reason to stop: ask again a little later. */
        dest->grants.not_before_ms = now + SHARED_REPLY_WAIT_MS;
        return;
    }
    if (reply->element[0]->integer > 0) {
        dest->grants.tokens += (int)reply->element[0]->integer;
        dest->grants.granted_ms = now;
    } else {
        dest->grants.not_before_ms = now + (reply->element[1]->integer + 999) / 1000;
    }
}

/* shared_rate_ask - ask the server for a batch of tokens; 0, or -1 when unavailable */
static int shared_rate_ask(SHARED *sh, QMGR_DEST *dest, double rate)
{
    double step = 1e6 / rate;
    long long batch = (long long)(rate * SHARED_BATCH_MS / 1000.0 + 0.5), burst;
    char key[512], step_arg[32], want_arg[32], burst_arg[32];
    const char *argv[] = {key, step_arg, want_arg, burst_arg};

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
    snprintf(key, sizeof(key), SHARED_PREFIX "rate:%s", shared_dest_key(dest));
    snprintf(step_arg, sizeof(step_arg), "%.0f", step < 1 ? 1 : step);
    snprintf(want_arg, sizeof(want_arg), "%lld", batch);
    snprintf(burst_arg, sizeof(burst_arg), "%lld", burst);
    if (shared_conn_script(sh->conn, SHARED_SCRIPT_RATE, shared_granted, dest, 1, 4, argv) < 0)
        return -1;
    dest->grants.pending = 1;
    return 0;
}

/* shared_rate_take - may a message start under the shared rate */
int shared_rate_take(SHARED *sh, QMGR_DEST *dest, long long *wait_ms)
{
    long long now = now_ms();
    QMGR_GRANTS *g = &dest->grants;

    if (!shared_conn_up(sh->conn)) {
        g->tokens = 0;
        return -1;
    }
    if (g->tokens > 0 && now - g->granted_ms > SHARED_TOKEN_TTL_MS)
        g->tokens = 0; /* kept too long: spending them now would be a burst */
    if (g->tokens > 0) {
        g->tokens--;
        /* Ask ahead for the next batch while this one is spent. */
        if (g->tokens == 0 && !g->pending && dest->jobs.count > 1 && now >= g->not_before_ms)
            (void)shared_rate_ask(sh, dest, dest->rate_limit);
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
    if (shared_rate_ask(sh, dest, dest->rate_limit) < 0)
        return -1;
    *wait_ms = SHARED_REPLY_WAIT_MS;
    return 0;
}

/* shared_rate_unget - a granted token was not used */
void shared_rate_unget(QMGR_DEST *dest)
{
    dest->grants.tokens++;
}
