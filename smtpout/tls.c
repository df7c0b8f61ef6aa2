/*
 * tls - GnuTLS under the CONN layer: STARTTLS and implicit TLS for smtpout
 *
 * tls_policy()
 *	the TLS policy of a relay: its smtp_tls_policy_maps entry, else the
 *	global parameters (common/mail/tls_policy.c), parsed at the first
 *	lookup and kept for the relay and port until the next tls_reload().
 *	The policy is this module's: it stays valid until the next call or
 *	reload, and a caller that keeps it copies it (tls_policy_copy()).
 * tls_start()
 *	attach a GnuTLS client session to a connected CONN under a relay's
 *	policy: TLS 1.2 or 1.3 only (the policy's protocols and cipher
 *	grade), SNI when the relay is a name, at level verify the relay's
 *	name (or address literal, or the policy's match=) checked against
 *	the certificate with the policy's trust anchors, and the saved
 *	session of the last good connection under the same `cache_key`
 *	(destination and TLS policy) offered for resumption. The CONN
 *	keeps its plain operations until the handshake is done.
 * tls_handshake()
 *	advance the non-blocking handshake: TLS_HS_DONE (the CONN now reads
 *	and writes through TLS), TLS_HS_AGAIN (call again when the descriptor
 *	is ready; tls_want_write() says for which direction), TLS_HS_FAILED,
 *	or TLS_HS_UNTRUSTED / TLS_HS_UNVERIFIED (certificate chain, or only
 *	the name, did not verify), each failure with GnuTLS's words in `why`.
 * tls_want_write()
 *	the handshake waits until the descriptor is writable.
 * tls_trust(), tls_resumed(), tls_describe()
 *	for the log line: "Verified", "Trusted" or "Untrusted" (as Postfix
 *	says), whether the session was resumed, and "TLSv1.3 with cipher
 *	NAME (256/256 bits)".
 * tls_save_session()
 *	remember the session for resumption (when the server gave a ticket
 *	or a TLS 1.2 session); done again when the connection closes.
 * tls_discard()
 *	free the TLS state of a CONN (conn_close() calls it).
 * tls_reload()
 *	at start and after each reload: read smtp_tls_policy_maps (every
 *	entry must parse: -1 with the reason, and the old table stays), drop
 *	the parsed policies, and let the next connections load their CA
 *	files again. A refused table keeps the parsed policies too, unless
 *	the global level or CA file that relays without an entry get changed.
 *
 * A session asks for its relay's policy for every job (the connection's
 * identity) and again when it opens a connection: the parsed policies
 * ("[relay]:port" -> TLS_POLICY) spare it the table lookup and the
 * parsing each time. They are process-wide like the table they come
 * from; at most TLS_POLICY_CACHE_MAX relays are kept, and one more drops
 * them all (a process that sees that many relays parses again, as it
 * would without them).
 *
 * Trust anchors are the policy's CA file (smtp_tls_CAfile, or CAfile= of
 * its entry), else the system trust store, loaded at the first TLS
 * connection that needs them into a credentials object that every
 * session of the process with that file shares. The sessions of a
 * process hold references: a reload retires the objects, and each is
 * freed when its last session ends. At levels may and encrypt the chain
 * is still checked after the handshake, only to say "Trusted" or
 * "Untrusted" in the log.
 *
 * Ownership: the CONN owns its TLS state (conn->layer). The session cache
 * and the parsed policies belong to this module. GnuTLS failures are
 * returned with their text; an allocation failure inside GnuTLS is
 * treated as a failed handshake.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "htable.h"
#include "maps.h"
#include "msg.h"
#include "mymalloc.h"
#include "params.h"
#include "smtpout.h"
#include "tls_desc.h"

#define TLS_READ_TRIES 4         /* gnutls_record_recv() calls before EAGAIN is believed */
#define TLS_POLICY_CACHE_MAX 256 /* relays whose parsed policy is kept */

/*
 * TLS_CREDS models the trust anchors of one CA file ("" the system's
 * store), shared by the sessions that verify against it. A reload
 * retires every entry: the next session loads the file again, and an
 * entry is freed once no session uses it.
 */
typedef struct TLS_CREDS {
    gnutls_certificate_credentials_t creds;
    int refs; /* sessions using it, and one while it is the current entry */
} TLS_CREDS;

