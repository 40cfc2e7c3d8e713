#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 with trust auth for user postgres.
# Dev machines and CI already run it; on a fresh Debian machine this installs and starts it.
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  sed -i 's/^\(host\|local\).*/# &/' /etc/postgresql/$ver/main/pg_hba.conf
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
    >> /etc/postgresql/$ver/main/pg_hba.conf
fi
ver=$(ls /etc/postgresql | sort -V | tail -1)
pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 0.2; done
echo "PostgreSQL did not start on 127.0.0.1:5432" >&2
exit 1
