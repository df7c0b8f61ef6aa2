/*
 * dest - destinations: where jobs go, with their queues and windows
 *
 * dest_find()
 *	the destination of a relay host and port, made on first use.
 * dest_suspend(), dest_resume(), dest_suspended()
 *	a destination that cannot be reached (suspend.c says which failures
 *	mean that) is suspended: logged once, "DEST: destination suspended:
 *	REASON; next probe in Ns"; its mail waits for one probe per
 *	destination_probe_interval (assign.c) and routes with another relay
 *	use that one meanwhile (route.c). The first job that reaches the
 *	relay again resumes it: "DEST: destination resumed after Ns, N
 *	messages released", and the mail parked for the probe is released.
 * dest_probe_wanted()
 *	whether a suspended destination's probe is due and no job of it is
 *	queued or in flight: a route may send one message there (the probe).
 * dest_probe_now()
 *	relayq flush: every suspended destination may be probed at once (as
 *	Postfix's flush forgets dead destinations, but one message first).
 * dest_probe_time()
 *	the wall-clock second of the next probe (now when not suspended): the
 *	time the mail of a suspended destination is rescheduled to.
 * dest_suspend_text()
 *	the deferral reason recorded for such mail (mailq shows it):
 *	"REASON (destination suspended, next probe at HH:MM:SS)".
 * dest_park()
 *	remember a queue id rescheduled to the probe time, to make it due
 *	at once when the destination resumes; at most DEST_PARKED_MAX per
 *	destination (the others come due at their probe time anyway).
 * dest_release()
 *	make the mail of resumed destinations due now, in one write
 *	transaction (control_make_due(), as relayq flush does); called after
 *	the pass's results are committed. A transaction that fails keeps the
 *	list for the next pass.
 * dest_enqueue(), dest_peek(), dest_dequeue()
 *	a destination's queue of jobs waiting for a worker (jobq.c): the
 *	jobs of new mail and the others in turn, each kind in FIFO order.
 * dest_list()
 *	the first destination, for walking all of them.
 * dest_by_name()
 *	the destination "host:port" (made when new: a worker may report a
 *	connection that a restarted qmgr has not routed to yet); NULL when
 *	the name has no port.
 * dest_init(), dest_reload()
 *	read destination_policy_maps (fatal at start; a warning on reload,
 *	when the old table stays) and apply the limits to every destination:
 *	default_destination_concurrency_limit, destination_rate_limit,
 *	default_destination_rate_delay and default_destination_recipient_limit
 *	(the most recipients of a message one job carries, so that one
 *	transaction stays within what a relay accepts), overridden per relay by
 *	the table's "concurrency=N", "rate=R" (messages per second) and
 *	"recipient_limit=N"; "local" keeps the relay's limits per instance
 *	when shared_limits_server is set, "shared_key=NAME" shares them
 *	under NAME instead of the relay's "host:port" (shared.c). Without
 *	shared_key=, a relay with a credential in smtp_sasl_password_maps
 *	(AUTH on) shares them under "host:port/USER": an account's limits
 *	are the provider's, so two accounts on one relay are two sets of
 *	limits. A user name outside DEST_POLICY_KEY_CHARS, or longer than
 *	DEST_POLICY_KEY_MAX, is replaced by the hex of a hash of it, the same
 *	on every instance. The credentials file is read with the policy; an
 *	unusable one only leaves the key without the user (smtpout reports
 *	the file with the mail it defers).
 * dest_take_token()
 *	the rate limit: a token bucket holding at most one token, filled at
 *	the destination's rate; the configured rate is granted by the
 *	shared-limits server instead when it is shared (shared.c). Returns 1
 *	when a job may start now, else 0 with the milliseconds until the
 *	next token (or until the server's answer is due; it wakes the loop).
 * dest_hold()
 *	a shared limit holds the destination back (shared.c): a "daily=N"
 *	quota used up, or an AUTH rejection of the relay's credential:
 *	logged once, "DEST: daily quota of N messages for KEY reached
 *	(rolling 24 h); deliveries resume in Ns"; the destination is
 *	suspended until the window frees a slot, its mail deferred with that
 *	reason (mailq shows it), and one message probes when the time comes.
 * dest_take_slot()
 *	a relay's "concurrency=" is shared when a shared-limits server is
 *	set: whether a worker may start a job there (shared.c's leases).
 * dest_rate()
 *	the rate in force: the lower of the configured one
 *	(destination_rate_limit, or one message per
 *	default_destination_rate_delay) and the one learned from throttling;
 *	0 when there is none.
 * dest_note_throttle(), dest_note_delivery()
 *	adapt to a relay that says "slow down" (421 4.7.x and the like):
 *	multiplicative decrease — the learned rate becomes 3/4 of what was
 *	delivered in the last second, or 3/4 of itself, at most once a
 *	second — and additive
 *	increase — every delivery adds 1/rate, so the rate grows by about one
 *	message per second each second until the relay objects again.
 * dest_note_deferrals()
 *	a connection closed after transactions in a row that the relay
 *	deferred whole: a decrease, but only one until a message is
 *	delivered again. Such a relay may only be refusing these recipients
 *	for now (a full mailbox, greylisting); unlike a throttling reply it
 *	does not say it is loaded, so it does not drive the rate to the floor.
 *
 * Destinations live as long as the process. A relayhost that does not
 * parse is fatal: master checked it before starting anything.
 */
