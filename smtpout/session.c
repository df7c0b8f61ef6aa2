/*
 * session - the SMTP client: one persistent connection, many transactions
 *
 * session_create()
 *	a closed session. It reports to its owner through hooks (smtpout.h):
 *	each job it finishes (every recipient decided, delivery lines
 *	logged), each change of its connection for qmgr, and the end of a
 *	shutdown. A process runs many sessions side by side; each owns its
 *	own state and timers (every callback's context is its SESSION).
 * session_deliver()
 *	hand the session a job. It runs on the open connection when that
 *	goes to the same relay and port and is young enough; otherwise the
 *	connection is retired (QUIT) and a new one opened. The job's outcome
 *	comes back through the `done` hook, always from an event-loop
 *	callback, never from inside session_deliver().
 * session_busy()
 *	whether a job is in the session.
 * session_is_open()
 *	whether the connection stays open for the next job (the result's
 *	conn=open|closed).
 * session_shutdown()
 *	stop: when no job is in flight, QUIT, close, then the `stopped` hook.
 * session_reload()
 *	after a configuration reload: a connection whose identity (relay,
 *	port, TLS policy, credential) changed is retired -- at once when
 *	idle, else before the next job (close reason "reload").
 * session_release()
 *	qmgr gives a shared concurrency slot back (qmgr/shared.c): an idle
 *	connection QUITs at once (close reason "idle"); a busy one is left.
 * session_held_dest()
 *	"relay:port" of the open connection, for the "held" event that
 *	follows the worker's introduction to a restarted qmgr.
 *
 * Within smtpout, for chat.c, proto.c, sasl_proto.c and trouble.c:
 * session_arm() enters a state and starts its stage timer;
 * session_stage_doing() and session_stage_command() name what a state
 * was doing and the command its reply answers, for the reasons;
 * session_close() drops the connection; session_enter_idle() keeps it
 * for the next job; session_quit() says goodbye; session_job_done()
 * settles the connection and hands the job back; session_retry() runs it
 * again on a new connection; session_lookup_failed() and
 * session_connect_retry() go on after a failed lookup or connection.
 *
 * The client is non-blocking and driven by the event loop (chat.c does
 * the I/O, proto.c the dialogue, trouble.c the failures). Every wait has
 * the timeout of its stage, from the stage table below (Postfix's
 * smtp_*_timeout parameters; the body's timer restarts whenever a write
 * makes progress).
 *
 * While idle the connection is kept alive with NOOP every
 * smtp_keepalive_interval and retired after smtp_connection_idle_timeout,
 * after smtp_connection_reuse_count_limit messages, (checked before a
 * job) after smtp_connection_reuse_time_limit seconds, or after
 * SESSION_DEFERRED_ROW transactions in a row in which the relay deferred
 * every recipient (reason "deferrals": qmgr slows the destination down,
 * as for a throttling reply). A job that arrives while NOOP or RSET waits
 * for its reply gives it SESSION_HURRY_WAIT at most.
 *
 * The relay's addresses: a name is looked up through the process's
 * resolver (resolve.c; SESS_RESOLVING, under smtp_connect_timeout), an
 * address literal is taken as it is. Both give either family;
 * inet_protocols then keeps its own, so that a relay whose addresses are
 * all of the other family is told apart from a name that does not
 * resolve ("no address of NAME is usable: it has only IPv4 addresses and
 * inet_protocols = ipv6", dsn 4.4.3, where a lookup of the one family
 * would say "Name or service not known"). smtp_mx_address_limit bounds
 * the list, which the process's ADDR_CACHE reorders so that addresses
 * that failed lately come last.
 * A connection that is refused, unreachable or times out
 * (smtp_connect_timeout per address) goes to the next address, and the
 * failure is noted in the cache and logged; when none is left the job is
 * deferred with the last address's reason, "connect to host[addr]:port:
 * Connection refused". Nothing of this blocks: the process's other
 * sessions run on while one waits.
 *
 * A job runs on the open connection only when its identity -- relay,
 * port, TLS policy and credential -- is the connection's; otherwise the
 * connection is retired ("switch"). Every change of the connection is
 * reported to qmgr (s->hooks->conn_event(s->owner, ...): open, tls,
 * auth_ok, auth_fail, timeout, close with its reason).
 *
 * Ownership: the session owns its connection and buffers; it borrows
 * the job from session_deliver() until it passes it to `done`.
 * Failures of the relay or the network become recipient outcomes, never
 * fatal; a state that should not occur is a panic.
 */
