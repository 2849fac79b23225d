"""Stage 2: HTML -> main text and metadata, with trafilatura. Runs inside the extraction pool's
worker processes (see workers/pool.py), so everything here is picklable and process-local.

Options that matter for a stream:
- ``include_comments=False``: reader comments are not the article.
- ``deduplicate=False``: trafilatura's deduplication keeps a process-wide LRU cache, so the
  same page would extract differently depending on what that process saw before: replays
  would not be deterministic. Duplicate detection is a stage of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trafilatura
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from workers.stages.outcome import Dropped, Failed, Kept, StageResult

STAGE = "extract"
EXTRACTOR_VERSION = trafilatura.__version__

_HTML_LANG = re.compile(r"""<html[^>]*?\slang\s*=\s*["']?([A-Za-z]{2,3})""", re.IGNORECASE)
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# Below this normalised probability the page's declared language is the better guess.
_MIN_LANGUAGE_CONFIDENCE = 0.9
# Loaded once per extraction process (unpickling the model takes ~0.3 s).
_LANGUAGE_IDENTIFIER = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@dataclass(frozen=True, slots=True)
class ExtractionOptions:
    favor_precision: bool = False
    favor_recall: bool = False
    include_tables: bool = True
    min_text_chars: int = 80


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    title: str | None
    text: str
    language: str | None
    declared_language: str | None
    published_at: datetime | None
    canonical_url: str | None
    metadata: dict[str, object] = field(default_factory=dict)


def extract_document(html: str, url: str, options: ExtractionOptions) -> StageResult[ExtractedDocument]:
    try:
        document = trafilatura.bare_extraction(
            html,
            url=url,
            include_comments=False,
            deduplicate=False,
            include_tables=options.include_tables,
            favor_precision=options.favor_precision,
            favor_recall=options.favor_recall,
            with_metadata=True,
            date_extraction_params={"original_date": True, "extensive_search": False, "outputformat": _DATE_FORMAT},
        )
    except Exception as exc:  # noqa: BLE001 - trafilatura/lxml raise anything on hostile HTML
        return Failed.from_exception(STAGE, "extractor_error", exc)
    if document is None:
        return Dropped(STAGE, "no_content", "trafilatura found no main content")
    text = (document.text or "").strip()
    if len(text) < options.min_text_chars:
        return Dropped(STAGE, "too_short", f"{len(text)} characters of text < {options.min_text_chars}")

    declared = _declared_language(html)
    return Kept(
        ExtractedDocument(
            title=(document.title or "").strip() or None,
            text=text,
            language=_language(text, declared),
            declared_language=declared,
            published_at=parse_date(document.date),
            canonical_url=document.url,
            metadata={
                key: value
                for key, value in {
                    "author": document.author,
                    "sitename": document.sitename,
                    "description": document.description,
                    "image": document.image,
                    "categories": list(document.categories or []),
                    "tags": list(document.tags or []),
                }.items()
                if value
            },
        )
    )


def parse_date(value: str | None) -> datetime | None:
    """htmldate gives local time with an offset when the page has one, a naive time when it has
    none (taken as UTC: the page did not say), and a bare date when there is no time at all."""
    if not value:
        return None
    for fmt in (_DATE_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _declared_language(html: str) -> str | None:
    match = _HTML_LANG.search(html[:4096])
    return match.group(1).lower() if match else None


def _language(text: str, declared: str | None) -> str | None:
    detected, probability = _LANGUAGE_IDENTIFIER.classify(text[:2000])
    if probability >= _MIN_LANGUAGE_CONFIDENCE or declared is None:
        return detected
    return declared