#include "config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dest_policy.h"
#include "iostuff.h"
#include "maps.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "qmgr.h"
#include "sasl_passwd.h"

#define DEST_PARKED_MAX 100000 /* queue ids remembered per suspended destination */

static QMGR_DEST *dest_head;
static MAPS *dest_policy;             /* destination_policy_maps */
static SASL_PASSWD *dest_credentials; /* smtp_sasl_password_maps: the user names, for the keys */

static void dest_apply_policy(QMGR_DEST *dest);

#define DEST_DECREASE 0.75        /* multiplicative decrease on a throttling reply */
#define DEST_MIN_RATE 0.2         /* never slower than one message per 5 seconds */
#define DEST_QUOTA_RETRY_MS 60000 /* a quota share used up without the server: ask again then */

/* dest_configured_rate - the rate limit from the configuration, 0: none */
static double dest_configured_rate(void)
{
    double rate = strtod(var_str(destination_rate_limit), NULL);
    long long delay = var_int(default_destination_rate_delay);

    if (delay > 0 && (rate == 0 || 1.0 / (double)delay < rate))
        rate = 1.0 / (double)delay;
    return rate;
}

/* dest_load_policy - read destination_policy_maps; 0, or -1 with why */
static int dest_load_policy(MAPS **out, VSTR *why)
{
    MAPS *map;
    VSTR *check;

    vstr_reset(why);
    map = maps_open(var_str(destination_policy_maps), why);
    if (map == NULL)
        return vstr_len(why) > 0 ? -1 : (*out = NULL, 0);
    check = vstr_alloc(100);
    if (dest_policy_check(map, check) < 0) {
        vstr_sprintf(why, "destination_policy_maps: %s: %s", maps_path(map), vstr_str(check));
        vstr_free(check);
        maps_free(map);
        return -1;
    }
    vstr_free(check);
    *out = map;
    return 0;
}

/* dest_credentials_quiet - malformed lines of the credentials file: smtpout warns of them */
static void dest_credentials_quiet(const char *text)
{
    (void)text;
}

/* dest_load_credentials - the credentials file, when shared limits may be keyed by its users */
static void dest_load_credentials(void)
{
    const char *map = var_str(smtp_sasl_password_maps);
    VSTR *why;

    sasl_passwd_free(dest_credentials);
    dest_credentials = NULL;
    if (!var_bool(smtp_sasl_auth_enable) || *map == '\0' || *var_str(shared_limits_server) == '\0')
        return;
    why = vstr_alloc(100);
    dest_credentials = sasl_passwd_load(map, geteuid(), dest_credentials_quiet, why);
    if (dest_credentials == NULL && msg_verbose)
        msg_info("shared limits keyed without the SASL user: %s", vstr_str(why));
    vstr_free(why);
}

