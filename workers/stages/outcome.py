"""The three ways a stage can end. Agents route on the type; nothing is ever silently dropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from workers.models import RawPage

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Kept(Generic[T]):
    value: T


@dataclass(frozen=True, slots=True)
class Dropped:
    """The input is well-formed but is not something we publish (not HTML, no article text...)."""

    stage: str
    reason: str
    detail: str
    # The page's URL when the stage read it from the message: its dead letter names the page by it.
    url: str | None = None
    # The page, when what dropped it still says something about the article its URL made (an
    # error status: the publisher may have withdrawn it).
    page: RawPage | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The input, or the stage on this input, is broken: undecodable, invalid, crashed, timed out."""

    stage: str
    reason: str
    error_class: str
    detail: str
    # The page's URL when the stage read it from the message: its dead letter names the page by it.
    url: str | None = None

    @classmethod
    def from_exception(cls, stage: str, reason: str, exc: BaseException) -> Failed:
        return cls(stage=stage, reason=reason, error_class=type(exc).__name__, detail=str(exc)[:2000])


StageResult = Kept[T] | Dropped | Failed
