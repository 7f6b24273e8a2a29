#!/usr/bin/env bash
# retentiond's benchmark driver. On identical fresh copies of the same data it
# times (a) the one SQL statement an administrator would otherwise run through
# the sqlite3 CLI, with the same page cache as retentiond's, and (b) `retentiond
# sweep` of the equivalent rule, and prints rows/s, the ratio b/a (and against
# the CLI with its own default page cache), retentiond's write
# transaction durations (p50/p99/max), peak RSS, and the dry-run plan time
# against an indexed SELECT count(*).
#
# Usage: bench/run.sh [--rows N] [--layouts "chronological random"]
#                     [--actions "delete archive anonymize hmac"]
#                     [--cache-mib M] [--batch B] [--max-transaction D]
#                     [--build DIR] [--work DIR]
# Without --cache-mib and --batch the policy has neither: retentiond's defaults
# (a 16 MiB page cache, batches sized by max_transaction), as a user runs it.
# Public tools only: sqlite3, /usr/bin/time, awk.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=1000000
layouts="chronological random"
actions="delete archive anonymize hmac"
cache_mib=""
batch=""
max_transaction=""
build=build
work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --layouts) layouts=$2; shift 2 ;;
    --actions) actions=$2; shift 2 ;;
    --cache-mib) cache_mib=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --max-transaction) max_transaction=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1"; exit 64 ;;
  esac
done
bin=$build/daemon/retentiond
gen=$build/bench/bench_data
[ -x "$bin" ] && [ -x "$gen" ] || { echo "build first: cmake --build $build --target retentiond bench_data"; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)"; exit 1; }
if [ -z "$work" ]; then work=$(mktemp -d /tmp/retentiond-bench.XXXXXX); trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work"
as_of=2026-06-15
cutoff=2023-06-15   # 3 years before as_of: the latest payment day past the period
cache_kib=$(( ${cache_mib:-16} * 1024 ))  # retentiond's page cache: its default is 16 MiB
head -c 32 /dev/urandom > "$work/hmac.key"; chmod 600 "$work/hmac.key"

policy() {  # policy FILE ACTION: the retentiond rule equivalent to the reference SQL
  local action_yaml
  case "$2" in
    delete) action_yaml="    action: delete" ;;
    archive) action_yaml=$'    action: archive\n    to: archive' ;;
    anonymize) action_yaml=$'    action: anonymize\n    anonymize: { visitor_id: "null" }' ;;
    hmac) action_yaml=$'    action: anonymize\n    anonymize: { visitor_id: hmac, mark: coded_at }' ;;
  esac
  cat > "$1" <<YAML
version: 1
timezone: UTC
${batch:+batch_size: $batch}
${cache_mib:+cache_mib: $cache_mib}
${max_transaction:+max_transaction: $max_transaction}
hmac_key_file: hmac.key
stores:
  live: { kind: sqlite, path: b.db }
  archive: { kind: sqlite, path: b-archive.db }
rules:
  - name: bench
    store: live
    table: claims
    key: claim_id
    anchor: paid_on
    keep_for: 3 years
$action_yaml
YAML
}

reference_sql() {
  case "$1" in
    delete) echo "DELETE FROM claims WHERE paid_on <= '$cutoff';" ;;
    archive) echo "ATTACH 'a-archive.db' AS archive; BEGIN; CREATE TABLE archive.claims AS SELECT * FROM claims WHERE 0;
                   INSERT INTO archive.claims SELECT * FROM claims WHERE paid_on <= '$cutoff';
                   DELETE FROM claims WHERE paid_on <= '$cutoff'; COMMIT;" ;;
    anonymize) echo "UPDATE claims SET visitor_id = NULL WHERE paid_on <= '$cutoff';" ;;
  esac
}

# timed OUT CMD...: runs CMD, leaves "elapsed_seconds peak_rss_kib" in OUT
timed() { local out=$1; shift; /usr/bin/time -f '%e %M' -o "$out" "$@"; }

percentile() {  # percentile P < numbers (sorted ascending)
  awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}

settings="retentiond's defaults (no batch_size, no cache_mib: 16 MiB page cache)"
[ -n "$batch$cache_mib$max_transaction" ] &&
  settings="batch_size ${batch:-none}, max_transaction ${max_transaction:-50ms}, page cache ${cache_mib:-16} MiB"
