#!/usr/bin/env bash
# Install the Kannel SMS gateway (bearerbox, smsbox) and kannel-extras (fakesmsc) if missing.
# bearerbox/smsbox live in /usr/sbin (not on a normal user's PATH); fakesmsc in /usr/lib/kannel/test.
# Idempotent: does nothing when the binaries are already there. Debian 12 (bookworm) packages.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v bearerbox >/dev/null 2>&1 || need+=(kannel)
command -v smsbox >/dev/null 2>&1 || need+=(kannel)
[ -x /usr/lib/kannel/test/fakesmsc ] || need+=(kannel-extras)
if [ "${#need[@]}" -eq 0 ]; then
  echo "kannel: already installed ($(command -v bearerbox), /usr/lib/kannel/test/fakesmsc)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2068
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $(printf '%s\n' ${need[@]} | sort -u)

# The Debian package enables a system-wide kannel service; tests run their own throwaway boxes
# on free ports, so stop the packaged one if the package's postinst started it.
if command -v service >/dev/null 2>&1; then
  $SUDO service kannel stop >/dev/null 2>&1 || true
fi
command -v bearerbox >/dev/null && command -v smsbox >/dev/null && [ -x /usr/lib/kannel/test/fakesmsc ]
echo "kannel: installed"
