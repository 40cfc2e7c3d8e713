#!/usr/bin/env bash
# Make sure Redis answers on 127.0.0.1:6379 (the socket.io fan-out tests use it).
# Dev machines and CI already run it; on a fresh Debian machine this installs and starts it.
set -euo pipefail
ping() {  # no redis-cli needed: a PING over bash's /dev/tcp
  local reply=""
  { exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3; } \
    2>/dev/null || true
  exec 3>&- 2>/dev/null || true
  [[ "$reply" == +PONG* ]]
}
if ping; then exit 0; fi
if ! command -v redis-server >/dev/null; then
  echo "installing Redis (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
for _ in $(seq 1 50); do
  ping && exit 0
  sleep 0.2
done
echo "Redis did not start on 127.0.0.1:6379" >&2
exit 1
