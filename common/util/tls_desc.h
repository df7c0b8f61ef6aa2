/*
 * tls_desc.h - a TLS session as the mail log names it
 */
#ifndef RELAYQ_TLS_DESC_H
#define RELAYQ_TLS_DESC_H

#include <gnutls/gnutls.h>

#include "vstr.h"

void tls_desc(gnutls_session_t session, VSTR *out);

#endif
