#!/usr/bin/env bash
# retentiond on PostgreSQL against what an administrator would otherwise run.
# On a throw-away PostgreSQL 15 server (scripts/pg-test-server.sh, fsync ON:
# commits are durable, as in production), with --rows rows of a claims table
# (bigint key, an indexed date anchor, payload columns; 80 % past a 3-year
# period), it times on identical fresh copies of the same database:
#
#   (a) the one SQL statement through psql: DELETE ... WHERE paid_on <= cutoff;
#       CREATE TABLE archive.claims + INSERT INTO ... SELECT + DELETE in one
#       transaction; UPDATE ... SET visitor_id = NULL WHERE paid_on <= cutoff;
#   (b) `retentiond sweep` of the equivalent rule, with retentiond's default
#       settings (no batch_size in the policy);
#
# and prints each one's time and the ratio a/b (higher is better for
# retentiond), retentiond's batches and how long each held its row locks
# (from its debug log), and its peak RSS. Then:
#
#   - a concurrent writer (bench/pg_writer: one autocommit INSERT every
#     --period-ms ms) during a retentiond delete sweep: its insert latency
#     p50/p99/max and its failures;
#   - a range-partitioned copy of the table (yearly partitions on the anchor,
#     as of 31 December so that whole partitions expire): retentiond's sweep
#     (which drops whole expired partitions) against the row DELETE of the same
#     rows through psql.
#
# Exits 1 when the two sides do not leave the same rows, when an insert
# failed, or when a sweep failed; timings are reported, never judged.
#
# Usage: bench/postgresql.sh [--rows N] [--batch B] [--build DIR] [--period-ms MS] [--work DIR]
#   --batch B  puts batch_size: B in retentiond's policy (default: none, retentiond's own)
# Public tools only: psql, /usr/bin/time, date, awk.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=1000000
build=build
period_ms=10
batch=""
work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --period-ms) period_ms=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "usage: $0 [--rows N] [--batch B] [--build DIR] [--period-ms MS] [--work DIR]" >&2; exit 64 ;;
  esac
done
if ! [[ "$rows" =~ ^[0-9]+$ ]] || ((rows < 100)); then
  echo "--rows: a number, at least 100" >&2
  exit 64
fi
bin=$build/daemon/retentiond
writer_bin=$build/bench/pg_writer
for b in "$bin" "$writer_bin"; do
  [ -x "$b" ] || { echo "missing $b: cmake --build $build --target retentiond pg_writer" >&2; exit 1; }
