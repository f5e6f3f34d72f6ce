#!/usr/bin/env bash
# Install headless Chromium (Debian's `chromium` package) for the audit report's
# browser test. Idempotent: does nothing when /usr/bin/chromium already exists, so
# `make test` can call it on every run without touching the network.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium
