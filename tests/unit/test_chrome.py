"""Block normalisation, hashing and known-chrome selection (workers/stages/chrome.py), and the
in-memory chrome index (workers/chrome_index.MemoryChromeIndex) with a controlled clock."""

from __future__ import annotations

import asyncio
import re

import pytest

from workers.chrome_index import ChromeIndexSettings, MemoryChromeIndex
from workers.stages.chrome import block_hash, normalise_block, select_chrome


def test_normalisation_folds_what_differs_between_two_renderings_of_one_block() -> None:
    # Arabic spelling variants, diacritics, tatweel, digits, punctuation, case, spacing
    assert normalise_block("المحتوى الرئيسى") == normalise_block("المحتوي الرئيسي")
    assert normalise_block("أهمّ أخبار مصر") == normalise_block("اهم اخبار مصر")
    assert normalise_block("عاجـــل") == normalise_block("عاجل")
    assert normalise_block("Updated 12/08 19:32") == normalise_block("updated  11/30 08:05!")
    assert normalise_block("٢٠١٦") == normalise_block("2016")
    assert normalise_block("Follow us on Twitter.") == normalise_block("follow   US on twitter")


def test_hashes_are_short_stable_and_none_for_blocks_without_words() -> None:
    digest = block_hash("Sign up for our newsletter")
    assert digest == block_hash("sign up for our NEWSLETTER!")
    assert digest is not None and re.fullmatch(r"[0-9a-f]{16}", digest)
    assert block_hash("Sign up for our newsletters") != digest
    assert block_hash(" — | · ") is None


def test_known_chrome_removal_and_its_guard() -> None:
    blocks = [("a", 400), ("b", 300), ("chrome", 60), (None, 5), ("long", 2000)]
    decision = select_chrome(blocks, frozenset({"chrome"}), max_block_chars=600, max_share=0.5)
    assert decision.removed == (2,) and not decision.withheld
    # a long recurring block is not taken (syndicated copy is more likely than a widget)
    decision = select_chrome(blocks, frozenset({"long"}), max_block_chars=600, max_share=0.9)
    assert decision.removed == ()
    # the guard: taking more than max_share of the body means the statistics are wrong
    decision = select_chrome(blocks[:3], frozenset({"a", "b"}), max_block_chars=600, max_share=0.5)
    assert decision.removed == () and decision.withheld
    # cold domain
    assert select_chrome(blocks, frozenset(), max_block_chars=600, max_share=0.5).removed == ()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_a_block_on_min_pages_distinct_pages_is_chrome_and_the_same_page_twice_counts_once() -> None:
    clock = Clock()
    index = MemoryChromeIndex(ChromeIndexSettings(min_pages=3, min_share=0.0), clock=clock)
    run(index.observe("site.example", "p1", ["cta", "a1"]))
    run(index.observe("site.example", "p1", ["cta", "a1"]))  # redelivery / re-crawl
    run(index.observe("site.example", "p1", ["cta", "a1", "a1b"]))  # same page, even if it changed
    run(index.observe("site.example", "p2", ["cta", "a2"]))
    assert run(index.known_chrome("site.example")) == frozenset()
    clock.now += 60
    run(index.observe("site.example", "p3", ["cta", "a3", "cta"]))
    assert run(index.known_chrome("site.example")) == frozenset({"cta"})
    assert run(index.known_chrome("other.example")) == frozenset()


def test_min_share_keeps_a_big_domain_from_calling_a_recurring_story_paragraph_chrome() -> None:
    clock = Clock()
    index = MemoryChromeIndex(ChromeIndexSettings(min_pages=3, min_share=0.2), clock=clock)
    for n in range(30):
        hashes = ["footer", f"body{n}"] + (["background"] if n < 4 else [])
        run(index.observe("big.example", f"p{n}", hashes))
    assert run(index.known_chrome("big.example")) == frozenset({"footer"})


