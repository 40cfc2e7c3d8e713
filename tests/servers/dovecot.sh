#!/usr/bin/env bash
# Install Dovecot's IMAP server (dovecot-imapd) if missing, for the email and fax channel tests.
# The tests start their own throwaway instance (tests/servers/dovecot.py) on a free port; the
# packaged system service is stopped if the package's postinst started it.
# Idempotent: does nothing when the binary is already there. Debian 12 (bookworm) packages.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

if command -v dovecot >/dev/null 2>&1 && [ -x /usr/lib/dovecot/imap ]; then
  echo "dovecot: already installed ($(command -v dovecot), $(dovecot --version))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends dovecot-imapd
if command -v service >/dev/null 2>&1; then
  $SUDO service dovecot stop >/dev/null 2>&1 || true
fi
command -v dovecot >/dev/null
echo "dovecot: installed ($(dovecot --version))"
