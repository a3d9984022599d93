#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the integration tests.
#
#   scripts/postgres.sh [start [DIR]]   starts a cluster in DIR (default: a new temp directory)
#                                       and prints its admin URL on stdout, e.g.
#                                       postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop DIR        stops that cluster and deletes DIR
#
# Debian's `postgresql` package is installed with apt when initdb is missing (the only network
# access). The cluster listens on 127.0.0.1 only, on a free port, with password (SCRAM) auth;
# its unix socket is in DIR/socket; fsync is off, since the data is thrown away. As root, the
# server runs as the `postgres` user (initdb refuses root). The URL is also in DIR/url and the
# server log in DIR/postgres.log.
#
# Exit status: 0 started; 3 PostgreSQL is not available (could not be installed); 1 any other
# failure (the log's tail is printed).
set -euo pipefail

NOT_AVAILABLE=3
MARKER=".webvm-postgres-cluster"

log() { printf '\033[1;34m[postgres]\033[0m %s\n' "$*" >&2; }
loud() {
  printf '\033[1;31m' >&2
  printf '[postgres] %s\n' "$@" >&2
  printf '\033[0m' >&2
}

is_root() { [ "$(id -u)" = 0 ]; }

# The newest installed server's bin directory (Debian keeps it off PATH), else PATH's.
find_bin_dir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  return 1
}

install_postgresql() {
  local sudo=()
  if ! is_root; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      loud "PostgreSQL is not installed and installing it needs root (or passwordless sudo)."
      return 1
    fi
  fi
  log "installing Debian's postgresql package (apt-get)"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends postgresql >&2 || return 1
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if is_root; then
    if command -v runuser >/dev/null; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

port_in_use() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_port() {
  local port
  while :; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_in_use "$port" || { printf '%s\n' "$port"; return 0; }
  done
}

stop_cluster() {
  local dir="$1"
  [ -d "$dir" ] || return 0
  if [ ! -e "$dir/$MARKER" ]; then
    # Never delete a directory this script did not set up.
    if [ -z "$(ls -A "$dir")" ]; then
      rmdir "$dir"
      return 0
    fi
    loud "$dir is not a cluster made by scripts/postgres.sh: left alone"
    return 1
  fi
  local bin
  bin="$(cat "$dir/bin" 2>/dev/null || find_bin_dir || true)"
  if [ -f "$dir/data/postmaster.pid" ] && [ -n "$bin" ]; then
    # Immediate: no shutdown checkpoint, the data is thrown away anyway.
    (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" stop -m immediate -w -t 30 >/dev/null 2>&1) ||
      loud "pg_ctl could not stop the cluster in $dir (see $dir/postgres.log)"
  fi
  rm -rf "$dir"
  log "stopped and removed the cluster in $dir"
}

start_cluster() {
  # Global, so the EXIT trap below sees it.
  dir="${1:-}"
  local bin
  if ! bin="$(find_bin_dir)"; then
    if ! install_postgresql || ! bin="$(find_bin_dir)"; then
      loud "========================================================================" \
        "PostgreSQL is NOT available: Debian's postgresql package could not be" \
        "installed (see the apt output above). No cluster was started." \
        "========================================================================"
      exit "$NOT_AVAILABLE"
    fi
  fi
  if is_root && ! id postgres >/dev/null 2>&1; then
    loud "running as root but there is no 'postgres' user to run the server as"
    exit 1
  fi

  if [ -z "$dir" ]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/webvm-postgres.XXXXXX")"
  else
    mkdir -p "$dir"
    if [ -n "$(ls -A "$dir")" ]; then
      loud "$dir is not empty"
      exit 1
    fi
  fi
  dir="$(cd "$dir" && pwd)"
  : >"$dir/$MARKER"
  printf '%s\n' "$bin" >"$dir/bin"
  # Until the cluster answers, a failure removes what was made.
  trap 'status=$?; if [ "$status" != 0 ]; then
          loud "the PostgreSQL cluster did not start; the end of its log:";
          tail -n 30 "$dir/postgres.log" >&2 2>/dev/null || true;
          stop_cluster "$dir" || true;
        fi' EXIT

  mkdir -p "$dir/socket"
  local password
  password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  (umask 077 && printf '%s\n' "$password" >"$dir/pwfile")
  if is_root; then
    chown -R postgres: "$dir"
  fi
  chmod 700 "$dir"

  # A deterministic, UTF-8 cluster; WEBVM_TEST_POSTGRES_LOCALE picks another locale.
  local locale="${WEBVM_TEST_POSTGRES_LOCALE:-C.UTF-8}"
  log "initdb ($("$bin/postgres" --version), locale $locale) in $dir"
  (cd "$dir" && as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale="$locale" --no-sync \
    >"$dir/initdb.log" 2>&1) || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  rm -f "$dir/pwfile"
  cat >>"$dir/data/postgresql.conf" <<EOF

# scripts/postgres.sh: a throwaway test cluster, loopback only, durability off.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF

  local port attempt
  for attempt in 1 2 3 4 5; do
    port="$(random_port)"
    rm -f "$dir/postgres.log"
    if (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
      -o "-p $port" -w -t 60 start >/dev/null 2>&1); then
      break
    fi
    if grep -q "could not bind\|already in use" "$dir/postgres.log" 2>/dev/null && [ "$attempt" -lt 5 ]; then
      log "port $port was taken; trying another"
      continue
    fi
    exit 1
  done

  local url="postgres://postgres:${password}@127.0.0.1:${port}/postgres"
  # It answers: over TCP, with the password, a query.
  local psql="$bin/psql"
  [ -x "$psql" ] || psql="$(command -v psql)" || { loud "psql is missing"; exit 1; }
  local ready=0
  for _ in $(seq 1 100); do
    if PGPASSWORD="$password" PGCONNECT_TIMEOUT=2 "$psql" -X -q -t -A \
      -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 1' 2>/dev/null | grep -qx 1; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then
    loud "the cluster on 127.0.0.1:$port does not answer queries"
    exit 1
  fi
  (umask 077 && printf '%s\n' "$url" >"$dir/url")
  trap - EXIT
  log "PostgreSQL answers on 127.0.0.1:$port; stop it with: scripts/postgres.sh stop $dir"
  printf '%s\n' "$url"
}

case "${1:-start}" in
  start) start_cluster "${2:-}" ;;
  stop)
    [ -n "${2:-}" ] || { loud "usage: $0 stop DIR"; exit 1; }
    stop_cluster "$2"
    ;;
  *)
    loud "usage: $0 [start [DIR]] | stop DIR"
    exit 1
    ;;
esac
