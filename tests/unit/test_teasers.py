"""Teaser lists of workers/stages/teasers.py, on small pages of sites the filters were not fitted on."""

from __future__ import annotations

import pytest
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from tests.unit.test_extract import extract, page, prose_page
from workers.stages import teasers


def test_a_list_of_facts_led_by_linked_names_is_the_article() -> None:
    facts = "".join(
        f'<li><a href="/p/{i}">{name}</a> said the deal was the best possible outcome for the country.</li>'
        for i, name in enumerate(["Prime Minister Anna Berg", "Opposition leader Karl Holm", "Finance Minister Eva Lind"])
    )
    doc = extract(page(body=f"<ul>{facts}</ul>"))
    assert "Opposition leader Karl Holm said the deal" in doc.text


def test_related_stories_cut_off_as_bare_paragraphs_go() -> None:
    teasers = "".join(
        f'<p>متابعة {who}: {what}... <a href="/story/{i}">المزيد</a></p>'
        for i, (who, what) in enumerate([
            ("سامي علي", "أعلنت السلطات الخميس عن إطلاق حملة واسعة لإعادة إعمار المدن المحررة"),
            ("منى حسن", "دعا زعماء المنطقة إلى عقد قمة طارئة لبحث تداعيات الأزمة الاقتصادية"),
            ("علي قيس", "اقترحت المفوضية الأوروبية الأربعاء خطة جديدة لتوزيع اللاجئين على الدول"),
        ])
    )
    doc = extract(page(body=f"<h3>أخبار ذات صلة</h3>{teasers}"))
    assert "قمة طارئة" not in doc.text
    assert {r.reason for r in doc.removed if "قمة طارئة" in r.text} == {"teaser_list"}


# --- teaser cards: one box for one other article, inside the article --------------------------

CARDS = {
    # (language, label, section, headline, summary)
    "en": ("Read more", "Politics", "Parliament backs permanent border checks",
           "The vote came after a week of heated debate over the new asylum rules."),
    "ar": ("اقرأ أيضا", "سياسة", "البرلمان يقر إجراءات جديدة على الحدود",
           "جاء التصويت بعد أسبوع من النقاش الحاد حول قواعد اللجوء الجديدة."),
    "ja": ("関連記事", "政治", "国会が国境管理の恒久化を可決した",
           "新しい難民規則をめぐって与野党が一週間にわたり激しい議論を続けた末に、議長の判断で採決が行われ、賛成多数で可決された。"),
}


def card(label: str, section: str, headline: str, summary: str, *, target: str = "/politics/border-checks") -> str:
    """A "read more" box as a news template renders it: a label, an image link, a section link,
    the linked headline as a line of its own, and a summary."""
    return (
        f'<div class="x7"><div class="x8"><p>{label}</p></div><div class="x9">'
        f'<a href="{target}"><img src="/img/1.jpg" alt=""></a><div>'
        f'<div><a href="/politics">{section}</a></div>'
        f'<a class="x3" href="{target}">{headline}</a>'
        f"<div><p>{summary}</p></div></div></div></div>"
    )


def teaser_cards(tree: HtmlElement) -> list[HtmlElement]:
    here = teasers.Page("https://news.example/today")
    return teasers.find_teaser_cards(tree, teasers.TeaserSettings(), teasers.link_holders(tree, here), here, [])


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_a_read_more_card_between_the_paragraphs_goes(lang: str) -> None:
    label, section, headline, summary = CARDS[lang]
    doc = extract(prose_page(card(label, section, headline, summary), lang=lang))
    assert label not in doc.text and summary not in doc.text
    assert {r.reason for r in doc.removed if summary in r.text or label in r.text} == {"teaser_list"}
    assert doc.text.count("(") == 4 and all(f"({n})" in doc.text for n in range(1, 5))  # the article, whole


@pytest.mark.parametrize("lang", ["en", "ar", "ja"])
def test_a_card_is_found_as_its_outermost_box_in_any_script(lang: str) -> None:
    # (trafilatura itself drops the Japanese card from a Japanese page: its link share is high)
    tree = load_html(f"<html><body><main><p>{'Text. ' * 80}</p>{card(*CARDS[lang])}</main></body></html>")
    assert [element.get("class") for element in teaser_cards(tree)] == ["x7"]


@pytest.mark.parametrize(
    "box",
    [
        # a paragraph that ends with a link: text stands on the link's line
        '<div><p>The findings were published on Monday in <a href="https://journal.example/x">the journal '
        "Nature Astronomy</a>.</p></div>",
        '<div><p>Data: <a href="https://stats.example/x">the national statistics office</a></p><p>Updated daily.</p></div>',
        # a bare linked headline: left to the extractor's link-density tests
        '<div><a href="/politics/border-checks">Parliament backs permanent border checks</a></div>',
        # a linked headline of two words is no headline
        '<div><a href="/politics">Politics today</a><p>The vote came after a week of debate.</p></div>',
    ],
)
def test_a_link_inside_the_text_of_its_box_makes_no_card(box: str) -> None:
    tree = load_html(f"<html><body><main><p>{'Text. ' * 80}</p>{box}</main></body></html>")
    assert teaser_cards(tree) == []


@pytest.mark.parametrize(("words", "goes"), [(40, True), (41, False)])
def test_a_card_holds_at_most_40_words_besides_its_links(words: int, goes: bool) -> None:
    summary = " ".join(f"w{n}" for n in range(words))
    tree = load_html(f"<html><body><main><p>{'Text. ' * 80}</p>{card('', '', CARDS['en'][2], summary)}</main></body></html>")
    assert len(teaser_cards(tree)) == (1 if goes else 0)


@pytest.mark.parametrize(("places", "goes"), [(2, True), (3, False)])
def test_a_card_points_to_at_most_two_places(places: int, goes: bool) -> None:
    # the headline's target, the section's, and a third: a box of the article's sources, not a card
    extra = '<div><a href="/elsewhere">Elsewhere</a></div>' if places == 3 else ""
    box = card(*CARDS["en"]).replace('<div><p>The vote', f"{extra}<div><p>The vote")
    tree = load_html(f"<html><body><main><p>{'Text. ' * 80}</p>{box}</main></body></html>")
    assert len(teaser_cards(tree)) == (1 if goes else 0)


def test_a_box_around_the_whole_page_is_no_card() -> None:
    # a page that is nothing but a card: its body, not a card in it
    tree = load_html(f"<html><body><div>{card(*CARDS['en'])}</div></body></html>")
    assert teaser_cards(tree) == []


def test_a_card_inside_what_another_finder_found_is_theirs() -> None:
    tree = load_html(f"<html><body><main><p>{'Text. ' * 80}</p>{card(*CARDS['en'])}</main></body></html>")
    here = teasers.Page("https://news.example/today")
    box = next(element for element in tree.iter("div") if element.get("class") == "x9")
    found = teasers.find_teaser_cards(tree, teasers.TeaserSettings(), teasers.link_holders(tree, here), here, [box])
    assert found == []
