#!/bin/sh
# scripts/deps.sh - install what building and testing relayq needs on
# Debian 12, when it is missing. Needs root (or sudo) only when something
# is missing.
set -e
PACKAGES="build-essential autoconf automake pkg-config liblmdb-dev lmdb-utils
libsodium-dev libgnutls28-dev libmicrohttpd-dev libhiredis-dev redis-server prometheus curl gnutls-bin python3 python3-aiosmtpd procps faketime valgrind clang-14 libclang-rt-14-dev
systemd logrotate pflogsumm swaks libnet-ssleay-perl
postfix sasl2-bin libsasl2-modules libsasl2-modules-db"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -q
# redis-server: the shared-limits tests (tests/t_shared_*.sh) start a
# private instance on 127.0.0.1; the package's own service is not used.
# postfix (tests/t_postfix_upstream.sh runs a private instance of it) asks
# a debconf question on install; answer "No configuration" so that the
# install neither prompts nor configures or starts the machine's own Postfix.
case " $missing " in
*" postfix "*)
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    ;;
esac
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
