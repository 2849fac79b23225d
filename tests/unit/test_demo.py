"""What ``wirefeed demo`` says a page lost: wirefeed's own removals, labelled as such, and the
page's text lines that are not in the body at all (most of the chrome, which trafilatura drops
before wirefeed's filters see anything)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from workers import SAMPLE_PAGES
from workers.demo import _print_left_out, lines_not_in, page_text_lines, spread
from workers.feed import page_from_html_file
from workers.models import Article, ExtractionInfo, RemovedBlock
from workers.stages.decode import decode_html_bytes

TITLE = "كيري: الجهود ستتواصل بشأن حلب"
PARAGRAPHS = [
    "أعلن مسؤول أميركي أن وزيري الخارجية لم يحققا أيّ تقدّم في محادثاتهما الخميس.",
    "وبحسب المسؤول، فإن كيري قال للصحافة الروسية إن الجهود ستتواصل رغم ذلك.",
]
PAGE = f"""<html><head><title>{TITLE} | أهم أخبار العالم</title><style>p {{color: red}}</style></head><body>
<nav><ul><li><a href="/">الرئيسية</a></li><li><a href="/world">العالم</a></li></ul></nav>
<div class="breaking-ticker"><span>عاجل</span><marquee><a href="/breaking/1">...</a></marquee></div>
<article><h1>{TITLE}</h1><time>12/08 19:32</time>
<p>{PARAGRAPHS[0]}</p><p>وبحسب <b>المسؤول</b>، فإن كيري قال للصحافة الروسية إن الجهود ستتواصل رغم ذلك.</p>
<div class="whatsapp-cta"><p>يمكنكم التواصل معنا عبر تطبيق “واتساب”</p></div>
<ul class="related"><li><a href="/1">متابعة: أعلنت السلطات العراقية...المزيد</a></li><li><a href="/2">بقلم: تعددت الوقائع...المزيد</a></li></ul>
</article>
<section id="comments"><h3>Comments</h3></section>
<script>var ticker = "عاجل جداً";</script>
<footer><p>&copy; 2016</p></footer>
</body></html>"""
CHROME = [
    "الرئيسية العالم",
    "عاجل...",
    TITLE,
    "يمكنكم التواصل معنا عبر تطبيق “واتساب”",
    "متابعة: أعلنت السلطات العراقية...المزيد بقلم: تعددت الوقائع...المزيد",
    "Comments",
]


def test_the_page_is_read_as_a_browser_shows_it_a_line_per_block_a_menu_or_list_on_one():
    lines = page_text_lines(PAGE)
    # no style or script, no line without a letter (the time, the copyright)
    assert lines == CHROME[:3] + PARAGRAPHS + CHROME[3:]


def test_the_lines_not_in_the_body_are_the_chrome_whatever_the_white_space():
    body = "\n".join(PARAGRAPHS).replace("المسؤول،", "المسؤول ،")
    assert lines_not_in(page_text_lines(PAGE), body) == CHROME


@pytest.mark.parametrize(("count", "expected"), [(3, [0, 3, 6]), (10, list(range(10))), (20, list(range(10)))])
def test_examples_are_spread_over_the_page(count: int, expected: list[int]):
    assert spread([str(i) for i in range(10)], count) == [str(i) for i in expected]


def test_the_report_tells_wirefeeds_removals_from_what_never_reached_the_body(capsys: pytest.CaptureFixture[str]):
    # built without validation: only the fields the report reads
    article = Article.model_construct(
        title=TITLE,
        text="\n".join(PARAGRAPHS),
        extraction=ExtractionInfo.model_construct(
            removed=[RemovedBlock(text="يمكنكم التواصل معنا عبر تطبيق “واتساب”", reason="call_to_action")]
        ),
    )
    _print_left_out(article, PAGE)
    assert capsys.readouterr().out.splitlines() == [
        "  removed by wirefeed's filters, after trafilatura (extraction.removed): 1",
        "    [call_to_action] يمكنكم التواصل معنا عبر تطبيق “واتساب”",
        "  not in the body: 6 of the page's 8 lines of text, among them:",
        # neither the title nor the removal again
        "    الرئيسية العالم",
        "    عاجل...",
        "    متابعة: أعلنت السلطات العراقية...المزيد بقلم: تعددت الوقائع...المزيد",
        "    Comments",
    ]


SAMPLE_PAGE_FILES = sorted(SAMPLE_PAGES.glob("*.html"))
assert SAMPLE_PAGE_FILES, f"no sample pages in {SAMPLE_PAGES}"  # or the test below would check none


@pytest.mark.parametrize("page", SAMPLE_PAGE_FILES, ids=lambda path: path.name)
def test_every_sample_page_decodes_without_damage_and_names_its_address(page: Path):
    """The demo prints each page's text and domain: replacement characters would show as such, and
    a page without a canonical link is named after the demo's placeholder base URL."""
    decoded = decode_html_bytes(page.read_bytes(), None)
    assert isinstance(decoded, tuple), decoded
    assert "\ufffd" not in decoded[0]
    fed = page_from_html_file(page, base_url="https://samples.wirefeed.invalid/", fetched_at=datetime.now(UTC))
    assert "samples.wirefeed.invalid" not in str(fed.url)
