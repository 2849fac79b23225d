"""Pages rendered by JavaScript: the article found in the data of their scripts
(workers/stages/embedded.py), and the extraction stage falling back to it."""

from __future__ import annotations

import html
import json

from lxml.html import document_fromstring

from tests.unit.test_extract import PARAGRAPHS, extract, page
from workers.stages.embedded import article_fragment, page_of
from workers.stages.extract import ExtractionOptions, extract_document
from workers.stages.outcome import Dropped

ARTICLE_HTML = "".join(f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS)


def shell(scripts: str, head: str = "") -> str:
    """An application shell: a title, a menu, an empty mount point, the scripts that render it."""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>City council approves the budget | The Daily Example</title>
<meta property="og:site_name" content="The Daily Example">{head}</head><body>
<nav><a href="/">Home</a> <a href="/city">City</a></nav><div id="root"></div>{scripts}</body></html>"""


def flight_scripts(payload: str, pieces: int = 3) -> str:
    """A React Server Components payload pushed in several scripts, cut mid-row as Next.js does."""
    size = len(payload) // pieces + 1
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
    return "<script>(self.__next_f=self.__next_f||[]).push([0])</script>" + "".join(
        f"<script>self.__next_f.push([1,{json.dumps(chunk)}])</script>" for chunk in chunks
    )


def text_row(row_id: str, text: str) -> str:
    return f"{row_id}:T{len(text.encode('utf-8')):x},{text}"


def test_a_server_components_text_row_split_across_scripts_is_the_article() -> None:
    arabic = "<p>" + "قال المجلس البلدي إن الميزانية الجديدة ستذهب أولا إلى المدارس وإصلاح الجسر القديم. " * 3 + "</p>"
    payload = (
        '1:"$Sreact.fragment"\n2:I[1234,[],""]\n'
        + text_row("24", ARTICLE_HTML + "$$ARTICLEAD$$" + arabic)
        + '3:["$","div",null,{"contentHtml":"$24","title":"City council approves the budget"}]\n'
    )
    doc = extract(shell(flight_scripts(payload)))
    assert doc.body_source == "embedded"
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text
    assert "الميزانية الجديدة" in doc.text  # the row's length is in UTF-8 bytes, not characters
    assert "$$" not in doc.text and "ARTICLEAD" not in doc.text
    assert doc.title == "City council approves the budget"


def test_html_in_a_json_state_blob_is_the_article() -> None:
    state = {"props": {"pageProps": {"article": {"id": 7, "teaser": "<p>Short.</p>", "body": ARTICLE_HTML}}}}
    scripts = f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(state)}</script>'
    doc = extract(shell(scripts))
    assert doc.body_source == "embedded"
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_the_longest_fragment_of_paragraphs_wins() -> None:
    related = "<p>" + "A related story about the harbour district and its promised investment. " * 3 + "</p>"
    state = {"related": [related], "article": {"content": ARTICLE_HTML}}
    tree = document_fromstring(shell(f'<script type="application/json">{json.dumps(state)}</script>'))
    assert article_fragment(tree) == ARTICLE_HTML


def test_a_page_with_its_article_in_the_html_does_not_use_the_scripts() -> None:
    state = {"article": {"body": "<p>" + "Text of another article kept in the page state. " * 10 + "</p>"}}
    doc = extract(page(head=f'<script type="application/json">{json.dumps(state)}</script>'))
    assert doc.body_source == "page"
    assert "another article" not in doc.text


COOKIE_NOTICE = (
    "We use cookies to measure the audience of this site and to show you offers that suit you. "
    "You can change your choice at any time in the privacy settings."
)


def test_a_shell_whose_only_text_is_a_cookie_notice_takes_the_article_from_the_scripts() -> None:
    state = {"article": {"body": ARTICLE_HTML}}
    html_text = shell(f'<script type="application/json">{json.dumps(state)}</script>').replace(
        '<div id="root"></div>', f'<div id="root"></div><div class="notice"><p>{COOKIE_NOTICE}</p></div>'
    )
    alone = extract(html_text, embedded_below_chars=0)
    assert alone.body_source == "page" and "We use cookies" in alone.text, "the notice alone passes as a body"
    doc = extract(html_text)
    assert doc.body_source == "embedded"
    assert "We use cookies" not in doc.text
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_a_short_article_in_the_html_stays_when_the_scripts_hold_little_more() -> None:
    brief = PARAGRAPHS[0]
    state = {"article": {"body": f"<p>{html.escape(brief)}</p><p>{html.escape(PARAGRAPHS[1][:120])}</p>"}}
    html_text = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<script type="application/json">{json.dumps(state)}</script></head><body>
<main><article><h1>Budget approved</h1><p>{html.escape(brief)}</p></article></main></body></html>"""
    doc = extract(html_text)
    assert doc.body_source == "page"
    assert doc.text.strip() == brief


def test_a_shell_without_data_is_still_dropped() -> None:
    result = extract_document(shell('<script>window.app = {"ready": true};</script>'), "https://news.example/a",
                              ExtractionOptions())
    assert isinstance(result, Dropped)


def test_the_fallback_can_be_switched_off() -> None:
    state = {"article": {"body": ARTICLE_HTML}}
    result = extract_document(
        shell(f'<script type="application/json">{json.dumps(state)}</script>'), "https://news.example/a",
        ExtractionOptions(embedded_fallback=False),
    )
    assert isinstance(result, Dropped)


def test_malformed_data_finds_nothing_and_raises_nothing() -> None:
    scripts = (
        '<script type="application/json">{"body": "<p>unterminated</script>'
        "<script>self.__next_f.push([1,\"24:Tzz,<p>not a length</p>\"])</script>"
        "<script>self.__next_f.push([1,\"24:T9999,<p>" + "shorter than it claims. " * 12 + "</p>\"])</script>"
    )
    tree = document_fromstring(shell(scripts))
    assert article_fragment(tree) is None
    assert "<article>" in page_of("<p>x</p>", "ar") and 'lang="ar"' in page_of("<p>x</p>", "ar")


def test_data_nested_deeper_than_the_json_parser_goes_is_passed_over() -> None:
    # json.loads raises RecursionError (no ValueError) on it: the article in the next script
    # is still found
    deep = "[" * 5000 + "]" * 5000
    state = {"article": {"body": ARTICLE_HTML}}
    scripts = (
        f'<script type="application/json">{deep}</script>'
        f'<script type="application/json">{json.dumps(state)}</script>'
    )
    assert article_fragment(document_fromstring(shell(scripts))) == ARTICLE_HTML
