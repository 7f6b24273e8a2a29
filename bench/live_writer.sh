#!/usr/bin/env bash
# "Live writers keep working" (CONTRACT.md), measured: while `retentiond sweep`
# deletes the claims past 3 years from a bench_data store (about 80 % of
# --rows: 1.25 M rows by default, so that the sweep deletes 1 M), bench/live_writer
# inserts --rate rows/s into the same database (WAL, busy_timeout 5 s, one
# autocommit INSERT each) and reports failed inserts and its insert latencies.
# Exits 1 if an insert failed (or the sweep did); timings are reported, never
# judged. CTest runs a small version (tests/CMakeLists.txt).
#
# Usage: bench/live_writer.sh [--rows N] [--rate R] [--batch B] [--build DIR]
#                             [--retentiond BIN] [--bench-data BIN] [--live-writer BIN]
#                             [--work DIR] [-- WRITER OPTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=1250000
rate=500
batch=""
build=build
bin="" gen="" writer_bin="" work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --retentiond) bin=$2; shift 2 ;;
    --bench-data) gen=$2; shift 2 ;;
    --live-writer) writer_bin=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done
bin=${bin:-$build/daemon/retentiond}
gen=${gen:-$build/bench/bench_data}
writer_bin=${writer_bin:-$build/bench/live_writer}
for b in "$bin" "$gen" "$writer_bin"; do
  [ -x "$b" ] || { echo "missing $b: cmake --build $build --target retentiond bench_data live_writer" >&2; exit 1; }
done
# The sweep runs from the work folder: the binary's path must not be relative.
bin=$(realpath "$bin")
writer_pid=""
cleanup() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
  [ -n "${own_work:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$work" ]; then work=$(mktemp -d /tmp/retentiond-live-writer.XXXXXX); own_work=1; fi
mkdir -p "$work"
as_of=2026-06-15

"$gen" --out "$work/live.db" --rows "$rows" --layout chronological --as-of "$as_of" >/dev/null
{
  echo "version: 1"
  echo "timezone: Europe/Paris"
  [ -n "$batch" ] && echo "batch_size: $batch"
  cat <<'YAML'
stores:
  live: { kind: sqlite, path: live.db }
rules:
  - name: claims
    store: live
    table: claims
    key: claim_id
    anchor: paid_on
    keep_for: 3 years
    action: delete
YAML
} > "$work/policy.yaml"

# The writer announces its first committed row on a FIFO before the sweep starts.
mkfifo "$work/writer.fifo"
"$writer_bin" --db "$work/live.db" --rate "$rate" "$@" > "$work/writer.fifo" 2> "$work/writer.err" &
writer_pid=$!
exec 3< "$work/writer.fifo"
read -r -t 30 ready <&3 || true
[ "${ready:-}" = ready ] || { echo "the writer did not start:" >&2; cat "$work/writer.err" >&2; exit 1; }

start=$(date +%s.%N)
sweep_status=0
(cd "$work" && "$bin" -c policy.yaml --state-dir state --log-level debug sweep --as-of "$as_of" --format json \
    > sweep.json 2> sweep.log) || sweep_status=$?
end=$(date +%s.%N)
kill -TERM "$writer_pid"
writer_status=0
wait "$writer_pid" || writer_status=$?
writer_pid=""
report=$(cat <&3)
exec 3<&-

affected=$(sed -n 's/.*"affected": \([0-9]*\).*/\1/p' "$work/sweep.json" | tail -1)
locks=$(sed -n 's/.*write lock held \([0-9.]*\) ms.*/\1/p' "$work/sweep.log" | sort -n |
  awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(0.99 * NR + 0.999999); printf "%s ms p99, %s ms max over %d batches", v[i], v[NR], NR }')
printf 'live writer: retentiond sweep deleted %s of %s rows in %.1f s (exit %s); write lock %s\n' \
  "${affected:-?}" "$rows" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$sweep_status" "$locks"
printf 'live writer: %s rows/s requested: %s\n' "$rate" "$report"
[ -s "$work/writer.err" ] && cat "$work/writer.err" >&2
failed=$(echo "$report" | sed -n 's/.*failed \([0-9]*\).*/\1/p')
[ "$sweep_status" -eq 0 ] || { echo "FAIL: the sweep exited $sweep_status" >&2; tail -5 "$work/sweep.log" >&2; exit 1; }
[ "${failed:-x}" = 0 ] && [ "$writer_status" -eq 0 ] || { echo "FAIL: $failed insert(s) failed" >&2; exit 1; }
echo "live writer: OK, no insert failed"
