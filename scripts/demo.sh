#!/usr/bin/env bash
# The main job on the embedded default: builds retentiond, creates small
# SQLite stores in ./demo next to a copy of policies/example.yaml, then
# checks the policy, plans (a dry run), sweeps, and verifies the audit log.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target retentiond -j"$(nproc)" >/dev/null
bin=build/daemon/retentiond

rm -rf demo && mkdir -p demo/state && chmod 700 demo/state
cp policies/example.yaml demo/policy.yaml
head -c 32 /dev/urandom > demo/hmac.key && chmod 600 demo/hmac.key
sqlite3 demo/health.db >/dev/null <<'SQL'
PRAGMA journal_mode = WAL;
CREATE TABLE affiliations (id INTEGER PRIMARY KEY, member TEXT, regime TEXT, rights_closed_on TEXT, litigation_pending INTEGER DEFAULT 0);
CREATE INDEX affiliations_closed ON affiliations (rights_closed_on);
CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, member TEXT, amount_cents INTEGER, paid_on TEXT);
CREATE INDEX claims_paid ON claims (paid_on);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO affiliations (member, regime, rights_closed_on, litigation_pending)
  SELECT printf('M%05d', i), CASE WHEN i % 5 = 0 THEN 'RC' ELSE 'AMO' END,
         CASE WHEN i % 23 = 0 THEN NULL ELSE date('now', printf('-%d days', i * 19)) END,
         CASE WHEN i % 17 = 0 THEN 1 ELSE 0 END FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
INSERT INTO claims (member, amount_cents, paid_on)
  SELECT printf('M%05d', i % 200), i * 137 % 20000, date('now', printf('-%d days', i * 9)) FROM n;
SQL
sqlite3 demo/web.db <<'SQL'
CREATE TABLE accounts (id INTEGER PRIMARY KEY, member_number TEXT, contract_ended_on TEXT, coded_at TEXT);
CREATE INDEX accounts_ended ON accounts (contract_ended_on);
CREATE TABLE visits (id INTEGER PRIMARY KEY, visitor_id TEXT, ip TEXT, user_agent TEXT, page TEXT, visited_at TEXT);
CREATE INDEX visits_at ON visits (visited_at);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO accounts (member_number, contract_ended_on)
  SELECT printf('1%012d', i * 7919), CASE WHEN i % 3 = 0 THEN NULL ELSE date('now', printf('-%d days', i * 5)) END FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO visits (visitor_id, ip, user_agent, page, visited_at)
  SELECT printf('v%06d', i % 97), printf('192.0.2.%d', i % 250), 'Mozilla/5.0', '/page/' || (i % 12),
         datetime('now', printf('-%d hours', i * 23)) FROM n;
SQL

run() { echo; echo "\$ retentiond $*"; "$bin" -c demo/policy.yaml --state-dir demo/state "$@"; }
run check
run plan
run sweep
run audit verify
echo
echo "The stores and the audit log are in ./demo; 'retentiond -c demo/policy.yaml --state-dir demo/state audit show' lists what was done."
