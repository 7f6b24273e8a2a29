#!/usr/bin/env bash
# Builds the Debian package as a packager would (cpack -G DEB from the CMake
# install rules) into OUT_DIR and prints the .deb's path. Shared by the tests
# that install it (deb_e2e.sh, tests/systemd/e2e_stores.sh).
# Usage: build_deb.sh BUILD_DIR OUT_DIR
set -euo pipefail
build=$(realpath "$1")
out=$(realpath -m "$2")
cmake --build "$build" --target retentiond man changelog >/dev/null
(cd "$build" && cpack -G DEB -B "$out" >/dev/null)
ls "$out"/retentiond_*.deb
