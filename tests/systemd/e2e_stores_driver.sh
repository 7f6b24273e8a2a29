#!/bin/bash
# Runs inside the container booted by e2e_postgresql.sh, as root: the unit
# under test is /run/systemd/system/retentiond.service (as shipped, with the
# test's data-paths drop-in), the binary /opt/retentiond/retentiond, the TCP
# drop-in as shipped /run/drv/postgresql-tcp.conf.example.
set -uo pipefail
bin=/opt/retentiond/retentiond
pgbin=/usr/lib/postgresql/15/bin
pgroot=/var/tmp/rtest-pg
policy=/etc/retentiond/policy.yaml
dropin=/etc/systemd/system/retentiond.service.d/postgresql-tcp.conf
password="rtest-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pgport=5432
pgunit=

fail() {
  echo "FAIL: $*"
  echo "-- systemctl status retentiond"
  systemctl status retentiond --no-pager 2>&1 | head -20
  echo "-- journalctl -u retentiond"
  journalctl -u retentiond --no-pager -o short-monotonic 2>&1 | tail -40
  [ -n "$pgunit" ] && { echo "-- journalctl -u $pgunit"; journalctl -u "$pgunit" --no-pager -o cat 2>&1 | tail -20; }
  echo "RESULT: FAIL"
  exit 1
}
step() { echo; echo "== $*"; }
prop() { systemctl show -P "$1" retentiond; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
# psql as the superuser, peer-authenticated on the socket.
sql() { as_postgres psql -X -q -t -A -v ON_ERROR_STOP=1 -h /run/postgresql -p "$pgport" -d "${DB:-rtest}" -c "$1"; }
# journal_line REGEX: a message line of the unit matches (and is printed).
journal_line() { journalctl -u retentiond --no-pager -o cat | grep -E -- "$1"; }
journal_has() { journalctl -u retentiond --no-pager -o cat | grep -qF -- "$1"; }
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 100); do
    "$@" && return 0
    sleep 0.2
  done
  fail "$what"
}
events_are() { [ "$(sql 'SELECT string_agg(id::text, $$,$$ ORDER BY id) FROM events')" = "$1" ]; }
status_has() { [[ "$(prop StatusText)" == *"$1"* ]]; }
pg_answers() { as_postgres "$pgbin/pg_isready" -q -h /run/postgresql -p "$pgport"; }

# start_postgres UNIT ARGS...: the server as a transient unit of its own,
# stopped with SIGINT (fast shutdown).
start_postgres() {
  pgunit=$1
  shift
  systemd-run --quiet --unit="$pgunit" -p User=postgres -p Group=postgres -p KillSignal=SIGINT \
    "$pgbin/postgres" -D "$pgroot/data" -k /run/postgresql -p "$pgport" \
    -c fsync=off -c timezone=Pacific/Auckland "$@" || fail "systemd-run postgres"
  wait_for "PostgreSQL did not answer on /run/postgresql port $pgport" pg_answers
}

sweep_and_wait() {
  local expected=$1
  systemctl kill -s SIGUSR1 --kill-who=main retentiond || fail "kill -s SIGUSR1"
  wait_for "the sweep did not leave exactly events $expected (left: $(sql 'SELECT string_agg(id::text, $$,$$ ORDER BY id) FROM events'))" events_are "$expected"
  wait_for "StatusText does not report the sweep" status_has "last sweep"
  echo "StatusText=$(prop StatusText)"
  [ "$(prop NRestarts)" = 0 ] || fail "restarted $(prop NRestarts) times"
}

write_policy() {
  cat > "$policy" <<YAML
version: 1
timezone: Europe/Paris
stores:
  db: { kind: postgresql, dsn: "$1" }
rules:
  - name: old-events
    store: db
    table: events
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
YAML
}

step "the retentiond user, a throw-away PostgreSQL 15 on /run/postgresql"
getent passwd retentiond >/dev/null ||
  useradd --system --user-group --home-dir /var/lib/retentiond --shell /usr/sbin/nologin retentiond ||
  fail "useradd"
mkdir -p /srv/rtest /etc/retentiond
chown retentiond:retentiond /srv/rtest
rm -rf "$pgroot"
mkdir -p "$pgroot/data" /run/postgresql
chmod 755 "$pgroot"
chmod 700 "$pgroot/data"
chmod 2775 /run/postgresql
chown postgres:postgres "$pgroot/data" /run/postgresql
(cd "$pgroot" && as_postgres "$pgbin/initdb" -D "$pgroot/data" -U postgres --auth-local=peer \
  --auth-host=scram-sha-256 --no-sync -E UTF8 --no-locale >/dev/null) || fail "initdb"
start_postgres rtest-pg-socket -c listen_addresses=
DB=postgres sql "SELECT version()" | cut -c1-40
DB=postgres sql "CREATE ROLE retentiond LOGIN" || fail "the role"
DB=postgres sql "CREATE DATABASE rtest OWNER retentiond" || fail "the database"
sql "CREATE TABLE events (id integer PRIMARY KEY, at date);
     CREATE INDEX events_at ON events (at);
     INSERT INTO events VALUES (1, '2001-01-01'), (2, '2002-02-02'), (3, current_date);
     ALTER TABLE events OWNER TO retentiond" || fail "the table"
echo "pg_hba: $(sql "SELECT string_agg(type || ' ' || auth_method, ', ') FROM pg_hba_file_rules")"

