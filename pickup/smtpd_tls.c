/*
 * smtpd_tls - GnuTLS under the SMTP listener: STARTTLS and implicit TLS for clients
 *
 * smtpd_tls_create()
 *	load smtpd_tls_cert_file (the certificate chain, PEM) and
 *	smtpd_tls_key_file (its private key, PEM) into one credentials
 *	object every session shares, with TLS 1.2 or 1.3 only and a session
 *	ticket key made now, so a client may resume its session with this
 *	process. NULL with GnuTLS's words and the file names in `why`.
 * smtpd_tls_release()
 *	the listener is done with these credentials (a reload loaded new
 *	ones, or the end): they are freed once no session uses them.
 * smtpd_tls_accept()
 *	a server session on a connected, non-blocking socket; no byte is
 *	read or written yet.
 * smtpd_tls_handshake()
 *	advance the handshake: SMTPD_TLS_DONE, SMTPD_TLS_AGAIN (call again
 *	when the socket is ready; smtpd_tls_want_write() says for what), or
 *	SMTPD_TLS_FAILED with GnuTLS's words in `why`.
 * smtpd_tls_read(), smtpd_tls_write()
 *	application data, as read(2) and write(2) say it: -1 with errno
 *	EAGAIN when the socket is not ready (a write must then be offered
 *	the same bytes again, perhaps with more after them), 0 from read at
 *	the client's end, -1 with ECONNRESET for anything else.
 * smtpd_tls_pending()
 *	decrypted bytes wait inside GnuTLS, where poll(2) cannot see them.
 * smtpd_tls_describe()
 *	"TLSv1.3 with cipher NAME (256/256 bits)", for the log.
 * smtpd_tls_end()
 *	send close_notify without waiting, and free the session.
 *
 * Client certificates are neither asked for nor checked: a client proves
 * who it is with AUTH. The key file is read by pickup, which runs as
 * mail_owner: it must be readable by that user (doc/security.md).
 *
 * Ownership: an SMTPD_TLS_SESS belongs to its connection and holds a
 * reference to the SMTPD_TLS it came from. Nothing here is fatal; allocation failure inside
 * GnuTLS is a failed handshake.
 */
#include "config.h"

#include <errno.h>
#include <gnutls/gnutls.h>

#include "msg.h"
#include "mymalloc.h"
#include "pickup.h"
#include "tls_desc.h"

/* TLS 1.2 at least; the rest of GnuTLS's NORMAL set (as smtpout). */
#define SMTPD_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct SMTPD_TLS {
    gnutls_certificate_credentials_t creds;
    gnutls_priority_t priority;
    gnutls_datum_t ticket_key; /* for session tickets, made at start */
    int sessions;              /* sessions using these credentials */
    int released;              /* the listener no longer does */
};

struct SMTPD_TLS_SESS {
    SMTPD_TLS *creds;
    gnutls_session_t session;
    int write_pending; /* a record waits to be sent again after EAGAIN */
};

/* smtpd_tls_create - the server's credentials, from its certificate and key files */
SMTPD_TLS *smtpd_tls_create(const char *cert_file, const char *key_file, VSTR *why)
{
    SMTPD_TLS *t = mycalloc(1, sizeof(*t));
    int ret;

    if ((ret = gnutls_certificate_allocate_credentials(&t->creds)) < 0) {
        vstr_sprintf(why, "TLS credentials: %s", gnutls_strerror(ret));
        myfree(t);
        return NULL;
    }
    ret = gnutls_certificate_set_x509_key_file(t->creds, cert_file, key_file, GNUTLS_X509_FMT_PEM);
    if (ret < 0) {
        vstr_sprintf(why, "smtpd_tls_cert_file %s, smtpd_tls_key_file %s: %s", cert_file, key_file,
                     gnutls_strerror(ret));
        gnutls_certificate_free_credentials(t->creds);
        myfree(t);
        return NULL;
    }
    if ((ret = gnutls_priority_init(&t->priority, SMTPD_TLS_PRIORITY, NULL)) < 0 ||
        (ret = gnutls_session_ticket_key_generate(&t->ticket_key)) < 0) {
        vstr_sprintf(why, "TLS setup: %s", gnutls_strerror(ret));
        smtpd_tls_release(t);
        return NULL;
    }
    return t;
}

/* smtpd_tls_free - the credentials, once neither the listener nor a session uses them */
static void smtpd_tls_free(SMTPD_TLS *t)
{
    if (t->priority != NULL)
        gnutls_priority_deinit(t->priority);
    if (t->ticket_key.data != NULL) {
        gnutls_memset(t->ticket_key.data, 0, t->ticket_key.size);
        gnutls_free(t->ticket_key.data);
    }
    gnutls_certificate_free_credentials(t->creds);
    myfree(t);
}

