#!/bin/bash
# Runs inside the container booted by deb_e2e.sh.
set -uo pipefail
fail() { echo "FAIL: $*"; echo "RESULT: FAIL"; exit 1; }
step() { echo; echo "== $*"; }

step "dpkg -i"
dpkg -i /run/drv/retentiond.deb || fail "dpkg -i"
systemctl is-active retentiond >/dev/null && fail "the service was started at install time"
getent passwd retentiond || fail "no retentiond user"

step "man retentiond"
MANPAGER=cat man retentiond 2>/dev/null | head -8 || fail "man retentiond"
MANPAGER=cat man 5 retentiond.policy >/dev/null 2>&1 || fail "man 5 retentiond.policy"

step "retentiond check (the shipped policy)"
retentiond check || fail "check of the shipped policy"

step "a small SQLite store and a policy"
mkdir -p /srv/data
sqlite3 /srv/data/app.db "CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT); CREATE INDEX events_at ON events(at);
  INSERT INTO events (at) VALUES ('2001-01-01'), ('2002-02-02'), (date('now'));"
chown -R retentiond:retentiond /srv/data
cat > /etc/retentiond/policy.yaml <<'YAML'
version: 1
timezone: Europe/Paris
stores:
  app: { kind: sqlite, path: /srv/data/app.db }
rules:
  - name: old-events
    store: app
    table: events
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
YAML
mkdir -p /etc/systemd/system/retentiond.service.d
printf '[Service]\nReadWritePaths=/srv/data\n' > /etc/systemd/system/retentiond.service.d/data-paths.conf
retentiond check || fail "check of the test policy"

step "systemctl enable --now retentiond"
systemctl daemon-reload
systemctl enable --now retentiond || { journalctl -u retentiond --no-pager | tail -20; fail "enable --now"; }
sleep 1
systemctl is-active retentiond || { journalctl -u retentiond --no-pager | tail -20; fail "not active"; }

step "SIGUSR1 sweep"
systemctl kill -s SIGUSR1 --kill-who=main retentiond
for _ in $(seq 1 50); do
  [ "$(sqlite3 /srv/data/app.db 'SELECT count(*) FROM events')" = 1 ] && break
  sleep 0.2
done
[ "$(sqlite3 /srv/data/app.db 'SELECT count(*) FROM events')" = 1 ] || { journalctl -u retentiond --no-pager | tail -20; fail "the sweep did not delete the two old rows"; }
retentiond --state-dir /var/lib/retentiond audit verify || fail "audit verify"
systemctl show -p ActiveState -p StatusText retentiond

step "dpkg --purge"
dpkg --purge retentiond || fail "purge"
echo "left behind:"
ls -la /etc/retentiond /var/lib/retentiond 2>&1
ls /usr/sbin/retentiond /lib/systemd/system/retentiond.service 2>&1
[ -e /usr/sbin/retentiond ] && fail "the binary is still there"
[ -f /var/lib/retentiond/audit.jsonl ] || fail "the audit log did not outlive the package"
echo "RESULT: PASS"