step "the unit as shipped: a store on the Unix socket, peer authentication"
write_policy "host=/run/postgresql dbname=rtest user=retentiond"
setpriv --reuid=retentiond --regid=retentiond --init-groups "$bin" check || fail "check as retentiond"
[ ! -e "$dropin" ] || fail "$dropin exists already"
systemctl start retentiond || fail "start"
for p in PrivateNetwork RestrictAddressFamilies ProtectSystem PrivateUsers IPAddressDeny; do
  echo "$p=$(prop $p)"
done
if [ "$(prop PrivateNetwork)" != yes ] || [ "$(prop ProtectSystem)" != strict ] || [ "$(prop PrivateUsers)" != yes ]; then
  fail "not the shipped sandbox"
fi
step "systemctl kill -s SIGUSR1 --kill-who=main retentiond: events 1 and 2 go, 3 stays"
sweep_and_wait "3"
systemctl stop retentiond || fail "stop"
[ "$(prop Result)" = success ] || fail "Result=$(prop Result)"
"$bin" --state-dir /var/lib/retentiond audit verify || fail "audit verify"

step "PostgreSQL on 127.0.0.1 too (scram-sha-256), a free port"
systemctl stop "$pgunit" || fail "stopping PostgreSQL"
for p in $(shuf -i 20000-60000 -n 50); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then pgport=$p; break; fi
done
start_postgres rtest-pg-tcp -c listen_addresses=127.0.0.1
echo "port $pgport"
sql "ALTER ROLE retentiond PASSWORD '$password'" || fail "the password"
sql "INSERT INTO events VALUES (4, '2004-04-04'), (5, current_date - 1)" || fail "more events"
PGPASSFILE=/dev/null psql -X -w -h 127.0.0.1 -p "$pgport" -U retentiond -d rtest -c 'SELECT 1' >/dev/null 2>&1 &&
  fail "TCP without a password was accepted"
echo "without a password: refused"
write_policy "host=127.0.0.1 port=$pgport dbname=rtest user=retentiond"

step "the unit as shipped cannot reach it"
if systemctl start retentiond 2>&1; then fail "the shipped unit reached PostgreSQL over TCP"; fi
journalctl -u retentiond --no-pager -o cat | grep -F "store 'db'" | tail -1
journal_has "Address family not supported" || fail "not refused by RestrictAddressFamilies="
# Restart=on-failure has queued another start: cancel it.
systemctl stop retentiond
systemctl reset-failed retentiond 2>/dev/null || true

step "the postgresql-tcp drop-in as shipped, IPAddressAllow=127.0.0.1; no passfile yet"
mkdir -p "$(dirname "$dropin")"
sed -e 's#^IPAddressAllow=192.0.2.10$#IPAddressAllow=127.0.0.1#' -e 's#/usr/sbin/retentiond#/opt/retentiond/retentiond#g' \
  /run/drv/postgresql-tcp.conf.example > "$dropin"
grep -q '^IPAddressAllow=127.0.0.1$' "$dropin" || fail "the drop-in has no IPAddressAllow=192.0.2.10 line"
grep -v '^#' "$dropin" | grep -v '^$'
systemctl daemon-reload
if systemctl start retentiond 2>&1; then fail "started without /etc/retentiond/pgpass"; fi
wait_for "the journal does not say that /etc/retentiond/pgpass is missing" journal_line "^/etc/retentiond/pgpass not found: "
systemctl stop retentiond
systemctl reset-failed retentiond 2>/dev/null || true

step "a passfile that others can read is refused"
echo "127.0.0.1:$pgport:rtest:retentiond:$password" > /etc/retentiond/pgpass
chmod 644 /etc/retentiond/pgpass
if systemctl start retentiond 2>&1; then fail "started with a passfile readable by others"; fi
wait_for "the journal does not say that /etc/retentiond/pgpass is readable by others" journal_line "^/etc/retentiond/pgpass can be read by other users"
systemctl stop retentiond
systemctl reset-failed retentiond 2>/dev/null || true
rm /etc/retentiond/pgpass

step "the passfile (root, 0600) through LoadCredential=; a sweep over TCP"
(umask 077 && echo "127.0.0.1:$pgport:rtest:retentiond:$password" > /etc/retentiond/pgpass)
systemctl start retentiond || fail "start with the drop-in"
for p in PrivateNetwork RestrictAddressFamilies IPAddressDeny IPAddressAllow Environment; do
  echo "$p=$(prop $p)"
done
cred=/run/credentials/retentiond.service/pgpass
echo "$(stat -c '%A %U' "$cred") $cred"
[ "$(stat -c '%a %U' "$cred")" = "400 retentiond" ] || fail "$cred is not 0400 retentiond"
[ "$(stat -c '%a' /run/credentials/retentiond.service)" = 500 ] || fail "the credentials directory is open to others"
step "SIGUSR1: event 4 goes, 3 and 5 stay"
sweep_and_wait "3,5"
step "systemctl reload: the check (as root, unsandboxed) reads /etc/retentiond/pgpass"
systemctl reload retentiond || fail "reload"
wait_for "the daemon did not reload" journal_has "policy reloaded"
systemctl stop retentiond || fail "stop"
[ "$(prop Result)" = success ] || fail "Result=$(prop Result)"

systemctl stop retentiond || fail "stop"
[ "$(prop Result)" = success ] || fail "Result=$(prop Result)"
"$bin" --state-dir /var/lib/retentiond audit verify || fail "audit verify"

step "the journal"
journalctl -u retentiond --no-pager -o cat | grep -v '^$' | tail -30
systemctl stop "$pgunit"
rm -rf "$pgroot"
echo "RESULT: PASS"
