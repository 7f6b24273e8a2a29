#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test: the normal build
# and an AddressSanitizer + UndefinedBehaviorSanitizer build of the same tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
jobs=$(nproc)

# Warnings are errors here, for developers and CI; a user's build only warns.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETENTIOND_TESTS=ON -DRETENTIOND_WERROR=ON
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

# The Release configuration with Debian's own flags (hardening, -D_FORTIFY_SOURCE;
# -O3 from Release wins over their -O2), as a user or a package build makes it:
# warnings are not errors here, as in a user's build; it must pass the tests
# that do not boot a container (those ran above, on the same code).
CXXFLAGS="$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
  LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DRETENTIOND_TESTS=ON
cmake --build build-release -j"$jobs"
(cd build-release && ctest --output-on-failure -j"$jobs" -E '^(systemd|packaging)\.')

# The benchmark drivers, small, on the Release build: a smoke test of the
# measuring, no timing asserted.
bench/run.sh --rows 100000 --build build-release
bench/postgresql.sh --rows 20000 --build build-release

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRETENTIOND_SANITIZE=ON -DRETENTIOND_TESTS=ON -DRETENTIOND_WERROR=ON
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")

# Fuzzing: the policy loader and the period parser, bounded in time.
scripts/fuzz.sh 35
