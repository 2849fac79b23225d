"""The alert and the webhook dead letter as published (``schemas/alerts.v1.schema.json``).

An alert's id is derived from what it is about, never from when it fired: the same rule on the
same article (or story) gives the same id on every redelivery, restart, worker and replay, which
is what makes firing once-only and lets webhook receivers deduplicate.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.alerts.rules import RuleKind


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AlertArticle(_Message):
    """The article that fired the alert (for a story: the one that made it break)."""

    article_id: str
    url: str
    domain: str
    title: str | None
    language: str | None
    published_at: datetime | None
    urgent: bool


class StoryOutlet(_Message):
    domain: str
    first_seen: datetime


class AlertStory(_Message):
    story_id: str
    outlets: list[StoryOutlet]


class Alert(_Message):
    schema_: Literal["wirefeed.alert/1"] = Field(default="wirefeed.alert/1", alias="schema")
    alert_id: str
    rule_id: str
    rule_kind: RuleKind
    fired_at: datetime
    article: AlertArticle
    matched_terms: list[str] = Field(default_factory=list)
    story: AlertStory | None = None
    webhooks: list[str] = Field(default_factory=list)
    pipeline_version: int
    replay_id: str | None = None


class AlertDeadLetter(_Message):
    """A webhook delivery given up on: after the last retry, or at once when retrying cannot help."""

    schema_: Literal["wirefeed.alert.dlq/1"] = Field(default="wirefeed.alert.dlq/1", alias="schema")
    alert: Alert
    webhook: str
    url: str | None
    reason: Literal["retries_exhausted", "rejected", "unknown_webhook", "missing_secret"]
    attempts: int
    last_status: int | None
    last_error: str | None
    failed_at: datetime


def alert_id_for(rule_id: str, kind: RuleKind, subject_id: str) -> str:
    """``subject_id``: the article id for an article rule, the story id for a story rule."""
    return hashlib.sha256(f"{rule_id}\n{kind}\n{subject_id}".encode()).hexdigest()[:32]
