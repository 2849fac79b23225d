"""Test data built in code, for tests of several modules: an article as the extraction stage
builds it, the paragraphs of a plain news page, and Redis as it will be days from now."""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis

from workers.models import Article, ExtractionInfo, SourcePosition
from workers.stages.article import article_id_for, content_hash
from workers.urlnorm import domain_of

PARAGRAPHS = [
    "The city council approved the new budget on Tuesday after a debate that lasted well into the night, "
    "with the mayor promising that the money would go first to schools and to the repair of the old bridge.",
    "Opposition members argued that the plan leaves the harbour district without the investment it was "
    "promised two years ago, and that the tax increase will hit small shops harder than large chains.",
    "The finance director said the city had no choice after the regional government cut its transfers, "
    "and that the budget would be reviewed in spring once the new figures for tourism were available.",
    "Residents who spoke at the public session were divided: some welcomed the school programme, others "
    "asked why the museum renovation had been postponed again for the third year in a row.",
]


def article(
    url: str,
    text: str,
    *,
    fetched_at: datetime,
    title: str | None = None,
    language: str | None = "ar",
    offset: int = 0,
    published_at: datetime | None = None,
) -> Article:
    """An article as the extraction stage builds it (its id, outlet and content hash by the same
    functions), of a page whose canonical URL is ``url``."""
    return Article(
        article_id=article_id_for(url),
        url=url,
        canonical_url=url,
        domain=domain_of(url),
        title=title,
        text=text,
        language=language,
        published_at=published_at,
        fetched_at=fetched_at,
        content_hash=content_hash(title, text),
        pipeline_version=1,
        processed_at=fetched_at,
        source=SourcePosition(topic="pages.raw", partition=0, offset=offset),
        extraction=ExtractionInfo(
            extractor="trafilatura", extractor_version="2.3.1", html_bytes=len(text.encode()),
            text_chars=len(text), encoding="utf-8",
        ),
    )


async def expire_until(redis_client: aioredis.Redis, prefix: str, until: float) -> None:
    """Redis at the time ``until`` (Unix seconds), without sleeping until then: the keys under
    ``prefix`` whose absolute expiry (EXPIRETIME) has come by then are deleted, as Redis will."""
    async for key in redis_client.scan_iter(match=f"{prefix}:*"):
        if 0 < await redis_client.expiretime(key) <= until:
            await redis_client.delete(key)