def test_counts_decay_and_old_chrome_is_forgotten_after_a_redesign() -> None:
    clock = Clock()
    settings = ChromeIndexSettings(min_pages=3, min_share=0.0, half_life_days=7)
    index = MemoryChromeIndex(settings, clock=clock)
    for n in range(4):
        run(index.observe("site.example", f"old{n}", ["old-footer"]))
    assert run(index.known_chrome("site.example")) == frozenset({"old-footer"})
    clock.now += 14 * 86400  # two half-lives: 4 pages decay to 1
    assert index.decayed_count("site.example", "old-footer") == pytest.approx(1.0)
    for n in range(3):
        run(index.observe("site.example", f"new{n}", ["new-footer"]))
    assert run(index.known_chrome("site.example")) == frozenset({"new-footer"})


def test_a_quiet_sites_chrome_is_read_as_of_its_last_page() -> None:
    # read as of now, ten quiet days took four pages under min_pages (4 * 2 ** (-10 / 7) = 1.5)
    clock = Clock()
    index = MemoryChromeIndex(ChromeIndexSettings(min_pages=3, min_share=0.0, half_life_days=7), clock=clock)
    for n in range(4):
        run(index.observe("site.example", f"p{n}", ["newsletter", f"own{n}"]))
    clock.now += 10 * 86400
    assert run(index.known_chrome("site.example")) == frozenset({"newsletter"})


def test_memory_is_bounded_per_domain_and_a_domain_expires() -> None:
    clock = Clock()
    settings = ChromeIndexSettings(min_pages=2, min_share=0.0, max_blocks=50, max_pages=20, ttl_days=1)
    index = MemoryChromeIndex(settings, clock=clock)
    for n in range(100):
        clock.now += 1
        run(index.observe("site.example", f"p{n}", ["menu", f"a{n}", f"b{n}"]))
    state = index._domains["site.example"]  # noqa: SLF001 - the bound is the point of the test
    assert len(state.blocks) <= 50 and len(state.pages) <= 20
    assert "menu" in state.blocks  # the most frequent block survives eviction
    assert run(index.known_chrome("site.example")) == frozenset({"menu"})
    clock.now += 2 * 86400
    assert run(index.known_chrome("site.example")) == frozenset()


def test_rebasing_keeps_the_answers() -> None:
    clock = Clock()
    settings = ChromeIndexSettings(min_pages=2, min_share=0.0, half_life_days=0.001, ttl_days=10_000)
    index = MemoryChromeIndex(settings, clock=clock)
    run(index.observe("site.example", "p0", ["x"]))
    clock.now += 0.001 * 86400 * 45  # 45 half-lives: the weights pass 2**40 and get rebased
    run(index.observe("site.example", "p1", ["x"]))
    run(index.observe("site.example", "p2", ["x"]))
    state = index._domains["site.example"]  # noqa: SLF001
    assert state.landmark == clock.now
    assert index.decayed_count("site.example", "x") == pytest.approx(2.0, rel=1e-6)
    assert run(index.known_chrome("site.example")) == frozenset({"x"})


def test_a_block_whose_figures_change_between_pages_is_data_not_chrome() -> None:
    yesterday = "سجل سعر الدولار اليوم 50 جنيها للشراء في البنوك"
    today = "سجل سعر الدولار اليوم 51 جنيها للشراء في البنوك"
    assert block_hash(yesterday) != block_hash(today)
    assert block_hash(today) == block_hash("سجل سعر الدولار اليوم ٥١ جنيها للشراء في البنوك")
    assert normalise_block(yesterday) == normalise_block(today)


def test_a_block_hashes_the_same_with_and_without_its_invisible_format_characters() -> None:
    # a soft hyphen or a bidirectional mark must not make a widget's block a new one
    assert block_hash("Newsletter abon\u00adnie\u00adren") == block_hash("Newsletter abonnieren")
    assert normalise_block("اقرأ \u200fأيضا") == normalise_block("اقرأ أيضا")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ข่าว", "ข้าว"),  # Thai "news" and "rice": tone marks
        ("ดูทั้งหมด", "ดีทั้งหมด"),  # "See all" (a widget) and "All good" (a quote): vowel signs
        ("हाँ।", "है।"),  # Hindi "Yes." and "is."
        ("দিন", "দান"),  # Bengali "day" and "donation"
        ("கடை", "கடி"),  # Tamil "shop" and "bite"
    ],
)
def test_blocks_differing_by_a_vowel_sign_or_tone_mark_are_different_blocks(one: str, other: str) -> None:
    # Taken for separators, the marks went and only the consonants were hashed
    assert block_hash(one) != block_hash(other)
    assert normalise_block(one) != normalise_block(other)
    assert " " not in normalise_block("ข่าวล่าสุด")  # a mark does not split its word


