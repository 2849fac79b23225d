"""The JSON Schemas in schemas/ as a test oracle, with formats (date-time, uri) really checked."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
TOPIC_SCHEMAS = {
    "pages.raw": "pages.raw.v1.schema.json",
    "articles": "articles.v1.schema.json",
    "pages.dlq": "pages.dlq.v1.schema.json",
    "alerts": "alerts.v1.schema.json",
    "alerts.dlq": "alerts.v1.schema.json",
    "rules": "rules.v1.schema.json",  # not a topic: the alert rules file
}


@cache
def validator(topic: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / TOPIC_SCHEMAS[topic]).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def assert_valid(topic: str, message: dict | bytes | str) -> dict:
    document = json.loads(message) if isinstance(message, (bytes, str)) else message
    errors = sorted(validator(topic).iter_errors(document), key=str)
    assert not errors, f"{topic} message violates its schema: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5]
    )
    return document
