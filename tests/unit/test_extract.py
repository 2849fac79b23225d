"""The extraction stage on small hand-written pages: options, structural filters, metadata."""

from __future__ import annotations

import html
import json
import pickle
import unicodedata
from datetime import UTC, datetime

import pytest
from contract import assert_valid
from lxml import etree
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from tests.builders import PARAGRAPHS
from workers.stages import extract as extract_module
from workers.stages import teasers
from workers.stages.blocks import Block, words
from workers.models import SourcePosition
from workers.stages.article import build_article
from workers.stages.chrome import block_hash
from workers.stages.decode import decode_message
from workers.stages.extract import DETECTED_LANGUAGES, ExtractedDocument, ExtractionOptions, extract_document
from workers.stages.metadata import choose_title, clean_authors, extract_page_metadata, strip_site_name
from workers.stages.outcome import Dropped, Failed, Kept


def page(*, body: str = "", head: str = "", before: str = "", after: str = "", lang: str = "en") -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS)
    return f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">{head}</head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/city">City</a></li><li><a href="/sport">Sport</a></li></ul></nav></header>
<main><article><h1>City council approves the budget</h1>{before}<div class="body">{paragraphs}{body}</div>{after}</article></main>
<footer><p>Copyright 2024 The Daily Example</p></footer></body></html>"""


def kept(result: object) -> ExtractedDocument:
    assert isinstance(result, Kept), result
    return result.value


def extract(html_text: str, url: str = "https://news.example/city/budget", **options: object) -> ExtractedDocument:
    return kept(extract_document(html_text, url, ExtractionOptions(**options)))  # type: ignore[arg-type]


def test_body_metadata_and_removed_blocks() -> None:
    head = """<title>City council approves the budget | The Daily Example</title>