static HTABLE *tls_creds_by_file; /* CA file -> current TLS_CREDS */
static MAPS *tls_policy_map;      /* smtp_tls_policy_maps */
static HTABLE *tls_policies;      /* "[relay]:port" -> TLS_POLICY, parsed from that table */
static char *tls_policies_global; /* the level and CA file they were parsed under */
static HTABLE *tls_cache;         /* cache key -> TLS_CACHED */

/* TLS_CACHED models one saved session, offered on the next connection. */
typedef struct TLS_CACHED {
    gnutls_datum_t data;
} TLS_CACHED;

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len);
static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len);
static ssize_t tls_read(CONN *conn, void *buf, size_t len);
static ssize_t tls_write(CONN *conn, const void *buf, size_t len);
static void tls_close(CONN *conn);
static int tls_pending(CONN *conn);

static const CONN_OPS tls_ops = {"tls", tls_read, tls_write, tls_close, tls_pending};

/* tls_cached_free - forget one saved session */
static void tls_cached_free(void *value)
{
    TLS_CACHED *cached = value;

    gnutls_free(cached->data.data);
    myfree(cached);
}

/* tls_creds_release - a session, or the table, lets go of credentials */
static void tls_creds_release(void *value)
{
    TLS_CREDS *entry = value;

    if (--entry->refs == 0) {
        gnutls_certificate_free_credentials(entry->creds);
        myfree(entry);
    }
}

/* tls_policy_entry_free - one parsed policy, as htable_free() wants it */
static void tls_policy_entry_free(void *value)
{
    tls_policy_free(value);
    myfree(value);
}

/* tls_policies_drop - forget the parsed policies */
static void tls_policies_drop(void)
{
    if (tls_policies != NULL)
        htable_free(tls_policies, tls_policy_entry_free);
    tls_policies = NULL;
    myfree(tls_policies_global);
    tls_policies_global = NULL;
}

/* tls_policies_global_now - the global level and CA file in force, as one string */
static char *tls_policies_global_now(void)
{
    const char *level = var_str(smtp_tls_security_level);
    const char *cafile = var_str(smtp_tls_CAfile);
    char *text = mymalloc(strlen(level) + strlen(cafile) + 2);

    sprintf(text, "%s\n%s", level, cafile);
    return text;
}

/* tls_reload_refused - the old table stays, and its policies while the globals are the same */
static int tls_reload_refused(void)
{
    char *global = tls_policies_global_now();

    if (tls_policies_global != NULL && strcmp(global, tls_policies_global) != 0)
        tls_policies_drop();
    myfree(global);
    return -1;
}

/* tls_reload - the configuration was re-read: CA files and the policy table again */
int tls_reload(VSTR *why)
{
    MAPS *map = maps_open(var_str(smtp_tls_policy_maps), why);
    VSTR *reason;

    if (map == NULL && vstr_len(why) > 0)
        return tls_reload_refused();
    reason = vstr_alloc(100);
    if (tls_policy_check(map, reason) < 0) {
        vstr_sprintf(why, "%s: %s", maps_path(map), vstr_str(reason));
        vstr_free(reason);
        maps_free(map);
        return tls_reload_refused();
    }
    vstr_free(reason);
    maps_free(tls_policy_map);
    tls_policy_map = map;
    tls_policies_drop();
    if (tls_creds_by_file != NULL)
        htable_free(tls_creds_by_file, tls_creds_release);
    tls_creds_by_file = htable_create(8);
    return 0;
}

/* tls_policy - the TLS policy of a relay (tls_policy.c, over smtp_tls_policy_maps), kept */
const TLS_POLICY *tls_policy(const char *relay, unsigned port, VSTR *why)
{
    TLS_POLICY_DEFAULTS defaults = {var_str(smtp_tls_security_level), var_str(smtp_tls_CAfile)};
    char *key = mymalloc(strlen(relay) + 16);
    TLS_POLICY *policy;

    sprintf(key, "[%s]:%u", relay, port);
    if (tls_policies != NULL && (policy = htable_get(tls_policies, key)) != NULL) {
        myfree(key);
        return policy;
    }
    policy = mymalloc(sizeof(*policy));
    if (tls_policy_lookup(tls_policy_map, &defaults, relay, port, policy, why) < 0) {
        myfree(policy);
        myfree(key);
        return NULL;
    }
    /* So many relays that keeping them all would cost more than parsing again. */
    if (tls_policies != NULL && htable_count(tls_policies) >= TLS_POLICY_CACHE_MAX)
        tls_policies_drop();
    if (tls_policies == NULL) {
        tls_policies = htable_create(16);
        tls_policies_global = tls_policies_global_now();
    }
    htable_put(tls_policies, key, policy);
    myfree(key);
    return policy;
}

