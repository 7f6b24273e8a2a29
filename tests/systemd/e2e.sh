#!/usr/bin/env bash
# End to end under real systemd: boots the host's own / in a throw-away
# container (systemd-nspawn --volatile=yes, overlays on /etc and /var), installs
# systemd/retentiond.service with the built binary, and runs
# tests/systemd/e2e_driver.sh inside as a oneshot service: it starts the unit
# against SQLite stores, sweeps on SIGUSR1, reloads with a good and a broken
# policy, and stops it. Prints the driver's log; passes on "RESULT: PASS".
# Exits 77 (skipped) when systemd-nspawn is missing: `scripts/install-deps.sh
# --test` installs it (package systemd-container).
# Usage: e2e.sh SOURCE_DIR RETENTIOND_BINARY
set -euo pipefail
src=$(realpath "$1")
binary=$(realpath "$2")
if ! command -v systemd-nspawn >/dev/null; then
  echo "SKIP: systemd-nspawn not found; install the package systemd-container (scripts/install-deps.sh --test)"
  exit 77
fi
[ "$(id -u)" -eq 0 ] || { echo "FAIL: booting a container needs root"; exit 1; }

work=$(mktemp -d /tmp/retentiond-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/units/retentiond.service.d" "$work/drv" "$work/bin"
cp "$binary" "$work/bin/retentiond"
cp "$src/tests/systemd/e2e_driver.sh" "$work/drv/driver.sh"

# The unit as shipped, with the binary where the container sees it, and the
# example drop-in pointed at the test's stores.
sed 's#/usr/sbin/retentiond#/opt/retentiond/retentiond#g' "$src/systemd/retentiond.service" \
  > "$work/units/retentiond.service"
sed 's#^ReadWritePaths=/var/lib/mgen$#ReadWritePaths=/srv/rtest#' \
  "$src/systemd/retentiond.service.d/data-paths.conf.example" \
  > "$work/units/retentiond.service.d/data-paths.conf"
grep -q '^ReadWritePaths=/srv/rtest$' "$work/units/retentiond.service.d/data-paths.conf"
# A short watchdog, so that the driver sees the pings keep the service alive.
printf '[Service]\nWatchdogSec=2s\n' > "$work/units/retentiond.service.d/rtest-watchdog.conf"

"$src/tests/systemd/boot_container.sh" "$work" "retentiond end-to-end test" 300 \
  --bind-ro="$work/bin:/opt/retentiond"
