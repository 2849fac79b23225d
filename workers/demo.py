"""``wirefeed demo``: the whole system on this machine, on the bundled sample pages.

Starts the local stack (if needed), a worker process, feeds ``workers/samples/pages``, waits for
each page's outcome in Redis and prints what came out. The stack is left running for a look
around (``wirefeed stack down`` stops it); the worker is stopped.

What a page lost is shown in two parts: the blocks wirefeed's own filters removed from what
trafilatura extracted (``extraction.removed``), and the page's text lines that are not in the
body at all, most of which trafilatura left out (menus, tickers, teasers, comments), which no
field of the article records.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import lxml.html
import redis

from workers import SAMPLE_PAGES, localstack
from workers.feed import produce, records_from_paths
from workers.models import Article
from workers.settings import Settings
from workers.sinks.redis_store import page_key
from workers.topics import ensure_topics

_WAIT_S = 180
# Bodies up to this long are printed whole (both seed articles are), longer ones cut here.
_BODY_CHARS = 3000
# Of the page's lines not in the body, this many are printed, spread over the page.
_LEFT_OUT_EXAMPLES = 8
_LINE_CHARS = 90
_NOT_SHOWN = ("script", "style", "noscript", "template", "svg")
# Elements that start a line of their own in a browser. List items and table cells do not here: a
# menu, a row of teasers or a table row is one line, so that a few examples cover a whole page.
_LINE_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main",
    "nav", "ol", "p", "pre", "section", "summary", "table", "tr", "ul",
)
_SEPARATED_TAGS = ("li", "td", "th")
_LINE_BREAK = "\u2029"  # PARAGRAPH SEPARATOR: a mark that page text practically never holds


def run_demo(settings: Settings) -> int:
    if not localstack.status(settings):
        print("starting the local stack (Kafka + Redis) ...", flush=True)
        localstack.up(settings)
    ensure_topics(settings)

    records = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers", "--log-level", "warning", "worker"],
        env=os.environ.copy(),
    )
    try:
        sent = produce(settings, records)
        print(f"fed {len(sent)} sample pages into {settings.topic_pages_raw}; waiting for the worker ...", flush=True)
        client = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
        outcomes = _wait_for_outcomes(client, settings, records, sent, worker)
        _report(client, settings, records, outcomes)
        return 0 if len(outcomes) == len(records) else 1
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _wait_for_outcomes(client, settings, records, sent, worker) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    wanted = {r.key.decode(): (meta.partition, meta.offset) for r, meta in zip(records, sent, strict=True)}
    outcomes: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + _WAIT_S
    while len(outcomes) < len(wanted) and time.monotonic() < deadline and worker.poll() is None:
        for url, (partition, offset) in wanted.items():
            status = client.hgetall(page_key(settings.redis_prefix, url))
            if status and int(status["partition"]) == partition and int(status["offset"]) == offset:
                outcomes[url] = status
        time.sleep(0.5)
    if worker.poll() is not None:
        print(f"the worker exited with code {worker.returncode}", file=sys.stderr)
    elif len(outcomes) < len(wanted):
        print(f"timed out: {len(wanted) - len(outcomes)} page(s) without an outcome", file=sys.stderr)
    return outcomes


def _report(client, settings, records, outcomes) -> None:  # type: ignore[no-untyped-def]
    print()
    for record in records:
        url = record.key.decode()
        status = outcomes.get(url)
        print("=" * 100)
        print(url)
        if status is None:
            print("  (no outcome)")
            continue
        if status["outcome"] != "kept":
            print(f"  {status['outcome']} at {status['stage']}: {status['reason']} (see {settings.topic_dlq})")
            continue
        article = Article.model_validate_json(client.hget(f"{settings.redis_prefix}:article:{status['article_id']}", "json"))
        info = article.extraction
        print(f"  title     : {article.title}")
        print(f"  language  : {article.language} (declared: {info.declared_language or '-'})   encoding: {info.encoding}")
        print(f"  published : {article.published_at.isoformat() if article.published_at else '-'}")
        print(f"  article id: {article.article_id}   domain: {article.domain}")
        print(f"  size      : {info.html_bytes} bytes of HTML -> {info.text_chars} characters of text")
        # the page as fed (an HTML file goes as its bytes), decoded as the pipeline decoded it
        _print_left_out(article, base64.b64decode(json.loads(record.value)["html_b64"]).decode(info.encoding, "replace"))
        print("  body      :")
        for paragraph in article.text[:_BODY_CHARS].split("\n"):
            for line in textwrap.wrap(paragraph, 96):
                print(f"    {line}")
        if len(article.text) > _BODY_CHARS:
            print("    ...")


def _print_left_out(article: Article, html: str) -> None:
    """What wirefeed's filters removed, then how much of the page's text is not in the body, with
    examples other than the title and those removals."""
    removed = article.extraction.removed
    print(f"  removed by wirefeed's filters, after trafilatura (extraction.removed): {len(removed) or 'nothing'}")
    for block in removed:
        print(f"    [{block.reason}] {textwrap.shorten(block.text, _LINE_CHARS)}")
    lines = page_text_lines(html)
    left_out = lines_not_in(lines, article.text)
    shown_above = "\n".join([article.title or "", *(block.text for block in removed)])
    examples = spread(lines_not_in(left_out, shown_above), _LEFT_OUT_EXAMPLES)
    print(f"  not in the body: {len(left_out)} of the page's {len(lines)} lines of text{', among them:' if examples else ''}")
    for line in examples:
        print(f"    {textwrap.shorten(line, _LINE_CHARS)}")


def page_text_lines(html: str) -> list[str]:
    """The text a browser shows of the page, a line per paragraph, heading, list or table row, white
    space collapsed; lines without a letter (dates, "...", "(c) 2016") left out."""
    body = lxml.html.document_fromstring(html).body
    for element in list(body.iter(*_NOT_SHOWN)):
        element.drop_tree()
    for element in body.iter(*_LINE_TAGS):
        element.text = _LINE_BREAK + (element.text or "")
        element.tail = _LINE_BREAK + (element.tail or "")
    for element in body.iter(*_SEPARATED_TAGS):
        element.tail = " " + (element.tail or "")
    lines = (" ".join(line.split()) for line in body.text_content().split(_LINE_BREAK))
    return [line for line in lines if any(char.isalpha() for char in line)]


def lines_not_in(lines: list[str], text: str) -> list[str]:
    """The lines that are nowhere in ``text``, white space aside (inline markup puts spaces where the
    extracted text has none, and the other way round)."""
    squeezed = "".join(text.split())
    return [line for line in lines if "".join(line.split()) not in squeezed]


def spread(items: list[str], count: int) -> list[str]:
    """``count`` of the items, evenly spaced from the first, in order; all of them when fewer."""
    if len(items) <= count:
        return items
    return [items[index * len(items) // count] for index in range(count)]
