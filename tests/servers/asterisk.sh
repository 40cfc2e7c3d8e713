#!/usr/bin/env bash
# Prepare the Asterisk 22 testbed for the voice tests (idempotent).
#
# Debian 12 ships no Asterisk, so the PBX runs from a Debian unstable (sid) chroot built with
# mmdebstrap. The chroot is cached under /var/cache/contacthub/asterisk-<hash>, where the hash
# covers the package list, suite and mirror: change any of them and a fresh chroot is built,
# otherwise the cached one is reused. The host also needs sipp (SIP caller/agent phones),
# espeak-ng and sox (speech audio for RTP and recording checks).
#
# Prints the chroot path on its last line. Needs root (mmdebstrap, apt-get).
set -euo pipefail

SUITE="${ASTERISK_SUITE:-sid}"
MIRROR="${ASTERISK_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="asterisk,asterisk-modules,asterisk-core-sounds-en-gsm,asterisk-moh-opsound-gsm"
CACHE_DIR="${CONTACTHUB_CACHE:-/var/cache/contacthub}"

log() { echo "asterisk.sh: $*" >&2; }

need_apt=()
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v sipp >/dev/null || need_apt+=(sip-tester)
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v sox >/dev/null || need_apt+=(sox)
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

key="$(printf '%s|%s|%s' "$SUITE" "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-12)"
root="$CACHE_DIR/asterisk-$key"

if [[ -x "$root/usr/sbin/asterisk" && -f "$root/.contacthub-complete" ]]; then
  log "reusing cached chroot $root"
  ln -sfn "$root" "$CACHE_DIR/asterisk-current"
  echo "$root"
  exit 0
fi

mkdir -p "$CACHE_DIR"
# Build into a temporary directory and rename at the end, so an interrupted build is never
# mistaken for a cached one.
tmp="$(mktemp -d "$CACHE_DIR/.asterisk-build-XXXXXX")"
trap 'umount "$tmp/proc" "$tmp/dev" 2>/dev/null || true; rm -rf "$tmp"' EXIT
log "building chroot ($PACKAGES from $SUITE) into $root"
start=$(date +%s)
mmdebstrap --quiet --variant=apt \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --include="$PACKAGES" \
  "$SUITE" "$tmp" "$MIRROR" >&2
# Free space: documentation and apt lists are not needed at run time.
rm -rf "$tmp"/usr/share/doc/* "$tmp"/usr/share/man/* "$tmp"/var/lib/apt/lists/* \
  "$tmp"/var/cache/apt/*.bin
touch "$tmp/.contacthub-complete"
rm -rf "$root"
mv "$tmp" "$root"
trap - EXIT
ln -sfn "$root" "$CACHE_DIR/asterisk-current"
log "built in $(( $(date +%s) - start )) s"
echo "$root"
