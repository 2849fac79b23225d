"""The two Arabic seed pages, wrapped in an aggregator template, through the extraction stage.

The seeds (shared/seeds, see its README) are plain text with the site chrome still in them. The
helper below puts each line where such a site puts it: skip link, breaking-news ticker, headline,
time, the article paragraphs, the photo caption, the WhatsApp call to action, the author box,
the related-article teasers, the section rail, the comments widget. Two renderings of the same
template: one with the class names a WordPress-style theme uses, one with opaque generated
class names (CSS modules), where nothing but structure and the site's own repetition can tell
chrome from article.

What must hold: no chrome line of the README left in the body, the whole article body kept; and
the site-learned chrome removes what recurs on *different* pages of the domain, never what
recurs because one page was seen several times, and does nothing on a domain it has not seen.
"""

from __future__ import annotations

import asyncio
import html
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from workers.chrome_index import ChromeIndexSettings, MemoryChromeIndex
from workers.stages.article import article_id_for, canonical_url
from workers.stages.chrome import normalise_block
from workers.stages.extract import ExtractedDocument, ExtractionOptions, extract_document
from workers.stages.outcome import Kept

from tests import shared_data

SEEDS = shared_data.SEEDS


# --- the seed files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One seed page, split by the README's line table (1-based line numbers)."""

    name: str
    lines: list[str]
    body: tuple[int, int]  # first and last line of the article

    def line(self, number: int) -> str:
        return self.lines[number - 1].strip()

    @property
    def skip_link(self) -> str:
        return self.line(1)

    @property
    def headline(self) -> str:
        return self.line(3)

    @property
    def time(self) -> str:
        return self.line(5)

    @property
    def paragraphs(self) -> list[str]:
        return [self.line(n) for n in range(self.body[0], self.body[1] + 1) if self.line(n)]

    @property
    def after_body(self) -> list[str]:
        return [self.line(n) for n in range(self.body[1] + 1, len(self.lines) + 1) if self.line(n)]

    def chrome_lines(self) -> list[str]:
        """Every line the README names as chrome: the skip link and everything after the body."""
        return [self.skip_link, *self.after_body]


def load_seed(path: Path) -> Seed:
    lines = path.read_text(encoding="utf-8").splitlines()
    # the body runs from line 7 to the last line before the first chrome line after it; in 000
    # that is the caption (line 37, "*الصورة"), in 004 the section rail (line 29)
    body_end = 7
    for number in range(7, len(lines) + 1):
        text = lines[number - 1].strip()
        if text and _is_frame_line(text, lines):
            break
        if text:
            body_end = number
    return Seed(path.stem, lines, (7, body_end))


def _is_frame_line(text: str, lines: list[str]) -> bool:
    # The frame after the article: photo caption ("*..."), the lines shared by both seeds
    # (section rail, "Comments", ticker label) and what follows them. A line that is a short
    # heading with no sentence punctuation ends the article.
    return text.startswith("*") or (len(text.split()) <= 4 and not any(c in text for c in ".،,:"))


def seeds() -> list[Seed]:
    return [load_seed(path) for path in sorted(SEEDS.glob("*.txt"))]


SEED_PAGES = seeds()  # what the tests below are parametrised over; checked to be the README's two


# --- the template -----------------------------------------------------------------------------

_SEMANTIC = {
    "skip": "skip-link screen-reader-text", "header": "site-header", "nav": "main-navigation",
    "ticker": "breaking-ticker", "ticker_label": "breaking-label", "main": "site-main",
    "article": "post type-post", "entry_header": "entry-header", "title": "entry-title", "meta": "entry-meta",
    "content": "entry-content", "figure": "wp-block-image", "cta": "whatsapp-box", "author": "author-box",
    "related": "related-posts", "rail": "widget section-rail", "comments": "comments-area", "footer": "site-footer",
}


