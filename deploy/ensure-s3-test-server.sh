#!/usr/bin/env bash
# The photo store's S3 backend is tested against a real S3-compatible HTTP
# server, s3rver (from the npm registry; it checks request signatures).
# Installs it once under $HOME/.cache, outside the clone, and prints where.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

S3RVER_VERSION=3.7.1
TOOLS_DIR="${DISPATCH311_TOOLS_DIR:-$HOME/.cache/dispatch311-tools}"
BIN="$TOOLS_DIR/node_modules/.bin/s3rver"

if [[ ! -x "$BIN" ]] || ! grep -q "\"version\": \"$S3RVER_VERSION\"" \
    "$TOOLS_DIR/node_modules/s3rver/package.json" 2>/dev/null; then
    "$(dirname "${BASH_SOURCE[0]}")/ensure-node.sh" >/dev/null
    mkdir -p "$TOOLS_DIR"
    say "installing s3rver $S3RVER_VERSION into $TOOLS_DIR (S3-compatible server for the photo store tests)"
    npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --loglevel=error "s3rver@$S3RVER_VERSION" >/dev/null
fi
say "ok: s3rver $S3RVER_VERSION ($BIN)"
