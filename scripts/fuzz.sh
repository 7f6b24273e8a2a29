#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 16, ASan and UBSan, and runs each
# for a bounded time over a copy of tests/fuzz/corpus. Any crash, leak or
# undefined behaviour fails the run. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-35}
build=build-fuzz
CC=clang-16 CXX=clang++-16 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRETENTIOND_FUZZ=ON -DRETENTIOND_TESTS=OFF >/dev/null
cmake --build "$build" --target policy_fuzz period_fuzz -j"$(nproc)"
for target in policy period; do
  corpus=$(mktemp -d)
  cp -r tests/fuzz/corpus/$target/. "$corpus"/
  echo "== fuzzing $target for ${seconds}s (corpus: $(ls "$corpus" | wc -l) inputs)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 "$corpus" 2>&1 | grep -E "stat::|Done|ERROR|SUMMARY|#[0-9]+ *DONE" || true
  status=${PIPESTATUS[0]}
  rm -rf "$corpus"
  if [ "$status" -ne 0 ]; then echo "fuzzing $target failed (exit $status)"; exit 1; fi
done
