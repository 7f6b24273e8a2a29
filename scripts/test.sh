#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test: the normal build
# and an AddressSanitizer + UndefinedBehaviorSanitizer build of the same tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETENTIOND_TESTS=ON
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

# The benchmark driver, small: a smoke test of the measuring, no timing asserted.
bench/run.sh --rows 100000 --build build
bench/postgresql.sh --rows 20000 --build build

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRETENTIOND_SANITIZE=ON -DRETENTIOND_TESTS=ON
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")

# Fuzzing: the policy loader and the period parser, bounded in time.
scripts/fuzz.sh 35
