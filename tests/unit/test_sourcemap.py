"""workers/stages/sourcemap.py: blocks of the extracted body found again in the page."""

from __future__ import annotations

import pytest
from lxml import html

from workers.stages import sourcemap
from workers.stages.sourcemap import SourceMap


def test_a_block_spanning_two_sections_belongs_to_their_common_ancestor() -> None:
    # the span's element is what the filters read (link density, container, class names): for a
    # block whose text runs across two sections it is the element holding both, not a deeper one
    tree = html.fromstring(
        "<html><body><div id='top'><section><div><p>First half of the block</p></div></section>"
        "<section><div><div><p>and its second half</p></div></div></section></div></body></html>"
    )
    span = SourceMap(tree).locate("First half of the block and its second half")
    assert span is not None and span.element is not None
    assert span.element.get("id") == "top"


class _CountedText(str):
    """The page text of a SourceMap, counting the characters its searches scan."""

    scanned = 0

    def find(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
        start = 0 if start is None else start
        end = len(self) if end is None else end
        index = str.find(self, sub, start, end)
        _CountedText.scanned += max(0, (end if index < 0 else index + len(sub)) - start)
        return index


def _paragraphs(count: int) -> list[str]:
    return [f"Paragraph {i} of the live blog, where the minister said talks would go on next week. " * 3
            for i in range(count)]


def test_the_searches_of_a_long_page_stay_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # a search of the whole page for every block is quadratic (a live blog of 10,000
    # paragraphs took 100 s): past the budget, each block is looked for after the previous one
    monkeypatch.setattr(sourcemap, "_SEARCH_BUDGET_CHARS", 200_000)
    monkeypatch.setattr(sourcemap, "_WINDOW_CHARS", 1_000)
    paragraphs = _paragraphs(600)
    tree = html.fromstring("<html><body><article>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</article></body></html>")
    source = SourceMap(tree)
    source._squeezed = _CountedText(source._squeezed)
    _CountedText.scanned = 0
    spans = [source.locate(p) for p in paragraphs]
    assert all(span is not None and span.element is not None for span in spans)
    assert [span.element.text for span in spans] == paragraphs  # type: ignore[union-attr]
    # the budget, the search that spends it, then per block its window and its own length or
    # so: about a million characters, where 600 passes over the page's 124,000 are 74 million
    block_chars = max(len("".join(p.split())) for p in paragraphs)
    assert _CountedText.scanned <= 200_000 + len(source._squeezed) + 600 * (1_000 + 3 * block_chars)


def test_past_the_budget_a_block_before_the_previous_one_is_not_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sourcemap, "_SEARCH_BUDGET_CHARS", 1)
    paragraphs = _paragraphs(3)
    tree = html.fromstring("<html><body>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</body></html>")
    source = SourceMap(tree)
    assert source.locate(paragraphs[0]) is not None  # the whole page: the budget is not spent yet
    assert source.locate(paragraphs[2]) is not None  # within the window after the previous block
    assert source.locate(paragraphs[1]) is None
    source.rewind()
    assert source.locate(paragraphs[1]) is not None
