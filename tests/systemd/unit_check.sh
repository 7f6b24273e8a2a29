#!/usr/bin/env bash
# Checks systemd/retentiond.service offline, as systemd 252 reads it:
#  - `systemd-analyze verify --man=no` prints nothing at all (252 only warns about
#    unknown or invalid settings, so any output is a failure), with the example
#    drop-in installed;
#  - `systemd-analyze security --offline=yes --threshold=10` exits 0: an exposure
#    of at most 1.0;
#  - the settings the daemon relies on are there;
#  - the unit with systemd/retentiond.service.d/postgresql-tcp.conf.example
#    (and the data-paths one): verify prints nothing, security scores at most
#    2.0 (--threshold=20), and the drop-in opens only what a TCP store needs.
# verify checks that ExecStart= binaries exist, so the unit is checked with the
# built binary in place of /usr/sbin/retentiond.
# Usage: unit_check.sh SOURCE_DIR RETENTIOND_BINARY
set -euo pipefail
src=$(realpath "$1")
binary=$(realpath "$2")
work=$(mktemp -d /tmp/retentiond-unit.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (package systemd)"

unit="$work/retentiond.service"
sed "s#/usr/sbin/retentiond#$binary#g" "$src/systemd/retentiond.service" > "$unit"
mkdir "$work/retentiond.service.d" "$work/data"
sed "s#^ReadWritePaths=/var/lib/mgen\$#ReadWritePaths=$work/data#" \
  "$src/systemd/retentiond.service.d/data-paths.conf.example" > "$work/retentiond.service.d/data-paths.conf"
grep -q "^ReadWritePaths=$work/data\$" "$work/retentiond.service.d/data-paths.conf" \
  || fail "the example drop-in has no ReadWritePaths=/var/lib/mgen line"

echo "== systemd-analyze verify --man=no"
set +e
verify_out=$(systemd-analyze verify --man=no "$unit" 2>&1)
verify_rc=$?
set -e
[ -n "$verify_out" ] && echo "$verify_out"
[ "$verify_rc" -eq 0 ] || fail "verify exited $verify_rc"
[ -z "$verify_out" ] || fail "verify printed something"
echo "nothing printed"

echo "== systemd-analyze security --offline=yes --threshold=10"
set +e
security_out=$(systemd-analyze security --offline=yes --threshold=10 "$unit" 2>"$work/security.err")
security_rc=$?
set -e
echo "$security_out" | grep -v '^✓' || true
if [ -s "$work/security.err" ]; then cat "$work/security.err"; fail "security printed warnings"; fi
[ "$security_rc" -eq 0 ] || fail "security exited $security_rc: exposure above 1.0"
exposure=$(echo "$security_out" | sed -n 's/.*Overall exposure level for retentiond.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "no exposure level in the output"
awk -v e="$exposure" 'BEGIN { exit !(e <= 1.0) }' || fail "exposure $exposure above 1.0"
echo "exposure $exposure"

echo "== the settings the daemon relies on"
# shellcheck disable=SC2016 # $MAINPID is meant literally
for setting in \
  '^Type=notify$' \
  "^ExecStartPre=$binary check\$" \
  "^ExecStart=$binary run\$" \
  "^ExecReload=+$binary check\$" \
  '^ExecReload=/bin/kill -HUP \$MAINPID$' \
  '^RestartPreventExitStatus=78$' \
  '^StateDirectory=retentiond$' \
  '^LoadCredential=hmac-key:/etc/retentiond/hmac.key$' \
  '^WatchdogSec=' \
  '^User=retentiond$'; do
  grep -q -- "$setting" "$unit" || fail "the unit has no line matching $setting"
done
# The reload checks the policy before the HUP: a broken one fails the reload.
check_line=$(grep -n "^ExecReload=+$binary check\$" "$unit" | cut -d: -f1)
hup_line=$(grep -n '^ExecReload=/bin/kill' "$unit" | cut -d: -f1)
[ "$check_line" -lt "$hup_line" ] || fail "ExecReload= must run check before kill -HUP"
echo "ok"

echo "== with the postgresql-tcp drop-in: systemd-analyze verify --man=no"
tcp="$work/tcp"
mkdir -p "$tcp/retentiond.service.d"
cp "$unit" "$tcp/retentiond.service"
cp "$work/retentiond.service.d/data-paths.conf" "$tcp/retentiond.service.d/"
sed "s#/usr/sbin/retentiond#$binary#g" "$src/systemd/retentiond.service.d/postgresql-tcp.conf.example" \
  > "$tcp/retentiond.service.d/postgresql-tcp.conf"
set +e
verify_out=$(systemd-analyze verify --man=no "$tcp/retentiond.service" 2>&1)
verify_rc=$?
set -e
[ -n "$verify_out" ] && echo "$verify_out"
[ "$verify_rc" -eq 0 ] || fail "verify with the postgresql-tcp drop-in exited $verify_rc"
[ -z "$verify_out" ] || fail "verify with the postgresql-tcp drop-in printed something"
echo "nothing printed"

echo "== with the postgresql-tcp drop-in: systemd-analyze security --offline=yes --threshold=20"
set +e
security_out=$(systemd-analyze security --offline=yes --threshold=20 "$tcp/retentiond.service" 2>"$work/security.err")
security_rc=$?
set -e
echo "$security_out" | grep -v '^✓' || true
if [ -s "$work/security.err" ]; then cat "$work/security.err"; fail "security printed warnings"; fi
[ "$security_rc" -eq 0 ] || fail "security exited $security_rc: exposure above 2.0 with the postgresql-tcp drop-in"
tcp_exposure=$(echo "$security_out" | sed -n 's/.*Overall exposure level for retentiond.service: \([0-9.]*\).*/\1/p')
[ -n "$tcp_exposure" ] || fail "no exposure level in the output"
awk -v e="$tcp_exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $tcp_exposure above 2.0 with the postgresql-tcp drop-in"
echo "exposure $tcp_exposure (the unit alone: $exposure)"

echo "== the postgresql-tcp drop-in opens only what a TCP store needs"
dropin="$tcp/retentiond.service.d/postgresql-tcp.conf"
# shellcheck disable=SC2016 # $MAINPID is meant literally
for setting in \
  '^PrivateNetwork=no$' \
  '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$' \
  '^IPAddressDeny=any$' \
  '^IPAddressAllow=192\.0\.2\.10$' \
  '^LoadCredential=pgpass:/etc/retentiond/pgpass$' \
  '^Environment=PGPASSFILE=%d/pgpass$' \
  "^ExecStartPre=$binary check\$" \
  "^ExecReload=+/usr/bin/env PGPASSFILE=/etc/retentiond/pgpass $binary check\$" \
  '^ExecReload=/bin/kill -HUP \$MAINPID$'; do
  grep -q -- "$setting" "$dropin" || fail "the postgresql-tcp drop-in has no line matching $setting"
done
# Nothing else of the sandbox is loosened.
others=$(grep -v -e '^#' -e '^$' -e '^\[Service\]$' -e '^PrivateNetwork=' -e '^RestrictAddressFamilies=' \
  -e '^IPAddress' -e '^LoadCredential=pgpass:' -e '^SetCredential=pgpass:' -e '^Environment=PGPASSFILE=' \
  -e '^ExecStartPre=' -e '^ExecReload=' "$dropin" || true)
[ -z "$others" ] || fail "the postgresql-tcp drop-in sets more: $others"
echo "ok"
