"""workers/stages/sourcemap.py: blocks of the extracted body found again in the page."""

from __future__ import annotations

from lxml import html

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