/* tls_creds_get - the credentials with a CA file's trust anchors, one reference more */
static TLS_CREDS *tls_creds_get(const char *cafile, VSTR *why)
{
    TLS_CREDS *entry = htable_get(tls_creds_by_file, cafile);
    int ret;

    if (entry != NULL) {
        entry->refs++;
        return entry;
    }
    entry = mymalloc(sizeof(*entry));
    if ((ret = gnutls_certificate_allocate_credentials(&entry->creds)) < 0) {
        vstr_sprintf(why, "cannot allocate TLS credentials: %s", gnutls_strerror(ret));
        myfree(entry);
        return NULL;
    }
    if (*cafile != '\0')
        ret = gnutls_certificate_set_x509_trust_file(entry->creds, cafile, GNUTLS_X509_FMT_PEM);
    else
        ret = gnutls_certificate_set_x509_system_trust(entry->creds);
    /* No anchors is not fatal: verification fails, and says why, at level verify. */
    if (ret <= 0)
        msg_warn("%s%s: no trusted CA certificates loaded%s%s",
                 *cafile ? "CA file " : "system trust store", cafile, ret < 0 ? ": " : "",
                 ret < 0 ? gnutls_strerror(ret) : "");
    entry->refs = 2; /* the table's and the caller's */
    htable_put(tls_creds_by_file, cafile, entry);
    return entry;
}

/* tls_is_address - is the relay an address literal (no SNI for those) */
static int tls_is_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* tls_start - a client session on the connected socket */
int tls_start(CONN *conn, const char *host, const TLS_POLICY *policy, const char *cache_key,
              VSTR *why)
{
    int verify = policy->level == TLS_POLICY_VERIFY;
    const char *name = policy->match ? policy->match : host;
    TLS_STATE *tls;
    TLS_CACHED *cached;
    TLS_CREDS *creds;
    const char *err_pos = NULL;
    int ret;

    if (conn->layer != NULL)
        msg_panic("tls_start: connection already has TLS");
    if ((creds = tls_creds_get(policy->cafile, why)) == NULL)
        return -1;
    tls = mycalloc(1, sizeof(*tls));
    if ((ret = gnutls_init(&tls->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK)) < 0) {
        vstr_sprintf(why, "cannot start TLS: %s", gnutls_strerror(ret));
        tls_creds_release(creds);
        myfree(tls);
        return -1;
    }
    conn->layer = tls;
    tls->creds = creds;
    tls->cache_key = mystrdup(cache_key);
    tls->verify = verify;
    if ((ret = gnutls_priority_set_direct(tls->session, policy->priority, &err_pos)) < 0 ||
        (ret = gnutls_credentials_set(tls->session, GNUTLS_CRD_CERTIFICATE, creds->creds)) < 0 ||
        (!tls_is_address(host) &&
         (ret = gnutls_server_name_set(tls->session, GNUTLS_NAME_DNS, host, strlen(host))) < 0)) {
        vstr_sprintf(why, "cannot start TLS: %s", gnutls_strerror(ret));
        tls_discard(conn);
        return -1;
    }
    /* gnutls checks an address literal against the certificate's IP addresses. */
    if (verify)
        gnutls_session_set_verify_cert(tls->session, name, 0);
    if (tls_cache != NULL && (cached = htable_get(tls_cache, cache_key)) != NULL)
        (void)gnutls_session_set_data(tls->session, cached->data.data, cached->data.size);
    gnutls_handshake_set_timeout(tls->session, GNUTLS_INDEFINITE_TIMEOUT);
    /* Our own socket calls: tls_pull notes an empty socket for tls_read(). */
    gnutls_transport_set_ptr(tls->session, conn);
    gnutls_transport_set_pull_function(tls->session, tls_pull);
    gnutls_transport_set_push_function(tls->session, tls_push);
    return 0;
}

