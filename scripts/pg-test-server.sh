#!/usr/bin/env bash
# A throw-away PostgreSQL 15 server for the tests.
#
#   scripts/pg-test-server.sh start DIR   creates DIR, starts a server with its
#                                         data in DIR/pgdata, writes DIR/conninfo
#   scripts/pg-test-server.sh stop DIR    stops that server and removes DIR
#
# The server listens on a Unix socket in DIR/sock only (no TCP); the port is
# only part of the socket's name. Authentication is trust, fsync is off, the
# server's timezone is America/New_York (neither UTC nor the usual local zone,
# so an anchor read in the session's zone by mistake shows). Run as root, the
# server runs as the unprivileged postgres user; otherwise as the caller.
# DIR/conninfo holds one line in libpq keyword form, without dbname:
#   host=DIR/sock port=PORT user=postgres
#
# If RETENTIOND_PG_OWNER_PID is set at start, the server's supervisor stops
# it and removes DIR once that process is gone, even if it crashed (the C++
# harness sets it for its private server). RETENTIOND_PG_FSYNC=on at start
# keeps fsync on (PostgreSQL's own default), for benchmarks whose figures must
# include durable commits.
set -euo pipefail

readonly PGBIN=/usr/lib/postgresql/15/bin
readonly START_TIMEOUT=30 STOP_TIMEOUT=30
readonly MARKER=.retentiond-pg-test-server

die() {
  echo "pg-test-server: $*" >&2
  exit 1
}
usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