/* dest_credential_key - "host:port/USER" for a relay with a credential, else NULL */
static char *dest_credential_key(const QMGR_DEST *dest)
{
    const char *relayhost = var_str(relayhost);
    unsigned char hash[16];
    char hex[sizeof(hash) * 2 + 1];
    RELAY_ADDR parsed;
    SASL_CRED *cred;
    VSTR *key;
    char *result;
    size_t len;

    if (dest_credentials == NULL)
        return NULL;
    key = vstr_alloc(64);
    if (*relayhost != '\0' && params_parse_relay(relayhost, &parsed, key) == 0 &&
        strcasecmp(parsed.host, dest->host) == 0 && parsed.port == dest->port)
        cred = sasl_passwd_find_relay(dest_credentials, relayhost, dest->host, dest->port);
    else
        cred = sasl_passwd_find_relay(dest_credentials, NULL, dest->host, dest->port);
    if (cred == NULL) {
        vstr_free(key);
        return NULL;
    }
    len = strlen(cred->user);
    if (len <= DEST_POLICY_KEY_MAX && strspn(cred->user, DEST_POLICY_KEY_CHARS) == len) {
        vstr_sprintf(key, "%s/%s", dest->name, cred->user);
    } else {
        crypto_generichash(hash, sizeof(hash), (const unsigned char *)cred->user, len, NULL, 0);
        sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
        vstr_sprintf(key, "%s/%s", dest->name, hex);
    }
    result = mystrdup(vstr_str(key));
    vstr_free(key);
    return result;
}

/* dest_init - read the per-destination policy at start, or a fatal error */
void dest_init(void)
{
    VSTR *why = vstr_alloc(100);

    if (dest_load_policy(&dest_policy, why) < 0)
        msg_fatal("%s", vstr_str(why));
    vstr_free(why);
    dest_load_credentials();
}

/* dest_apply_policy - the defaults, then this destination's overrides */
static void dest_apply_policy(QMGR_DEST *dest)
{
    const char *value = NULL;
    DEST_POLICY policy;
    VSTR *key;

    dest->limit = (int)var_int(default_destination_concurrency_limit);
    dest->rcpt_limit = (int)var_int(default_destination_recipient_limit);
    dest->rate_limit = dest_configured_rate();
    dest->shared_local = 0;
    dest->limit_shared = 0;
    dest->daily = 0;
    myfree(dest->shared_key);
    dest->shared_key = dest_credential_key(dest);
    if (dest_policy == NULL)
        return;
    /* Keys as written in relayhost: "[host]:port", "host:port", "[host]". */
    key = vstr_alloc(64);
    vstr_sprintf(key, "[%s]:%u", dest->host, dest->port);
    if ((value = maps_find(dest_policy, vstr_str(key))) == NULL) {
        vstr_sprintf(key, "%s:%u", dest->host, dest->port);
        value = maps_find(dest_policy, vstr_str(key));
    }
    if (value == NULL && dest->port == 25) {
        vstr_sprintf(key, "[%s]", dest->host);
        value = maps_find(dest_policy, vstr_str(key));
    }
    vstr_free(key);
    if (value == NULL)
        return;
    key = vstr_alloc(64);
    /* The table was checked when loaded (dest_load_policy). */
    if (dest_policy_parse(value, &policy, key) == 0) {
        if (policy.concurrency > 0) {
            dest->limit = policy.concurrency;
            dest->limit_shared = 1;
        }
        if (policy.recipient_limit > 0)
            dest->rcpt_limit = policy.recipient_limit;
        if (policy.rate >= 0)
            dest->rate_limit = policy.rate;
        dest->daily = policy.daily;
        dest->shared_local = policy.local;
        if (policy.shared_key != NULL) {
            myfree(dest->shared_key);
            dest->shared_key = policy.shared_key;
            policy.shared_key = NULL;
        }
    }
    dest_policy_free(&policy);
    vstr_free(key);
}

/* dest_find - the destination of a host and port */
QMGR_DEST *dest_find(const char *host, unsigned port)
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
        stats_dest_init(&dest->stats);
        dest->next = dest_head;
        dest_head = dest;
    }
    dest_apply_policy(dest);
    vstr_free(name);
    return dest;
}

/* dest_reload - follow a changed configuration */
void dest_reload(void)
{
    VSTR *why = vstr_alloc(100);
    MAPS *policy = NULL;

    if (dest_load_policy(&policy, why) < 0) {
        msg_warn("destination_policy_maps not reloaded: %s", vstr_str(why));
    } else {
        maps_free(dest_policy);
        dest_policy = policy;
    }
    vstr_free(why);
    dest_load_credentials();
    for (QMGR_DEST *dest = dest_head; dest; dest = dest->next)
        dest_apply_policy(dest);
}

/* dest_park_into - htable_walk callback: add a queue id to another list */
static void dest_park_into(const char *qid, void *value, void *ctx)
{
    if (htable_get(ctx, qid) == NULL)
        htable_put(ctx, qid, value);
}

