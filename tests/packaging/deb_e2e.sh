#!/usr/bin/env bash
# Builds the Debian package, checks it with lintian, then boots real systemd
# in a throw-away container (the host's / with overlays on /usr, /etc, /var)
# where it installs the package, reads the man page, runs check, enables the
# service against a small SQLite store, asks it for a sweep with SIGUSR1, and
# purges it, listing what is left.
# Usage: deb_e2e.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
here=$(dirname "$(realpath "$0")")
work=$(mktemp -d /tmp/retentiond-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

cmake --build "$build" --target retentiond man changelog >/dev/null
(cd "$build" && cpack -G DEB -B "$work/pkg" >/dev/null)
deb=$(ls "$work"/pkg/retentiond_*.deb)
echo "built $(basename "$deb")"

echo "== lintian"
lintian --fail-on error,warning --suppress-tags-from-file "$here/lintian-suppressed" "$deb" | tee "$work/lintian.txt"
if grep -E '^(E|W):' "$work/lintian.txt"; then echo "lintian is not clean"; exit 1; fi

command -v systemd-nspawn >/dev/null || { echo "systemd-nspawn missing: install systemd-container"; exit 1; }
mkdir -p "$work/units" "$work/drv" "$work/out"
cp "$deb" "$work/drv/retentiond.deb"
cp "$here/deb_driver.sh" "$work/drv/driver.sh"
cat > "$work/units/rtest.target" <<'UNIT'
[Unit]
Description=retentiond package test
Requires=basic.target rtest.service
After=basic.target rtest.service
UNIT
cat > "$work/units/rtest.service" <<'UNIT'
[Unit]
Description=retentiond package test driver
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash /run/drv/driver.sh
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=append:/run/out/driver.log
StandardError=append:/run/out/driver.log
UNIT
timeout 300 systemd-nspawn -D / --volatile=yes --overlay=/usr::/usr --overlay=/etc::/etc --overlay=/var::/var \
  --register=no --keep-unit --quiet \
  --bind-ro="$work/units:/run/systemd/system" --bind-ro="$work/drv:/run/drv" --bind="$work/out:/run/out" \
  -b systemd.unit=rtest.target systemd.firstboot=off >"$work/boot.log" 2>&1 || true
echo "== inside the container"
cat "$work/out/driver.log" 2>/dev/null || { echo "the driver did not run"; tail -30 "$work/boot.log"; exit 1; }
grep -q '^RESULT: PASS$' "$work/out/driver.log"