/* tls_pull - GnuTLS's reads from the socket; an empty socket is noted for tls_read() */
static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
    CONN *conn = ptr;
    TLS_STATE *tls = conn->layer;
    ssize_t n = recv(conn->fd, buf, len, 0);

    if (n < 0) {
        tls->socket_empty = errno == EAGAIN || errno == EWOULDBLOCK;
        gnutls_transport_set_errno(tls->session, errno);
    }
    return n;
}

/* tls_push - GnuTLS's writes to the socket */
static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
    CONN *conn = ptr;
    TLS_STATE *tls = conn->layer;
    ssize_t n = send(conn->fd, buf, len, MSG_NOSIGNAL);

    if (n < 0)
        gnutls_transport_set_errno(tls->session, errno);
    return n;
}

/* tls_verify_text - GnuTLS's description of a verification status */
static void tls_verify_text(unsigned status, VSTR *why)
{
    gnutls_datum_t out = {NULL, 0};
    size_t len;

    vstr_strcpy(why, "certificate verification failed");
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) < 0)
        return;
    len = out.size;
    while (len > 0 && (out.data[len - 1] == ' ' || out.data[len - 1] == '\0'))
        len--;
    vstr_strcat(why, ": ");
    vstr_append(why, out.data, len);
    gnutls_free(out.data);
}

/* tls_handshake - one step of the non-blocking handshake */
int tls_handshake(CONN *conn, VSTR *why)
{
    TLS_STATE *tls = conn->layer;
    unsigned status;
    int ret;

    if (tls == NULL)
        msg_panic("tls_handshake: no TLS session");
    do {
        ret = gnutls_handshake(tls->session);
    } while (ret < 0 && !gnutls_error_is_fatal(ret) && ret != GNUTLS_E_AGAIN &&
             ret != GNUTLS_E_INTERRUPTED);
    if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
        return TLS_HS_AGAIN;
    if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        status = gnutls_session_get_verify_cert_status(tls->session);
        tls_verify_text(status, why);
        /* Only the name wrong: "not verified"; the chain itself bad: "not trusted". */
        return (status & ~(GNUTLS_CERT_INVALID | GNUTLS_CERT_UNEXPECTED_OWNER)) == 0 &&
                       (status & GNUTLS_CERT_UNEXPECTED_OWNER)
                   ? TLS_HS_UNVERIFIED
                   : TLS_HS_UNTRUSTED;
    }
    if (ret < 0) {
        vstr_sprintf(why, "%s", gnutls_strerror(ret));
        return TLS_HS_FAILED;
    }
    if (tls->verify) {
        tls->trust = "Verified";
    } else {
        /* Not required, but the log says whether the chain would have verified. */
        tls->trust = gnutls_certificate_verify_peers2(tls->session, &status) == 0 && status == 0
                         ? "Trusted"
                         : "Untrusted";
    }
    tls->done = 1;
    conn->ops = &tls_ops;
    tls_save_session(conn);
    return TLS_HS_DONE;
}

/* tls_want_write - which readiness the handshake waits for */
int tls_want_write(const CONN *conn)
{
    const TLS_STATE *tls = conn->layer;

    return tls != NULL && gnutls_record_get_direction(tls->session) == 1;
}

/* tls_trust - "Verified", "Trusted" or "Untrusted" */
const char *tls_trust(const CONN *conn)
{
    const TLS_STATE *tls = conn->layer;

    return tls != NULL && tls->trust != NULL ? tls->trust : "Untrusted";
}

/* tls_resumed - whether the handshake resumed a saved session */
int tls_resumed(const CONN *conn)
{
    const TLS_STATE *tls = conn->layer;

    return tls != NULL && tls->done && gnutls_session_is_resumed(tls->session);
}

/* tls_describe - "TLSv1.3 with cipher NAME (256/256 bits)" */
void tls_describe(const CONN *conn, VSTR *out)
{
    const TLS_STATE *tls = conn->layer;

    if (tls == NULL || !tls->done)
        vstr_strcpy(out, "no TLS");
    else
        tls_desc(tls->session, out);
}

