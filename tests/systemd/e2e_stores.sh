#!/usr/bin/env bash
# PostgreSQL stores through the shipped unit, under real systemd: boots the
# host's own / in a throw-away container (as e2e.sh does), installs
# systemd/retentiond.service with the built binary and the test's data-paths
# drop-in, and runs tests/systemd/e2e_postgresql_driver.sh inside as a oneshot
# service. The driver starts a throw-away PostgreSQL 15 on /run/postgresql,
# sweeps a store on the Unix socket with the unit as shipped (peer auth), then
# one on 127.0.0.1 with systemd/retentiond.service.d/postgresql-tcp.conf.example
# installed (scram-sha-256, the passfile through LoadCredential=), and checks
# that a missing passfile is named. Prints the driver's log; passes on
# "RESULT: PASS".
# Exits 77 (skipped) only when systemd-nspawn is missing (package
# systemd-container); PostgreSQL 15's server binaries missing is a failure.
# Usage: e2e_postgresql.sh SOURCE_DIR RETENTIOND_BINARY
set -euo pipefail
src=$(realpath "$1")
binary=$(realpath "$2")
if ! command -v systemd-nspawn >/dev/null; then
  echo "SKIP: systemd-nspawn not found; install the package systemd-container (scripts/install-deps.sh --test)"
  exit 77
fi
[ "$(id -u)" -eq 0 ] || { echo "FAIL: booting a container needs root"; exit 1; }
[ -x /usr/lib/postgresql/15/bin/postgres ] || { echo "FAIL: /usr/lib/postgresql/15/bin/postgres not found (package postgresql-15)"; exit 1; }
getent passwd postgres >/dev/null || { echo "FAIL: no postgres user (package postgresql-15)"; exit 1; }
command -v psql >/dev/null || { echo "FAIL: psql not found (package postgresql-client-15)"; exit 1; }

work=$(mktemp -d /tmp/retentiond-e2e-pg.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/units/retentiond.service.d" "$work/drv" "$work/bin" "$work/out"
cp "$binary" "$work/bin/retentiond"
cp "$src/tests/systemd/e2e_postgresql_driver.sh" "$work/drv/driver.sh"
# The TCP drop-in as shipped: the driver installs it in /etc/systemd/system.
cp "$src/systemd/retentiond.service.d/postgresql-tcp.conf.example" "$work/drv/postgresql-tcp.conf.example"

# The unit as shipped, with the binary where the container sees it, and the
# example data-paths drop-in (the PostgreSQL stores need no path of their own).
sed 's#/usr/sbin/retentiond#/opt/retentiond/retentiond#g' "$src/systemd/retentiond.service" \
  > "$work/units/retentiond.service"
sed 's#^ReadWritePaths=/var/lib/mgen$#ReadWritePaths=/srv/rtest#' \
  "$src/systemd/retentiond.service.d/data-paths.conf.example" \
  > "$work/units/retentiond.service.d/data-paths.conf"
grep -q '^ReadWritePaths=/srv/rtest$' "$work/units/retentiond.service.d/data-paths.conf"

cat > "$work/units/rtest.target" <<'UNIT'
[Unit]
Description=retentiond PostgreSQL end-to-end test
Requires=basic.target rtest.service
After=basic.target rtest.service
UNIT
cat > "$work/units/rtest.service" <<'UNIT'
[Unit]
Description=retentiond PostgreSQL end-to-end test driver
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash /run/drv/driver.sh
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=append:/run/out/driver.log
StandardError=append:/run/out/driver.log
TimeoutStartSec=300
UNIT

status=0
timeout 400 systemd-nspawn -D / --volatile=yes --overlay=/etc::/etc --overlay=/var::/var \
  --register=no --keep-unit --quiet \
  --bind-ro="$work/units:/run/systemd/system" --bind-ro="$work/drv:/run/drv" \
  --bind-ro="$work/bin:/opt/retentiond" --bind="$work/out:/run/out" \
  -b systemd.unit=rtest.target systemd.firstboot=off >"$work/boot.log" 2>&1 || status=$?
echo "== inside the container"
if [ ! -s "$work/out/driver.log" ]; then
  echo "FAIL: the driver did not run (systemd-nspawn exited $status)"
  tail -40 "$work/boot.log"
  exit 1
fi
cat "$work/out/driver.log"
grep -q '^RESULT: PASS$' "$work/out/driver.log"