/* dest_suspend - a job found the destination down */
void dest_suspend(QMGR_DEST *dest, const QMGR_JOB *job, const char *dsn, const char *reason)
{
    long long base_ms = var_int(destination_probe_interval) * 1000LL;
    int started = suspend_fail(&dest->suspend, now_ms(), base_ms, job->probe);

    if (!started && !job->probe)
        return;
    /* The latest failure is the reason the waiting mail shows. */
    myfree(dest->suspend_reason);
    dest->suspend_reason = mystrdup(reason);
    snprintf(dest->suspend_dsn, sizeof(dest->suspend_dsn), "%s", dsn);
    if (started)
        msg_info("%s: destination suspended: %s; next probe in %llds", dest->name, reason,
                 dest->suspend.interval_ms / 1000);
}

/* dest_resume - a job reached the relay */
void dest_resume(QMGR_DEST *dest)
{
    long long outage_ms;
    size_t count = dest->parked ? htable_count(dest->parked) : 0;
    HTABLE *parked = dest->parked;

    /* A hold ends with a delivery that started when it allowed one, not
     * with the result of one that was in flight when it began. */
    if (dest->held && now_ms() < dest->suspend.probe_at_ms)
        return;
    dest->held = 0;
    dest->auth_held = 0;
    outage_ms = suspend_resume(&dest->suspend, now_ms());

    if (outage_ms < 0)
        return;
    msg_info("%s: destination resumed after %llds, %zu message%s released", dest->name,
             (outage_ms + 500) / 1000, count, count == 1 ? "" : "s");
    dest->parked = NULL;
    if (parked == NULL)
        return;
    if (dest->released == NULL) {
        dest->released = parked;
        return;
    }
    /* A resume whose release has not committed yet: one list. */
    htable_walk(parked, dest_park_into, dest->released);
    htable_free(parked, NULL);
}

/* dest_suspended - is the destination suspended */
int dest_suspended(const QMGR_DEST *dest)
{
    return dest->suspend.active;
}

/* dest_probe_wanted - may a route send one message to a suspended destination now */
int dest_probe_wanted(const QMGR_DEST *dest)
{
    return suspend_probe_due(&dest->suspend, now_ms()) && dest->jobs.count == 0 && dest->busy == 0;
}

/* dest_probe_now - the operator flushes: probe suspended destinations now */
void dest_probe_now(void)
{
    long long now = now_ms();

    for (QMGR_DEST *dest = dest_head; dest; dest = dest->next)
        if (dest->suspend.active && dest->suspend.probe_at_ms > now)
            dest->suspend.probe_at_ms = now;
}

/* dest_probe_time - the wall-clock second of the next probe */
long long dest_probe_time(const QMGR_DEST *dest)
{
    long long wait_ms = dest->suspend.probe_at_ms - now_ms();

    if (!dest->suspend.active || wait_ms <= 0)
        return (long long)time(NULL);
    return (long long)time(NULL) + (wait_ms + 999) / 1000;
}

/* dest_suspend_text - the reason recorded for mail waiting for the probe */
void dest_suspend_text(const QMGR_DEST *dest, VSTR *text)
{
    time_t when = (time_t)dest_probe_time(dest);
    struct tm tm;
    char clock[16];

    if (localtime_r(&when, &tm) == NULL || strftime(clock, sizeof(clock), "%H:%M:%S", &tm) == 0)
        snprintf(clock, sizeof(clock), "%lld", (long long)when);
    vstr_sprintf(text, "%s (destination suspended, next probe at %s)",
                 dest->suspend_reason ? dest->suspend_reason : "destination down", clock);
}

/* dest_park - remember mail rescheduled to the probe time */
void dest_park(QMGR_DEST *dest, const char *qid)
{
    if (dest->parked == NULL)
        dest->parked = htable_create(64);
    if (htable_count(dest->parked) < DEST_PARKED_MAX && htable_get(dest->parked, qid) == NULL)
        htable_put(dest->parked, qid, dest);
}

/* What one release transaction did. */
typedef struct DEST_RELEASE {
    QSTORE_TXN *txn;
    long long now;
} DEST_RELEASE;

/* dest_release_one - htable_walk callback: make one parked message due */
static void dest_release_one(const char *qid, void *value, void *ctx)
{
    DEST_RELEASE *release = ctx;

    (void)value;
    control_make_due(release->txn, qid, release->now);
}

