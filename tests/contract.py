"""The JSON Schemas in schemas/ as a test oracle, with formats (date-time, uri) really checked."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import NamedTuple

from jsonschema import Draft202012Validator, FormatChecker

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


class Contract(NamedTuple):
    """A topic's schema file, and the definitions in it that the topic's messages follow, one of
    them each (none: the whole file). alerts.v1 describes two topics, whose messages must not pass
    for each other's."""

    file: str
    definitions: tuple[str, ...] = ()


TOPIC_SCHEMAS = {
    "pages.raw": Contract("pages.raw.v1.schema.json"),
    "articles": Contract("articles.v1.schema.json"),
    "pages.dlq": Contract("pages.dlq.v1.schema.json"),
    "alerts": Contract("alerts.v1.schema.json", ("alert",)),
    "alerts.dlq": Contract("alerts.v1.schema.json", ("dead_letter", "unreadable_alert")),
    "rules": Contract("rules.v1.schema.json"),  # not a topic: the alert rules file
}


def schema_file(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@cache
def validator(topic: str, *, formats: bool = True) -> Draft202012Validator:
    """The topic's validator; ``formats=False`` is what a crawler gets from a default validator,
    which takes ``format`` as an annotation only."""
    contract = TOPIC_SCHEMAS[topic]
    schema = schema_file(contract.file)
    Draft202012Validator.check_schema(schema)
    if contract.definitions:
        schema = {key: schema[key] for key in ("$schema", "$id", "$defs")} | {
            "oneOf": [{"$ref": f"#/$defs/{definition}"} for definition in contract.definitions]
        }
    return Draft202012Validator(schema, format_checker=FormatChecker() if formats else None)


def assert_valid(topic: str, message: dict | bytes | str) -> dict:
    document = json.loads(message) if isinstance(message, (bytes, str)) else message
    errors = sorted(validator(topic).iter_errors(document), key=str)
    assert not errors, f"{topic} message violates its schema: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5]
    )
    return document
