"""The alert and the webhook dead letter as published (``schemas/alerts.v1.schema.json``).

An alert's id is derived from what it is about, never from when it fired: the same rule on the
same article (or story) gives the same id on every redelivery, restart, worker and replay, which
is what makes firing once-only and lets webhook receivers deduplicate.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from workers.alerts.rules import RuleKind
from workers.models import SourcePosition


# Validation context of a message read back (:func:`read_alert`), as opposed to one being written.
_READING = "reading"


class _Message(BaseModel):
    """Strict when written: a field the schema does not list is a bug here. Read back (the alerts
    topic, Redis), a field it does not list is ignored: a newer release may add an optional field
    (README "Versions"), and a pod not yet upgraded must still deliver its alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _ignore_unknown_fields_when_reading(cls, data: Any, info: ValidationInfo) -> Any:
        if not (isinstance(data, dict) and info.context and info.context.get(_READING)):
            return data
        known = set(cls.model_fields) | {field.alias for field in cls.model_fields.values() if field.alias}
        return {name: value for name, value in data.items() if name in known}


class AlertArticle(_Message):
    """The article that fired the alert (for a story: the one that made it break)."""

    article_id: str
    url: str
    domain: str
    title: str | None
    language: str | None
    published_at: AwareDatetime | None
    urgent: bool


class StoryOutlet(_Message):
    domain: str
    first_seen: AwareDatetime


class AlertStory(_Message):
    story_id: str
    outlets: list[StoryOutlet]


class Alert(_Message):
    schema_: Literal["wirefeed.alert/1"] = Field(default="wirefeed.alert/1", alias="schema")
    alert_id: str
    rule_id: str
    rule_kind: RuleKind
    fired_at: AwareDatetime
    article: AlertArticle
    matched_terms: list[str] = Field(default_factory=list)
    story: AlertStory | None = None
    webhooks: list[str] = Field(default_factory=list)
    pipeline_version: int
    replay_id: str | None = None


# A stripped letter (:meth:`AlertDeadLetter.stripped`) is small whatever the alert held.
_STRIPPED_TEXT_CHARS = 500

def read_alert(data: bytes | str) -> Alert:
    """An alert written by any release of version 1: the fields this one does not know are left
    out (whoever needs them keeps the original bytes). Raises ``ValidationError``."""
    return Alert.model_validate_json(data, context={_READING: True})


DeadLetterReason = Literal["retries_exhausted", "rejected", "refused_address", "unknown_webhook", "missing_secret"]


class AlertDeadLetter(_Message):
    """A webhook delivery given up on: after retrying for the whole retry span, or at once when
    retrying cannot help."""

    schema_: Literal["wirefeed.alert.dlq/1"] = Field(default="wirefeed.alert.dlq/1", alias="schema")
    alert: Alert
    webhook: str
    url: str | None
    reason: DeadLetterReason
    attempts: int
    last_status: int | None
    last_error: str | None
    failed_at: AwareDatetime
    alert_truncated: bool = False
    """The topic refused the whole letter for good: ``alert`` keeps what identifies the alert, not
    its title, matched terms or story outlets (``wirefeed alerts redrive`` reads the alert from
    Redis instead)."""

    def stripped(self, refusal: str) -> AlertDeadLetter:
        """This letter without the parts of the alert that can be large, for a topic that refused
        it (a record too large, say): who, what and why stay, and why the letter is short."""
        article = self.alert.article
        alert = self.alert.model_copy(
            update={
                "article": article.model_copy(
                    update={
                        "title": None,
                        "url": article.url[:_STRIPPED_TEXT_CHARS],
                        "domain": article.domain[:_STRIPPED_TEXT_CHARS],
                    }
                ),
                "matched_terms": [],
                "story": self.alert.story.model_copy(update={"outlets": []}) if self.alert.story is not None else None,
            }
        )
        return self.model_copy(
            update={
                "alert": alert,
                "url": self.url[:_STRIPPED_TEXT_CHARS] if self.url is not None else None,
                "last_error": f"{(self.last_error or '')[:_STRIPPED_TEXT_CHARS]} (the whole dead letter was refused: "
                f"{refusal[:_STRIPPED_TEXT_CHARS]})",
                "alert_truncated": True,
            }
        )

    @property
    def kafka_key(self) -> bytes:
        return self.alert.alert_id.encode()

    @property
    def subject(self) -> str:
        """What the letter is about, for logs."""
        return f"alert {self.alert.alert_id} for webhook {self.webhook}"


