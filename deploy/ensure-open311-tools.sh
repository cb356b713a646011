#!/usr/bin/env bash
# The Open311 gateway's conformance tests check its answers with tools made
# elsewhere: xmllint (Debian's libxml2-utils) against the specification's
# element shapes, Python's jsonschema against the gateway's OpenAPI
# description, the `georeport` client library from PyPI, and Perl's
# XML::Simple and LWP (Debian's packages), which FixMyStreet's Open311 client
# parses and posts with. Installs what is missing (the Python packages,
# pinned, into the virtual environment deploy/ensure-browser.sh makes) and
# prints that environment's python.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

jsonschema_version=4.26.0
georeport_version=0.3.1

python=$("$deploy_dir/ensure-browser.sh")
missing=()
command -v xmllint >/dev/null || missing+=(libxml2-utils)
perl -MXML::Simple -e1 2>/dev/null || missing+=(libxml-simple-perl)
perl -MLWP::UserAgent -e1 2>/dev/null || missing+=(libwww-perl)
if ((${#missing[@]})); then
    apt_install "${missing[@]}" >&2
fi
if ! "$python" - "$jsonschema_version" "$georeport_version" 2>/dev/null <<'PY'; then
import sys
from importlib.metadata import version
sys.exit(version("jsonschema") != sys.argv[1] or version("georeport") != sys.argv[2])
PY
    say "installing jsonschema $jsonschema_version and georeport $georeport_version (Python)" >&2
    "$python" -m pip install -q --disable-pip-version-check \
        "jsonschema==$jsonschema_version" "georeport==$georeport_version" >&2
fi
say "ok: $(xmllint --version 2>&1 | head -1), XML::Simple, LWP, jsonschema $jsonschema_version, georeport $georeport_version" >&2
echo "$python"
