#!/bin/bash
# Runs inside the container booted by e2e_stores.sh, as root: installs
# /run/drv/retentiond.deb and tests the service as the package installs it
# (/usr/sbin/retentiond, /lib/systemd/system/retentiond.service, the drop-ins
# from /usr/share/doc/retentiond/examples/).
set -uo pipefail
bin=/usr/sbin/retentiond
examples=/usr/share/doc/retentiond/examples
dropins=/etc/systemd/system/retentiond.service.d
pgbin=/usr/lib/postgresql/15/bin
pgroot=/var/tmp/rtest-pg
policy=/etc/retentiond/policy.yaml
dropin=$dropins/postgresql-tcp.conf
live=/srv/rtest/live
shelf=/srv/rtest/archive
unlisted=/srv/rtest-unlisted
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

# write_policy DSN [FILES_ROOT]: the events table; with FILES_ROOT, identity
# copies in a files tree too, archived after 3 years to $shelf, deleted after
# 10, held by a .hold file.
write_policy() {
  local files_stores=
  [ -z "${2:-}" ] || files_stores="
  ids: { kind: files, root: $2 }
  shelf: { kind: files, root: $shelf }"
  cat > "$policy" <<YAML
version: 1
timezone: Europe/Paris
stores:
  db: { kind: postgresql, dsn: "$1" }$files_stores
rules:
  - name: old-events
    store: db
    table: events
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
YAML
  [ -z "${2:-}" ] || cat >> "$policy" <<'YAML'
  - name: id-copies
    store: ids
    pattern: "*/identity-*.pdf"
    anchor: mtime
    hold: { file: .hold }
    stages:
      - after: 3 years
        action: archive
        to: shelf
      - after: 10 years
        action: delete
YAML
}

# put FILE MTIME: a file of a files tree, with that modification time.
put() {
  mkdir -p "$(dirname "$1")"
  echo "content of $1" > "$1"
  touch -d "$2" "$1"
}
# The regular files under a folder, relative, sorted, on one line.
files_in() { (cd "$1" && find . -type f | sed 's#^\./##' | LC_ALL=C sort | paste -sd ' '); }

step "dpkg -i retentiond.deb"
dpkg -i /run/drv/retentiond.deb >/dev/null || fail "dpkg -i"
getent passwd retentiond >/dev/null || fail "the package made no retentiond user"
[ "$(prop FragmentPath)" = /lib/systemd/system/retentiond.service ] || fail "the unit is $(prop FragmentPath)"
[ "$(prop ExecStart | grep -o 'path=[^ ;]*')" = "path=$bin" ] || fail "ExecStart= is not $bin: $(prop ExecStart)"
echo "unit $(prop FragmentPath), ExecStart=$bin, drop-in examples: $(cd $examples && echo *)"

step "a files tree (live root, archive root) and the data-paths drop-in from the shipped example"
put $live/req-1/identity-card.pdf "2020-01-01 10:00"  # past 3 years: archived
put $live/req-1/request.txt "2010-01-01 10:00"       # not matched: stays
put $live/req-2/identity-card.pdf "2010-01-01 10:00"  # past 10 years: deleted
put $live/req-3/identity-card.pdf "2010-01-01 10:00"  # held by req-3/.hold: stays
touch $live/req-3/.hold
put $live/req-4/identity-card.pdf "$(date -d '-1 day' '+%F %T')"  # recent: stays
mkdir -p $shelf
chown -R retentiond:retentiond /srv/rtest
mkdir -p "$dropins"
sed -e "s#^ReadWritePaths=/var/lib/mgen\$#ReadWritePaths=$live#" \
  -e "s#^\#ReadWritePaths=/srv/mgen/archive/rights-requests\$#ReadWritePaths=$shelf#" \
  $examples/data-paths.conf.example > "$dropins/data-paths.conf"
grep -v '^#' "$dropins/data-paths.conf" | grep -v '^$'
[ "$(grep -c '^ReadWritePaths=' "$dropins/data-paths.conf")" = 2 ] || fail "the example has no lines for a files root and its archive"
systemctl daemon-reload

step "a throw-away PostgreSQL 15 on /run/postgresql"
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