/* tls_save_session - keep the session for resumption when it can be resumed */
void tls_save_session(CONN *conn)
{
    TLS_STATE *tls = conn->layer;
    TLS_CACHED *cached;
    gnutls_datum_t data;

    if (tls == NULL || !tls->done)
        return;
    /* TLS 1.3 resumes only with a ticket; asking without one would wait for it. */
    if (gnutls_protocol_get_version(tls->session) == GNUTLS_TLS1_3 &&
        !(gnutls_session_get_flags(tls->session) & GNUTLS_SFLAGS_SESSION_TICKET))
        return;
    if (gnutls_session_get_data2(tls->session, &data) < 0)
        return;
    if (tls_cache == NULL)
        tls_cache = htable_create(4);
    cached = mycalloc(1, sizeof(*cached));
    cached->data = data;
    if (htable_get(tls_cache, tls->cache_key) != NULL)
        tls_cached_free(htable_remove(tls_cache, tls->cache_key));
    htable_put(tls_cache, tls->cache_key, cached);
}

/* tls_forget_session - a failed handshake's saved session must not be offered again */
void tls_forget_session(const char *cache_key)
{
    if (tls_cache != NULL && htable_get(tls_cache, cache_key) != NULL)
        tls_cached_free(htable_remove(tls_cache, cache_key));
}

/* tls_read - read application data */
static ssize_t tls_read(CONN *conn, void *buf, size_t len)
{
    TLS_STATE *tls = conn->layer;
    ssize_t n;
    int tries = 0;

    /*
     * After a post-handshake message (a TLS 1.3 session ticket) GnuTLS says
     * "again" even when the next record already sits in its own buffer,
     * where poll(2) cannot see it: ask again -- but only while the socket
     * itself was not found empty. Once recv(2) said EAGAIN, so does
     * GnuTLS rightly, and a read event costs one empty recv(2), not
     * TLS_READ_TRIES.
     */
    do {
        tls->socket_empty = 0;
        n = gnutls_record_recv(tls->session, buf, len);
    } while ((n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) && !tls->socket_empty &&
             ++tries < TLS_READ_TRIES);
    if (n >= 0)
        return n;
    switch (n) {
    case GNUTLS_E_AGAIN:
    case GNUTLS_E_INTERRUPTED:
    case GNUTLS_E_REHANDSHAKE: /* ignored: a client may refuse a renegotiation */
        errno = EAGAIN;
        return -1;
    case GNUTLS_E_PREMATURE_TERMINATION:
        return 0; /* the server closed the socket without close_notify: an end all the same */
    default:
        if (msg_verbose)
            msg_info("TLS read from %s: %s", conn->addr, gnutls_strerror((int)n));
        errno = ECONNRESET;
        return -1;
    }
}

/* tls_write - write application data; after EAGAIN, GnuTLS resends its pending record */
static ssize_t tls_write(CONN *conn, const void *buf, size_t len)
{
    TLS_STATE *tls = conn->layer;
    ssize_t n;

    /* The caller offers the same bytes again (perhaps more after them); GnuTLS wants none. */
    if (tls->write_pending)
        n = gnutls_record_send(tls->session, NULL, 0);
    else
        n = gnutls_record_send(tls->session, buf, len);
    if (n >= 0) {
        tls->write_pending = 0;
        return n;
    }
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        tls->write_pending = 1;
        errno = EAGAIN;
        return -1;
    }
    if (msg_verbose)
        msg_info("TLS write to %s: %s", conn->addr, gnutls_strerror((int)n));
    errno = ECONNRESET;
    return -1;
}

/* tls_pending - records GnuTLS has read and decrypted, waiting to be handed over */
static int tls_pending(CONN *conn)
{
    TLS_STATE *tls = conn->layer;

    return gnutls_record_check_pending(tls->session) > 0;
}

/* tls_close - save the session and send close_notify, without waiting */
static void tls_close(CONN *conn)
{
    TLS_STATE *tls = conn->layer;

    tls_save_session(conn);
    (void)gnutls_bye(tls->session, GNUTLS_SHUT_WR);
}

/* tls_discard - free the TLS state of a connection */
void tls_discard(CONN *conn)
{
    TLS_STATE *tls = conn->layer;

    if (tls == NULL)
        return;
    gnutls_deinit(tls->session);
    tls_creds_release(tls->creds);
    myfree(tls->cache_key);
    myfree(tls);
    conn->layer = NULL;
}
