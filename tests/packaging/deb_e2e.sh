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

deb=$("$here/build_deb.sh" "$build" "$work/pkg")
echo "built $(basename "$deb")"

echo "== lintian"
lintian --fail-on error,warning --suppress-tags-from-file "$here/lintian-suppressed" "$deb" | tee "$work/lintian.txt"
if grep -E '^(E|W):' "$work/lintian.txt"; then echo "lintian is not clean"; exit 1; fi

command -v systemd-nspawn >/dev/null || { echo "systemd-nspawn missing: install systemd-container"; exit 1; }
mkdir -p "$work/drv"
cp "$deb" "$work/drv/retentiond.deb"
cp "$here/deb_driver.sh" "$work/drv/driver.sh"
"$here/../systemd/boot_container.sh" "$work" "retentiond package test" 300 --usr
