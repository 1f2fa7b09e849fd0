#!/usr/bin/env bash
# Install PostgreSQL (the Debian package) for the warehouse connector's live tests,
# once, and print the directory of its server programs (initdb, pg_ctl, postgres).
#
#   export CONVMEM_POSTGRES_BIN="$(bash .ci/postgres.sh)"
#
# The test suite starts its own throwaway cluster from these programs (initdb into
# a temporary directory, pg_ctl on a free port) and stops it at the end; as root
# it runs them as the `postgres` user the package creates. Only the bin directory
# is printed on stdout; what was done goes to stderr.
set -euo pipefail

say() { echo "postgres.sh: $*" >&2; }

bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
        echo "$dir"
    fi
}

DIR="$(bindir)"
if [[ -n "$DIR" ]]; then
    say "reusing $DIR"
else
    if [[ "$(id -u)" != "0" ]]; then
        say "PostgreSQL is not installed and this is not root: run as root, or install the 'postgresql' package"
        exit 1
    fi
    say "installing the Debian package 'postgresql' ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y --no-install-recommends postgresql >&2
    DIR="$(bindir)"
    if [[ -z "$DIR" ]]; then
        say "installed, but no /usr/lib/postgresql/*/bin/initdb was found"
        exit 1
    fi
fi
echo "$DIR"
