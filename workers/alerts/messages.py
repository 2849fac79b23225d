"""The alert and the webhook dead letter as published (``schemas/alerts.v1.schema.json``).

An alert's id is derived from what it is about, never from when it fired: the same rule on the
same article (or story) gives the same id on every redelivery, restart, worker and replay, which
is what makes firing once-only and lets webhook receivers deduplicate.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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

DeadLetterReason = Literal["retries_exhausted", "rejected", "unknown_webhook", "missing_secret"]


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


def alert_id_for(rule_id: str, kind: RuleKind, subject_id: str) -> str:
    """``subject_id``: the article id for an article rule (for a copy, its original's), the story
    id for a story rule."""
    return hashlib.sha256(f"{rule_id}\n{kind}\n{subject_id}".encode()).hexdigest()[:32]