step "the packaged unit: a store on the Unix socket (peer authentication), the files tree"
write_policy "host=/run/postgresql dbname=rtest user=retentiond" "$live"
setpriv --reuid=retentiond --regid=retentiond --init-groups "$bin" check || fail "check as retentiond"
[ ! -e "$dropin" ] || fail "$dropin exists already"
systemctl start retentiond || fail "start"
for p in PrivateNetwork RestrictAddressFamilies ProtectSystem PrivateUsers IPAddressDeny ReadWritePaths; do
  echo "$p=$(prop $p)"
done
if [ "$(prop PrivateNetwork)" != yes ] || [ "$(prop ProtectSystem)" != strict ] || [ "$(prop PrivateUsers)" != yes ]; then
  fail "not the shipped sandbox"
fi
step "systemctl kill -s SIGUSR1 --kill-who=main retentiond: events 1 and 2 go, 3 stays; req-1 archived, req-2 deleted"
sweep_and_wait "3"
echo "live:    $(files_in $live)"
echo "archive: $(files_in $shelf)"
[ "$(files_in $live)" = "req-1/request.txt req-3/.hold req-3/identity-card.pdf req-4/identity-card.pdf" ] ||
  fail "the live tree holds $(files_in $live)"
[ "$(files_in $shelf)" = "req-1/identity-card.pdf" ] || fail "the archive holds $(files_in $shelf)"
[ "$(cat $shelf/req-1/identity-card.pdf)" = "content of $live/req-1/identity-card.pdf" ] || fail "the archived copy differs"
[ "$(stat -c %y $shelf/req-1/identity-card.pdf | cut -c1-16)" = "2020-01-01 10:00" ] || fail "the archived copy lost its mtime"
systemctl stop retentiond || fail "stop"
[ "$(prop Result)" = success ] || fail "Result=$(prop Result)"
"$bin" --state-dir /var/lib/retentiond audit verify || fail "audit verify"
grep -c '"rule":"id-copies"' /var/lib/retentiond/audit.jsonl | sed 's/$/ audit entries for the files rule/'

step "a files root the drop-in does not list: the sweep fails, naming the drop-in"
mkdir -p $unlisted/req-9
put $unlisted/req-9/identity-card.pdf "2010-01-01 10:00"
chown -R retentiond:retentiond $unlisted
write_policy "host=/run/postgresql dbname=rtest user=retentiond" "$unlisted"
systemctl start retentiond || fail "start"
systemctl kill -s SIGUSR1 --kill-who=main retentiond || fail "kill -s SIGUSR1"
wait_for "the journal does not name the drop-in for $unlisted" \
  journal_line "Read-only file system: under the systemd unit, list $unlisted in ReadWritePaths= of $dropins/data-paths.conf \(see $examples/data-paths.conf.example\)"
[ -f $unlisted/req-9/identity-card.pdf ] || fail "the file went"
wait_for "StatusText does not report the sweep" status_has "last sweep"
echo "StatusText=$(prop StatusText)"
echo "and ExecStartPre='s check warned:"
journal_line "root folder $unlisted is not writable .*list $unlisted in ReadWritePaths= of $dropins/data-paths.conf" | tail -1 ||
  fail "check did not name the drop-in"
systemctl stop retentiond
systemctl reset-failed retentiond 2>/dev/null || true

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

step "the packaged unit alone cannot reach it"
if systemctl start retentiond 2>&1; then fail "the shipped unit reached PostgreSQL over TCP"; fi
journalctl -u retentiond --no-pager -o cat | grep -F "store 'db'" | tail -1
journal_has "Address family not supported" || fail "not refused by RestrictAddressFamilies="
# Restart=on-failure has queued another start: cancel it.
systemctl stop retentiond
systemctl reset-failed retentiond 2>/dev/null || true

step "the postgresql-tcp drop-in as shipped, IPAddressAllow=127.0.0.1; no passfile yet"
mkdir -p "$(dirname "$dropin")"
sed -e 's#^IPAddressAllow=192.0.2.10$#IPAddressAllow=127.0.0.1#' \
  $examples/postgresql-tcp.conf.example > "$dropin"
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
