#!/usr/bin/env bash
# The packaged service sweeping a PostgreSQL store and a files store, under
# real systemd: builds the Debian package (tests/packaging/build_deb.sh), boots
# the host's own / in a throw-away container (overlays on /usr, /etc, /var),
# and runs tests/systemd/e2e_stores_driver.sh inside as a oneshot service. The
# driver installs the package, starts a throw-away PostgreSQL 15 on
# /run/postgresql, writes the data-paths drop-in from the shipped example, and
# has the service as installed (/usr/sbin/retentiond, its unit) sweep a store
# on the Unix socket (peer auth) and a files tree (delete, archive, a hold
# file) on SIGUSR1, then verifies the audit log; shows that a files root the
# drop-in does not list fails with a message naming the drop-in; then sweeps
# PostgreSQL on 127.0.0.1 with the shipped postgresql-tcp drop-in
# (scram-sha-256, the passfile through LoadCredential=), after checking that a
# missing or readable passfile is named. Prints the driver's log; passes on
# "RESULT: PASS".
# Exits 77 (skipped) only when systemd-nspawn is missing (package
# systemd-container); PostgreSQL 15's server binaries missing is a failure.
# Usage: e2e_stores.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(realpath "$1")
build=$(realpath "$2")
if ! command -v systemd-nspawn >/dev/null; then
  echo "SKIP: systemd-nspawn not found; install the package systemd-container (scripts/install-deps.sh --test)"
  exit 77
fi
[ "$(id -u)" -eq 0 ] || { echo "FAIL: booting a container needs root"; exit 1; }
[ -x /usr/lib/postgresql/15/bin/postgres ] || { echo "FAIL: /usr/lib/postgresql/15/bin/postgres not found (package postgresql-15)"; exit 1; }
getent passwd postgres >/dev/null || { echo "FAIL: no postgres user (package postgresql-15)"; exit 1; }
command -v psql >/dev/null || { echo "FAIL: psql not found (package postgresql-client-15)"; exit 1; }

work=$(mktemp -d /tmp/retentiond-e2e-stores.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/drv"
deb=$("$src/tests/packaging/build_deb.sh" "$build" "$work/pkg")
echo "built $(basename "$deb")"
cp "$deb" "$work/drv/retentiond.deb"
cp "$src/tests/systemd/e2e_stores_driver.sh" "$work/drv/driver.sh"
"$src/tests/systemd/boot_container.sh" "$work" "retentiond stores end-to-end test" 300 --usr