<link rel="canonical" href="https://www.news.example/city/budget?utm_source=rss">
<meta property="og:site_name" content="The Daily Example">
<meta property="og:image" content="/img/budget.jpg">
<meta name="description" content="The council approved the budget.">
<meta property="article:published_time" content="2024-03-05T18:30:00+01:00">
<meta property="article:modified_time" content="2024-03-06T09:00:00+01:00">
<meta property="article:section" content="City">
<meta property="article:tag" content="budget"><meta property="article:tag" content="council">
<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle",
 "headline":"City council approves the budget","author":[{"@type":"Person","name":"Jane Doe"},
 {"@type":"Person","name":"John Roe"}],"datePublished":"2024-03-05T18:30:00+01:00"}</script>"""
    doc = extract(page(head=head))
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text
    assert "City council approves the budget" not in doc.text  # the headline is the title
    assert doc.title == "City council approves the budget"
    assert doc.authors == ("Jane Doe", "John Roe")
    assert doc.published_at is not None and doc.published_at.isoformat() == "2024-03-05T18:30:00+01:00"
    assert doc.modified_at is not None and doc.modified_at.isoformat() == "2024-03-06T09:00:00+01:00"
    assert doc.site_name == "The Daily Example"
    assert doc.description == "The council approved the budget."
    assert doc.image == "https://news.example/img/budget.jpg"
    assert doc.canonical_url == "https://www.news.example/city/budget"
    assert doc.categories == ("City",) and doc.tags == ("budget", "council")
    assert doc.language == "en" and doc.declared_language == "en"
    assert doc.urgent is False
    assert doc.block_hashes >= {block_hash(p) for p in PARAGRAPHS}
    assert any(r.reason == "title" for r in doc.removed)
    # picklable: it travels back from the pool's worker processes
    assert pickle.loads(pickle.dumps(doc)) == doc


def test_not_a_page_and_too_short() -> None:
    assert isinstance(extract_document("", "https://a.example/", ExtractionOptions()), (Dropped, Failed))
    short = "<html><body><article><p>Too short.</p></article></body></html>"
    assert isinstance(extract_document(short, "https://a.example/", ExtractionOptions()), Dropped)


def test_a_related_list_inside_the_article_goes_in_any_language() -> None:
    items = "".join(
        f'<li><div><p>{who}: {what}...<a href="/story/{n}">{more}</a></p></div></li>'
        for n, (who, what, more) in enumerate([
            ("Από τον Γιάννη", "Νέα μέτρα για την οικονομία ανακοίνωσε η κυβέρνηση", "περισσότερα"),
            ("Από τη Μαρία", "Ο δήμαρχος παρουσίασε το σχέδιο για το λιμάνι", "περισσότερα"),
            ("Από τον Νίκο", "Απεργία στα μέσα μεταφοράς την Πέμπτη", "περισσότερα"),
            ("Από την Ελένη", "Το μουσείο ανοίγει ξανά μετά την ανακαίνιση", "περισσότερα"),
        ])
    )
    doc = extract(page(after=f'<div class="x1"><ul>{items}</ul></div>'))
    assert "Νέα μέτρα" not in doc.text and "μουσείο" not in doc.text
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def teaser_lists(tree: HtmlElement) -> list[HtmlElement]:
    """The teaser items teasers.py finds on a page of news.example, with the default settings."""
    here = teasers.Page("https://news.example/today")
    return teasers.find_teaser_lists(tree, teasers.TeaserSettings(), teasers.link_holders(tree, here), here)


def link_lines(tree: HtmlElement) -> list[HtmlElement]:
    """The link lines teasers.py finds on a page of news.example, with the default settings."""
    here = teasers.Page("https://news.example/today")
    return teasers.find_link_lines(tree, teasers.TeaserSettings(), teasers.link_holders(tree, here), here)


def test_teaser_items_are_found_by_structure() -> None:
    tree = load_html(
        "<html><body><div>"
        + "".join(f'<div class="card"><a href="/a/{n}">Headline number {n} of the day here</a><p>Summary {n}.</p></div>'
                  for n in range(4))
        + "</div><div>"
        + "".join(f"<div class='para'><p>Paragraph {n} mentions <a href='/x/{n}'>a link</a> in the middle of a long "
                  f"sentence that goes on and on about the subject at hand, as body text does.</p></div>" for n in range(4))
        + "</div></body></html>"
    )
    found = teaser_lists(tree)
    assert [element.get("class") for element in found] == ["card"] * 4


@pytest.mark.parametrize(
    ("headline", "summary"),
    [
        # a headline's sentence ended by Ethiopic's full stop before the summary
        ("የምክር ቤቱ አባላት በጀቱን አፀደቁ", "። ምክር ቤቱ ዛሬ ባካሄደው መደበኛ ስብሰባ የቀረበለትን የሚቀጥለውን ዓመት በጀት በሙሉ ድምፅ አፅድቋል ብለዋል"),
        # a headline of a script without spaces, counted by its characters
        ("រដ្ឋសភាអនុម័តថវិកាជាតិឆ្នាំក្រោយ", "។ រដ្ឋសភាបានអនុម័តលើសេចក្ដីព្រាងច្បាប់ហិរញ្ញវត្ថុសម្រាប់ការគ្រប់គ្រងឆ្នាំក្រោយនៅថ្ងៃនេះ"),
    ],
)
def test_teaser_items_are_found_by_structure_in_any_script(headline: str, summary: str) -> None:
    tree = load_html(
        "<html><body><div>"
        + "".join(f'<div class="card"><a href="/a/{n}">{headline} {n}</a>{summary} {n}</div>' for n in range(4))
        + "</div></body></html>"
    )
    found = teaser_lists(tree)
    assert [element.get("class") for element in found] == ["card"] * 4


def test_table_rows_that_are_nothing_but_links_are_teasers_and_rows_of_figures_are_data() -> None:
    headlines = "".join(f'<tr><td><a href="/a/{n}">Headline number {n} of the day</a></td></tr>' for n in range(4))
    standings = "".join(
        f'<tr><td><a href="/club/{n}">{club}</a></td><td>{points}</td><td>{won}</td></tr>'
        for n, (club, points, won) in enumerate([("Rovers", 81, 25), ("United", 79, 24), ("City", 78, 23), ("Athletic", 70, 20)])
    )
    tree = load_html(f"<html><body><table>{headlines}</table><table>{standings}</table></body></html>")
    found = teaser_lists(tree)
    assert [element.text_content() for element in found] == [f"Headline number {n} of the day" for n in range(4)]


@pytest.mark.parametrize("cards", [2, 3])
def test_three_teasers_make_a_list_and_two_do_not(cards: int) -> None:
    tree = load_html(
        "<html><body><div>"
        + "".join(f'<div class="card"><a href="/a/{n}">Headline number {n} of the day here</a><p>Summary {n}.</p></div>'
                  for n in range(cards))
        + "</div></body></html>"
    )
    found = teaser_lists(tree)
    assert len(found) == (3 if cards == 3 else 0)


@pytest.mark.parametrize(("words", "goes"), [(28, True), (29, False)])
def test_a_link_line_is_at_most_30_words(words: int, goes: bool) -> None:
    headline = " ".join(f"word{n}" for n in range(words))
    tree = load_html(f'<html><body><p>Read more: <a href="/b">{headline}</a></p></body></html>')
    found = link_lines(tree)
    assert [element.tag for element in found] == (["p"] if goes else [])


def test_a_link_line_is_found_as_the_line_not_as_the_block_that_holds_it() -> None:
    tree = load_html('<html><body><div><p>Read more: <a href="/b">The harbour plan explained in five charts</a></p></div></body></html>')
    found = link_lines(tree)
    assert [element.tag for element in found] == ["p"]


def test_a_line_whose_link_is_exactly_the_link_density_of_its_text_goes() -> None:
    # "Listen: Big fire now": 12 of 20 characters linked, 0.6
    tree = load_html('<html><body><p>Listen: <a href="/b">Big fire now</a></p></body></html>')
    found = link_lines(tree)
    assert [element.tag for element in found] == ["p"]


def test_teaser_paragraphs_with_a_comment_between_them_are_still_one_run() -> None:
    from lxml.html import document_fromstring

    tree = document_fromstring(  # load_html would drop the comments
        "<html><body><div>"
        + "<!-- related -->".join(f'<p>Summary of story {n} goes on... <a href="/s/{n}">more</a></p>' for n in range(3))
        + "</div></body></html>"
    )
    found = teaser_lists(tree)
    assert [element.tag for element in found] == ["p"] * 3


def test_a_teaser_list_inside_a_teaser_list_is_found_as_the_outer_list_only() -> None:
    sections = "".join(
        '<section class="rail">'
        + "".join(f'<div class="card"><a href="/a/{s}/{n}">Headline {n} of rail {s} today</a></div>' for n in range(3))
        + "</section>"
        for s in range(3)
    )
    tree = load_html(f"<html><body><div>{sections}</div></body></html>")
    found = teaser_lists(tree)
    assert [element.tag for element in found] == ["section"] * 3


def test_a_read_more_link_line_goes() -> None:
    extra = '<p>Read more: <a href="/city/harbour-plan">The harbour plan explained in five charts</a></p>'
    doc = extract(page(body=extra))
    assert "harbour plan explained" not in doc.text
    assert [r.reason for r in doc.removed if "harbour plan" in r.text] == ["teaser_link"]
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_known_chrome_is_removed_with_a_reason_and_the_guard_keeps_the_article() -> None:
    box = "Support independent local journalism: become a member of The Daily Example today."
    html_text = page(body=f"<p>{box}</p>")
    cold = extract(html_text)
    assert box in cold.text and block_hash(box) in cold.block_hashes
    learned = extract_document(html_text, "https://news.example/x", ExtractionOptions(),
                               known_chrome=frozenset({block_hash(box)}))
    doc = kept(learned)
    assert box not in doc.text
    assert [r.reason for r in doc.removed if r.text == box] == ["site_chrome"]
    assert block_hash(box) in doc.block_hashes  # still reported, so it stays known
    # statistics claiming the article itself is chrome: withheld, nothing removed
    everything = frozenset(block_hash(p) for p in PARAGRAPHS)
    guarded = kept(extract_document(html_text, "https://news.example/x", ExtractionOptions(), known_chrome=everything))
    assert guarded.chrome_withheld
    for paragraph in PARAGRAPHS:
        assert paragraph in guarded.text


def test_the_guard_counts_a_flash_written_with_combining_marks_as_its_text_is_counted() -> None:
    # Vietnamese with separate tone marks: 86 characters as written, 67 once composed (NFC, as
    # the text is measured): the guard let the site's line go, and the flash was dropped too short.
    line = unicodedata.normalize("NFD", "Tin đang được cập nhật, mời quý độc giả theo dõi.")
    flash = unicodedata.normalize("NFD", "Thủ tướng Nguyễn Văn A đã từ chức sáng thứ Hai, văn phòng cho biết.")
    html_text = (
        "<html><head><meta charset='utf-8'><title>Thủ tướng từ chức</title></head><body><article>"
        f"<h1>Thủ tướng từ chức</h1><p>{flash}</p><p>{line}</p></article></body></html>"
    )
    doc = kept(extract_document(html_text, "https://tin.example/a/1", ExtractionOptions(), known_chrome=frozenset({block_hash(line)})))
    assert doc.chrome_withheld and unicodedata.normalize("NFC", line) in doc.text


def test_a_paragraph_the_site_repeats_in_the_middle_of_an_article_is_the_articles_and_one_at_its_end_is_chrome() -> None:
    # A series' background paragraph recurs in every story of the series (past min_share of a
    # site's pages while the story runs): known chrome, it was cut from the middle of each one.
    background = (
        "The bridge, built in 1911, was closed to traffic in May after inspectors found cracks in two of "
        "its piers, and the council has since been debating whether to repair it or to replace it."
    )
    disclaimer = (
        "This article is provided for information only and does not constitute advice of any kind; "
        "the publisher accepts no liability for decisions taken on the basis of its content."
    )
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS)
    html_text = page().replace(paragraphs, "".join(
        f"<p>{html.escape(p)}</p>" for p in (PARAGRAPHS[0], PARAGRAPHS[1], background, PARAGRAPHS[2], PARAGRAPHS[3], disclaimer)
    ))
    known = frozenset({block_hash(background), block_hash(disclaimer)})
    doc = kept(extract_document(html_text, "https://news.example/city/bridge", ExtractionOptions(), known_chrome=known))
    assert background in doc.text and disclaimer not in doc.text
    assert [r.reason for r in doc.removed if r.text == disclaimer] == ["site_chrome"]
    assert block_hash(background) in doc.block_hashes  # recorded all the same


def test_a_short_flash_is_kept_with_its_sites_recurring_line_and_the_article_says_the_guard_held() -> None:
    # Cold, the flash was kept; once the site's "developing story" line was known chrome, the
    # flash without it was dropped as too short: no article, no alert.
    line = "This is a developing story. Check back for updates."
    flash = "Prime Minister Jane Doe has resigned, her office said on Monday."
    html_text = (
        "<html><head><title>BREAKING: Prime minister resigns</title></head><body><article>"
        f"<h1>BREAKING: Prime minister resigns</h1><p>{flash}</p><p>{line}</p></article></body></html>"
    )
    for known in (frozenset(), frozenset({block_hash(line)})):
        doc = kept(extract_document(html_text, "https://flash.example/a/100", ExtractionOptions(), known_chrome=known))
        assert flash in doc.text and line in doc.text
        assert doc.chrome_withheld == bool(known)
    raw = json.dumps({"url": "https://flash.example/a/100", "fetched_at": "2026-11-22T09:00:00Z", "html": html_text})
    decoded = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(decoded, Kept)
    article = build_article(
        decoded.value, doc, source=SourcePosition(topic="pages.raw", partition=0, offset=1),
        pipeline_version=1, processed_at=datetime(2026, 11, 22, 9, 1, tzinfo=UTC),
    )
    assert article.extraction.chrome_withheld
    assert assert_valid("articles", article.model_dump_json(by_alias=True))["extraction"]["chrome_withheld"] is True


def test_a_page_rendered_twice_is_kept_once_but_repeated_items_stay() -> None:
    twice = "".join(f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS)
    doc = extract(page(after=f'<div class="amp-copy">{twice}</div>'))
    for paragraph in PARAGRAPHS:
        assert doc.text.count(paragraph) == 1
    schedule = "<ul>" + "<li>Monday: council session at the town hall, open to the public</li>" * 3 + "</ul>"
    doc = extract(page(body=schedule))
    assert doc.text.count("Monday: council session") == 3


@pytest.mark.parametrize(
    ("headline", "badge", "tags", "urgent"),
    [
        ("Breaking: Council approves the budget", "", "", True),
        ("عاجل: المجلس يقر الميزانية", "", "", True),
        ("【速報】首相が辞任を表明", "", "", True),
        ("Council approves the budget", '<span class="label-breaking">Eilmeldung</span>', "", True),
        ("Council approves the budget", "", '<meta property="article:tag" content="Breaking News">', True),
        ("Council approves the budget", "", "", False),
    ],
)
def test_urgent_is_the_article_flagged_not_a_ticker_on_the_page(headline: str, badge: str, tags: str, urgent: bool) -> None:
    html_text = f"""<html lang="en"><head>{tags}<title>{headline}</title></head><body>