#include "config.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "iostuff.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtpout.h"
#include "sock.h"

#define SESSION_HURRY_WAIT 5000 /* ms for the reply to QUIT, NOOP or RSET when a job waits */
#define SESSION_DEFERRED_ROW 3  /* transactions all deferred in a row that retire a connection */

/* Per state: what we were doing (for "while ..."), the command a reply
 * answers (for "in reply to ..."), and the timeout parameter. */
static const struct {
    const char *doing;
    const char *command;
    const char *timeout;
} session_stage[SESS_STATE_COUNT] = {
    [SESS_CLOSED] = {"doing nothing", "", NULL},
    [SESS_RESOLVING] = {"looking up the relay's address", "", "smtp_connect_timeout"},
    [SESS_CONNECTING] = {"connecting", "", "smtp_connect_timeout"},
    [SESS_GREETING] = {"receiving the initial server greeting", "", "smtp_helo_timeout"},
    [SESS_EHLO] = {"performing the EHLO handshake", "EHLO", "smtp_helo_timeout"},
    [SESS_HELO] = {"performing the HELO handshake", "HELO", "smtp_helo_timeout"},
    [SESS_STARTTLS] = {"sending STARTTLS", "STARTTLS", "smtp_helo_timeout"},
    [SESS_TLS] = {"performing the TLS handshake", "", "smtp_starttls_timeout"},
    [SESS_AUTH] = {"performing SASL authentication", "AUTH", "smtp_helo_timeout"},
    [SESS_IDLE] = {"idle", "", NULL},
    [SESS_NOOP] = {"sending NOOP", "NOOP", "smtp_mail_timeout"},
    [SESS_MAIL] = {"sending MAIL FROM", "MAIL FROM", "smtp_mail_timeout"},
    [SESS_RCPT] = {"sending RCPT TO", "RCPT TO", "smtp_rcpt_timeout"},
    [SESS_DATA] = {"sending DATA command", "DATA", "smtp_data_init_timeout"},
    [SESS_BODY] = {"sending message body", "end of DATA", "smtp_data_xfer_timeout"},
    [SESS_DOT] = {"sending end of data -- message may be sent more than once", "end of DATA",
                  "smtp_data_done_timeout"},
    [SESS_BDAT] = {"sending message body -- message may be sent more than once", "BDAT",
                   "smtp_data_done_timeout"},
    [SESS_RSET] = {"sending RSET", "RSET", "smtp_mail_timeout"},
    [SESS_QUIT] = {"sending QUIT", "QUIT", "smtp_quit_timeout"},
};

static void session_kick(void *ctx);
static void session_keepalive(void *ctx);
static void session_idle_expire(void *ctx);

/* session_stage_doing - what a state was doing, for "while ..." */
const char *session_stage_doing(SESS_STATE state)
{
    return session_stage[state].doing;
}

/* session_stage_command - the command a state's reply answers, for "in reply to ..." */
const char *session_stage_command(SESS_STATE state)
{
    return session_stage[state].command;
}

/* session_create - a session, closed, that reports to its owner through hooks */
SESSION *session_create(const SESSION_HOOKS *hooks, void *owner, RESOLVER *resolver,
                        ADDR_CACHE *addr_cache)
{
    SESSION *s = mymalloc(sizeof(*s));

    memset(s, 0, sizeof(*s));
    s->state = SESS_CLOSED;
    s->label = vstr_alloc(64);
    s->relay_text = vstr_alloc(64);
    s->in = vstr_alloc(CHAT_READ_CHUNK);
    s->out = vstr_alloc(CHAT_READ_CHUNK);
    s->parser = smtp_reply_parser_create();
    s->reply = smtp_reply_alloc();
    s->hooks = hooks;
    s->owner = owner;
    s->resolver = resolver;
    s->addr_cache = addr_cache;
    s->fail_why = vstr_alloc(64);
    return s;
}

/* session_busy - is a job in the session */
int session_busy(const SESSION *s)
{
    return s->job != NULL;
}

/* session_is_open - will the connection carry another job */
int session_is_open(const SESSION *s)
{
    return s->conn != NULL && s->state != SESS_QUIT;
}

/* session_request_kick - look for work on the next pass, outside any callback chain */
static void session_request_kick(SESSION *s)
{
    event_request_timer(session_kick, s, 0);
}

