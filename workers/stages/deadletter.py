"""Turn a dropped or failed page into its ``pages.dlq`` record, keeping the original bytes."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from workers.models import DeadLetter, SourcePosition
from workers.stages.outcome import Dropped, Failed

# Bytes of the dead-letter record besides the base64 body: schema fields, error text, URL.
_RECORD_OVERHEAD = 16 * 1024


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
    original = value or b""
    # base64 grows the body by 4/3. A body that would not fit the topic's limit is cut, and the
    # record says so: the whole original stays readable at `source` for the topic's retention.
    keep = max(0, (max_record_bytes - _RECORD_OVERHEAD) * 3 // 4)
    truncated = len(original) > keep
    body = original[:keep] if truncated else original
    return DeadLetter(
        outcome="failed" if isinstance(result, Failed) else "dropped",
        stage=result.stage,
        reason=result.reason,
        error_class=result.error_class if isinstance(result, Failed) else "Dropped",
        error_message=result.detail,
        original_key_b64=base64.b64encode(key).decode("ascii") if key is not None else None,
        original_value_b64=base64.b64encode(body).decode("ascii"),
        original_value_bytes=len(original),
        original_truncated=truncated,
        source=source,
        source_timestamp_ms=source_timestamp_ms,
        url=_url_of(key, original),
        pipeline_version=pipeline_version,
        failed_at=failed_at,
    )


def _url_of(key: bytes | None, value: bytes) -> str | None:
    """Best effort, for people reading the dead letters: the key is the URL by contract, and a
    message whose key is missing may still carry a readable ``url`` field."""
    if key:
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            pass
    try:
        payload = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    url = payload.get("url") if isinstance(payload, dict) else None
    return url if isinstance(url, str) else None