(($# == 2)) || usage
cmd=$1
[[ -n "$2" ]] || usage
dir=$(realpath -m -- "$2")
[[ "$dir" != / ]] || die "refusing to use / as the server's folder"
pgdata=$dir/pgdata
sock=$dir/sock
log=$dir/server.log

# The command prefix that runs a program as the server's user.
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run the server"
  as_server=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  chown_server() { chown postgres:postgres "$@"; }
else
  as_server=()
  chown_server() { :; }
fi
as_server() { "${as_server[@]}" "$@"; }

# The supervisor: runs the server, and when an owner pid is given, stops the
# server (and removes DIR) once the owner is gone. Bash reaps its finished
# child as it goes, so kill -0 on it fails as soon as the server has exited.
# shellcheck disable=SC2016
readonly SUPERVISOR='
  owner=$1 self=$2 dir=$3
  shift 3
  "$@" &
  server=$!
  if [[ -n "$owner" ]]; then
    while kill -0 "$server" 2>/dev/null && kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
    if kill -0 "$server" 2>/dev/null; then
      echo "pg-test-server: owner $owner is gone; stopping the server"
      "$self" stop "$dir"
    fi
  fi
  wait "$server"'

# Settings a caller's environment could slip into psql's connection.
unset PGSERVICE PGSERVICEFILE PGOPTIONS PGDATABASE PGUSER PGHOST PGHOSTADDR PGPORT PGSSLMODE

# The postmaster's pid, if DIR's server is running (a stale postmaster.pid,
# whose pid now belongs to another process or to a zombie, does not count).
running_pid() {
  local pid
  [[ -r "$pgdata/postmaster.pid" ]] || return 1
  read -r pid <"$pgdata/postmaster.pid" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  # Its command line names this data folder.
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$pgdata" || return 1
  echo "$pid"
}

# Whether a process exists and is not a zombie (an exited postmaster whose
# new parent does not reap it still answers kill -0).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "$state" != Z && "$state" != X ]]
}

# Whether DIR is one this script made (never rm -rf anything else).
ours() {
  [[ -e "$dir/$MARKER" || -d "$pgdata" ]]
}

stop() {
  [[ -e "$dir" ]] || return 0
  ours || die "$dir does not look like a test server's folder (no $MARKER, no pgdata); not removing it"
  local pid waited=0
  if pid=$(running_pid); then
    kill -INT "$pid" 2>/dev/null || true # fast shutdown
    while alive "$pid" && ((waited < STOP_TIMEOUT * 10)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if alive "$pid"; then
      echo "pg-test-server: the server ($pid) did not stop within ${STOP_TIMEOUT}s; sending SIGQUIT" >&2
      kill -QUIT "$pid" 2>/dev/null || true
      waited=0
      while alive "$pid" && ((waited < 50)); do
        sleep 0.1
        waited=$((waited + 1))
      done
      if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  fi
  rm -rf -- "$dir"
}

start() {
  if [[ -e "$dir" ]]; then
    if ours; then
      stop
    elif [[ -d "$dir" && -z "$(ls -A -- "$dir")" ]]; then
      : # an empty folder made for us (mkdtemp)
    else
      die "$dir exists and is not an empty folder or a test server's folder"
    fi
  fi

  # Unix socket paths are limited to 107 bytes.
  local probe="$sock/.s.PGSQL.65535"
  ((${#probe} <= 107)) || die "$dir is too long a path for a Unix socket ($probe is ${#probe} bytes, at most 107)"

  mkdir -p -- "$dir"
  touch -- "$dir/$MARKER"
  chmod 755 -- "$dir"
  mkdir -m 700 -- "$pgdata"
  mkdir -m 755 -- "$sock"
  : >"$log"
  chown_server "$pgdata" "$sock" "$log"
  if ! (cd / && as_server test -w "$pgdata" -a -w "$sock"); then
    namei -l "$dir" >&2 2>/dev/null || true
    rm -rf -- "$dir"
    die "the server's user ($(id -un postgres 2>/dev/null || id -un)) cannot reach $dir: a parent folder is not traversable"
  fi

  local out
  if ! out=$(cd / && as_server "$PGBIN/initdb" -D "$pgdata" -U postgres --auth=trust --no-sync \
    -E UTF8 --no-locale --no-instructions 2>&1); then
    echo "$out" >&2
    rm -rf -- "$dir"
    die "initdb failed"
  fi

  # Any port will do: the socket lives in a folder of its own, so the number
  # only has to be a valid one; it is random so that two servers' sockets
  # never look alike in logs.
  local port=$((20000 + RANDOM % 30000))

  local fsync=${RETENTIOND_PG_FSYNC:-off}
  [[ "$fsync" == on || "$fsync" == off ]] || die "RETENTIOND_PG_FSYNC is on or off, not $fsync"

  local owner=${RETENTIOND_PG_OWNER_PID:-} self
  [[ -z "$owner" || "$owner" =~ ^[0-9]+$ ]] || die "RETENTIOND_PG_OWNER_PID is not a pid: $owner"
  self=$(realpath -- "${BASH_SOURCE[0]}")

  # The postmaster runs detached (its own session; no terminal, no inherited
  # pipe: a ctest fixture or a test's popen must not wait on the server's end
  # of a pipe) under a small supervisor that waits for it, so that it never
  # lingers as a zombie where PID 1 does not reap orphans (some containers).
  (
    cd /
    exec </dev/null >>"$log" 2>&1
    exec setsid bash -c "$SUPERVISOR" supervisor "$owner" "$self" "$dir" \
      "${as_server[@]}" "$PGBIN/postgres" -D "$pgdata" -p "$port" -k "$sock" \
      -c listen_addresses= -c fsync="$fsync" -c timezone=America/New_York -c max_connections=200
  ) &
  local launched=$!

  local waited=0
  until "$PGBIN/psql" -X -q -w -h "$sock" -p "$port" -U postgres -d postgres -tAc 'select 1' \
    >/dev/null 2>&1; do
    if ! alive "$launched" && ! running_pid >/dev/null; then
      echo "pg-test-server: the server exited during start-up; the end of $log:" >&2
      tail -n 30 -- "$log" >&2 || true
      rm -rf -- "$dir"
      exit 1
    fi
    if ((waited >= START_TIMEOUT * 10)); then
      echo "pg-test-server: the server did not answer within ${START_TIMEOUT}s; the end of $log:" >&2
      tail -n 30 -- "$log" >&2 || true
      stop
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done

  # libpq keyword form; values quoted only when they must be.
  local host=$sock
  if [[ "$host" =~ [[:space:]\'\\] ]]; then
    host=${host//\\/\\\\}
    host="'${host//\'/\\\'}'"
  fi
  echo "host=$host port=$port user=postgres" >"$dir/conninfo.tmp"
  mv -- "$dir/conninfo.tmp" "$dir/conninfo"

}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
