#!/usr/bin/env bash
# Make sure Redis answers on 127.0.0.1:6379 (the socket.io fan-out tests use it).
# Dev machines and CI already run it; on a fresh Debian machine this installs and starts it.
set -euo pipefail
if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then exit 0; fi
if ! command -v redis-server >/dev/null; then
  echo "installing Redis (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
for _ in $(seq 1 50); do
  redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && exit 0
  sleep 0.2
done
echo "Redis did not start on 127.0.0.1:6379" >&2
exit 1