<div class="breaking-ticker"><span class="breaking">Breaking</span><a href="/b/1">Another story entirely</a></div>
<article><header>{badge}<h1>{html.escape(headline)}</h1></header>
{''.join(f'<p>{p}</p>' for p in PARAGRAPHS)}</article></body></html>"""
    meta = extract_page_metadata(load_html(html_text), "https://news.example/a")
    assert meta.urgent is urgent, meta.urgent_signal


@pytest.mark.parametrize(
    "header",
    [
        '<button class="topic-alert-button">Get alerts</button>',
        '<div class="alert alert-info">Updated 5 min ago</div>',
    ],
)
def test_an_alert_button_or_notice_by_the_headline_does_not_make_the_article_urgent(header: str) -> None:
    html_text = page().replace("</h1>", f"</h1>{header}")
    assert header in html_text
    assert extract(html_text).urgent is False
    assert extract(html_text.replace(header, header.replace(">Get alerts<", ">Breaking<").replace(">Updated 5 min ago<", ">Breaking<"))).urgent


def test_a_headline_starting_with_a_hyphenated_word_is_not_urgent() -> None:
    html_text = page().replace("City council approves the budget", "Flash-flood warnings issued across Jeddah")
    assert extract(html_text).urgent is False
    assert extract(html_text.replace("Flash-flood warnings", "Flash - Flood warnings")).urgent


def test_language_is_detected_and_cross_checked_with_the_declared_one() -> None:
    doc = extract(page(lang="de"))  # the page says German, the text is English
    assert doc.declared_language == "de"
    assert doc.language == "en" and doc.detected_language == "en"


@pytest.mark.parametrize(
    ("declarations", "language"),
    [
        ('<html lang="iw">', "he"),  # retired codes
        ('<html lang="in-ID">', "id"),
        ('<html lang="ar_EG">', "ar"),  # a locale written with an underscore
        ('<html lang="cmn-Hans">', "zh"),  # a language of a macrolanguage
        ('<html><head><meta http-equiv="Content-Language" content="ger">', "de"),  # ISO 639-2
        ('<html lang="en_US.UTF-8">', "en"),  # a locale with its charset
        ('<html lang="ar-">', "ar"),
        # a language's name is no code: read by its first letters it names another language
        ('<html lang="English">', None),
        *((f'<script type="application/ld+json">{{"@type": "NewsArticle", "inLanguage": "{name}"}}</script>', None)
          for name in ("Malay", "Maltese", "Latvian", "Slovenian", "Sindhi", "Romanian")),
        ('<html lang="Slovenian"><head><meta property="og:locale" content="sl_SI">', "sl"),  # the next one
        ('<html lang="und"><head><meta property="og:locale" content="ar_AR">', "ar"),  # says nothing
        ('<html lang="mul">', None),
    ],
)
def test_a_declared_language_is_named_as_bcp_47_names_it_now(declarations: str, language: str | None) -> None:
    meta = extract_page_metadata(load_html(f"{declarations}<body><p>x</p><p>y</p></body></html>"), "https://news.example/a")
    assert meta.declared_language == language


@pytest.mark.parametrize(("declared", "language"), [("nb", "no"), ("tl", "tl"), ("iw", "he")])
def test_an_unsure_detection_gives_the_declared_language_as_the_detector_names_it(
    monkeypatch: pytest.MonkeyPatch, declared: str, language: str
) -> None:
    # a newsroom filtering on the detector's "no" must get the Norwegian page declared "nb"
    monkeypatch.setattr(extract_module, "_detect_language", lambda text: ("en", 0.4))
    doc = extract(page(lang=declared))
    assert (doc.language, doc.detected_language) == (language, "en")


def test_a_page_declared_in_any_code_of_the_detector_keeps_a_code_of_the_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    # standardised, "bcl" would be "bik" and "gug" "gn": codes the detector never gives
    monkeypatch.setattr(extract_module, "_detect_language", lambda text: ("en", 0.4))
    languages = {code: extract(page(lang=code)).language for code in sorted(DETECTED_LANGUAGES)}
    assert {code: language for code, language in languages.items() if language not in DETECTED_LANGUAGES} == {}


def test_title_choice_and_site_name_stripping() -> None:
    sites = ["The Daily Example", "news.example"]
    assert strip_site_name("Budget approved | The Daily Example", sites) == "Budget approved"
    assert strip_site_name("Budget approved - Seznam Zprávy", ["seznamzpravy.cz", "seznamzpravy"]) == "Budget approved"
    assert strip_site_name("Trump: BBC apologises for the edit", ["bbc.co.uk", "bbc"]) == "Trump: BBC apologises for the edit"
    title = choose_title(
        {"ld": "Budget approved", "og": "Budget approved - City | The Daily Example", "h1": "Budget approved",
         "tw": None, "tt": "Budget approved | The Daily Example"},
        sites,
    )
    assert title == "Budget approved"


def test_authors_are_a_clean_list() -> None:
    assert clean_authors(["By Jane Doe and John Roe"]) == ("Jane Doe", "John Roe")
    assert clean_authors(["Corina Gall (cog.)", "David Vonplon (dvp)"]) == ("Corina Gall", "David Vonplon")
    assert clean_authors(["Jane Doe; jane@news.example; https://news.example/jane"]) == ("Jane Doe",)
    assert clean_authors(["Sophie Foster", "sophie-foster"]) == ("Sophie Foster",)
    assert clean_authors(["بقلم محمد الدليمي"]) == ("محمد الدليمي",)


def test_a_charset_in_the_language_declaration_is_not_a_language():
    html = (
        '<html><head><meta http-equiv="Content-Language" content="utf-8"></head><body><article>'
        + "<p>新华社北京4月24日电 习近平主席向首届中国－拉美和加勒比国家航天合作论坛致贺信，在会场内外引发热烈反响。</p>"
        + "<p>大家表示，贺信阐明了当前建设高水平中拉航天合作伙伴关系的重要意义，为深入开展航天国际交流合作指明了方向。</p>"
        + "<p>中国国家航天局国际合作司副司长说，航天科技是当今世界科技发展的重要领域，也是人类和平利用太空的重要手段。</p>"
        + "</article></body></html>"
    )
    result = extract_document(html, "https://politics.people.example/n1/1.html", ExtractionOptions())
    assert isinstance(result, Kept)
    assert result.value.declared_language is None and result.value.language == "zh"


def test_text_after_a_removed_block_stays_where_it_stood():
    # trafilatura keeps the author box's link line as loose text after the bio paragraph; when
    # the bio goes, that line must not jump to the top of the article.
    paragraphs = "".join(
        f"<p>Paragraph {i} of the report says that the council met on Tuesday and agreed on a plan "
        "for the river, after a long debate among its members.</p>"
        for i in range(8)
    )
    page = (
        "<html><head><title>River plan agreed</title></head><body><div class='c9'><h1>River plan agreed</h1>"
        f"<div class='c2'>{paragraphs}</div><div class='c1a'><img src='a.jpg'><p>Jane Doe is a reporter who "
        "covers the city council and its long debates.</p><a href='/author/1'>All articles by Jane Doe</a></div>"
        "</div></body></html>"
    )
    # (the box is a teaser card too, which takes the loose line with it: not what this tests)
    result = extract_document(page, "https://news.example/a", ExtractionOptions(remove_teaser_cards=False))
    assert isinstance(result, Kept)
    assert [block.reason for block in result.value.removed] == ["outside_main_region"]
    lines = result.value.text.splitlines()
    assert lines[0].startswith("Paragraph 0 ")
    assert lines.index("All articles by Jane Doe") > lines.index(next(line for line in lines if line.startswith("Paragraph 7 ")))


def _blocks(texts: list[str]) -> list[Block]:
    return [Block(etree.Element("p"), text, words(text)) for text in texts]


_NAMES = ("Aarhus", "Bern", "Cork", "Dakar", "Essen", "Fez", "Graz", "Hue", "Ibiza", "Jena", "Kobe", "Lund",
          "Metz", "Nice", "Oslo", "Pisa", "Quito", "Riga", "Sfax", "Turku")


def _places(count: int) -> list[str]:
    """Distinct words for distinct blocks (a normalised block reads every number as 0)."""
    return [f"{_NAMES[i % 20]} {_NAMES[i // 20 % 20]} {_NAMES[i // 400]}" for i in range(count)]


class _CountedKey(str):
    """A normalised block that counts the tests of what it contains."""

    tests = 0

    def __contains__(self, piece: object) -> bool:
        _CountedKey.tests += 1
        return str.__contains__(self, piece)  # type: ignore[arg-type]


def test_looking_for_glued_copies_does_not_test_every_pair_of_long_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # testing each long block against every earlier one took 4 s on a live blog of 5,000
    # paragraphs: the earlier blocks that could be in a block are looked up by where they start
    normalise = extract_module.normalise_block
    monkeypatch.setattr(extract_module, "normalise_block", lambda text, **how: _CountedKey(normalise(text, **how)))
    _CountedKey.tests = 0
    # blocks of about 60 characters, each long enough (40) to be tested: past the first 30 or
    # so, there are more earlier blocks than places in a block where one could start
    blocks = _blocks([f"Update from {place}: talks go on next week." for place in _places(600)])
    extract_module._mark_repeats(blocks, 4, 40)
    assert not any(block.removed for block in blocks)
    assert _CountedKey.tests <= 2 * len(blocks)  # of 600 * 599 / 2 pairs


def test_a_block_glued_from_many_earlier_ones_is_a_repeat() -> None:
    # more earlier blocks than places in the glued one where a block could start: found by
    # looking its places up
    items = [f"Result in {place}: counted" for place in _places(800)]
    glued = " ".join(items[20:40])
    assert len(glued) < 800
    blocks = _blocks([*items, glued])
    extract_module._mark_repeats(blocks, 4, 400)
    assert [block.removed for block in blocks] == [None] * 800 + ["repeated_in_page"]


@pytest.mark.parametrize(("levels", "kept"), [(240, True), (300, False)])
def test_a_page_nested_deeper_than_the_parser_reads_fails_with_its_reason(levels: int, kept: bool) -> None:
    # libxml2 stops at 255 levels and returns what it read: the article after that point was
    # lost, and the page dropped as "too_short: 0 characters"
    result = extract_document(page(before="<div class='wrap'>" * levels), "https://news.example/a", ExtractionOptions())
    if kept:
        assert isinstance(result, Kept) and PARAGRAPHS[-1] in result.value.text
    else:
        assert isinstance(result, Failed) and result.reason == "too_deep"
        assert "255 levels" in result.detail and "Excessive depth" in result.detail


def test_a_short_page_glued_into_one_block_by_the_fallback_is_still_filtered() -> None:
    # trafilatura's baseline fallback returns a page this short as one glued <p>: the filters
    # need the page's own paragraphs to take out the reading tip, the related rail and the editor
    paragraphs = [
        "市气象台今天上午发布暴雨蓝色预警，预计未来六小时内本市大部分地区将出现强降雨天气。",
        "交通部门提醒市民尽量减少外出，驾车出行时注意减速慢行，避开低洼积水路段。",
        "教育部门表示，全市中小学明天将照常上课，各校已做好防汛准备工作。",
        "气象专家分析认为，此次降雨过程持续时间较长，累计雨量较大，需防范城市内涝和山洪等次生灾害。",
    ]
    html_text = f"""<html lang="zh"><head><title>本市发布暴雨蓝色预警 - 江城晚报</title></head><body>
