#!/bin/sh
# tests/certs.sh - make the TLS files of the tests with certtool (gnutls-bin)
#
# Usage: tests/certs.sh DIR
#
# Writes into DIR (created when missing):
#   ca.pem, ca-key.pem              a test CA
#   server.pem, server-key.pem      a server certificate signed by that CA,
#                                   for 127.0.0.1 (IP address and DNS name)
#                                   and localhost
#   other-ca.pem, other-ca-key.pem  a second CA that signed nothing here: a
#                                   client trusting only it must refuse the
#                                   server
# Keys are ECDSA P-256 (fast to make). Certificates and the CA files are
# mode 0644 so relayq's daemons (nobody when the tests run as root) can read
# them; keys are 0644 too because only the test servers read them and they
# live in the test's scratch directory.
set -e
dir=${1:?usage: certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() {
    certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$1" 2>/dev/null
}

cat >ca.tmpl <<'EOF'
cn = "relayq test CA"
organization = "relayq tests"
serial = 1
expiration_days = 30
ca
cert_signing_key
crl_signing_key
EOF
key ca-key.pem
certtool --generate-self-signed --load-privkey ca-key.pem --template ca.tmpl \
    --outfile ca.pem 2>/dev/null

cat >other-ca.tmpl <<'EOF'
cn = "relayq untrusted test CA"
organization = "relayq tests (other)"
serial = 2
expiration_days = 30
ca
cert_signing_key
crl_signing_key
EOF
key other-ca-key.pem
certtool --generate-self-signed --load-privkey other-ca-key.pem --template other-ca.tmpl \
    --outfile other-ca.pem 2>/dev/null

cat >server.tmpl <<'EOF'
cn = "127.0.0.1"
organization = "relayq tests"
serial = 3
expiration_days = 30
dns_name = "localhost"
dns_name = "127.0.0.1"
ip_address = "127.0.0.1"
tls_www_server
signing_key
encryption_key
EOF
key server-key.pem
certtool --generate-certificate --load-privkey server-key.pem --load-ca-certificate ca.pem \
    --load-ca-privkey ca-key.pem --template server.tmpl --outfile server.pem 2>/dev/null

rm -f ca.tmpl other-ca.tmpl server.tmpl
chmod 0644 ./*.pem
