/*
 * tls_desc - a TLS session as the mail log names it
 *
 * tls_desc()
 *	write "TLSv1.3 with cipher NAME (256/256 bits)" for an established
 *	GnuTLS session to `out`, the words of Postfix's TLS log lines, for
 *	the client side (smtpout) and the server side (pickup's listener).
 *
 * Nothing here fails; a name GnuTLS does not know is "unknown".
 */
#include "config.h"

#include <string.h>

#include "tls_desc.h"

/* tls_desc - the protocol, cipher suite and key size of a session */
void tls_desc(gnutls_session_t session, VSTR *out)
{
    const char *proto = gnutls_protocol_get_name(gnutls_protocol_get_version(session));
    const char *suite = gnutls_ciphersuite_get(session);
    size_t bits = gnutls_cipher_get_key_size(gnutls_cipher_get(session)) * 8;

    if (proto != NULL && strncmp(proto, "TLS1.", 5) == 0)
        vstr_sprintf(out, "TLSv%s", proto + 3);
    else
        vstr_strcpy(out, proto != NULL ? proto : "unknown");
    vstr_sprintf_append(out, " with cipher %s (%zu/%zu bits)", suite != NULL ? suite : "unknown",
                        bits, bits);
}