<main><article><h1>本市发布暴雨蓝色预警</h1><div class="article-body">
<p>{paragraphs[0]}</p><p>延伸阅读：<a href="/n/8">本周末全市气温将明显下降</a></p><p>{paragraphs[1]}</p>
<div class="xgxw"><h4>相关新闻</h4><ul><li><a href="/n/5">地铁三号线今起延长运营</a></li>
<li><a href="/n/6">市民公园新增两处停车场</a></li><li><a href="/n/7">老城区改造工程启动</a></li></ul></div>
<p>{paragraphs[2]}</p><p>{paragraphs[3]}</p><p>（责任编辑：李华）</p></div></article></main></body></html>"""
    doc = extract(html_text, "https://jiangcheng.example/news/rain")
    assert doc.text.splitlines() == paragraphs


def test_a_canonical_link_that_does_not_parse_is_ignored_not_a_failed_page():
    html = '<html><head><link rel="canonical" href="http://[::1/x"></head><body>' + "<p>The talks resumed on Thursday in Geneva, officials said.</p>" * 8 + "</body></html>"
    result = extract_document(html, "https://news.example/a", ExtractionOptions())
    assert isinstance(result, Kept) and result.value.canonical_url is None


def test_the_zero_width_joiners_of_persian_words_stay_in_the_text_and_title():
    # trafilatura drops characters Python does not call printable: "می‌تواند" came out "میتواند"
    paragraph = "<p>آمریکا تحریم‌ها را تمدید کرد و می‌تواند سهمیه‌ای تازه اعلام کند، مقام‌ها گفتند که این خبر مهم است.</p>"
    html = f"<html lang='fa'><head><title>خانه‌ها و بازار</title></head><body><article><h1>خانه‌ها و بازار</h1>{paragraph * 8}</article></body></html>"
    result = extract_document(html, "https://fa.example/a", ExtractionOptions())
    assert isinstance(result, Kept)
    assert "می\u200cتواند" in result.value.text and result.value.title == "خانه\u200cها و بازار"
    assert "\u200d" in extract_document(html.replace("می‌تواند", "ශ්‍රී"), "https://fa.example/a", ExtractionOptions()).value.text


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("Das Über\u00adle\u00adbens\u00adgebot der Demo\u00adkratie", "soft hyphens"),
        ("ارتفع المؤشر \u200f%3.5\u200f في الربع الأخير", "right-to-left marks around a figure"),
        ("נתניהו אמר \u200eCNN\u200e כי", "left-to-right marks around a Latin word"),
        ("قال الوزير \u061c2024\u061c إن", "Arabic letter marks"),
        ("120g kway teow (flat rice noodles)\u2063 and soy", "an invisible separator"),
    ],
)
def test_the_format_characters_of_the_text_as_written_stay_in_it(written: str, why: str) -> None:
    # trafilatura deletes every character Python does not call printable, the invisible ones that
    # shape how a line is shown among them
    sentence = f"<p>{written}, berichteten die Korrespondenten am Abend aus der Hauptstadt.</p>"
    html = f"<html><head><title>T</title></head><body><article><h1>T</h1>{sentence * 6}</article></body></html>"
    result = extract_document(html, "https://news.example/a", ExtractionOptions())
    assert isinstance(result, Kept), why
    assert written in result.value.text, why


def test_the_stage_reads_form_controls_as_trafilatura_as_released_does() -> None:
    # the stage has lxml pick element classes in C (workers/stages/extract.py): form controls are
    # plain HtmlElements then, and nothing may come out otherwise for it; of the stage's changes to
    # trafilatura, only the format characters kept in the text show
    form = (
        '<form action="/newsletter"><label for="e">Your e-mail address for the morning briefing</label>'
        '<input id="e" name="e" value="name@example.com"><select name="f"><option>Daily</option>'
        '<option selected>Weekly</option></select><textarea name="note">Tell us what you think of the budget</textarea>'
        "<button>Subscribe</button></form>"
    )
    hyphenated = "Die Steuer\u00adreform gilt ab Januar, sagte die Kämmerin des Kreises am Abend."
    html_text = page(before=form, body=f"{form}<p>{hyphenated}</p>")
    url = "https://news.example/budget"
    stage = kept(extract_document(html_text, url, ExtractionOptions()))
    assert type(load_html(html_text).find(".//input")).__name__ == "HtmlElement"
    try:
        extract_module.use_trafilatura_as_released()
        assert type(load_html(html_text).find(".//input")).__name__ == "InputElement"
        released = kept(extract_document(html_text, url, ExtractionOptions()))
    finally:
        extract_module._use_stage_trafilatura()
    assert hyphenated in stage.text and hyphenated.replace("\u00ad", "") in released.text
    assert stage.text.replace("\u00ad", "") == released.text
    assert (stage.title, stage.removed) == (released.title, released.removed)
    assert kept(extract_document(html_text, url, ExtractionOptions())) == stage


# --- found by a review of the extraction stage (the nineteenth session) -----------------------------

SEASON = [
    "The league season ended on Sunday with a dramatic final round in which three clubs were still fighting for "
    "the title until the last minutes of their matches, watched by record crowds in every stadium across the country.",
    "Observers from several international organisations monitored the games and the league said attendance had "
    "risen for the third consecutive season, driven by cheaper tickets.",
]


def article_page(*blocks: str, title: str = "Season ends", lang: str = "en") -> str:
    body = "".join(block if block.startswith("<") else f"<p>{html.escape(block)}</p>" for block in blocks)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head><body>'
        '<header><nav><ul><li><a href="/">Home</a></li><li><a href="/sport">Sport</a></li></ul></nav></header>'
        f'<main><article><h1>{title}</h1><div class="article-body">{body}</div></article></main></body></html>'
    )


@pytest.mark.parametrize("score", ["Lakers 98:95 Celtics", "«Спартак» — ЦСКА 24:21"])
def test_a_score_is_no_time_and_its_line_no_dateline(score: str) -> None:
    doc = extract(article_page(SEASON[0], score, SEASON[1]))
    assert score in doc.text, doc.removed


@pytest.mark.parametrize(
    ("heading", "content", "shown"),
    [
        ("Final standings", "<table><tr><th>Club</th><th>Pts</th></tr><tr><td>Rovers</td><td>81</td></tr>"
         "<tr><td>United</td><td>79</td></tr><tr><td>City</td><td>78</td></tr></table>", "Rovers"),
        ("Reaction", "<blockquote>We never gave up, not for a single minute of this long season.</blockquote>", "We never gave up"),
    ],
)
def test_a_heading_of_a_table_or_quote_that_stays_stays_too(heading: str, content: str, shown: str) -> None:
    doc = extract(article_page(*SEASON, f"<h2>{heading}</h2>", content))
    assert shown in doc.text and heading in doc.text, doc.removed


@pytest.mark.parametrize("micro", ["\u03bc", "\u00b5"])  # Greek mu, and the micro sign
def test_a_table_of_measurements_in_greek_unit_symbols_is_not_disguised_text(micro: str) -> None:
    rows = "".join(f"<tr><td>{name}</td><td>{value} {micro}g/m³</td></tr>" for name, value in (("PM2.5", 135), ("PM10", 210), ("NO2", 80)))
    doc = extract(article_page(*SEASON, f"<table><tr><th>Pollutant</th><th>Level</th></tr>{rows}</table>"))
    assert f"135 {micro}g/m³" in doc.text, doc.removed


def test_two_lists_that_differ_only_in_their_figures_are_two_lists() -> None:
    indexes = ["FTSE 100", "DAX", "CAC 40", "Nikkei 225", "Hang Seng", "Euro Stoxx 50"]

    def quotes(seed: int) -> str:
        return "<ul>" + "".join(
            f"<li>{name}: {1000 + seed * 7 + i * 13}.{seed + i}, up {seed}.{i} percent on the previous close, according to exchange data</li>"
            for i, name in enumerate(indexes)
        ) + "</ul>"

    doc = extract(article_page(SEASON[0], "<h2>At midday</h2>", quotes(1), SEASON[1], "<h2>At the close</h2>", quotes(2), title="Markets rise"))
    assert "FTSE 100: 1007.1" in doc.text and "FTSE 100: 1014.2" in doc.text, doc.removed
    assert not [block for block in doc.removed if block.reason == "repeated_in_page"]


def test_a_placeholder_date_at_the_end_of_time_is_no_date_and_the_page_stays() -> None:
    # astimezone(UTC) of 9999-12-31T23:00-05:00 overflowed, and the page failed as an extractor error
    head = '<meta property="article:published_time" content="9999-12-31T23:00:00-05:00">'
    doc = extract(page(head=head))
    assert doc.published_at is None and PARAGRAPHS[0] in doc.text


def test_an_attribute_longer_than_the_parser_reads_fails_the_page_rather_than_cutting_it():
    # libxml2 stops at a text or attribute of about ten million characters; the tree it returned held the
    # first paragraph only, kept as if it were the article (reachable with MAX_HTML_BYTES raised)
    image = '<img src="data:image/png;base64,' + "A" * 11_000_000 + '">'
    result = extract_document(page(before=image), "https://news.example/city/budget", ExtractionOptions())
    assert isinstance(result, Failed) and result.reason == "parser_limit", result
    assert "Resource limit exceeded" in result.detail


# --- found by a review of the structural teaser finders (the twenty-first session) ----------------

LIVE_UPDATES = [
    ("Hamas delegation arrives in Cairo", "A Hamas delegation arrived in Cairo on Monday afternoon for a new round of indirect talks, state media reported."),
    ("Israeli cabinet to meet tonight", "The Israeli war cabinet will meet later tonight to discuss the latest Egyptian proposal, an official said."),
    ("Rafah crossing closed again", "The Rafah crossing was closed again on Monday, the border authority said, halting aid deliveries for a second day."),
    ("US envoy expected in Doha", "The US envoy is expected to arrive in Doha on Tuesday to join the talks, according to two diplomats."),
]


@pytest.mark.parametrize(
    "permalink",
    [
        "#post-{n}",
        "https://news.example/live/ceasefire-talks#post-{n}",
        "/live/ceasefire-talks#post-{n}",
        "https://news.example/live/ceasefire-talks?utm_source=x#post-{n}",  # the address it was fetched at
    ],
)
def test_a_live_blog_whose_headlines_link_to_their_own_posts_is_the_article(permalink: str) -> None:
    # a link back to the page is no pointer to another article: the whole live blog went as a
    # teaser list, and the page was dropped as too short
    posts = "".join(
        f'<article class="live-post"><h3><a href="{permalink.format(n=n)}">{headline}</a></h3><p>{update}</p></article>'
        for n, (headline, update) in enumerate(LIVE_UPDATES)
    )
    html_text = (
        '<html lang="en"><head><title>Live: ceasefire talks</title>'
        '<link rel="canonical" href="https://news.example/live/ceasefire-talks"></head>'
        f"<body><main><h1>Live: ceasefire talks</h1>{posts}</main></body></html>"
    )
    doc = extract(html_text, "https://news.example/live/ceasefire-talks?utm_source=x")
    assert all(update in doc.text for _, update in LIVE_UPDATES), doc.removed


def prose_page(*blocks: str, lang: str = "en", title: str = "Cholera spreads in camps") -> str:
    filler = {
        "en": "The committee met for the third time this week to discuss the proposed changes to the regional water "
              "budget, which farmers say will leave them without enough supply for the summer season.",
        "ar": "اجتمعت اللجنة للمرة الثالثة هذا الأسبوع لمناقشة التعديلات المقترحة على ميزانية المياه الإقليمية، "
              "والتي يقول المزارعون إنها ستتركهم دون إمدادات كافية لموسم الصيف.",
    }[lang]
    return article_page(f"(1) {filler}", f"(2) {filler}", *blocks, f"(3) {filler}", f"(4) {filler}", title=title, lang=lang)


FACTS = [
    ("https://www.who.int/news/1", "The World Health Organization", "said confirmed cholera cases rose by 40 percent in the last week of April."),
    ("https://www.unicef.org/press/2", "The UN children's agency", "warned that 300,000 children under five are at risk of acute malnutrition."),
    ("https://reliefweb.int/report/3", "The Sudanese health ministry", "reported that only a third of hospitals in the affected states still work."),
]


@pytest.mark.parametrize(
    "item",
    [
        '<li><a href="{url}">{source}</a> {fact}</li>',
        # as pasted from a word processor: the sentence goes on in the element after the link
        '<li><a href="{url}"><span>{source}</span></a><span> {fact}</span></li>',
        '<li><p><a href="{url}">{source}</a><span> {fact}</span></p></li>',
    ],
)
def test_a_list_of_facts_led_by_their_linked_sources_is_the_article(item: str) -> None:
    items = "".join(item.format(url=url, source=source, fact=fact) for url, source, fact in FACTS)
    doc = extract(prose_page("<p>Aid agencies gave these figures on Thursday:</p>", f"<ul>{items}</ul>"))
    assert all(fact in doc.text for _, _, fact in FACTS), doc.removed


@pytest.mark.parametrize("more", ["التفاصيل...", "التفاصيل…", "Read more…"])
def test_teasers_cut_off_at_a_link_ending_in_an_ellipsis_go_whichever_ellipsis_it_is(more: str) -> None:
    teasers_box = "".join(
        f'<p>{summary} <a href="/2024/05/{n}">{more}</a></p>'
        for n, summary in enumerate([
            "المحكمة تقضي بسجن الوزير السابق خمس سنوات بتهمة الفساد",
            "أسعار النفط ترتفع مع تراجع المخزونات الأمريكية للأسبوع الثاني",
            "المنتخب يتأهل إلى نهائي كأس آسيا بعد الفوز بركلات الترجيح",
        ])
    )
    doc = extract(prose_page(teasers_box, lang="ar", title="عنوان الخبر"))
    assert "المحكمة" not in doc.text and "النفط" not in doc.text and "المنتخب" not in doc.text, doc.text
    assert [r.reason for r in doc.removed if r.reason != "title"] == ["teaser_list"] * 3


def test_paragraphs_trailing_off_with_an_icon_link_inside_are_the_article() -> None:
    # an icon link (no text) ends no paragraph it stands in the middle of
    column = [
        "قال الوزير إن الحكومة لن تتراجع عن خطتها لإصلاح قطاع الكهرباء مهما كانت الضغوط، وإن الأشهر المقبلة ستكون صعبة...",
        "وأضاف أن المفاوضات مع الدائنين الدوليين ما زالت جارية، وأن الحكومة تأمل في التوصل إلى اتفاق قبل نهاية العام...",
        "ويرى خبراء أن الخطة تفتقر إلى التمويل الكافي، وأن الحكومة ستضطر في نهاية المطاف إلى رفع الأسعار مجددا...",
    ]
    body = "".join(
        f'<p>{text[:40]}<a href="/sources/{n}"><img src="/icons/source.svg" alt=""></a>{text[40:]}</p>'
        for n, text in enumerate(column)
    )
    doc = extract(prose_page(body, lang="ar", title="عنوان المقال"))
    assert all(text[40:] in doc.text for text in column), doc.removed


def test_a_short_sentence_naming_two_linked_people_is_no_read_more_line() -> None:
    sentence = '<p><a href="/people/modi">Prime Minister Narendra Modi</a> met <a href="/people/biden">President Joe Biden</a> in Washington.</p>'
    doc = extract(prose_page(sentence, title="Summit talks"))
    assert "Prime Minister Narendra Modi met President Joe Biden in Washington." in doc.text, doc.removed
    # a label stands on one side of the links
    lines = '<p>Read also: <a href="/a">The harbour plan explained in five charts</a> | <a href="/b">What the budget means for schools</a></p>'
    assert [r.reason for r in extract(prose_page(lines, title="Summit talks")).removed if r.reason != "title"] == ["teaser_link"]


def test_a_news_flash_keeps_its_own_text_when_the_page_state_holds_a_longer_related_story() -> None:
    flash = (
        "<p>BEIRUT — A 4.8-magnitude earthquake struck off the coast of northern Lebanon on Tuesday morning, the "
        "national seismology centre said. There were no immediate reports of damage.</p>"
        "<p>Residents of Tripoli said they felt the tremor for several seconds.</p>"
    )
    related = "".join(
        f"<p>({n}) The central bank raised its benchmark interest rate by half a percentage point on Thursday, its "
        "fourth increase this year, as the currency continued to slide against the dollar.</p>" for n in range(6)
    )
    state = {"props": {"pageProps": {
        "article": {"title": "Earthquake strikes off northern Lebanon", "bodyHtml": flash},
        "related": [{"title": "Central bank raises rates again", "bodyHtml": related}],
    }}}
    html_text = (
        '<!DOCTYPE html><html lang="en"><head><title>Earthquake strikes off northern Lebanon</title></head><body>'
        f'<div id="__next"><article><h1>Earthquake strikes off northern Lebanon</h1>{flash}</article></div>'
        f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(state)}</script></body></html>'
    )
    doc = extract(html_text, "https://news.example/2024/05/earthquake-lebanon")
    assert doc.body_source == "page" and "earthquake" in doc.text and "central bank" not in doc.text, doc.text


# --- found by a review of the body filters (the twenty-first session) -----------------------------

BRIEF = [
    "The bank's chairman said on Tuesday it would not take part in the rescue of its former rival.",
    '"We are not going to provide any more money," the chairman told Reuters.',
    "Shares closed 24% lower at 1.70 francs.",
    "Regulators in Bern declined to comment.",
]


@pytest.mark.parametrize("taxonomy", ["category-banking tag-credit-suisse", "category-social-affairs", "tag-cookie-jar"])
def test_a_brief_whose_article_element_names_its_categories_and_tags_is_the_article(taxonomy: str) -> None:
    # WordPress writes the post's categories and tags as classes of its element: "credit" made
    # every short paragraph a caption, "social" and "cookie" the whole brief a box of the site's
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in BRIEF)
    html_text = (
        '<html lang="en"><head><title>Bank refuses rescue</title></head><body>'
        f'<main><article class="post-4411 post type-post status-publish {taxonomy} hentry">'
        f"<h1>Bank refuses rescue</h1>{paragraphs}</article></main></body></html>"
    )
    doc = extract(html_text)
    assert all(p in doc.text for p in BRIEF), doc.removed


def test_a_box_is_measured_once_however_many_blocks_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    # a live blog whose wrapper is named "has-social-share" was measured again for each entry:
    # quadratic, a minute for 4,000 entries
    from workers.stages import blocks as blocks_module

    measured: list[int] = []
    counting = blocks_module.words

    def words(text: str) -> int:
        if len(text) > 20_000:
            measured.append(len(text))
        return counting(text)

    monkeypatch.setattr(blocks_module, "words", words)
    entries = "".join(
        f'<div class="entry"><p>{n:04d} Update from the count: the council results for district {n} are in, turnout was high.</p></div>'
        for n in range(300)
    )
    doc = extract(f'<html><head><title>Live</title></head><body><main><article><h1>Live</h1><div class="liveblog has-social-share">{entries}</div></article></main></body></html>')
    assert "0299 Update from the count" in doc.text
    assert len(measured) <= 2, len(measured)


def test_a_closing_chinese_sentence_with_a_copyright_sign_deep_in_it_stays() -> None:
    # a Chinese sentence is one "word" between spaces: the sign counted as among its first words
    closing = "展览展出了上世纪五十年代的海报，每一张都印有印刷厂的©标记。"
    body = "".join(f"<p>{p}</p>" for p in [
        "市议会周二晚间经过长时间辩论后通过了新的预算案，市长承诺这笔资金将首先用于学校建设和老桥的维修工程，并表示工程将在春季开工。",
        "反对派议员认为，该计划没有兑现两年前向港口区承诺的投资，而且增税对小商店的打击将比对大型连锁店更大，他们呼吁重新审议。",
        "财政局长表示，在地区政府削减转移支付之后，市政府别无选择，预算将在春季获得新的旅游统计数据后重新审查。",
    ]) + f"<p>{closing}</p>"
    doc = extract(f'<html lang="zh"><head><title>预算</title></head><body><main><article><h1>预算</h1><div class="body">{body}</div></article></main></body></html>')
    assert closing in doc.text, doc.removed
    notice = extract(f'<html lang="zh"><head><title>预算</title></head><body><main><article><h1>预算</h1><div class="body">{body.replace(closing, "版权所有 © 2024 江城晚报")}</div></article></main></body></html>')
    assert [r.reason for r in notice.removed if "©" in r.text] == ["copyright_line"]


@pytest.mark.parametrize(
    "post", ["https://vk.com/wall-55155418_912345", "https://vk.com/video-12345_6789", "https://www.facebook.com/permalink.php?story_fbid=1&id=2"]
)
def test_a_closing_sentence_citing_a_social_post_is_no_call_to_follow(post: str) -> None:
    # a post is what an article cites, a profile what a call to follow links (Russian news cites
    # VK's walls all the time)
    budget = [
        "Администрация города в понедельник утвердила новый бюджет после долгих споров, пообещав, что средства в первую очередь пойдут на школы и ремонт старого моста.",
        "Представители оппозиции заявили, что план оставляет портовый район без обещанных два года назад инвестиций, а повышение налогов сильнее ударит по малому бизнесу.",
        "Директор финансового департамента сообщил, что у города не было выбора после того, как региональное правительство сократило трансферты.",
    ]
    cited = (f'<p>Как сообщили в <a href="{post}">официальном сообществе мэрии во ВКонтакте</a>, '
             "публичные слушания по бюджету пройдут 14 апреля в 10:00 в большом зале.</p>")
    doc = extract(article_page(*budget, cited, title="Мэрия утвердила бюджет", lang="ru"))
    assert "публичные слушания по бюджету пройдут 14 апреля" in doc.text, doc.removed


def test_a_paragraph_quoting_a_line_repeated_earlier_once_is_no_repeat() -> None:
    charge = "Charged with conspiracy to commit securities fraud"
    names = ["John Smith, 41", "Peter Brown, 38", "Anna Novak, 52", "Lee Chang, 29", "Omar Haddad, 45", "Sara Levi, 33", "Tom Reyes, 61", "Ivan Petrov, 47"]
    closing = (
        f"Prosecutors said all eight had been {charge.lower()} after an investigation that lasted three years, and that the "
        "scheme had cost pension funds in four states more than 40 million dollars; if convicted, each faces up to twenty "
        "years in prison, and the judge, who refused bail for two of them, set a trial date for the autumn at the federal "
        "court in Manhattan, in a hearing that lasted less than an hour."
    )
    listing = "".join(f"<h3>{name}</h3><p>{charge}</p>" for name in names)
    doc = extract(article_page(*SEASON, listing, closing, title="Eight charged over pension fraud"))
    assert closing in doc.text, doc.removed


def test_a_body_split_into_segments_whose_first_has_a_modifier_class_is_recovered() -> None:
    first = [SEASON[0], SEASON[1], "Analysts expect the league to announce a new broadcasting deal before the next season starts in August."]
    rest = [
        "Engineers in the north have tested the coating on frozen ponds for three winters, measuring how much sunlight the treated ice reflects.",
        "The results were mixed: on some days the treated ice lasted a week longer, on others the wind carried the material away before it worked.",
        "Critics say that spreading anything over the Arctic is a gamble, and that the money would do more good if it were spent on cutting emissions.",
        "The team answers that the two are not alternatives, and that a few more summers of ice could matter a great deal to the people who depend on it.",
    ]

    def segment(paragraphs: list[str], classes: str) -> str:
        text = "".join(f"<p>{p}</p>" for p in paragraphs)
        return (f'<div class="grid"><div class="grid-item"><div class="{classes}">{text}</div></div>'
                '<div class="grid-item"><aside class="ad"><a href="/ad"><img src="/ad.png" alt=""></a></aside></div></div>')

    segments = [segment(first, "article-body article-body--first"), segment(rest[:2], "article-body"), segment(rest[2:], "article-body")]
    html_text = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body><article class="story"><header>'
        '<h1>A heat shield for the ice</h1></header><div class="chunks">'
        + '<div class="newsletter"><p>Sign up for the daily newsletter.</p></div>'.join(segments)
        + "</div></article></body></html>"
    )
    doc = extract(html_text)
    assert all(p in doc.text for p in rest), (doc.recovered_paragraphs, doc.text)


def test_a_read_also_line_with_a_note_after_its_link_goes() -> None:
    line = '<p>Read also: <a href="/b">Bridge collapse kills four in Genoa</a> (video)</p>'
    assert [r.reason for r in extract(prose_page(line, title="Summit talks")).removed if r.reason != "title"] == ["teaser_link"]


def test_embedded_data_shorter_than_an_article_is_never_the_article_even_when_it_holds_the_page_text() -> None:
    from lxml.html import document_fromstring

    from workers.stages import embedded

    flash = "Residents of Tripoli said they felt the tremor for several seconds, officials said."
    card = f'<figure class="card"><img src="/a.jpg"></figure><p>{flash}</p>' + '<div class="meta">' * 20 + "</div>" * 20
    tree = document_fromstring(f'<html><body><p>{flash}</p><script type="application/json">{json.dumps({"card": card})}</script></body></html>')
    assert embedded.article_fragment(tree, flash) is None


def test_dates_are_judged_by_the_pages_fetch_time_so_a_replay_finds_the_same_date() -> None:
    # judged by the clock, a date a week after the fetch was impossible for the live run and
    # plausible for a replay three weeks later: the same page changed its publication date
    head = (
        '<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2024-10-31T08:30:00Z"}</script>'
        '<meta property="article:published_time" content="2024-10-13T08:30:00Z">'
    )
    fetched = datetime(2024, 10, 13, 9, 0, tzinfo=UTC)
    at_fetch = kept(extract_document(page(head=head), "https://news.example/city/budget", ExtractionOptions(),
                                     fetched_at=fetched))
    assert at_fetch.published_at == datetime(2024, 10, 13, 8, 30, tzinfo=UTC)
    # what the clock of a run years after the fetch made of it
    by_the_clock = kept(extract_document(page(head=head), "https://news.example/city/budget", ExtractionOptions()))
    assert by_the_clock.published_at == datetime(2024, 10, 31, 8, 30, tzinfo=UTC)


def test_a_short_arabic_article_is_arabic_whatever_its_template_declares() -> None:
    # the detector spreads Arabic over ar, ary and arz (here ar 0.71, ary 0.29): read as ar alone,
    # it was under the confidence needed, and the template's "en" was published as the language
    flash = ("يستهدف نادي برشلونة الإسباني التعاقد مع لاعبين جديدين خلال فترة الانتقالات الصيفية المقبلة، "
             "بحسب ما أفادت صحيفة رياضية اليوم.")
    html_text = (
        '<html lang="en"><head><meta charset="utf-8"><title>خبر</title></head>'
        f"<body><article><h1>برشلونة يستهدف صفقتين</h1><p>{flash}</p></article></body></html>"
    )
    doc = extract(html_text, "https://beirut.example/2020/11/1/")
    assert (doc.language, doc.detected_language, doc.declared_language) == ("ar", "ar", "en")
    assert doc.language_confidence is not None and doc.language_confidence > 0.99


def test_a_quote_or_a_short_sentence_between_the_articles_paragraphs_is_never_site_chrome() -> None:
    # Every report of a story may quote the same statement: on the fourth report of a small site
    # the statistics called the quote and the short quoted line chrome, and both went, from the
    # middle of the article. The same line after the article's last paragraph stays removable.
    statement = "“We will not raise fares for students, whatever happens to the budget,” the mayor told reporters."
    short = "“We will not back down,” the mayor said."
    middle = f"<blockquote><p>{html.escape(statement)}</p></blockquote>"
    html_text = page(before="".join(f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS[:2]) + middle + f"<p>{short}</p>")
    known = frozenset({block_hash(statement), block_hash(short)})
    doc = kept(extract_document(html_text, "https://news.example/x", ExtractionOptions(), known_chrome=known))
    assert statement in doc.text and short in doc.text, doc.removed
    at_the_end = kept(extract_document(page(body=f"<p>{short}</p>"), "https://news.example/x", ExtractionOptions(),
                                       known_chrome=known))
    assert [r.reason for r in at_the_end.removed if r.text == short] == ["site_chrome"]
