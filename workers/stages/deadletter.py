"""Turn a dropped or failed page into its ``pages.dlq`` record, keeping the original bytes."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from workers.models import DeadLetter, SourcePosition
from workers.stages import decode
from workers.stages.outcome import Dropped, Failed

# Bytes of the dead-letter record besides the original's key, value and URL: schema fields, the
# error text and stage, reason and class (cut here to the lengths below, at most six bytes a
# character as JSON), source.
_RECORD_OVERHEAD = 16 * 1024
# Stages echo their input in the error text (a content type, a charset, field names): it is cut
# here, whoever built it, as ``Failed.from_exception`` cuts an exception's text.
_MAX_MESSAGE_CHARS = 2000
_MAX_LABEL_CHARS = 100
# A URL is for people reading the dead letters (and the record's Kafka key): longer ones are cut.
_MAX_URL_CHARS = 4096
# The original key may take at most this share of the record (a key of megabytes is not a URL).
_MAX_KEY_SHARE = 8


def dead_letter(
    result: Dropped | Failed,
    *,
    key: bytes | None,
    value: bytes | None,
    source: SourcePosition,
    source_timestamp_ms: int | None,
    pipeline_version: int,
    failed_at: datetime,
    max_record_bytes: int,
) -> DeadLetter:
    """The page's dead letter, which fits ``max_record_bytes`` together with its Kafka key (the
    URL): a dead letter the topic refuses would hold up the partition, retried for ever."""
    original = value or b""
    url = _url_of(key, original, result)
    if url is not None:
        url = _text(url, _MAX_URL_CHARS)
    kept_key = key[: max_record_bytes // _MAX_KEY_SHARE] if key is not None else None
    # base64 grows key and value by 4/3; the URL is written twice (field and Kafka key), and
    # JSON may escape each of its characters to six bytes
    url_bytes = 2 * 6 * len(url) if url else 0
    key_bytes = _base64_length(len(kept_key)) if kept_key is not None else 0
    keep = max(0, (max_record_bytes - _RECORD_OVERHEAD - url_bytes - key_bytes) * 3 // 4)
    # What is cut stays readable at `source` for the topic's retention.
    truncated = len(original) > keep or kept_key != key
    return DeadLetter(
        outcome="failed" if isinstance(result, Failed) else "dropped",
        stage=_text(result.stage, _MAX_LABEL_CHARS),
        reason=_text(result.reason, _MAX_LABEL_CHARS),
        error_class=_text(result.error_class, _MAX_LABEL_CHARS) if isinstance(result, Failed) else "Dropped",
        error_message=_text(result.detail, _MAX_MESSAGE_CHARS),
        original_key_b64=base64.b64encode(kept_key).decode("ascii") if kept_key is not None else None,
        original_value_b64=base64.b64encode(original[:keep]).decode("ascii"),
        original_value_bytes=len(original),
        original_truncated=truncated,
        source=source,
        source_timestamp_ms=source_timestamp_ms,
        url=url,
        pipeline_version=pipeline_version,
        failed_at=failed_at,
    )


def record_key(letter: DeadLetter) -> bytes:
    """The dead letter's Kafka key: the page URL when known, else where the page was read."""
    source = letter.source
    return (letter.url or f"{source.topic}:{source.partition}:{source.offset}").encode()


def _base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, its lone surrogates (a JSON "\\ud800" escape decodes
    to one) replaced: the record is UTF-8, which cannot hold them, and could never be written."""
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def _url_of(key: bytes | None, value: bytes, result: Dropped | Failed) -> str | None:
    """Best effort, for people reading the dead letters: the key is the URL by contract, and a
    message whose key is missing may still carry a readable ``url`` field."""
    if key:
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if result.url is not None or result.stage == decode.STAGE:
        # Decode gives the url when the value has one: parsing it again would find no other, and
        # takes seconds for a hostile value of 32 MiB (millions of empty arrays), in the event loop.
        return result.url
    try:
        payload = json.loads(value)
    except (ValueError, RecursionError):  # not UTF-8 or JSON, a 4300-digit integer, deep nesting
        return None
    url = payload.get("url") if isinstance(payload, dict) else None
    return url if isinstance(url, str) else None
