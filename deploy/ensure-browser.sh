#!/usr/bin/env bash
# The console's browser tests drive Debian's Chromium with Playwright's Python
# package. Installs Chromium from Debian's packages when it is missing, and
# Playwright (pinned) into a virtual environment outside the clone, so a fresh
# clone reuses it. Never downloads a browser of Playwright's own: the tests
# point Playwright at /usr/bin/chromium. Prints the environment's python.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

playwright_version=1.65.3
venv="${DISPATCH311_BROWSER_VENV:-$HOME/.cache/dispatch311-browser-venv}"

if ! command -v chromium >/dev/null; then
    apt_install chromium >&2
fi
if ! "$venv/bin/python" -c "import playwright, sys; from importlib.metadata import version; sys.exit(version('playwright') != '$playwright_version')" 2>/dev/null; then
    say "installing Playwright $playwright_version (Python) into $venv"
    python3 -m venv "$venv" >&2 || { apt_install python3-venv >&2 && python3 -m venv "$venv" >&2; }
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "playwright==$playwright_version" >&2
fi
say "ok: $(chromium --version 2>/dev/null | head -1), playwright $playwright_version" >&2
echo "$venv/bin/python"
