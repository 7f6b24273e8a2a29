#!/usr/bin/env bash
# Files stores against find(1): a tree of FILES files in FOLDERS folders
# (default 1 M in 1 000, empty), 90 % of them past their period, built twice, then
#   plan   : `retentiond plan` vs `find ROOT -name PATTERN -printf ''`
#   delete : `retentiond sweep` vs `find ROOT -name PATTERN -mtime +N -delete`
# each on its own copy of the tree, caches dropped before each run where
# allowed (root). Prints the times and the ratios (rate of retentiond / rate of
# find): the targets are delete >= 0.8 and plan time <= 1.5 x find's walk.
#
#   bench/files.sh [--files N] [--folders N] [--dir DIR] [--batch N]
#                  [--retentiond PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

files=1000000
folders=1000
batch=10000
dir=""
bin=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --files) files=$2; shift 2 ;;
    --folders) folders=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --retentiond) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--files N] [--folders N] [--dir DIR] [--batch N] [--retentiond PATH]" >&2; exit 64 ;;
  esac
done
if [[ -z "$bin" ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build --target retentiond -j"$(nproc)" >/dev/null
  bin=build/daemon/retentiond
fi
if [[ -z "$dir" ]]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/retentiond-bench-files-XXXXXX")
  trap 'rm -rf "$dir"' EXIT
fi
per_folder=$(( (files + folders - 1) / folders ))

# The tree: FOLDERS folders of PER_FOLDER empty files (unlinking is metadata
# work either way), 9 in 10 dated 2015 (past 3 years), the others yesterday;
# names "identity-NNNNNN.pdf".
build_tree() {
  local root=$1
  mkdir -p "$root"
  for ((f = 0; f < folders; f++)); do
    local d
    d=$(printf '%s/req-%04d' "$root" "$f")
    mkdir -p "$d"
    (
      cd "$d"
      seq -f 'identity-%06g.pdf' 0 $((per_folder - 1)) | awk 'NR % 10 != 0' |
        xargs touch -d '2015-05-05 10:00'
      seq -f 'identity-%06g.pdf' 0 $((per_folder - 1)) | awk 'NR % 10 == 0' | xargs touch -d yesterday
    )
  done
}

drop_caches() { sync; if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi; }
seconds() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc -l; }
count() { find "$1" -type f -name 'identity-*.pdf' | wc -l; }

echo "building two trees of $files files in $folders folders under $dir ..."
build_tree "$dir/ours"
build_tree "$dir/find"
due=$(find "$dir/ours" -type f -name 'identity-*.pdf' -mtime +1095 | wc -l)
echo "  $(count "$dir/ours") files each, $due past 3 years"

cat >"$dir/policy.yaml" <<EOF
version: 1
timezone: Europe/Paris
batch_size: $batch
stores:
  tree: { kind: files, root: ours }
rules:
  - name: ids
    store: tree
    pattern: "*/identity-*.pdf"
    anchor: mtime
    keep_for: 3 years
    action: delete
EOF
# The same rule with `anchor: name` (the tree's names carry no date: all
# undated), to time a walk that needs no inode, as find -printf '' does.
sed -e 's/anchor: mtime/anchor: name/' "$dir/policy.yaml" >"$dir/policy-name.yaml"
run() { "$bin" -c "$dir/${2:-policy}.yaml" --state-dir "$dir/state" "$1" --quiet; }

drop_caches
t_find_walk=$(seconds find "$dir/find" -name 'identity-*.pdf' -printf '')
drop_caches
t_find_stat=$(seconds find "$dir/find" -name 'identity-*.pdf' -mtime +1095 -printf '')
drop_caches
t_plan=$(seconds run plan)
drop_caches
t_plan_name=$(seconds run plan policy-name)
drop_caches
t_find_delete=$(seconds find "$dir/find" -name 'identity-*.pdf' -mtime +1095 -delete)
drop_caches
t_sweep=$(seconds run sweep)

left_ours=$(count "$dir/ours")
left_find=$(count "$dir/find")
if [[ "$left_ours" != "$left_find" ]]; then
  echo "the two trees differ after the delete: retentiond left $left_ours files, find $left_find" >&2
  exit 1
fi
"$bin" --state-dir "$dir/state" audit verify >/dev/null

printf '\n%-44s %10s\n' "files store, $files files in $folders folders" "seconds"
printf '%-44s %10.2f\n' "find -name ... -printf ''" "$t_find_walk"
printf '%-44s %10.2f\n' "find -name ... -mtime +1095 -printf ''" "$t_find_stat"
printf '%-44s %10.2f\n' "retentiond plan (anchor: mtime)" "$t_plan"
printf '%-44s %10.2f\n' "retentiond plan (anchor: name)" "$t_plan_name"
printf '%-44s %10.2f\n' "find -name ... -mtime +1095 -delete" "$t_find_delete"
printf '%-44s %10.2f\n' "retentiond sweep (batch_size $batch)" "$t_sweep"
printf '\nplan / find walk time: %.2f with anchor mtime (%.2f against find -mtime, which reads\n' \
  "$(echo "$t_plan / $t_find_walk" | bc -l)" "$(echo "$t_plan / $t_find_stat" | bc -l)"
printf '  every inode as an mtime anchor must); %.2f with anchor name (target <= 1.5)\n' \
  "$(echo "$t_plan_name / $t_find_walk" | bc -l)"
printf 'delete rate, retentiond / find: %.2f (target >= 0.8); %d files deleted by each\n' \
  "$(echo "$t_find_delete / $t_sweep" | bc -l)" "$due"