/* dest_release - make the mail of resumed destinations due now */
void dest_release(void)
{
    DEST_RELEASE release = {.now = (long long)time(NULL)};
    QMGR_DEST *dest;
    VSTR *why;

    for (dest = dest_head; dest; dest = dest->next)
        if (dest->released)
            break;
    if (dest == NULL)
        return;
    why = vstr_alloc(100);
    if ((release.txn = qstore_begin(qmgr_store, 1, why)) != NULL) {
        for (dest = dest_head; dest; dest = dest->next)
            if (dest->released)
                htable_walk(dest->released, dest_release_one, &release);
        if (qstore_commit(release.txn, why) == QSTORE_OK) {
            for (dest = dest_head; dest; dest = dest->next) {
                htable_free(dest->released, NULL);
                dest->released = NULL;
            }
            vstr_free(why);
            return;
        }
    }
    /* The next pass tries again; meanwhile the mail is due at its probe time. */
    msg_warn("cannot release the mail of a resumed destination: %s", vstr_str(why));
    vstr_free(why);
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
    dest = dest_find(host, (unsigned)port);
    myfree(host);
    return dest;
}

/* dest_job - the job a queue link belongs to, or NULL */
static QMGR_JOB *dest_job(JOBQ_LINK *link)
{
    return link ? (QMGR_JOB *)((char *)link - offsetof(QMGR_JOB, link)) : NULL;
}

/* dest_enqueue - add a job at the tail of its message's kind */
void dest_enqueue(QMGR_DEST *dest, QMGR_JOB *job)
{
    job->dest = dest;
    jobq_push(&dest->jobs, &job->link, job->message->fresh);
}

/* dest_peek - the job dest_dequeue() would take, or NULL */
QMGR_JOB *dest_peek(const QMGR_DEST *dest)
{
    return dest_job(jobq_peek(&dest->jobs));
}

/* dest_dequeue - take the next job, or NULL */
QMGR_JOB *dest_dequeue(QMGR_DEST *dest)
{
    return dest_job(jobq_pop(&dest->jobs));
}

/* dest_list - the first destination */
QMGR_DEST *dest_list(void)
{
    return dest_head;
}

/* dest_rate - the rate in force, 0 when unlimited */
double dest_rate(const QMGR_DEST *dest)
{
    if (dest->rate_limit > 0 &&
        (dest->adaptive_rate == 0 || dest->rate_limit < dest->adaptive_rate))
        return dest->rate_limit;
    return dest->adaptive_rate;
}

/* dest_bucket - the local token bucket at a rate: may a job start now */
static int dest_bucket(QMGR_DEST *dest, double rate, long long *wait_ms)
{
    long long now = now_ms();

    if (dest->refill_ms == 0) {
        dest->tokens = 1;
    } else {
        dest->tokens += (double)(now - dest->refill_ms) * rate / 1000.0;
        if (dest->tokens > 1)
            dest->tokens = 1;
    }
    dest->refill_ms = now;
    if (dest->tokens >= 1) {
        dest->tokens -= 1;
        return 1;
    }
    *wait_ms = (long long)((1 - dest->tokens) * 1000.0 / rate) + 1;
    return 0;
}

/*
 * dest_take_token - may a job start now: the configured rate, shared
 * with the other instances when a shared-limits server is set (shared.c;
 * this instance's share of it while the server is unavailable), and the
 * rate learned from the relay's throttling replies, which is this
 * instance's own.
 */
int dest_take_token(QMGR_DEST *dest, long long *wait_ms)
{
    double rate = dest_rate(dest);

    if ((dest->rate_limit > 0 || dest->daily > 0) && shared_applies(qmgr_shared, dest)) {
        switch (shared_rate_take(qmgr_shared, dest, wait_ms)) {
        case 0:
            return 0;
        case 1:
            if (dest->adaptive_rate > 0 &&
                (dest->rate_limit == 0 || dest->adaptive_rate < dest->rate_limit) &&
                !dest_bucket(dest, dest->adaptive_rate, wait_ms)) {
                shared_rate_unget(dest);
                return 0;
            }
            return 1;
        default:
            if (!shared_daily_fallback(qmgr_shared, dest)) {
                dest_hold(dest, DEST_QUOTA_RETRY_MS,
                          "this instance's share of the daily quota is used up "
                          "while the shared-limits server is unavailable");
                *wait_ms = 1000;
                return 0;
            }
            rate = dest->rate_limit * shared_fallback_share(qmgr_shared);
            if (dest->adaptive_rate > 0 && (rate == 0 || dest->adaptive_rate < rate))
                rate = dest->adaptive_rate;
            break;
        }
    }
    if (rate <= 0)
        return 1;
    return dest_bucket(dest, rate, wait_ms);
}