def _opaque(seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {key: f"c{rng.getrandbits(32):08x} c{rng.getrandbits(16):04x}" for key in _SEMANTIC}


def _teaser(text: str, index: int) -> str:
    """A related-article teaser: "Byline: summary...<a>more</a>" (the link is the last word)."""
    head, _, more = text.rpartition("...")
    if not head:
        head, more = text, ""
    return (
        f'<li><div><p>{html.escape(head)}...<a href="/story/{1000 + index}">{html.escape(more or "»")}</a></p></div></li>'
    )


def wrap_seed(seed: Seed, *, opaque: bool = False, site: str = "https://aggregator.example") -> str:
    """The seed page as an aggregator would serve it. Line by line (README table):

    1 skip link (an in-page anchor before the header); 3 headline (h1); 5 time; body lines in the
    article container; after the body, in their usual places: "*الصورة: ..." as the figure's
    caption, the WhatsApp call to action (with its wa.me link) at the end of the article text,
    the author box (avatar, bio, link to the author page) after it, the "متابعة/بقلم X: ...المزيد"
    teasers as a related list inside the article element, the section-rail heading above a list
    of links, "Comments" above the comments widget, and "عاجل" as the label of the breaking-news
    ticker at the top of the page.
    """
    c = _opaque(len(seed.name)) if opaque else _SEMANTIC
    after = seed.after_body
    caption = next((line for line in after if line.startswith("*")), None)
    cta = next((line for line in after if "واتساب" in line or "whatsapp" in line.lower()), None)
    bio = next((line for line in after if line not in (caption, cta) and len(line.split()) > 12
                and "..." not in line), None)
    teasers = [line for line in after if "..." in line]
    short = [line for line in after if line not in (caption, cta, bio) and line not in teasers]
    # the README order: rail heading, "Comments", ticker label
    rail, comments, ticker = (short + [None, None, None])[:3]

    paragraphs = "\n".join(f"      <p>{html.escape(p)}</p>" for p in seed.paragraphs)
    figure = (
        f'      <figure class="{c["figure"]}"><img src="/img/{seed.name}.jpg" alt="">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>\n"
        if caption else ""
    )
    cta_html = (
        f'      <div class="{c["cta"]}"><p>{html.escape(cta.rsplit(" ", 1)[0])} '
        f'<a href="https://wa.me/{cta.rsplit(" ", 1)[1]}">{html.escape(cta.rsplit(" ", 1)[1])}</a></p></div>\n'
        if cta else ""
    )
    bio_html = (
        f'    <div class="{c["author"]}"><img src="/img/author.jpg" alt="">'
        f'<p>{html.escape(bio)}</p><a href="/author/1">كل مقالات الكاتب</a></div>\n'
        if bio else ""
    )
    related = (
        f'    <section class="{c["related"]}"><ul>\n'
        + "\n".join(f"      {_teaser(t, i)}" for i, t in enumerate(teasers))
        + "\n    </ul></section>\n"
        if teasers else ""
    )
    rail_html = (
        f'  <aside class="{c["rail"]}"><h3>{html.escape(rail)}</h3><ul>'
        + "".join(f'<li><a href="/section/{i}">عنوان خبر آخر في القسم رقم {i}</a></li>' for i in range(1, 6))
        + "</ul></aside>\n"
        if rail else ""
    )
    comments_html = (
        f'  <section id="comments" class="{c["comments"]}"><h3>{html.escape(comments)}</h3>'
        f'<div class="fb-comments" data-href="{site}/{seed.name}"></div></section>\n'
        if comments else ""
    )
    ticker_html = (
        f'<div class="{c["ticker"]}"><span class="{c["ticker_label"]}">{html.escape(ticker)}</span><ul>'
        + "".join(f'<li><a href="/breaking/{i}">خبر عاجل رقم {i} عن الأحداث الجارية</a></li>' for i in range(1, 4))
        + "</ul></div>\n"
        if ticker else ""
    )
    published = "2016-12-08T" + seed.time.split()[-1] + ":00+02:00"
    return f"""<!DOCTYPE html>
<html lang="ar" dir="rtl">
<head>
<meta charset="utf-8">
<title>{html.escape(seed.headline)} | موقع الأخبار</title>
<link rel="canonical" href="{site}/news/{seed.name}">
<meta property="og:title" content="{html.escape(seed.headline)}">
<meta property="og:site_name" content="موقع الأخبار">
<meta property="article:published_time" content="{published}">
</head>
<body>
<a class="{c["skip"]}" href="#main">{html.escape(seed.skip_link)}</a>
<header class="{c["header"]}"><nav class="{c["nav"]}"><ul>
<li><a href="/">الرئيسية</a></li><li><a href="/world">العالم</a></li><li><a href="/egypt">مصر</a></li>
<li><a href="/sports">رياضة</a></li><li><a href="/video">فيديو</a></li></ul></nav></header>
{ticker_html}<main id="main" class="{c["main"]}">
  <article class="{c["article"]}">
    <header class="{c["entry_header"]}"><h1 class="{c["title"]}">{html.escape(seed.headline)}</h1>
    <div class="{c["meta"]}"><time datetime="{published}">{html.escape(seed.time)}</time></div></header>
    <div class="{c["content"]}">
{paragraphs}
{figure}{cta_html}    </div>
{bio_html}{related}  </article>
{rail_html}{comments_html}</main>
<footer class="{c["footer"]}"><p>&copy; 2016 موقع الأخبار</p></footer>
</body>
</html>
"""


# --- checks -----------------------------------------------------------------------------------


def lines_left(text: str, lines: list[str]) -> list[str]:
    """The given lines that are (normalised) still in the text."""
    body = normalise_block(text)
    return [line for line in lines if normalise_block(line) and normalise_block(line) in body]


def extract(page: str, url: str, known: frozenset[str] = frozenset(), **options: bool) -> ExtractedDocument:
    result = extract_document(page, url, ExtractionOptions(**options), known_chrome=known)
    assert isinstance(result, Kept), result
    return result.value


def filler_page(index: int, *, site: str, opaque: bool, template: Seed) -> tuple[str, str]:
    """Another article of the same site: the seed's frame around different text."""
    rng = random.Random(index)
    words = ("الحكومة", "البرلمان", "الاقتصاد", "المدينة", "الانتخابات", "المفاوضات", "الوزير", "التقرير",
             "المواطنين", "المشروع", "الميزانية", "الأسواق", "الطاقة", "المياه", "التعليم", "الصحة")
    paragraphs = [
        " ".join(rng.choice(words) for _ in range(rng.randint(18, 30))) + "." for _ in range(6)
    ]
    lines = list(template.lines)
    start, end = template.body
    body_lines = []
    for paragraph in paragraphs:
        body_lines += [paragraph, ""]
    headline = f"عنوان المقال {' '.join(rng.choice(words) for _ in range(5))}"
    lines = lines[:2] + [headline] + lines[3: start - 1] + body_lines + lines[end:]
    other = Seed(f"{template.name}-other-{index}", lines, (start, start + len(body_lines) - 2))
    url = f"{site}/news/{other.name}"
    return wrap_seed(other, opaque=opaque, site=site), url


def seed_report(seeds_dir: Path, options: ExtractionOptions, chrome: ChromeIndexSettings) -> dict[str, object]:
    """For bench/extraction.py: chrome lines left, body kept, cold and after the site was seen."""
    global SEEDS
    SEEDS = seeds_dir
    site = "https://aggregator.example"
    report: dict[str, object] = {}
    totals = {"chrome_lines": 0, "chrome_left_cold": 0, "chrome_left_learned": 0, "body_lines": 0, "body_lost": 0}
    for opaque in (False, True):
        index = MemoryChromeIndex(chrome)
        pages = [(seed, wrap_seed(seed, opaque=opaque, site=site), f"{site}/news/{seed.name}") for seed in seeds()]
        for n in range(chrome.min_pages + 2):  # other articles of the site, seen before the seeds
            page, url = filler_page(n, site=site, opaque=opaque, template=pages[0][0])
            doc = _extract_with(page, url, options, frozenset())
            asyncio.run(index.observe("aggregator.example", article_id_for(canonical_url(url, doc.canonical_url)),
                                      doc.block_hashes))
        for seed, page, url in pages:
            cold = _extract_with(page, url, options, frozenset())
            known = asyncio.run(index.known_chrome("aggregator.example"))
            learned = _extract_with(page, url, options, known)
            key = f"{seed.name}{'/opaque' if opaque else ''}"
            report[key] = {
                "chrome_left_cold": lines_left(cold.text, seed.chrome_lines()),
                "chrome_left_learned": lines_left(learned.text, seed.chrome_lines()),
                "body_lost": [p for p in seed.paragraphs if not lines_left(learned.text, [p])],
                "removed": sorted({r.reason for r in learned.removed}),
            }
            totals["chrome_lines"] += len(seed.chrome_lines())
            totals["chrome_left_cold"] += len(report[key]["chrome_left_cold"])  # type: ignore[arg-type]
            totals["chrome_left_learned"] += len(report[key]["chrome_left_learned"])  # type: ignore[arg-type]
            totals["body_lines"] += len(seed.paragraphs)
            totals["body_lost"] += len(report[key]["body_lost"])  # type: ignore[arg-type]
    report["summary"] = totals
    return report


def _extract_with(page: str, url: str, options: ExtractionOptions, known: frozenset[str]) -> ExtractedDocument:
    result = extract_document(page, url, options, known_chrome=known)
    assert isinstance(result, Kept), result
    return result.value


# --- tests ------------------------------------------------------------------------------------

def test_the_seed_files_split_as_the_readme_says() -> None:
    by_name = {seed.name: seed for seed in SEED_PAGES}
    assert sorted(by_name) == ["000_14b0707699333d86", "004_27e70a19afe18911"]  # nothing parametrised away
    first, second = by_name["000_14b0707699333d86"], by_name["004_27e70a19afe18911"]
    assert first.body == (7, 35)
    assert second.body == (7, 27)
    assert first.line(37).startswith("*الصورة")
    assert [first.line(n) for n in (57, 59, 61)] == ["أهم أخبار العالم", "Comments", "عاجل"]
    assert len(first.chrome_lines()) == 1 + 1 + 1 + 1 + 7 + 3  # skip, caption, cta, bio, teasers, rail/comments/ticker
    assert second.chrome_lines() == ["المحتوى الرئيسى", "أهم أخبار مصر", "Comments", "عاجل"]


@pytest.mark.parametrize("seed", SEED_PAGES, ids=lambda s: s.name)
def test_no_chrome_line_left_and_the_whole_article_kept_on_a_cold_domain(seed: Seed) -> None:
    assert seed.paragraphs and seed.chrome_lines()
    url = f"https://aggregator.example/news/{seed.name}"
    doc = extract(wrap_seed(seed), url)
    assert lines_left(doc.text, seed.chrome_lines()) == []
    assert lines_left(doc.text, seed.paragraphs) == seed.paragraphs
    assert doc.title == seed.headline
    assert doc.language == "ar"
    assert doc.published_at is not None and doc.published_at.isoformat().startswith("2016-12-08T")
    assert doc.urgent is False  # the ticker's "عاجل" is chrome, not a flag on this article
    assert doc.canonical_url == url


@pytest.mark.parametrize("seed", SEED_PAGES, ids=lambda s: s.name)
def test_opaque_class_names_no_chrome_line_left_on_a_cold_domain(seed: Seed) -> None:
    """No class name to go by: structure alone (teaser list, caption, call-to-action link, what
    follows the article container) must do."""
    assert seed.paragraphs and seed.chrome_lines()
    site = "https://aggregator.example"
    cold = extract(wrap_seed(seed, opaque=True, site=site), f"{site}/news/{seed.name}")
    assert lines_left(cold.text, seed.chrome_lines()) == []
    assert lines_left(cold.text, seed.paragraphs) == seed.paragraphs


@pytest.mark.parametrize("seed", SEED_PAGES, ids=lambda s: s.name)
def test_opaque_class_names_structure_removes_the_whole_frame_on_other_articles(seed: Seed) -> None:
    """On the other articles of the opaque site, seed 000's author box (a linked name over a
    short bio, after the article) goes as a teaser card, and with it every chrome line."""
    site = "https://aggregator.example"
    for n in range(6):
        page, url = filler_page(n, site=site, opaque=True, template=seed)
        doc = extract(page, url)
        assert lines_left(doc.text, seed.chrome_lines()) == []
        # the cards take the author box and nothing else
        without = extract(page, url, remove_teaser_cards=False)
        gone = [line for line in without.text.splitlines() if line not in doc.text.splitlines()]
        assert gone == lines_left(without.text, seed.chrome_lines())
        assert (len(gone) > 0) == seed.name.startswith("000_")


def test_opaque_class_names_the_site_learns_the_author_box_structure_misses_on_other_articles() -> None:
    """Without the teaser cards (the test above), structure misses seed 000's author box on the
    other articles of the opaque site (on the seed page it goes as what follows the article): it
    recurs on every one of them, so the site learns it, and from then on it goes as site chrome.
    Seed 004's frame has no author box, and structure removes the rest of it on every article:
    there learning has nothing to add."""
    seed = next(s for s in SEED_PAGES if s.name.startswith("000_"))
    site = "https://aggregator.example"
    index = MemoryChromeIndex(ChromeIndexSettings(min_pages=3))
    for n in range(5):
        page, url = filler_page(n, site=site, opaque=True, template=seed)
        seen = extract(page, url, remove_teaser_cards=False)
        asyncio.run(index.observe("aggregator.example", article_id_for(url), seen.block_hashes))
    known = asyncio.run(index.known_chrome("aggregator.example"))
    assert known

    page, url = filler_page(5, site=site, opaque=True, template=seed)  # an article not seen yet
    cold = extract(page, url, remove_teaser_cards=False)
    missed = lines_left(cold.text, seed.chrome_lines())
    assert missed  # what learning is for
    learned = extract(page, url, known, remove_teaser_cards=False)
    assert lines_left(learned.text, seed.chrome_lines()) == []
    assert [r.text for r in learned.removed if r.reason == "site_chrome"] == missed
    # the author box goes, nothing else: not the article, not what structure left of the frame
    kept = [line for line in cold.text.splitlines() if line not in missed]
    assert lines_left(learned.text, kept) == kept


def _chrome_page(body: list[str], *, n: int) -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body)
    return f"""<html lang="en"><head><title>Story {n}</title></head><body><main><article>
<h1>Story number {n} of the day</h1><div class="c9f">{paragraphs}
<div class="c1a"><p>Our newsroom works around the clock for you, independent and free of charge.</p></div>
</div></article></main></body></html>"""


