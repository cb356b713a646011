"""Checks the Open311 gateway's answers saved by the test
tests/tests/e2e/open311/formats.rs: every JSON answer against the schema the
gateway's OpenAPI description gives it (jsonschema, draft 2020-12), every XML
answer against the specification's element shapes (xmllint, georeport-v2.xsd).

Usage: check_answers.py OPENAPI.json SHAPES.xsd DIR
DIR holds `<name>.json` files with a `<name>.schema` beside each (a JSON
pointer into the OpenAPI document, e.g. `#/components/schemas/Service`,
prefixed with `[]` for an array of them), and `<name>.xml` files. Prints one
line per file; exits 1 if any does not conform.
"""

import json
import subprocess
import sys
from pathlib import Path

from jsonschema import Draft202012Validator


def main() -> int:
    openapi_path, xsd_path, directory = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    document = json.loads(Path(openapi_path).read_text())
    failures = 0
    for answer in sorted(directory.glob("*.json")):
        pointer = (directory / (answer.stem + ".schema")).read_text().strip()
        reference = {"$ref": pointer.removeprefix("[]")}
        # the whole OpenAPI document is the root, so its #/components refs resolve
        schema = dict(document)
        if pointer.startswith("[]"):
            schema.update({"type": "array", "items": reference})
        else:
            schema.update(reference)
        Draft202012Validator.check_schema(schema)
        errors = list(Draft202012Validator(schema).iter_errors(json.loads(answer.read_text())))
        if errors:
            failures += 1
            for error in errors[:5]:
                print(f"FAIL {answer.name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
        else:
            print(f"ok   {answer.name} ({pointer})")
    for answer in sorted(directory.glob("*.xml")):
        checked = subprocess.run(
            ["xmllint", "--noout", "--schema", xsd_path, str(answer)],
            capture_output=True,
            text=True,
        )
        if checked.returncode != 0:
            failures += 1
            print(f"FAIL {answer.name}: {checked.stderr.strip()}")
        else:
            print(f"ok   {answer.name} (GeoReport v2 shapes)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
