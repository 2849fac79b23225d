"""Stage 3: decoded page + extracted document -> the published Article, with stable identity.

The article id is derived from the canonical URL only, so a re-crawl, a redelivery or a replay
of the same page always lands on the same id (and overwrites, never duplicates). The canonical URL
is spelled as :func:`workers.urlnorm.normalized_url` has it; a change to that spelling changes
article ids and needs a new PIPELINE_VERSION.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from urllib.parse import urlsplit

from workers.models import Article, ExtractionInfo, SourcePosition
from workers.stages.decode import DecodedPage
from workers.stages.extract import EXTRACTOR_VERSION, ExtractedDocument
from workers.textnorm import strip_format_characters
from workers.urlnorm import domain_of, names_the_home_page_instead_of, normalized_url, unicode_host, url_digest


def canonical_url(page_url: str, declared_canonical: str | None) -> str:
    """The page's own canonical link when it stays on the same host, else the fetched URL.

    A canonical pointing to another host is a syndication hint ("this text lives there"); taking
    it as our identity would let one outlet's page overwrite another's. Cross-host copies are
    the duplicate detector's business. A canonical naming the home page on a page that is not it
    is a template's mistake, repeated on every page of the site: taken, it would make all of
    them one article, each new story an "update" of the last.
    """
    chosen = page_url
    if (
        declared_canonical
        and _host(declared_canonical) == _host(page_url)
        and not names_the_home_page_instead_of(declared_canonical, page_url)
    ):
        chosen = declared_canonical
    try:
        return normalized_url(chosen)
    except ValueError:
        return chosen


def article_id_for(canonical: str) -> str:
    return url_digest(canonical)


def content_hash(title: str | None, text: str) -> str:
    """Hash of what a reader sees: NFC, collapsed white space and no invisible format characters,
    so that a re-crawl whose only change is markup, spacing or hyphenation points is not an
    update."""
    visible = strip_format_characters(f"{title or ''}\n{text}")
    canonical_text = " ".join(unicodedata.normalize("NFC", visible).split())
    return "sha256:" + hashlib.sha256(canonical_text.encode("utf-8")).hexdigest()


def build_article(
    decoded: DecodedPage,
    document: ExtractedDocument,
    *,
    source: SourcePosition,
    pipeline_version: int,
    processed_at: datetime,
) -> Article:
    canonical = canonical_url(decoded.effective_url, document.canonical_url)
    return Article(
        article_id=article_id_for(canonical),
        url=str(decoded.page.url),
        canonical_url=canonical,
        domain=domain_of(canonical),
        title=document.title,
        text=document.text,
        language=document.language,
        published_at=document.published_at,
        modified_at=document.modified_at,
        authors=list(document.authors),
        site_name=document.site_name,
        description=document.description,
        image=document.image,
        categories=list(document.categories),
        tags=list(document.tags),
        urgent=document.urgent,
        fetched_at=decoded.page.fetched_at,
        content_hash=content_hash(document.title, document.text),
        pipeline_version=pipeline_version,
        processed_at=processed_at,
        source=source,
        extraction=ExtractionInfo(
            extractor="trafilatura",
            extractor_version=EXTRACTOR_VERSION,
            html_bytes=decoded.html_bytes,
            text_chars=len(document.text),
            declared_language=document.declared_language,
            detected_language=document.detected_language,
            language_confidence=document.language_confidence,
            encoding=decoded.encoding,
            removed=list(document.removed),
            body_source=document.body_source,
            chrome_withheld=document.chrome_withheld,
            recovered_paragraphs=document.recovered_paragraphs,
            replaced_chars=decoded.replaced,
        ),
    )


def _host(url: str) -> str:
    return unicode_host(urlsplit(url).hostname or "")