done
bin=$(realpath "$bin")
command -v psql >/dev/null || { echo "psql is missing (scripts/install-deps.sh --test)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

writer_pid="" own_work=""
if [ -z "$work" ]; then work=$(mktemp -d /tmp/retentiond-bench-pg.XXXXXX); own_work=1; fi
mkdir -p "$work"
work=$(realpath "$work")
chmod 755 "$work" # the server runs as the postgres user
server=$work/server
cleanup() {
  if [ -n "$writer_pid" ]; then kill "$writer_pid" 2>/dev/null || true; fi
  scripts/pg-test-server.sh stop "$server" || true
  [ -n "$own_work" ] && rm -rf "$work"
}
trap cleanup EXIT
RETENTIOND_PG_FSYNC=on RETENTIOND_PG_OWNER_PID=$$ scripts/pg-test-server.sh start "$server"
ci=$(cat "$server/conninfo")
q() { # q DB PSQL-ARGS...
  local db=$1
  shift
  PGOPTIONS="-c client_min_messages=warning" psql "$ci dbname=$db" -X -q -v ON_ERROR_STOP=1 "$@"
}
val() { q "$1" -tA -c "$2"; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
percentile() { # percentile P < numbers (sorted ascending)
  awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}

# As of 31 December of last year: the 3-year cutoff is then a 31 December
# too, so that yearly partitions expire whole. 15 years of payment dates, 3
# kept: 80 % of the rows are past the period.
year=$(($(date -u +%Y) - 1))
as_of=$year-12-31
cutoff=$((year - 3))-12-31
first_day=$(date -u -d "$as_of - 15 years + 1 day" +%F)
span=$((($(date -u -d "$as_of" +%s) - $(date -u -d "$first_day" +%s)) / 86400 + 1))

columns="claim_id bigint NOT NULL, member_id bigint NOT NULL, paid_on date, amount_cents integer,
  act_code text, visitor_id text, note text"
# The rows, oldest first (as an application appends them), the same in both layouts.
fill="INSERT INTO live.claims
  SELECT g, abs(hashint8(g)) % 2000000, DATE '$as_of' - ($span - 1 - ((g - 1) * $span) / $rows)::int,
         abs(hashint8(-g)) % 200000, 'C' || lpad((abs(hashint4(g::int)) % 5000)::text, 4, '0'),
         'v' || substr(md5(g::text), 1, 16), repeat(chr(97 + (g % 26)::int), 24)
  FROM generate_series(1::bigint, $rows) AS g;"

settings="retentiond's defaults (batch_size 1000)"
[ -n "$batch" ] && settings="batch_size $batch"
printf '\nretentiond on PostgreSQL: %s rows, as of %s (cutoff %s), fsync on, %s\n' \
  "$rows" "$as_of" "$cutoff" "$settings"
printf 'machine: %s, %s cores, %s\n' "$(uname -m)" "$(nproc)" "$(val postgres "SELECT split_part(version(), ' on ', 1)")"

started=$(now_ns)
q postgres -c "CREATE DATABASE base" -c "CREATE DATABASE base_part"
q base -c "CREATE SCHEMA live" -c "CREATE TABLE live.claims ($columns, PRIMARY KEY (claim_id))" \
  -c "$fill" -c "CREATE INDEX claims_paid_on ON live.claims (paid_on)" -c "VACUUM (ANALYZE) live.claims"
partitions=""
for ((y = ${first_day%%-*}; y <= year + 1; y++)); do
  partitions+="CREATE TABLE live.claims_$y PARTITION OF live.claims FOR VALUES FROM ('$y-01-01') TO ('$((y + 1))-01-01');"
done
q base_part -c "CREATE SCHEMA live" \
  -c "CREATE TABLE live.claims ($columns, PRIMARY KEY (claim_id, paid_on)) PARTITION BY RANGE (paid_on)" \
  -c "$partitions" -c "$fill" -c "CREATE INDEX claims_paid_on ON live.claims (paid_on)" -c "VACUUM (ANALYZE) live.claims"
expired=$(val base "SELECT count(*) FROM live.claims WHERE paid_on <= '$cutoff'")
printf 'data: %s rows, %s past the period, loaded in %s s\n\n' "$rows" "$expired" "$(secs "$started" "$(now_ns)")"

# fresh DB TEMPLATE: an identical copy, its writes on disk before the clock starts.
fresh() {
  q postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 TEMPLATE $2" -c "CHECKPOINT"
}
drop() { q postgres -c "DROP DATABASE IF EXISTS $1"; }

reference_sql() { # the administrator's statement
  case "$1" in
    delete | partitioned) echo "DELETE FROM live.claims WHERE paid_on <= '$cutoff'" ;;
    archive) echo "BEGIN; CREATE SCHEMA archive; CREATE TABLE archive.claims (LIKE live.claims INCLUDING ALL);
      INSERT INTO archive.claims SELECT * FROM live.claims WHERE paid_on <= '$cutoff';
      DELETE FROM live.claims WHERE paid_on <= '$cutoff'; COMMIT;" ;;
    anonymize) echo "UPDATE live.claims SET visitor_id = NULL WHERE paid_on <= '$cutoff'" ;;
  esac
}

policy() { # policy FILE DB ACTION: the retentiond rule equivalent to the reference SQL
  local action_yaml archive_store=""
  case "$3" in
    delete | partitioned) action_yaml="    action: delete" ;;
    archive)
      action_yaml=$'    action: archive\n    to: archive'
      archive_store="  archive: { kind: postgresql, dsn: \"$ci dbname=$2\", schema: archive }"
      ;;
    anonymize) action_yaml=$'    action: anonymize\n    anonymize: { visitor_id: "null" }' ;;
  esac
  cat >"$1" <<YAML
version: 1
timezone: UTC
${batch:+batch_size: $batch}
stores:
  live: { kind: postgresql, dsn: "$ci dbname=$2", schema: live }
$archive_store
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

# What a database holds after a run, to compare the two sides.
state_of() {
  val "$1" "SELECT count(*), count(visitor_id), coalesce(sum(claim_id), 0) FROM live.claims" | tr '|' ' '
  if [ "$2" = archive ]; then val "$1" "SELECT count(*), coalesce(sum(claim_id), 0) FROM archive.claims" | tr '|' ' '; fi
}

# sweep DB ACTION NAME: times retentiond sweep on DB; sets rd_secs, rd_affected, rd_rss_mib, locks.
sweep() {
  local dir=$work/$3
  rm -rf "$dir" && mkdir -p "$dir/state" && chmod 700 "$dir/state"
  policy "$dir/policy.yaml" "$1" "$2"
  local t0 t1 status=0
  t0=$(now_ns)
  /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" -c "$dir/policy.yaml" --state-dir "$dir/state" \
    --log-level debug sweep --as-of "$as_of" --format json >"$dir/sweep.json" 2>"$dir/sweep.log" || status=$?
  t1=$(now_ns)
  if [ "$status" -ne 0 ]; then
    echo "FAIL: retentiond sweep ($2) exited $status:" >&2
    tail -5 "$dir/sweep.log" >&2
    exit 1
  fi
  rd_secs=$(secs "$t0" "$t1")
  rd_affected=$(sed -n 's/.*"affected": \([0-9]*\).*/\1/p' "$dir/sweep.json" | tail -1) # the totals
  rd_rss_mib=$(awk '{ printf "%.1f", $2 / 1024 }' "$dir/time")
  # Batches that acted on rows (a stage ends with an empty one).
  sed -n 's/.*batch of [1-9][0-9]* rows.*write lock held \([0-9.]*\) ms.*/\1/p' "$dir/sweep.log" |
    sort -n >"$dir/locks.txt"
  locks="$(wc -l <"$dir/locks.txt") $(percentile 50 <"$dir/locks.txt") $(percentile 99 <"$dir/locks.txt") $(percentile 100 <"$dir/locks.txt")"
}