/* session_arm - enter a state and start its timer */
void session_arm(SESSION *s, SESS_STATE state)
{
    const char *param = session_stage[state].timeout;

    s->state = state;
    if (param != NULL)
        event_request_timer(trouble_timeout, s, config_int(var_config, param) * 1000LL);
    else
        event_cancel_timer(trouble_timeout, s);
}

/* session_close - drop the connection without a goodbye; `reason` (or the one set before) for qmgr
 */
void session_close(SESSION *s, const char *reason)
{
    if (s->conn != NULL) {
        event_disable_readwrite(s->conn->fd);
        conn_close(s->conn);
        s->conn = NULL;
    }
    if (s->lookup != NULL) { /* its answer, when it comes, goes nowhere */
        resolve_cancel(s->lookup);
        s->lookup = NULL;
    }
    myfree(s->addrs);
    s->addrs = NULL;
    s->naddr = s->addr_next = 0;
    if (s->announced)
        s->hooks->conn_event(s->owner, "close", s->dest,
                             reason            ? reason
                             : s->close_reason ? s->close_reason
                                               : "error",
                             s->msgs, 0);
    s->announced = 0;
    s->close_reason = NULL;
    myfree(s->dest);
    s->dest = NULL;
    myfree(s->tls_cache_key);
    s->tls_cache_key = NULL;
    tls_policy_free(&s->policy);
    s->tls_on = 0;
    s->tls_declined = 0;
    s->auth_mechs = 0;
    s->authed = 0;
    auth_end(&s->auth);
    s->stale = 0;
    memset(s->ident, 0, sizeof(s->ident));
    event_cancel_timer(trouble_timeout, s);
    event_cancel_timer(session_keepalive, s);
    event_cancel_timer(session_idle_expire, s);
    event_cancel_timer(trouble_write_failed, s);
    event_cancel_timer(chat_read_again, s);
    myfree(s->host);
    s->host = NULL;
    s->gen++;
    s->state = SESS_CLOSED;
    s->job_active = 0;
    s->features = 0;
    s->size_limit = 0;
    s->msgs = 0;
    s->deferred_row = 0;
    s->out_error = 0;
    chat_out_reset(s);
    vstr_reset(s->in);
    smtp_reply_parser_reset(s->parser);
    session_request_kick(s);
}

/* session_enter_idle - the connection waits for the next job */
void session_enter_idle(SESSION *s, int fresh)
{
    long long limit = var_int(smtp_connection_reuse_count_limit);
    long long keepalive = var_int(smtp_keepalive_interval);
    long long idle = var_int(smtp_connection_idle_timeout);

    session_arm(s, SESS_IDLE);
    s->job_active = 0; /* a waiting job starts its transaction from session_kick() */
    if (fresh)
        s->idle_since = now_ms();
    if (limit > 0 && s->msgs >= limit && s->job == NULL) {
        if (msg_verbose)
            msg_info("connection to %s: %u messages, reuse count limit reached",
                     vstr_str(s->relay_text), s->msgs);
        session_quit(s, "reuse_count");
        return;
    }
    if (s->job != NULL || s->stopping) {
        session_request_kick(s);
        return;
    }
    if (keepalive > 0)
        event_request_timer(session_keepalive, s, keepalive * 1000);
    event_request_timer(session_idle_expire, s, s->idle_since + idle * 1000 - now_ms());
}

/*
 * session_hurry - a job or a stopping worker waits for the reply to QUIT,
 * NOOP or RSET: a relay that stalls there must not hold it for the whole
 * stage timeout (up to smtp_mail_timeout or smtp_quit_timeout, minutes);
 * the timeout closes the connection and the job goes on a new one
 */
static void session_hurry(SESSION *s)
{
    const char *param = session_stage[s->state].timeout;

    if ((s->state != SESS_QUIT && s->state != SESS_NOOP && s->state != SESS_RSET) ||
        (s->job == NULL && !s->stopping))
        return;
    if (config_int(var_config, param) * 1000LL > SESSION_HURRY_WAIT)
        event_request_timer(trouble_timeout, s, SESSION_HURRY_WAIT);
}

/* session_quit - say goodbye; the connection closes on the reply */
void session_quit(SESSION *s, const char *reason)
{
    if (reason != NULL)
        s->close_reason = reason;
    event_cancel_timer(session_keepalive, s);
    event_cancel_timer(session_idle_expire, s);
    session_arm(s, SESS_QUIT);
    session_hurry(s);
    chat_send(s, "QUIT");
}

