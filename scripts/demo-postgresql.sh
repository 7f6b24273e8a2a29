#!/usr/bin/env bash
# The main job on the reference case, with PostgreSQL stores: installs what is
# missing, builds retentiond, starts a throw-away PostgreSQL 15 server in
# ./demo-pg/server (stopped and removed when this script ends), loads the MGEN
# demo data set into a database `mgen` of it (one schema per store, native
# column types), then runs the shipped MGEN retention schedule
# (policies/mgen.yaml, its stores pointed at those schemas) on it: check, plan,
# sweep, audit verify, a second sweep, and says what happened.
#
# Usage: scripts/demo-postgresql.sh [--rows N] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=20000
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--build DIR]" >&2; exit 64 ;;
  esac
done
started=$(date +%s)

scripts/install-deps.sh
# The server and psql (scripts/install-deps.sh --test would bring them too,
# with everything else the test suite needs).
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v psql >/dev/null; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    postgresql-15 postgresql-client-15 util-linux >/dev/null
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target retentiond retentiond-demo-data -j"$(nproc)" >/dev/null
bin=$build/daemon/retentiond
built=$(date +%s)

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
note() { fold -s -w 100 <<<"$*"; }
run() { echo "\$ retentiond $*"; "$bin" -c demo-pg/policy.yaml --state-dir demo-pg/state "$@"; }

# A throw-away server: removed when this script ends, however it ends (the
# server's own watcher stops it too if this shell is killed). Its folder is
# under /tmp: the server runs as the postgres user, who may not reach a
# checkout in a private folder such as /root.
server=$(mktemp -d /tmp/retentiond-demo-pg.XXXXXX)
rm -rf demo-pg && mkdir -p demo-pg/state && chmod 700 demo-pg/state
trap 'scripts/pg-test-server.sh stop "$server"' EXIT
RETENTIOND_PG_OWNER_PID=$$ scripts/pg-test-server.sh start "$server"
conninfo="$(cat "$server/conninfo") dbname=mgen"
# psql shows instants in the policy's zone.
sql() { PGTZ=Europe/Paris psql "$conninfo" -X -q -v ON_ERROR_STOP=1 "$@"; }
value() { sql -tA -c "$1"; }
psql "$(cat "$server/conninfo") dbname=postgres" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE mgen"

say "1. Demo data, in PostgreSQL"
note "The MGEN privacy policy promises how long each kind of personal data is kept (art. 8-10): \
affiliations 5 years after the rights close, health claims 3 years live + 10 in an archive, \
web visits 13 months, identity-document copies 3 years... policies/mgen.yaml writes that schedule \
as 9 rules. Here the 8 rules on tables run on schemas of one PostgreSQL 15 database (a throw-away server on a Unix socket in $server), with \
native types: dates as date, instants as timestamptz, cookie times as bigint seconds, the \
litigation flag as boolean. The same seed gives the same records as the SQLite demo \
(scripts/demo.sh); anchors no calendar can read there ('unknown', '2019-02-30') are NULL here: \
undated either way. The identity-document copies of art. 9 stay files, in demo-pg/rights-requests."
"$build/tools/retentiond-demo-data" --postgresql "$conninfo" --out demo-pg --seed 1 --rows "$rows" --policy
echo "The stores of demo-pg/policy.yaml:"
sed -n '/^stores:/,/^$/p' demo-pg/policy.yaml | grep 'kind: postgresql' | sed 's/ *#.*//'

say "2. check: is the policy valid, and does every schema, table and column exist with a usable type?"
run check

say "3. plan: what would a sweep do today? (a dry run: read-only transactions, changes nothing)"
run plan
note "One line per rule and stage. MATCHED: records past their period, which a sweep acts on. \
HELD: past their period, but held (litigation_pending is true): never touched. UNDATED: no \
anchor date (NULL: rights still open, a contract still running, or a value that could not be \
read): never touched. CUTOFF: the latest anchor date already past the period today."