# An unreadable record refused whole by alerts.dlq keeps this much of its value.
_STRIPPED_ORIGINAL_BYTES = 64 * 1024
# A validation error quotes the input: a large record makes a large message.
_MAX_ERROR_CHARS = 2000


class UnreadableAlert(_Message):
    """A record of the ``alerts`` topic that is not an alert this release can read (not JSON, a
    field missing or of another type): which webhooks it was for cannot be told, so it goes to
    ``alerts.dlq`` as it came, byte for byte."""

    schema_: Literal["wirefeed.alert.unreadable/1"] = Field(default="wirefeed.alert.unreadable/1", alias="schema")
    reason: Literal["unreadable_alert"] = "unreadable_alert"
    error: str
    source: SourcePosition
    original_key_b64: str | None
    original_value_b64: str
    original_value_bytes: int
    original_truncated: bool = False
    failed_at: AwareDatetime

    @classmethod
    def of(
        cls, key: bytes | None, value: bytes, *, source: SourcePosition, error: str, failed_at: AwareDatetime
    ) -> UnreadableAlert:
        return cls(
            error=error[:_MAX_ERROR_CHARS],
            source=source,
            original_key_b64=_b64(key) if key is not None else None,
            original_value_b64=_b64(value),
            original_value_bytes=len(value),
            failed_at=failed_at,
        )

    @property
    def kafka_key(self) -> bytes | None:
        return base64.b64decode(self.original_key_b64) if self.original_key_b64 is not None else None

    @property
    def subject(self) -> str:
        return f"unreadable record {self.source.topic}[{self.source.partition}]@{self.source.offset}"

    def stripped(self, refusal: str) -> UnreadableAlert:
        """This letter with the start of the record only, for a topic that refused it whole; the
        whole record stays on the alerts topic at ``source`` for its retention."""
        value = base64.b64decode(self.original_value_b64)[:_STRIPPED_ORIGINAL_BYTES]
        key = self.kafka_key
        return self.model_copy(
            update={
                "original_key_b64": _b64(key[:_STRIPPED_ORIGINAL_BYTES]) if key is not None else None,
                "original_value_b64": _b64(value),
                "original_truncated": True,
                "error": f"{self.error[:_STRIPPED_TEXT_CHARS]} (the whole dead letter was refused: "
                f"{refusal[:_STRIPPED_TEXT_CHARS]})",
            }
        )


AlertLetter = AlertDeadLetter | UnreadableAlert
"""What ``alerts.dlq`` carries."""


def read_letter(data: bytes | str) -> AlertLetter:
    """A record of ``alerts.dlq`` written by any release of version 1 (fields this one does not
    know left out), of the type its ``schema`` names. Raises ``ValidationError``."""
    try:
        named = json.loads(data).get("schema")
    except (ValueError, TypeError, AttributeError):  # not JSON (no value at all), or not an object: validation says so
        named = None
    letter_type = UnreadableAlert if named == UnreadableAlert.model_fields["schema_"].default else AlertDeadLetter
    return letter_type.model_validate_json(data, context={_READING: True})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def alert_id_for(rule_id: str, kind: RuleKind, subject_id: str) -> str:
    """``subject_id``: the article id for an article rule (for a copy, its original's), the story
    id for a story rule."""
    return hashlib.sha256(f"{rule_id}\n{kind}\n{subject_id}".encode()).hexdigest()[:32]
