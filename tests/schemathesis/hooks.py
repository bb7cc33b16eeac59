"""Schemathesis extensions for AgentIdP (loaded through `hooks` in schemathesis.toml).

`GET /v1/audit/export` streams NDJSON: one audit event per line. OpenAPI 3.1 can only describe one
line's schema, and Schemathesis has no NDJSON deserializer, so without this check the export's
body would go unchecked. The check validates every line against the schema the document gives for
the 200 response (`AuditEvent`), with the document's components for `$ref`s.
"""

import json

import jsonschema_rs
import schemathesis

NDJSON = "application/x-ndjson"
_validators = {}


def _line_validator(case):
    """A validator for one line of the operation's 200 NDJSON response, built once per operation."""
    key = case.operation.label
    if key not in _validators:
        document = case.operation.schema.raw_schema
        line_schema = document["paths"][case.operation.path][case.operation.method.lower()][
            "responses"]["200"]["content"][NDJSON]["schema"]
        schema = dict(line_schema)
        schema["components"] = document.get("components", {})
        _validators[key] = jsonschema_rs.Draft202012Validator(schema)
    return _validators[key]


@schemathesis.check
def ndjson_lines_conform(ctx, response, case):
    """Every line of an NDJSON 200 response is a JSON value its line schema accepts."""
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if response.status_code != 200 or not content_type.startswith(NDJSON):
        return None
    validator = _line_validator(case)
    for number, line in enumerate(response.content.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as error:
            raise AssertionError(f"line {number} is not JSON: {error}: {line[:200]!r}") from None
        errors = [str(e) for e in validator.iter_errors(event)]
        if errors:
            raise AssertionError(f"line {number} violates its schema: {errors[:3]}: {line[:200]!r}")
    return True
