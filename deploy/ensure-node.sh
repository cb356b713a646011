#!/usr/bin/env bash
# `make lint` runs buf from the npm registry (npx -y @bufbuild/buf): installs
# Node.js and npm from Debian's packages when npx is missing.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! command -v npx >/dev/null; then
    apt_install nodejs npm
fi
say "ok: node $(node --version), npx $(npx --version)"