def _body(seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ("council", "river", "bridge", "budget", "mayor", "school", "storm", "court", "market", "union",
             "harbour", "festival", "railway", "hospital", "museum", "election", "farmers", "police")
    return [" ".join(rng.choice(words) for _ in range(25)).capitalize() + "." for _ in range(5)]


CHROME_LINE = "Our newsroom works around the clock for you, independent and free of charge."


def test_site_learned_chrome_needs_distinct_pages_and_ignores_a_cold_domain() -> None:
    settings = ChromeIndexSettings(min_pages=3, min_share=0.05)

    async def scenario() -> None:
        # the same page seen N times: the block does not become chrome
        same = MemoryChromeIndex(settings)
        doc = extract(_chrome_page(_body(1), n=1), "https://one.example/a/1")
        for _ in range(5):
            await same.observe("one.example", "page-1", doc.block_hashes)
        assert await same.known_chrome("one.example") == frozenset()
        again = extract(_chrome_page(_body(1), n=1), "https://one.example/a/1", await same.known_chrome("one.example"))
        assert CHROME_LINE in again.text

        # N different pages of the domain: it does, and goes from the next page
        index = MemoryChromeIndex(settings)
        for n in range(3):
            page = extract(_chrome_page(_body(10 + n), n=10 + n), f"https://two.example/a/{n}")
            await index.observe("two.example", f"page-{n}", page.block_hashes)
        known = await index.known_chrome("two.example")
        assert known
        fresh = extract(_chrome_page(_body(99), n=99), "https://two.example/a/99", known)
        assert CHROME_LINE not in fresh.text
        assert [r for r in fresh.removed if r.reason == "site_chrome" and r.text == CHROME_LINE]
        for paragraph in _body(99):
            assert paragraph in fresh.text  # the article itself never recurs, never goes

        # a cold domain: what two.example taught is not known there, so nothing is removed
        assert await index.known_chrome("three.example") == frozenset()

    asyncio.run(scenario())