/* session_job_done - settle the connection, log and report the job */
void session_job_done(SESSION *s, SESS_AFTER after)
{
    JOB *job = s->job;

    if (job == NULL)
        msg_panic("session_job_done: no job");
    if (job_pending(job) > 0) /* every path decides every recipient before it ends */
        msg_panic("session_job_done: %s: %zu recipients undecided", job->queue_id,
                  job_pending(job));
    s->job = NULL;
    s->job_active = 0;
    if (after == AFTER_IDLE || after == AFTER_RSET) {
        size_t sent = 0, deferred = 0;

        for (size_t i = 0; i < job->nrcpt; i++) {
            sent += job->rcpts[i].status == JOB_SENT;
            deferred += job->rcpts[i].status == JOB_DEFERRED;
        }
        s->deferred_row = sent == 0 && deferred > 0 ? s->deferred_row + 1 : 0;
        if (s->deferred_row >= SESSION_DEFERRED_ROW) {
            /* A connection that only gets "later" is worth a fresh one. */
            msg_info("connection to %s: %u transactions in a row deferred: closing it",
                     vstr_str(s->relay_text), s->deferred_row);
            s->close_reason = "deferrals";
            after = AFTER_QUIT;
        }
    }
    switch (after) {
    case AFTER_IDLE:
        session_enter_idle(s, 1);
        break;
    case AFTER_RSET:
        session_arm(s, SESS_RSET);
        chat_send(s, "RSET");
        break;
    case AFTER_QUIT:
        session_quit(s, NULL);
        break;
    case AFTER_CLOSE:
        session_close(s, NULL);
        break;
    case AFTER_NONE:
        break;
    }
    job_log(job);
    s->hooks->done(s->owner, job);
}

/* session_retry - the reused connection was dead: run the job again on a new one */
void session_retry(SESSION *s, const char *why, const char *reason)
{
    JOB *job = s->job;

    msg_info("%s: connection to %s was closed by the server (%s) before the transaction "
             "started; retrying on a new connection",
             job->queue_id, vstr_str(s->relay_text), why);
    job->retried = 1;
    job->setup_start = wall_ms();
    job->setup_ms = 0;
    job->xfer_start = 0;
    job->conn_use = 0;
    vstr_strcpy(job->relay_text, "none");
    for (size_t i = 0; i < job->nrcpt; i++)
        job->rcpts[i].accepted = 0;
    s->msgs--; /* the connection did not carry this one */
    session_close(s, reason);
}

/* session_keepalive - a NOOP so that middleboxes and the relay keep the connection */
static void session_keepalive(void *ctx)
{
    SESSION *s = ctx;

    if (s->state != SESS_IDLE || s->job != NULL)
        return;
    event_cancel_timer(session_idle_expire, s);
    session_arm(s, SESS_NOOP);
    chat_send(s, "NOOP");
}

/* session_release - qmgr wants the connection's slot back: close it if idle */
void session_release(SESSION *s)
{
    if (s->conn == NULL || s->state != SESS_IDLE || s->job != NULL)
        return;
    msg_info("connection to %s: released to other instances", vstr_str(s->relay_text));
    event_cancel_timer(session_keepalive, s);
    event_cancel_timer(session_idle_expire, s);
    session_quit(s, "idle");
}

/* session_idle_expire - idle too long: retire the connection */
static void session_idle_expire(void *ctx)
{
    SESSION *s = ctx;

    if (s->state != SESS_IDLE || s->job != NULL)
        return;
    if (msg_verbose)
        msg_info("connection to %s: idle timeout", vstr_str(s->relay_text));
    event_cancel_timer(session_keepalive, s);
    session_quit(s, "idle");
}

/*
 * session_identity - what a connection for this relay would be: relay,
 * port, TLS policy (wrappermode, and the relay's smtp_tls_policy_maps
 * entry or the global level and CA file) and credential (user and
 * secret, as the keyed hash). -1 with the reason when AUTH is on and there
 * is no credential, or its last AUTH failed moments ago.
 */