claims_before=$(value "SELECT count(*) FROM amo.claims")
visits_identified_before=$(value "SELECT count(*) FROM web.visits WHERE visitor_id IS NOT NULL")
held_before=$(value "SELECT count(*) FROM amo.affiliations WHERE litigation_pending")
copies() { find demo-pg/rights-requests -name 'identity-*.pdf' -type f | wc -l; }
copies_before=$(copies)
say "4. sweep: act on it (delete, archive, anonymise), batch by batch, each batch in the audit log"
run sweep

say "5. audit verify: is the audit log's hash chain intact?"
run audit verify

say "6. sweep again: nothing is left to do"
second=$(mktemp)
run sweep --format json >"$second"
affected_again=$(sed -n 's/.*"affected": \([0-9]*\).*/\1/p' "$second" | awk '{ s += $1 } END { print s + 0 }')
rm -f "$second"
echo "rows affected by the second sweep: $affected_again"
[ "$affected_again" -eq 0 ] || { echo "FAIL: the second sweep changed $affected_again rows" >&2; exit 1; }

say "What happened (counted with psql)"
claims_live=$(value "SELECT count(*) FROM amo.claims")
claims_archived=$(value "SELECT count(*) FROM amo_archive.claims")
note "- Health claims: $claims_before in schema amo before; now $claims_live live and \
$claims_archived in the separate schema amo_archive (its table created by the sweep, moved in the \
same transaction as the delete); the $((claims_before - claims_live - claims_archived)) claims \
paid over 13 years ago were destroyed, not archived."
note "- Affiliations under litigation: $held_before before, \
$(value "SELECT count(*) FROM amo.affiliations WHERE litigation_pending") now (held rows are never \
touched); affiliations whose rights closed over 5 years ago: \
$(value "SELECT count(*) FROM amo.affiliations WHERE rights_closed_on <= (now() AT TIME ZONE 'Europe/Paris')::date - interval '5 years' AND NOT litigation_pending") left."
note "- Visits tied to an identifier: $visits_identified_before before, \
$(value "SELECT count(*) FROM web.visits WHERE visitor_id IS NOT NULL") now; the \
$(value "SELECT count(*) FROM web.visits WHERE anonymized_at IS NOT NULL") older visits are kept \
for statistics without visitor id or IP. For example:"
sql -c "SELECT id, visitor_id, ip, page, visited_at, anonymized_at FROM web.visits WHERE anonymized_at IS NOT NULL ORDER BY id LIMIT 2"
note "- Personal-space accounts closed over 6 months ago keep only a coded member number (HMAC \
under demo-pg/hmac.key, the same value as on SQLite):"
sql -c "SELECT id, substr(member_number, 1, 16) || '...' AS member_number, email, coded_at FROM web.accounts WHERE coded_at IS NOT NULL ORDER BY id LIMIT 2"
note "- Identity-document copies sent with rights requests (art. 9, files in demo-pg/rights-requests): \
$copies_before before, $(copies) now; those received over 3 years ago were deleted, except in the \
$(find demo-pg/rights-requests -name .hold | wc -l) request folders frozen by a .hold file."
note "- Rows per table now:"
counts=()
for t in amo.affiliations amo.claims amo_archive.claims mutual.memberships services.service_contracts \
  web.accounts web.contact_requests web.visits web.cookies; do
  counts+=("SELECT '$t' AS \"table\", count(*) AS rows FROM $t")
done
sql -c "$(printf '%s UNION ALL ' "${counts[@]}" | sed 's/ UNION ALL $//')" | sed '/^$/d'
note "- retentiond's bookkeeping (schema retentiond, the audit outbox) is empty once every batch's \
entry is in the audit log: $(value "SELECT count(*) FROM retentiond.outbox") rows. The audit log \
demo-pg/state/audit.jsonl has one hash-chained line per batch (keys digested, never the records). \
Its first line:"
head -n 1 demo-pg/state/audit.jsonl
echo
note "Done in $(($(date +%s) - started)) s ($(($(date +%s) - built)) s after the build). The server is stopped and removed now; demo-pg/ keeps \
the policy, the key and the audit log. To keep the server, start one yourself with \
scripts/pg-test-server.sh start DIR and load it with $build/tools/retentiond-demo-data --postgresql \
\"\$(cat DIR/conninfo) dbname=postgres\" --out DIR --policy."