def test_the_guard_leaves_a_short_article_its_recurring_line_rather_than_too_little_to_keep() -> None:
    # A 64-character flash and the site's "developing story" line: without the line, the flash
    # would be dropped as too short; trafilatura alone keeps it.
    blocks = [("flash", 64), ("developing", 51)]
    decision = select_chrome(blocks, frozenset({"developing"}), max_block_chars=600, max_share=0.5, min_kept_chars=80)
    assert decision.removed == () and decision.withheld
    longer = [("flash", 200), ("developing", 51)]
    decision = select_chrome(longer, frozenset({"developing"}), max_block_chars=600, max_share=0.5, min_kept_chars=80)
    assert decision.removed == (1,) and not decision.withheld
    # a body too short with or without the removal is not the guard's to keep
    tiny = [("flash", 20), ("developing", 51)]
    decision = select_chrome(tiny, frozenset({"developing"}), max_block_chars=600, max_share=0.9, min_kept_chars=80)
    assert decision.removed == (1,) and not decision.withheld


def test_a_clock_behind_the_landmark_does_not_lower_the_threshold() -> None:
    # A worker whose clock is 20 days behind read one page's blocks as chrome (the decay made
    # the threshold 2 ** (-20 / 14) of min_pages).
    clock = Clock()
    index = MemoryChromeIndex(ChromeIndexSettings(min_pages=3), clock=clock)
    run(index.observe("site.example", "only-page", ["lead", "quote"]))
    clock.now -= 20 * 86400
    assert run(index.known_chrome("site.example")) == frozenset()


def test_known_chrome_past_its_cap_keeps_the_blocks_on_most_pages() -> None:
    clock = Clock()
    index = MemoryChromeIndex(ChromeIndexSettings(min_pages=3, max_known=3), clock=clock)
    for n in range(20):
        widgets = ["menu", "footer", "newsletter"] + (["tag-a", "tag-b", "tag-c"] if n < 3 else [])
        run(index.observe("site.example", f"page-{n}", widgets))
    assert run(index.known_chrome("site.example")) == {"menu", "footer", "newsletter"}


def test_the_articles_middle_is_never_removed_but_counts_for_the_guard() -> None:
    blocks = [("lead", 300), ("background", 250), ("body", 300), ("note", 100)]
    decision = select_chrome(blocks, frozenset({"background", "note"}), max_block_chars=600, max_share=0.5,
                             middle=frozenset({1, 2}))
    assert decision.removed == (3,) and not decision.withheld
    # statistics calling most of the body chrome are wrong, wherever it stands: nothing goes
    decision = select_chrome(blocks, frozenset({"background", "body", "note"}), max_block_chars=600, max_share=0.5,
                             middle=frozenset({1, 2}))
    assert decision.removed == () and decision.withheld


def test_statistics_counted_by_a_clock_far_ahead_start_over() -> None:
    clock = Clock()
    index = MemoryChromeIndex(ChromeIndexSettings(min_pages=3), clock=clock)
    clock.now += 730 * 86400
    for n in range(5):
        run(index.observe("redesigned.example", f"old-{n}", ["old-widget"]))
    clock.now -= 730 * 86400
    assert run(index.known_chrome("redesigned.example")) == frozenset()
    for n in range(5):
        run(index.observe("redesigned.example", f"new-{n}", ["new-widget"]))
    assert run(index.known_chrome("redesigned.example")) == frozenset({"new-widget"})


def test_a_block_drawn_with_a_variation_selector_is_the_same_block() -> None:
    # "➡️" and "➡" are one arrow: the selector only chooses how it is drawn
    assert block_hash("➡️ Read more") == block_hash("➡ Read more")
    assert block_hash("❤️") is None