/* smtpd_tls_release - the listener is done with the credentials */
void smtpd_tls_release(SMTPD_TLS *t)
{
    if (t == NULL)
        return;
    t->released = 1;
    if (t->sessions == 0)
        smtpd_tls_free(t);
}

/* smtpd_tls_accept - a server session on a client's socket */
SMTPD_TLS_SESS *smtpd_tls_accept(SMTPD_TLS *t, int fd, VSTR *why)
{
    SMTPD_TLS_SESS *ts = mycalloc(1, sizeof(*ts));
    int ret;

    if ((ret = gnutls_init(&ts->session, GNUTLS_SERVER | GNUTLS_NONBLOCK)) < 0) {
        vstr_sprintf(why, "TLS session: %s", gnutls_strerror(ret));
        myfree(ts);
        return NULL;
    }
    ts->creds = t;
    t->sessions++;
    if ((ret = gnutls_priority_set(ts->session, t->priority)) < 0 ||
        (ret = gnutls_credentials_set(ts->session, GNUTLS_CRD_CERTIFICATE, t->creds)) < 0 ||
        (ret = gnutls_session_ticket_enable_server(ts->session, &t->ticket_key)) < 0) {
        vstr_sprintf(why, "TLS session: %s", gnutls_strerror(ret));
        smtpd_tls_end(ts);
        return NULL;
    }
    gnutls_certificate_server_set_request(ts->session, GNUTLS_CERT_IGNORE);
    gnutls_transport_set_int(ts->session, fd);
    return ts;
}

/* smtpd_tls_handshake - one step of the non-blocking handshake */
int smtpd_tls_handshake(SMTPD_TLS_SESS *ts, VSTR *why)
{
    int ret;

    do {
        ret = gnutls_handshake(ts->session);
    } while (ret < 0 && !gnutls_error_is_fatal(ret) && ret != GNUTLS_E_AGAIN &&
             ret != GNUTLS_E_INTERRUPTED);
    if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
        return SMTPD_TLS_AGAIN;
    if (ret < 0) {
        vstr_strcpy(why, gnutls_strerror(ret));
        return SMTPD_TLS_FAILED;
    }
    return SMTPD_TLS_DONE;
}

/* smtpd_tls_want_write - the handshake waits until the socket is writable */
int smtpd_tls_want_write(const SMTPD_TLS_SESS *ts)
{
    return gnutls_record_get_direction(ts->session) == 1;
}

/* smtpd_tls_read - decrypted bytes from the client */
ssize_t smtpd_tls_read(SMTPD_TLS_SESS *ts, void *buf, size_t len)
{
    ssize_t n = gnutls_record_recv(ts->session, buf, len);

    if (n >= 0)
        return n;
    switch (n) {
    case GNUTLS_E_AGAIN:
    case GNUTLS_E_INTERRUPTED:
    case GNUTLS_E_REHANDSHAKE:
        errno = EAGAIN;
        return -1;
    case GNUTLS_E_PREMATURE_TERMINATION:
        return 0; /* closed without close_notify: an end all the same */
    default:
        if (msg_verbose)
            msg_info("TLS read: %s", gnutls_strerror((int)n));
        errno = ECONNRESET;
        return -1;
    }
}

/* smtpd_tls_write - bytes to the client; after EAGAIN GnuTLS resends its pending record */
ssize_t smtpd_tls_write(SMTPD_TLS_SESS *ts, const void *buf, size_t len)
{
    ssize_t n = ts->write_pending ? gnutls_record_send(ts->session, NULL, 0)
                                  : gnutls_record_send(ts->session, buf, len);

    if (n >= 0) {
        ts->write_pending = 0;
        return n;
    }
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        ts->write_pending = 1;
        errno = EAGAIN;
        return -1;
    }
    if (msg_verbose)
        msg_info("TLS write: %s", gnutls_strerror((int)n));
    errno = ECONNRESET;
    return -1;
}

/* smtpd_tls_pending - decrypted bytes wait inside GnuTLS */
int smtpd_tls_pending(const SMTPD_TLS_SESS *ts)
{
    return gnutls_record_check_pending(ts->session) > 0;
}

/* smtpd_tls_describe - the session's protocol and cipher, for the log */
void smtpd_tls_describe(const SMTPD_TLS_SESS *ts, VSTR *out)
{
    tls_desc(ts->session, out);
}

/* smtpd_tls_end - close_notify, without waiting, and free the session */
void smtpd_tls_end(SMTPD_TLS_SESS *ts)
{
    if (ts == NULL)
        return;
    (void)gnutls_bye(ts->session, GNUTLS_SHUT_WR);
    gnutls_deinit(ts->session);
    if (--ts->creds->sessions == 0 && ts->creds->released)
        smtpd_tls_free(ts->creds);
    myfree(ts);
}