static int session_identity(const char *relay, unsigned port, unsigned char *ident, VSTR *why)
{
    crypto_generichash_state state;
    SASL_CRED *cred = NULL;
    const TLS_POLICY *policy;
    const char *failed;
    VSTR *text;

    if ((policy = tls_policy(relay, port, why)) == NULL)
        return -1;
    text = vstr_alloc(128);
    vstr_sprintf(text, "%s:%u:%d:", relay, port, var_bool(smtp_tls_wrappermode));
    /* Lower case for the relay; the policy (paths, names) is added as written. */
    for (size_t i = 0; i < vstr_len(text); i++)
        text->data[i] = (char)tolower((unsigned char)text->data[i]);
    vstr_addch(text, '\0');
    crypto_generichash_init(&state, NULL, 0, SASL_ID_LEN);
    vstr_strcat(text, policy->canonical);
    crypto_generichash_update(&state, (const unsigned char *)vstr_str(text), vstr_len(text));
    vstr_free(text);
    if (var_bool(smtp_sasl_auth_enable)) {
        if (auth_lookup(relay, port, &cred, why) < 0)
            return -1;
        crypto_generichash_update(&state, cred->id, sizeof(cred->id));
    }
    crypto_generichash_final(&state, ident, SASL_ID_LEN);
    if (cred != NULL && (failed = auth_fail_cached(ident, cred)) != NULL) {
        vstr_strcpy(why, failed);
        return -1;
    }
    return 0;
}

/* session_family - the address family inet_protocols allows; AF_UNSPEC: both */
static int session_family(void)
{
    const char *protocols = var_str(inet_protocols);

    if (strcmp(protocols, "ipv4") == 0)
        return AF_INET;
    if (strcmp(protocols, "ipv6") == 0)
        return AF_INET6;
    return AF_UNSPEC;
}

/* session_family_name - "IPv4" or "IPv6" */
static const char *session_family_name(int family)
{
    return family == AF_INET6 ? "IPv6" : "IPv4";
}

/* session_lookup_failed - the relay's name gave no address: defer the job */
void session_lookup_failed(SESSION *s, const char *why)
{
    VSTR *text = vstr_alloc(128);

    vstr_sprintf(text, "Host or domain name not found. Name service error for name=%s: %s",
                 s->job->relay, why);
    trouble_connect_failed(s, "", vstr_str(text));
    vstr_free(text);
}

/* session_addr_failed - one address did not answer: remember it, log it when others remain */
static void session_addr_failed(SESSION *s, const char *addr, const char *why)
{
    snprintf(s->fail_addr, sizeof(s->fail_addr), "%s", addr);
    vstr_strcpy(s->fail_why, why);
    addr_cache_fail(s->addr_cache, addr, s->port);
    /* The last failure is the job's deferral reason; the ones before only show here. */
    if (s->addr_next < s->naddr)
        msg_info("%s: connect to %s[%s]:%u: %s", s->job->queue_id, s->host, addr, s->port, why);
}

/* session_connect_next - connect to the next address; defer the job when none is left */
static void session_connect_next(SESSION *s)
{
    VSTR *why = vstr_alloc(64);
    SESS_ADDR *a;
    CONN *conn;

    while (s->addr_next < s->naddr) {
        a = &s->addrs[s->addr_next++];
        conn = s->hooks->connect != NULL
                   ? s->hooks->connect(s->owner, (struct sockaddr *)&a->sa, a->len, why)
                   : conn_connect((struct sockaddr *)&a->sa, a->len, why);
        if (conn == NULL) {
            session_addr_failed(s, a->text, vstr_str(why));
            continue;
        }
        vstr_free(why);
        s->conn = conn;
        vstr_sprintf(s->label, "%s[%s]", s->host, conn->addr);
        vstr_sprintf(s->relay_text, "%s[%s]:%u", s->host, conn->addr, s->port);
        s->opened_ms = now_ms();
        event_enable_write(conn->fd, chat_event, s);
        session_arm(s, SESS_CONNECTING);
        return;
    }
    vstr_free(why);
    if (s->naddr == 0 && vstr_len(s->fail_why) > 0) /* session_take_addrs() said why */
        trouble_connect_failed(s, "", vstr_str(s->fail_why));
    else if (s->naddr == 0)
        session_lookup_failed(s, "no address of the protocols in inet_protocols");
    else
        trouble_connect_failed(s, s->fail_addr, vstr_str(s->fail_why));
}