printf '\nretentiond benchmark: %s rows, %s, as of %s\n' "$rows" "$settings" "$as_of"
printf 'machine: %s, %s cores, %s\n\n' "$(uname -m)" "$(nproc)" "$(sqlite3 --version | cut -d' ' -f1 | sed 's/^/SQLite /')"
printf '%-14s %-10s %12s %12s %7s %8s %8s %8s %8s %9s\n' LAYOUT ACTION "SQL rows/s" "rd rows/s" RATIO "RATIO2" "p50 ms" "p99 ms" "max ms" "RSS MiB"
for layout in $layouts; do
  base="$work/base-$layout.db"
  "$gen" --out "$base" --rows "$rows" --layout "$layout" --as-of "$as_of" >/dev/null
  for action in $actions; do
    rm -f "$work"/a.db* "$work"/b.db* "$work"/a-archive.db* "$work"/b-archive.db* "$work"/state -r
    cp "$base" "$work/a.db"; cp "$base" "$work/b.db"
    policy "$work/policy.yaml" "$action"
    sql_rate="-"; ratio="-"; ratio2="-"
    if [ "$action" != hmac ]; then
      (cd "$work" && timed "$work/a.time" sqlite3 a.db "PRAGMA cache_size = -$cache_kib; $(reference_sql "$action")")
      sql_secs=$(cut -d' ' -f1 "$work/a.time")
      # RATIO2: against the CLI with its own default page cache (2 MiB).
      rm -f "$work"/a.db* "$work"/a-archive.db*; cp "$base" "$work/a.db"
      (cd "$work" && timed "$work/a2.time" sqlite3 a.db "$(reference_sql "$action")")
      sql2_secs=$(cut -d' ' -f1 "$work/a2.time")
    fi
    (cd "$work" && timed "$work/b.time" "$OLDPWD/$bin" -c policy.yaml --state-dir state --log-level debug \
        sweep --as-of "$as_of" --format json > b.json 2> b.log)
    affected=$(sed -n 's/.*"affected": \([0-9]*\).*/\1/p' "$work/b.json" | tail -1)
    rd_secs=$(cut -d' ' -f1 "$work/b.time"); rss_kib=$(cut -d' ' -f2 "$work/b.time")
    rd_rate=$(awk -v n="$affected" -v s="$rd_secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
    if [ "$action" != hmac ]; then
      sql_rate=$(awk -v n="$affected" -v s="$sql_secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
      ratio=$(awk -v a="$sql_secs" -v b="$rd_secs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
      ratio2=$(awk -v a="$sql2_secs" -v b="$rd_secs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    fi
    sed -n 's/.*write lock held \([0-9.]*\) ms.*/\1/p' "$work/b.log" | sort -n > "$work/locks.txt"
    printf '%-14s %-10s %12s %12s %7s %8s %8s %8s %8s %9s\n' "$layout" "$action" "$sql_rate" "$rd_rate" "$ratio" "$ratio2" \
      "$(percentile 50 < "$work/locks.txt")" "$(percentile 99 < "$work/locks.txt")" "$(percentile 100 < "$work/locks.txt")" \
      "$(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }')"
  done
  # The dry run against the indexed count of the same rows.
  cp "$base" "$work/b.db"; policy "$work/policy.yaml" delete
  (cd "$work" && timed "$work/c.time" sqlite3 b.db "PRAGMA cache_size = -$cache_kib; SELECT count(*) FROM claims WHERE paid_on <= '$cutoff';" >/dev/null)
  (cd "$work" && timed "$work/p.time" "$OLDPWD/$bin" -c policy.yaml --state-dir state plan --as-of "$as_of" --format json >/dev/null)
  printf '%-14s %-10s count(*) %.2f s, plan %.2f s: plan/count %.2f\n' "$layout" plan \
    "$(cut -d' ' -f1 "$work/c.time")" "$(cut -d' ' -f1 "$work/p.time")" \
    "$(awk -v c="$(cut -d' ' -f1 "$work/c.time")" -v p="$(cut -d' ' -f1 "$work/p.time")" 'BEGIN { printf "%.2f", (c > 0 ? p / c : 0) }')"
done