failures=0
header() {
  printf '%-17s %9s %8s %13s %7s %8s %7s %7s %8s %8s\n' ACTION ROWS "psql s" "retentiond s" RATIO \
    BATCHES "p50 ms" "p99 ms" "max ms" "RSS MiB"
}
row() { # row LABEL AFFECTED PSQL_SECS RD_SECS "BATCHES P50 P99 MAX" RSS
  local b p50 p99 max
  read -r b p50 p99 max <<<"$5"
  printf '%-17s %9s %8s %13s %7s %8s %7s %7s %8s %8s\n' "$1" "$2" "$3" "$4" \
    "$(awk -v a="$3" -v b="$4" 'BEGIN { if (a == "-" || b <= 0) print "-"; else printf "%.2f", a / b }')" \
    "$b" "$p50" "$p99" "$max" "$6"
}

# compare ACTION TEMPLATE LABEL: one action, both sides, on fresh copies.
compare() {
  local action=$1 template=$2 label=$3 t0 t1 psql_secs psql_state rd_state
  fresh a "$template"
  t0=$(now_ns)
  q a -c "$(reference_sql "$action")"
  t1=$(now_ns)
  psql_secs=$(secs "$t0" "$t1")
  psql_state=$(state_of a "$action")
  drop a
  fresh b "$template"
  sweep b "$action" "$action"
  rd_state=$(state_of b "$action")
  if [ "$action" = partitioned ]; then
    parts_left=$(val b "SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = 'live.claims'::regclass")
  fi
  drop b
  row "$label" "$rd_affected" "$psql_secs" "$rd_secs" "$locks" "$rd_rss_mib"
  if [ "$rd_affected" != "$expired" ] || [ "$psql_state" != "$rd_state" ]; then
    echo "FAIL: $label: retentiond acted on $rd_affected rows of $expired; after psql: $psql_state; after retentiond: $rd_state" >&2
    failures=$((failures + 1))
  fi
}

header
compare delete base delete
compare archive base archive
compare anonymize base "anonymize (null)"

# The writer: one autocommit INSERT every period_ms during a delete sweep.
fresh w base
mkfifo "$work/writer.fifo"
"$writer_bin" --dsn "$ci dbname=w" --table live.claims --period-ms "$period_ms" --paid-on "$as_of" \
  >"$work/writer.fifo" 2>"$work/writer.err" &
writer_pid=$!
exec 3<"$work/writer.fifo"
read -r -t 30 ready <&3 || true
[ "${ready:-}" = ready ] || { echo "the writer did not start:" >&2; cat "$work/writer.err" >&2; exit 1; }
sweep w delete writer
kill -TERM "$writer_pid"
writer_status=0
wait "$writer_pid" || writer_status=$?
writer_pid=""
read -r -a report <&3 || true
exec 3<&-
drop w
row "delete + writer" "$rd_affected" - "$rd_secs" "$locks" "$rd_rss_mib"
# inserted N failed F p50_ms X p99_ms Y max_ms Z
printf 'writer: one insert every %s ms during that sweep: %s inserted, %s failed; latency p50 %s ms, p99 %s ms, max %s ms\n' \
  "$period_ms" "${report[1]:-?}" "${report[3]:-?}" "${report[5]:-?}" "${report[7]:-?}" "${report[9]:-?}"
[ -s "$work/writer.err" ] && cat "$work/writer.err" >&2
if [ "$writer_status" -ne 0 ] || [ "${report[3]:-x}" != 0 ]; then
  echo "FAIL: the writer's inserts failed (exit $writer_status)" >&2
  failures=$((failures + 1))
fi

echo
parts_total=$(val base_part "SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = 'live.claims'::regclass")
header
compare partitioned base_part "partitioned"
printf 'partitions: %s yearly, %s left after the sweep (%s dropped whole)\n' "$parts_total" "$parts_left" \
  "$((parts_total - parts_left))"

echo
if ((failures > 0)); then
  echo "bench/postgresql.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "bench/postgresql.sh: both sides left the same rows in every run; total $(secs "$started" "$(now_ns)") s"