/* session_connect_retry - the connection to this address failed: on to the next */
void session_connect_retry(SESSION *s, const char *why)
{
    char addr[sizeof(s->conn->addr)];

    memcpy(addr, s->conn->addr, sizeof(addr));
    event_cancel_timer(trouble_timeout, s);
    event_disable_readwrite(s->conn->fd);
    conn_close(s->conn);
    s->conn = NULL;
    session_addr_failed(s, addr, why);
    session_connect_next(s);
}

/*
 * session_take_addrs - the relay's addresses to try: inet_protocols, the
 * limit, the cache; when inet_protocols leaves none, the reason in fail_why
 */
static void session_take_addrs(SESSION *s, const struct addrinfo *res)
{
    size_t limit = (size_t)var_int(smtp_mx_address_limit);
    int family = session_family();
    const struct addrinfo *ai;
    int excluded = AF_UNSPEC; /* the family of an address inet_protocols left out */
    SESS_ADDR *a;

    myfree(s->addrs);
    s->addrs = mymalloc(sizeof(*s->addrs) * limit);
    s->naddr = s->addr_next = 0;
    for (ai = res; ai != NULL && s->naddr < limit; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(a->sa))
            continue;
        if (family != AF_UNSPEC && ai->ai_family != family) {
            excluded = ai->ai_family;
            continue;
        }
        a = &s->addrs[s->naddr++];
        memset(a, 0, sizeof(*a));
        memcpy(&a->sa, ai->ai_addr, ai->ai_addrlen);
        a->len = ai->ai_addrlen;
        sock_addr_text(ai->ai_addr, a->text, sizeof(a->text));
    }
    if (s->naddr == 0 && excluded != AF_UNSPEC)
        vstr_sprintf(s->fail_why,
                     "no address of %s is usable: it has only %s addresses and inet_protocols = %s",
                     s->host, session_family_name(excluded), var_str(inet_protocols));
    addr_cache_order(s->addr_cache, s->addrs, s->naddr, s->port);
}

/* session_resolved - the relay's addresses are known (resolve.c callback) */
static void session_resolved(void *ctx, const struct addrinfo *res, const char *error)
{
    SESSION *s = ctx;

    s->lookup = NULL;
    if (res == NULL) {
        session_lookup_failed(s, error);
        return;
    }
    session_take_addrs(s, res);
    session_connect_next(s);
}

/* session_open - set up the connection's identity, then find the relay's addresses */
static void session_open(SESSION *s, const unsigned char *ident)
{
    JOB *job = s->job;
    VSTR *why = vstr_alloc(64);
    const TLS_POLICY *policy;
    struct addrinfo *res;

    s->job_active = 1;
    s->host = mystrdup(job->relay);
    s->port = job->port;
    s->msgs = 0;
    memcpy(s->ident, ident, SASL_ID_LEN);
    s->dest = mymalloc(strlen(job->relay) + 16);
    sprintf(s->dest, "%s:%u", job->relay, job->port);
    /* session_kick() just found the policy in the identity: it is there, parsed. */
    if ((policy = tls_policy(job->relay, job->port, why)) == NULL)
        msg_panic("session_open: %s", vstr_str(why));
    tls_policy_copy(&s->policy, policy);
    s->tls_level = s->policy.level;
    s->wrapper = var_bool(smtp_tls_wrappermode);
    /* A session verified under other trust anchors must not be resumed under these. */
    s->tls_cache_key = mymalloc(strlen(s->dest) + strlen(s->policy.canonical) + 32);
    sprintf(s->tls_cache_key, "%s:%d:%s", s->dest, s->wrapper, s->policy.canonical);
    /* Level may after a failed handshake: this one connection goes without TLS. */
    if (s->plain_once && !s->wrapper && memcmp(s->plain_ident, ident, SASL_ID_LEN) == 0)
        s->tls_declined = 1;
    s->plain_once = 0;
    s->fail_addr[0] = '\0';
    vstr_reset(s->fail_why);
    /* An address literal ("[127.0.0.1]" in relayhost) needs no lookup. Both
     * families for either: session_take_addrs() applies inet_protocols. */
    if (resolve_numeric(job->relay, job->port, AF_UNSPEC, &res) == 0) {
        session_take_addrs(s, res);
        freeaddrinfo(res);
        vstr_free(why);
        session_connect_next(s);
        return;
    }
    s->lookup =
        resolve_start(s->resolver, job->relay, job->port, AF_UNSPEC, session_resolved, s, why);
    if (s->lookup == NULL)
        session_lookup_failed(s, vstr_str(why));
    else
        session_arm(s, SESS_RESOLVING);
    vstr_free(why);
}