/*
 * dest_hold - a shared limit holds the destination back (a used-up daily
 * quota, an AUTH rejection another instance saw): it waits as a suspended
 * one does, its mail deferred with the reason, for wait_ms; then one
 * message goes first, and its delivery resumes the destination (or the
 * limit holds it again). Logged when the hold begins.
 */
void dest_hold(QMGR_DEST *dest, long long wait_ms, const char *reason)
{
    long long now = now_ms();
    int started = !dest->suspend.active;

    dest->suspend.active = 1;
    dest->held = 1;
    if (started) {
        dest->suspend.since_ms = now;
        dest->suspend.probes_failed = 0;
    }
    dest->suspend.probe_at_ms = now + wait_ms;
    dest->suspend.interval_ms = wait_ms;
    myfree(dest->suspend_reason);
    dest->suspend_reason = mystrdup(reason);
    snprintf(dest->suspend_dsn, sizeof(dest->suspend_dsn), "%s", "4.7.0");
    if (started)
        msg_info("%s: %s; deliveries resume in %llds", dest->name, reason, (wait_ms + 999) / 1000);
}

/*
 * dest_take_slot - may the worker start a job to the destination, as far
 * as a shared concurrency limit goes: a worker whose connection already
 * goes there may; another needs a lease of the shared limit that no
 * connection of this instance uses (shared.c), or, while the server is
 * unavailable, fewer connections there than this instance's share of the
 * limit (at least one). 1, or 0 with the milliseconds until it may ask
 * again (the server's answer wakes the loop sooner).
 */
int dest_take_slot(QMGR_DEST *dest, const QMGR_PEER *worker, long long *wait_ms)
{
    int share;

    if (!shared_applies(qmgr_shared, dest) || worker->conn_dest == dest)
        return 1;
    /* A new connection logs in: not while another instance saw the credential rejected. */
    if (!shared_auth_fresh(qmgr_shared, dest, wait_ms))
        return 0;
    if (!dest->limit_shared)
        return 1;
    switch (shared_lease_take(qmgr_shared, dest, worker, wait_ms)) {
    case 0:
        return 0;
    case 1:
        return 1;
    default:
        share = (int)(dest->limit * shared_fallback_share(qmgr_shared));
        if (shared_lease_users(dest, worker) < (share < 1 ? 1 : share))
            return 1;
        *wait_ms = 1000;
        return 0;
    }
}

/* dest_window - roll the one-second delivery counter */
static void dest_window(QMGR_DEST *dest, long long now)
{
    if (now - dest->window_ms >= 1000) {
        dest->last_window_count = now - dest->window_ms < 2000 ? dest->window_count : 0;
        dest->window_count = 0;
        dest->window_ms = now;
    }
}

/* dest_note_delivery - additive increase after a delivery */
void dest_note_delivery(QMGR_DEST *dest)
{
    dest_window(dest, now_ms());
    dest->window_count++;
    dest->deferrals_slowed = 0;
    if (dest->adaptive_rate > 0)
        dest->adaptive_rate += 1.0 / dest->adaptive_rate;
}

/* dest_note_deferrals - one decrease for whole transactions deferred, until a delivery */
void dest_note_deferrals(QMGR_DEST *dest)
{
    if (dest->deferrals_slowed)
        return;
    dest->deferrals_slowed = 1;
    dest_note_throttle(dest);
}

/* dest_note_throttle - multiplicative decrease after a throttling reply */
void dest_note_throttle(QMGR_DEST *dest)
{
    long long now = now_ms();
    double seen;

    dest->stats.throttles++;
    /* The jobs in flight when the relay objected all come back refused:
     * one decrease per second answers one overload, not each of them. */
    if (dest->decrease_ms > 0 && now - dest->decrease_ms < 1000)
        return;
    dest->decrease_ms = now;
    dest_window(dest, now);
    seen =
        dest->last_window_count > dest->window_count ? dest->last_window_count : dest->window_count;
    if (dest->adaptive_rate == 0)
        dest->adaptive_rate = seen > 0 ? seen * DEST_DECREASE : 1;
    else
        dest->adaptive_rate *= DEST_DECREASE;
    if (dest->adaptive_rate < DEST_MIN_RATE)
        dest->adaptive_rate = DEST_MIN_RATE;
    msg_info("%s: relay asks to slow down: rate now %.1f messages per second", dest->name,
             dest->adaptive_rate);
}
