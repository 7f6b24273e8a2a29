#!/bin/bash
# Runs inside the container booted by e2e.sh, as root: the unit under test is
# /run/systemd/system/retentiond.service, the binary /opt/retentiond/retentiond.
set -uo pipefail
bin=/opt/retentiond/retentiond
db=/srv/rtest/app.db
policy=/etc/retentiond/policy.yaml

fail() {
  echo "FAIL: $*"
  echo "-- systemctl status retentiond"
  systemctl status retentiond --no-pager 2>&1 | head -15
  echo "-- journalctl -u retentiond"
  journalctl -u retentiond --no-pager -o short-monotonic 2>&1 | tail -40
  echo "RESULT: FAIL"
  exit 1
}
step() { echo; echo "== $*"; }
prop() { systemctl show -P "$1" retentiond; }
sql() { sqlite3 "$db" "$1"; }
journal_has() { journalctl -u retentiond --no-pager -o cat "${@:2}" | grep -qF -- "$1"; }
# wait_for WHAT COMMAND...: COMMAND succeeds within 20 s, or the test fails.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 100); do
    "$@" && return 0
    sleep 0.2
  done
  fail "$what"
}
events_are() { [ "$(sql 'SELECT group_concat(id) FROM (SELECT id FROM events ORDER BY id)')" = "$1" ]; }
status_has() { [[ "$(prop StatusText)" == *"$1"* ]]; }
still_running() {
  [ "$(prop ActiveState)" = active ] || fail "not active: $(prop ActiveState) ($(prop Result))"
  [ "$(prop MainPID)" = "$pid" ] || fail "the main process changed: $pid -> $(prop MainPID)"
  [ "$(prop NRestarts)" = 0 ] || fail "restarted $(prop NRestarts) times"
}

# The policy, with the events rule's period as $1 (and anything after it).
write_policy() {
  cat > "$policy" <<YAML
version: 1
timezone: Europe/Paris
hmac_key_file: /etc/retentiond/hmac.key
stores:
  app: { kind: sqlite, path: $db }
rules:
  - name: old-events
    store: app
    table: events
    key: id
    anchor: at
    keep_for: $1
    action: delete
  - name: coded-members
    store: app
    table: accounts
    key: id
    anchor: ended_on
    keep_for: 6 months
    action: anonymize
    anonymize: { member: hmac, mark: coded_at }
YAML
}

step "the retentiond user, a SQLite store, the hmac key, the policy"
getent passwd retentiond >/dev/null ||
  useradd --system --user-group --home-dir /var/lib/retentiond --shell /usr/sbin/nologin retentiond ||
  fail "useradd"
mkdir -p /srv/rtest
sqlite3 "$db" <<'SQL' || fail "creating the store"
CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT);
CREATE INDEX events_at ON events (at);
INSERT INTO events (id, at) VALUES (1, '2001-01-01'), (2, '2002-02-02'), (3, date('now'));
CREATE TABLE accounts (id INTEGER PRIMARY KEY, member TEXT, ended_on TEXT, coded_at TEXT);
CREATE INDEX accounts_ended ON accounts (ended_on);
INSERT INTO accounts (id, member, ended_on) VALUES (1, 'M0001', '2003-03-03'), (2, 'M0002', date('now'));
SQL
chown -R retentiond:retentiond /srv/rtest
mkdir -p /etc/retentiond
head -c 32 /dev/urandom > /etc/retentiond/hmac.key
chmod 600 /etc/retentiond/hmac.key
write_policy "1 year"
"$bin" check || fail "check"

step "systemctl start retentiond"
systemctl start retentiond || fail "start"
pid=$(prop MainPID)
echo "MainPID=$pid StatusText=$(prop StatusText)"
status_has "idle" || fail "StatusText does not say idle"
echo "WatchdogUSec=$(prop WatchdogUSec)"

step "WATCHDOG=1 keeps a 2 s watchdog happy"
# The test's drop-in sets WatchdogSec=2s: without pings systemd would kill the
# service after 2 s.
sleep 3
still_running

step "systemctl kill -s SIGUSR1 --kill-who=main retentiond: a sweep"
systemctl kill -s SIGUSR1 --kill-who=main retentiond || fail "kill -s SIGUSR1"
wait_for "the sweep did not delete events 1 and 2" events_are "3"
wait_for "StatusText does not report the sweep" status_has "last sweep"
echo "StatusText=$(prop StatusText)"
coded=$(sql "SELECT member FROM accounts WHERE id = 1")
[[ "$coded" =~ ^[0-9a-f]{64}$ ]] || fail "account 1 not coded with the hmac key from the credential: $coded"
[ "$(sql 'SELECT member FROM accounts WHERE id = 2')" = M0002 ] || fail "account 2 was touched"
still_running

step "systemctl reload with a valid policy"
write_policy "2 years"
systemctl reload retentiond || fail "reload"
wait_for "the daemon did not reload" journal_has "policy reloaded"
still_running

step "systemctl reload with a broken policy fails, and the service goes on"
write_policy "2 years
    keep_fro: 1 year"
if systemctl reload retentiond; then fail "the reload of a broken policy succeeded"; fi
journal_has "$policy:13:5: unknown key 'keep_fro'" || fail "the check's FILE:LINE:COLUMN message is not in the journal"
still_running

step "SIGHUP straight to the daemon with the broken policy: logged, the old one stays"
systemctl kill -s SIGHUP --kill-who=main retentiond || fail "kill -s SIGHUP"
wait_for "the daemon did not refuse the policy" journal_has "policy not reloaded"
journal_has "policy not reloaded" -p err || fail "the refusal is not logged at priority err"
still_running

step "still sweeping, with the old rules"
sql "INSERT INTO events (id, at) VALUES (4, '2004-04-04'), (5, date('now', '-18 months'))"
systemctl kill -s SIGUSR1 --kill-who=main retentiond || fail "kill -s SIGUSR1"
wait_for "event 4 (past 2 years) was not deleted" events_are "3,5"
wait_for "StatusText does not report the second sweep" status_has "1 affected"
echo "StatusText=$(prop StatusText)"
still_running

step "systemctl stop retentiond"
systemctl stop retentiond || fail "stop"
echo "ActiveState=$(prop ActiveState) Result=$(prop Result) ExecMainStatus=$(prop ExecMainStatus)"
[ "$(prop ActiveState)" = inactive ] || fail "not inactive"
[ "$(prop Result)" = success ] || fail "Result is not success"
[ "$(prop ExecMainStatus)" = 0 ] || fail "exit status $(prop ExecMainStatus)"
journal_has "SIGTERM: stopping" || fail "no stop in the journal"
"$bin" --state-dir /var/lib/retentiond audit verify || fail "audit verify"

step "the journal"
journalctl -u retentiond --no-pager -o cat | grep -v '^$' | head -40
echo "RESULT: PASS"
