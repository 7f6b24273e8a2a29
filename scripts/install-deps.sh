#!/usr/bin/env bash
# Installs every Debian 12 package retentiond needs to build, run and test.
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite uses)
set -euo pipefail
build=(cmake g++ make ninja-build pkg-config catch2 scdoc gzip
  libboost-dev libsqlite3-dev libyaml-cpp-dev libfmt-dev libhowardhinnant-date-dev
  libcli11-dev nlohmann-json3-dev libssl-dev libsystemd-dev libpq-dev tzdata sqlite3
  openssh-client)
test=(systemd-container lintian dpkg-dev man-db time clang-16 libclang-rt-16-dev chromium
  postgresql-15 postgresql-client-15 util-linux)
pkgs=("${build[@]}")
if [[ "${1:-}" == "--test" ]]; then pkgs+=("${test[@]}"); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  # One line, not the package manager's progress; its whole output only when
  # it fails, so that the reason is on the screen.
  echo "installing ${#missing[@]} Debian packages: ${missing[*]}"
  log=$(mktemp /tmp/retentiond-install-deps.XXXXXX)
  if ! { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get failed (output above, also in $log)" >&2
    exit 1
  fi
  rm -f "$log"
fi
