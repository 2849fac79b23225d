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
