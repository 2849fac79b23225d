"""Structural body filters of workers/stages/blocks.py, on small pages built for each case."""

from __future__ import annotations

import pytest

from tests.unit.test_extract import PARAGRAPHS, extract, page


@pytest.mark.parametrize(
    "box_class",
    # (trafilatura already drops boxes it knows by name, "newsletter" or "share": not these)
    ["c-inlineSignup", "product-disclosure", "ad__container"],
)
def test_a_small_box_named_by_its_class_goes(box_class: str) -> None:
    box = f'<div class="{box_class}"><p>Get the best of the city in your inbox every morning, free.</p></div>'
    doc = extract(page(body=box))
    assert "in your inbox" not in doc.text
    assert [r.reason for r in doc.removed if "in your inbox" in r.text] == ["boilerplate_box"]
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_a_class_name_is_read_by_its_words_not_as_a_substring() -> None:
    # "head", "shadow", "loaded": none of them is the word "ad"
    box = '<div class="shadow-loaded head"><p>The bridge will close for two weeks in March for repairs.</p></div>'
    doc = extract(page(body=box))
    assert "The bridge will close" in doc.text


def test_a_large_element_named_like_a_box_is_the_article_and_stays() -> None:
    # a site marking its whole article body "related"/"promo" does not lose the article
    wrapped = page().replace('<div class="body">', '<div class="body promo-article">')
    doc = extract(wrapped)
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_a_short_line_beside_one_long_paragraph_is_the_article() -> None:
    # the long paragraph weighs most of the body alone; the line after it, in the same
    # container, is not "after the article"
    long_paragraph = " ".join(PARAGRAPHS)
    closing = "Gut investierte zwanzig Cent, auch wenn das Bild kein Meisterwerk war."
    html_text = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>
<main><article><h1>A small joy</h1><div class="entry"><p>{long_paragraph}</p>
<div class="wp-caption"><img src="/a.jpg" alt=""><p class="wp-caption-text">The basket</p></div>
<p>{closing}</p></div><div class="entryfooter"><p>Tags: <a href="/tag/a">a</a></p></div></article></main>
</body></html>"""
    doc = extract(html_text)
    assert closing in doc.text


def test_a_long_box_below_the_article_container_goes() -> None:
    about = (
        "Example Corp is a global provider of communication solutions for hospitals and care homes, "
        "with offices in twenty countries and more than three thousand employees. " * 3
    ).strip()
    more = f"<p>{PARAGRAPHS[1]} {PARAGRAPHS[2]}</p>"
    doc = extract(page(body=more, after=f'<div class="text parbase"><p>{about}</p></div>'))
    assert "Example Corp" not in doc.text
    assert [r.reason for r in doc.removed if r.text.startswith("Example Corp")] == ["after_article"]
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_a_sentence_citing_several_links_is_the_article() -> None:
    # most of the sentence is link text, as in a report that cites its sources as it goes
    cited = (
        '<p>The government <a href="/a">imposed tariffs on steel and aluminium</a> in 2018, '
        '<a href="/b">prompting retaliatory measures on farm goods</a>, until both sides '
        '<a href="/c">agreed to lift them</a> a year later.</p>'
    )
    doc = extract(page(body=cited))
    assert "prompting retaliatory measures" in doc.text
    assert not [r for r in doc.removed if "retaliatory" in r.text]


def test_a_paragraph_of_links_without_a_sentence_goes() -> None:
    menu = (
        '<p><a href="/a">Steel and aluminium tariffs explained</a> · <a href="/b">Farm goods and '
        'retaliation</a> · <a href="/c">Lifting the tariffs a year later</a></p>'
    )
    doc = extract(page(body=menu))
    assert "Farm goods and retaliation" not in doc.text
    assert [r.reason for r in doc.removed if "Farm goods" in r.text] == ["link_dense"]


def test_the_article_continued_after_an_advert_in_the_same_markup_stays() -> None:
    # the site splits its body into segments of identical markup around an advert; the last
    # paragraph is in the second segment, so outside the container that holds most of the text
    first = "".join(f'<div class="seg"><p class="txt">{p}</p></div>' for p in PARAGRAPHS[:3])
    closing = ("The budget takes effect in January, and the council will publish a first report on "
               "the school programme before the summer break.")
    html_text = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>
<main><article><h1>City council approves the budget</h1>
<div class="body-part"><div class="col">{first}</div></div>
<div class="advert-slot"><a href="/ads/1"><img src="/ad.png" alt=""></a></div>
<div class="body-part"><div class="col"><div class="seg"><p class="txt">{closing}</p></div>
<div class="seg"><p class="txt">Photo: Jane Roe</p></div></div></div>
</article></main></body></html>"""
    doc = extract(html_text)
    assert closing in doc.text
    assert "Photo: Jane Roe" not in doc.text