/* session_kick - start the waiting job, or finish a shutdown, once the connection is free */
static void session_kick(void *ctx)
{
    SESSION *s = ctx;
    JOB *job = s->job;
    long long now = now_ms();
    long long wall = wall_ms();
    long long age_limit = var_int(smtp_connection_reuse_time_limit) * 1000LL;
    long long count_limit = var_int(smtp_connection_reuse_count_limit);
    unsigned char ident[SASL_ID_LEN];
    const char *reason = NULL;
    VSTR *why;

    if (s->state != SESS_CLOSED && s->state != SESS_IDLE)
        return;
    if (job == NULL) {
        if (s->stopping) {
            if (s->state == SESS_IDLE) {
                session_quit(s, "stop");
            } else {
                s->stopping = 0;
                s->hooks->stopped(s->owner);
            }
        }
        return;
    }
    why = vstr_alloc(128);
    if (session_identity(job->relay, job->port, ident, why) < 0) {
        /* No credential, or it just failed: no connection can help this job now. */
        job->setup_start = 0;
        s->job_active = 1;
        job_fail_pending(job, JOB_DEFERRED, "4.7.0", vstr_str(why));
        vstr_free(why);
        session_job_done(s, AFTER_NONE);
        return;
    }
    vstr_free(why);
    if (s->state == SESS_CLOSED) {
        if (job->setup_start == 0)
            job->setup_start = wall;
        session_open(s, ident);
        return;
    }
    if (s->stale)
        reason = "reload";
    else if (memcmp(s->ident, ident, SASL_ID_LEN) != 0 || strcasecmp(s->host, job->relay) != 0 ||
             s->port != job->port)
        reason = "switch";
    else if (age_limit > 0 && now - s->opened_ms >= age_limit)
        reason = "reuse_time";
    else if (count_limit > 0 && s->msgs >= count_limit)
        reason = "reuse_count";
    if (reason != NULL) {
        if (msg_verbose)
            msg_info("retiring connection to %s (%u messages, %llds old, %s) for a job to %s:%u",
                     vstr_str(s->relay_text), s->msgs, (now - s->opened_ms) / 1000, reason,
                     job->relay, job->port);
        if (job->setup_start == 0)
            job->setup_start = wall;
        session_quit(s, reason);
        return;
    }
    event_cancel_timer(session_keepalive, s);
    event_cancel_timer(session_idle_expire, s);
    proto_begin(s);
}

/* session_deliver - take a job */
void session_deliver(SESSION *s, JOB *job)
{
    if (s->job != NULL)
        msg_panic("session_deliver: a job is in flight");
    if (job->body == NULL)
        msg_panic("session_deliver: %s: no content", job->queue_id);
    s->job = job;
    s->job_active = 0;
    if (s->state == SESS_QUIT) /* retiring anyway: do not make the job wait for the 221 */
        session_close(s, NULL);
    else
        session_hurry(s);
    session_request_kick(s);
}

/* session_shutdown - QUIT when the job in flight is done, then tell the owner */
void session_shutdown(SESSION *s)
{
    s->stopping = 1;
    session_hurry(s);
    session_request_kick(s);
}

/* session_reload - the configuration was re-read: retire a connection it changed */
void session_reload(SESSION *s)
{
    unsigned char ident[SASL_ID_LEN];
    VSTR *why;

    if (s->conn == NULL || s->state == SESS_QUIT || s->host == NULL)
        return;
    why = vstr_alloc(128);
    /* A changed credential or TLS policy: this connection must not carry another job. */
    if (session_identity(s->host, s->port, ident, why) < 0 ||
        memcmp(ident, s->ident, SASL_ID_LEN) != 0) {
        s->stale = 1;
        if (s->state == SESS_IDLE && s->job == NULL) {
            msg_info("connection to %s: configuration changed; closing", vstr_str(s->relay_text));
            event_cancel_timer(session_keepalive, s);
            event_cancel_timer(session_idle_expire, s);
            session_quit(s, "reload");
        }
    }
    vstr_free(why);
}

/* session_held_dest - the destination of an announced open connection, or NULL */
const char *session_held_dest(const SESSION *s)
{
    return s->conn != NULL && s->announced && s->state != SESS_QUIT ? s->dest : NULL;
}
