#!/usr/bin/env bash
# Boots the host's own / under real systemd in a throw-away container
# (systemd-nspawn --volatile=yes, overlays on /etc and /var, and on /usr with
# --usr: what dpkg -i needs) and runs WORK/drv/driver.sh inside as a oneshot
# service, its output in WORK/out/driver.log; the container powers off when it
# ends. WORK/units is the container's /run/systemd/system (this script adds
# rtest.target and rtest.service there), WORK/drv its /run/drv (read-only),
# WORK/out its /run/out. Prints the driver's log; exits 0 when it says
# "RESULT: PASS". The caller has checked for systemd-nspawn and root.
# Usage: boot_container.sh WORK TITLE SECONDS [--usr] [systemd-nspawn options...]
set -euo pipefail
work=$1 title=$2 seconds=$3
shift 3
overlays=(--overlay=/etc::/etc --overlay=/var::/var)
if [ "${1:-}" = --usr ]; then
  overlays+=(--overlay=/usr::/usr)
  shift
fi
mkdir -p "$work/units" "$work/out"
cat > "$work/units/rtest.target" <<UNIT
[Unit]
Description=$title
Requires=basic.target rtest.service
After=basic.target rtest.service
UNIT
cat > "$work/units/rtest.service" <<UNIT
[Unit]
Description=$title: the driver
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash /run/drv/driver.sh
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=append:/run/out/driver.log
StandardError=append:/run/out/driver.log
TimeoutStartSec=$((seconds - 60))
UNIT

status=0
timeout "$seconds" systemd-nspawn -D / --volatile=yes "${overlays[@]}" \
  --register=no --keep-unit --quiet \
  --bind-ro="$work/units:/run/systemd/system" --bind-ro="$work/drv:/run/drv" \
  --bind="$work/out:/run/out" "$@" \
  -b systemd.unit=rtest.target systemd.firstboot=off >"$work/boot.log" 2>&1 || status=$?
echo "== inside the container"
if [ ! -s "$work/out/driver.log" ]; then
  echo "FAIL: the driver did not run (systemd-nspawn exited $status)"
  tail -40 "$work/boot.log"
  exit 1
fi
cat "$work/out/driver.log"
grep -q '^RESULT: PASS$' "$work/out/driver.log"
