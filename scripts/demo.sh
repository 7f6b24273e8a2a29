#!/usr/bin/env bash
# The main job on the reference case: installs what is missing, builds
# retentiond, generates the MGEN demo data set in ./demo (fictitious members,
# claims, contracts, web accounts, visits...), then runs the shipped MGEN
# retention schedule (policies/mgen.yaml) on it: check, plan, sweep, audit
# verify, and says what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target retentiond retentiond-demo-data -j"$(nproc)" >/dev/null
bin=build/daemon/retentiond

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
note() { fold -s -w 100 <<<"$*"; }
run() { echo "\$ retentiond $*"; "$bin" -c demo/policy.yaml --state-dir demo/state "$@"; }
rows() { sqlite3 "demo/$1" "SELECT count(*) FROM $2" 2>/dev/null || echo 0; }

say "1. Demo data"
note "The MGEN privacy policy promises how long each kind of personal data is kept (art. 8-10): \
affiliations 5 years after the rights close, health claims 3 years live + 10 in an archive, \
web visits 13 months, identity-document copies 3 years... policies/mgen.yaml writes that schedule \
as 9 rules (8 on SQLite tables, 1 on a folder of files); policies/README.md \
explains each. Here are fictitious stores to run it on, dated around today:"
rm -rf demo && mkdir -p demo/state && chmod 700 demo/state
build/tools/retentiond-demo-data --out demo --seed 1 --policy

say "2. check: is the policy valid, and does every table and column it names exist?"
run check

say "3. plan: what would a sweep do today? (a dry run: opens the stores read-only, changes nothing)"
run plan
note "One line per rule and stage. MATCHED: records past their period, which a sweep acts on. \
HELD: past their period, but held (an affiliation under litigation): never touched. UNDATED: \
no readable anchor date (rights still open, a contract still running, or a bad value): never \
touched. CUTOFF: the latest anchor date already past the period today."
if "$bin" -c demo/policy.yaml --state-dir demo/state plan --format html >demo/report.html 2>/dev/null; then
  note "The same plan as the auditor's page, with a 12-month forecast: demo/report.html (open it in a browser; it prints well)."
else
  rm -f demo/report.html
fi

say "3b. plan --compare: the impact of a policy change, before it is signed"
sed '/name: audience-cookies/,/action:/s/keep_for: 13 months/keep_for: 25 months/' demo/policy.yaml >demo/policy-proposed.yaml
echo "\$ retentiond -c demo/policy-proposed.yaml plan --compare demo/policy.yaml --rule audience-cookies"
"$bin" -c demo/policy-proposed.yaml plan --compare demo/policy.yaml --rule audience-cookies
note "A proposal to keep audience cookies 25 months instead of 13 (art. 10): NO LONGER DUE counts \
the cookies the version in force deletes and the proposal would keep, today and at each month's end; \
--format html gives the same as a page for the data-protection officer."

copies() { find demo/rights-requests -name 'identity-*.pdf' -type f | wc -l; }
claims_before=$(rows amo.db claims)
copies_before=$(copies)
visits_identified_before=$(sqlite3 demo/web.db "SELECT count(*) FROM visits WHERE visitor_id IS NOT NULL")
say "4. sweep: act on it (delete, archive, anonymise), batch by batch, each batch in the audit log"
run sweep

say "5. audit verify: is the audit log's hash chain intact?"
run audit verify

say "What happened"
claims_live=$(rows amo.db claims)
claims_archived=$(rows amo-archive.db claims)
note "- Health claims: $claims_before in the live store before; now $claims_live live and \
$claims_archived in the separate archive demo/amo-archive.db (created by the sweep); the \
$((claims_before - claims_live - claims_archived)) claims paid over 13 years ago were destroyed, not archived."
note "- Visits tied to an identifier: $visits_identified_before before, \
$(sqlite3 demo/web.db "SELECT count(*) FROM visits WHERE visitor_id IS NOT NULL") now; the \
$(sqlite3 demo/web.db "SELECT count(*) FROM visits WHERE anonymized_at IS NOT NULL") older \
visits are kept for statistics without visitor id or IP. For example:"
sqlite3 -header -column -nullvalue NULL demo/web.db \
  "SELECT id, visitor_id, ip, page, visited_at, anonymized_at FROM visits WHERE anonymized_at IS NOT NULL LIMIT 2"
note "- Personal-space accounts closed over 6 months ago keep only a coded member number (HMAC under demo/hmac.key):"
sqlite3 -header -column -nullvalue NULL demo/web.db \
  "SELECT id, substr(member_number, 1, 16) || '...' AS member_number, email, coded_at FROM accounts WHERE coded_at IS NOT NULL LIMIT 2"
note "- Identity-document copies sent with rights requests (art. 9, files in demo/rights-requests): \
$copies_before before, $(copies) now; those received over 3 years ago were deleted, except in the \
$(find demo/rights-requests -name .hold | wc -l) request folders frozen by a .hold file."
note "- Held and undated records were left alone. Sweeping again changes nothing:"
run sweep | tail -1
note "- The audit log demo/state/audit.jsonl has one hash-chained line per batch (keys digested, \
never the records). Its first line:"
head -n 1 demo/state/audit.jsonl
echo
say "6. An erasure receipt: was this record acted on, and can we prove it?"
claim=$(sqlite3 demo/amo-archive.db "SELECT claim_id FROM claims ORDER BY claim_id LIMIT 1")
run audit find --rule amo-health-data --key "$claim"
"$bin" -c demo/policy.yaml --state-dir demo/state audit find --rule amo-health-data --key "$claim" \
  --format json >demo/receipt.json
note "The receipt (demo/receipt.json) carries the audit entry and the Merkle proof from the claim's \
keyed hash to the entry's keys_sha256; retentiond checks it against the audit log:"
run audit check-receipt demo/receipt.json
echo

note "Try: retentiond -c demo/policy.yaml --state-dir demo/state plan --as-of $(date -d '+1 year' +%F) \
(what falls due within a year), or 'audit show --rule audience-visits'. The binary is $bin."
