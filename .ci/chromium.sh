#!/usr/bin/env bash
# Install Debian's Chromium for the console's browser tests (tests/console/),
# which drive it through Playwright with executable_path=/usr/bin/chromium
# (Playwright's own browser download is never used). Idempotent: does nothing
# when /usr/bin/chromium is already there.
#
#   bash .ci/chromium.sh && export CONVMEM_REQUIRE_BROWSER=1
set -euo pipefail

say() { echo "chromium.sh: $*" >&2; }

if [[ -x /usr/bin/chromium ]]; then
    say "reusing $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
say "installing Debian's chromium package ..."
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core >&2
say "installed $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
