"""Pure parts of deduplication and stories (workers/dedup/minhash.py, stories.py, the decision);
and, on a redis-server of this module's own, what the index does around them: preparing an
article off the event loop, and adding document-frequency counts that Redis may refuse."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis
import tld.base
import tld.utils
from datasketch import MinHash

from workers.dedup import minhash, stories
from workers.dedup.index import DF_DAY_S, FLUSH_RESEND_S, DedupConfig, DedupDecision, DedupIndex, Status
from workers.models import Article
from workers.settings import Settings
from workers.urlnorm import domain_of
from workers.textnorm import MATCHED_CHARS, normalize, token_lines, tokenize, word_count
from workers.urlnorm import registrable_domain

from tests.builders import article as built_article
from tests.shared_data import SEEDS

SEED_000, SEED_004 = sorted(SEEDS.glob("*.txt"))
CONFIG = DedupConfig()


def seed(path: Path) -> tuple[str, str]:
    """(headline, body) of a seed page: line 3 is the headline, the body starts at line 7."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[2], "\n".join(lines[6:])


def sketch(text: str) -> minhash.Sketch:
    return minhash.sketch(token_lines(text))


def similarity(a: str, b: str) -> float:
    return minhash.jaccard(sketch(a), sketch(b).stored())


def vector(title: str, text: str, stats: stories.TermStats | None = None) -> stories.TermVector:
    tf = stories.term_counts(tokenize(normalize(title)), tokenize(normalize(text)))
    return stories.article_vector(tf, stats or stories.TermStats.empty())


def edited(text: str, every: int, rng: random.Random) -> str:
    """A copy desk's pass: one word in ``every`` replaced, dropped or doubled."""
    lines = []
    for line in text.splitlines():
        words = line.split(" ")
        for i in range(0, len(words), every):
            j = rng.randrange(i, min(i + every, len(words)))
            words[j] = rng.choice(["", words[j] + " " + words[j], "تعديل"])
        lines.append(" ".join(w for w in words if w))
    return "\n".join(lines)


# --- MinHash ---------------------------------------------------------------------------------


def test_identical_texts_have_similarity_one() -> None:
    _, body = seed(SEED_000)
    assert similarity(body, body) == 1.0


def test_edited_copies_stay_near_duplicates() -> None:
    _, body = seed(SEED_000)
    rng = random.Random(4)
    assert similarity(body, edited(body, 40, rng)) >= CONFIG.threshold
    # Truncated by a third, and edited: the wire copy a site republished.
    paragraphs = body.splitlines()
    shorter = edited("\n".join(paragraphs[: 2 * len(paragraphs) // 3]), 40, rng)
    assert similarity(body, shorter) >= CONFIG.threshold


def test_the_seeds_are_not_duplicates() -> None:
    # Two outlets' own reports of the same talks: same story, different wording.
    assert similarity(seed(SEED_000)[1], seed(SEED_004)[1]) < 0.1


def test_shared_chrome_does_not_make_different_articles_alike() -> None:
    # The chrome lines of seed 000 (caption, call to action, teasers, rails) around both
    # seed bodies: one site, two articles.
    page = SEED_000.read_text(encoding="utf-8").splitlines()
    chrome = "\n".join(page[36:])
    first = seed(SEED_000)[1] + "\n" + chrome
    second = seed(SEED_004)[1] + "\n" + chrome
    assert similarity(first, second) < CONFIG.threshold


def test_short_lines_are_not_shingled() -> None:
    _, body = seed(SEED_000)
    menu = "\n".join(["الرئيسية", "أخبار العالم", "رياضة", "اتصل بنا", "Comments", "عاجل"])
    assert np.array_equal(sketch(menu + "\n" + body).signature, sketch(body).signature)
    # ... unless nothing else is there: a text of short lines still gets a signature.
    assert sketch(menu).size > 0


def test_a_line_of_ten_words_is_prose_and_one_of_nine_is_not() -> None:
    _, body = seed(SEED_000)
    lines = token_lines(body)
    base = minhash.shingles(lines)
    nine = [f"nine{i}" for i in range(9)]
    ten = [f"ten{i}" for i in range(10)]
    assert np.array_equal(minhash.shingles([*lines, nine]), base)
    assert minhash.shingles([*lines, ten]).size == base.size + 10


def test_prose_lines_holding_half_the_words_are_the_text_and_less_than_half_are_not() -> None:
    prose = [f"prose{i}" for i in range(10)]
    short = [["short", "line", "one", "two", "three"], ["short", "line", "four", "five", "six"]]
    # 10 of 20 words in prose: the short lines are left out (10 tokens, 7 shingles)
    assert minhash.shingles([prose, *short]).size == 10 - minhash.SHINGLE + 1
    # 10 of 21: the text is all its lines
    assert minhash.shingles([prose, *short, ["seven"]]).size == 21 - minhash.SHINGLE + 1


def test_a_text_of_short_lines_is_its_lines_not_its_one_long_footer() -> None:
    # Two wire items of results sharing the service's footer: shingled on the footer alone, the
    # second was a duplicate (similarity 1.0) of the first, published in its story.
    footer = (
        "Copyright 2024 The Associated Press. All rights reserved. This material may not be "
        "published, broadcast, rewritten or redistributed."
    )
    football = "\n".join([
        "Premier League results on Saturday:", "Arsenal 2, Chelsea 1", "Liverpool 3, Everton 0",
        "Manchester City 1, Tottenham 1", "Newcastle 0, Aston Villa 2", "Brighton 4, Fulham 2", footer,
    ])
    election = "\n".join([
        "Election results in Ohio counties:", "Franklin: Smith 54%, Jones 46%", "Cuyahoga: Jones 61%, Smith 39%",
        "Hamilton: Smith 50%, Jones 50%", "Summit: Jones 52%, Smith 48%", "Lucas: Jones 58%, Smith 42%", footer,
    ])
    assert similarity(football, election) < CONFIG.threshold
    assert similarity(football, football.replace("Brighton 4", "Brighton 3")) >= CONFIG.threshold


def test_cjk_text_is_shingled_by_character_bigrams() -> None:
    text = (
        "北京大学今天宣布了一项新的研究计划，该计划将持续五年时间并投入大量资金用于人工智能研究。"
    )
    assert sketch(text).size > 20
    assert similarity(text, text.replace("五年", "六年")) >= CONFIG.threshold


def test_empty_text_has_an_empty_sketch_and_no_bands() -> None:
    empty = sketch(" \n ,. ")
    assert empty.size == 0
    assert minhash.band_keys(empty, CONFIG.bands, CONFIG.rows) == []


def test_band_keys_are_deterministic_and_per_band() -> None:
    _, body = seed(SEED_000)
    a, b = sketch(body), sketch(body)
    assert minhash.band_keys(a, 32, 2) == minhash.band_keys(b, 32, 2)
    constant = minhash.Sketch(np.full(minhash.NUM_PERM, 7, dtype=np.uint32), 1)
    keys = minhash.band_keys(constant, 32, 2)
    assert len(set(keys)) == 32  # equal values in different bands are different keys
    with pytest.raises(ValueError):
        minhash.band_keys(a, 65, 2)


def specified_shingles(lines: list[list[str]]) -> list[int]:
    """The shingle hashes of token ``lines`` as the stored format specifies them, spelled out:
    the lines of 10 words or more (all lines when none is that long), CRC-32 of each token's
    UTF-8, and each 4 consecutive token hashes combined with fixed odd multipliers, mod 2**32."""
    prose = [tokens for tokens in lines if word_count(tokens) >= 10] or lines
    ids = [zlib.crc32(token.encode()) for tokens in prose for token in tokens]
    multipliers = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F)
    return [
        sum(m * h for m, h in zip(multipliers, ids[i : i + 4], strict=True)) % 2**32 for i in range(len(ids) - 3)
    ]


@pytest.mark.parametrize("repeat", [1, 40])  # 40: more shingles than one block of the sketch
def test_signatures_are_datasketch_affine32_of_the_specified_shingles_bit_for_bit(repeat: int) -> None:
    # The signature is part of the stored format: workers and versions must agree on it. The
    # reference is the specification, not the module's constants: 128 permutations that
    # datasketch draws from seed 20240611, its affine32 scheme, the shingles above.
    lines = token_lines("\n".join([seed(SEED_000)[1]] * repeat))
    hashes = specified_shingles(lines)
    assert repeat == 1 or len(hashes) > 4096

    def reference(values: list[int]) -> np.ndarray:
        m = MinHash(num_perm=128, seed=20240611, scheme="affine32", hashfunc=int)
        m.update_batch(values)
        return m.hashvalues

    assert np.array_equal(minhash.shingles(lines), hashes)
    assert np.array_equal(minhash.sketch(lines).signature, reference(hashes))
    assert np.array_equal(minhash.sketch([]).signature, reference([]))


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_a_text_of_at_most_one_shingle_is_one_shingle_of_all_its_tokens(length: int) -> None:
    # the multipliers as specified_shingles spells them out, as many as there are tokens
    tokens = ["aleppo", "ceasefire", "talks", "geneva"][:length]
    multipliers = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F)
    expected = sum(m * zlib.crc32(t.encode()) for m, t in zip(multipliers, tokens)) % 2**32
    assert minhash.shingles([tokens]).tolist() == [expected]
    reference = MinHash(num_perm=128, seed=20240611, scheme="affine32", hashfunc=int)
    reference.update_batch([expected])
    assert np.array_equal(minhash.sketch([tokens]).signature, reference.hashvalues)


def test_stored_signature_is_compact_and_estimates_the_same() -> None:
    a, b = sketch(seed(SEED_000)[1]), sketch(edited(seed(SEED_000)[1], 25, random.Random(1)))
    assert len(a.stored()) == minhash.NUM_PERM * minhash.STORED_BITS // 8
    full = float(np.count_nonzero(a.signature == b.signature)) / minhash.NUM_PERM
    assert abs(minhash.jaccard(a, b.stored()) - full) < 0.02


def test_content_fingerprint_ignores_what_normalisation_folds() -> None:
    fingerprint = minhash.content_fingerprint
    assert fingerprint(tokenize(normalize("الرئيسى  أعلن، اليوم"))) == fingerprint(
        tokenize(normalize("الرئيسي اعلن اليوم!"))
    )
    assert fingerprint(["a", "b"]) != fingerprint(["ab"])
    assert len(fingerprint(["a", "b"])) == len(fingerprint(["a"], "rest")) == 8


# --- stories ---------------------------------------------------------------------------------


def test_the_seeds_are_one_story() -> None:
    (title_a, body_a), (title_b, body_b) = seed(SEED_000), seed(SEED_004)
    centroid = stories.merge(None, 0.0, vector(title_a, body_a))
    assert stories.cosine(vector(title_b, body_b), centroid) >= CONFIG.story_threshold


def test_an_unrelated_arabic_article_is_another_story() -> None:
    title, body = seed(SEED_000)
    other = vector(
        "الأهلي يفوز على الزمالك في نهائي الكأس",
        "فاز فريق الأهلي على غريمه الزمالك بهدفين مقابل هدف في المباراة النهائية لكأس مصر "
        "التي أقيمت مساء الجمعة على ستاد القاهرة الدولي بحضور جماهيري كبير، وسجل للأهلي "
        "مهاجمه في الشوط الأول ثم أضاف زميله الهدف الثاني قبل أن يقلص الزمالك الفارق.",
    )
    # Cold: without document frequencies yet, function words still weigh as much as names.
    assert (
        stories.cosine(other, stories.merge(None, 0.0, vector(title, body)))
        < CONFIG.story_threshold
    )


def test_stories_work_without_spaces() -> None:
    a = vector("北京大学宣布新研究计划", "北京大学今天宣布了一项新的人工智能研究计划，将持续五年。")
    b = vector(
        "北大启动人工智能研究计划", "北京大学周一启动人工智能研究计划，计划为期五年，投入大量资金。"
    )
    c = vector(
        "台风登陆广东沿海", "强台风今天凌晨在广东沿海登陆，当地紧急转移数万居民，多个航班取消。"
    )
    centroid = stories.merge(None, 0.0, a)
    assert stories.cosine(b, centroid) >= CONFIG.story_threshold
    assert stories.cosine(c, centroid) < 0.1


def test_frequent_terms_weigh_less() -> None:
    ids = vector("", "aleppo ceasefire").ids
    counters = np.zeros(stories.DF_SLOTS, dtype=np.uint32)
    counters[stories.df_slots(ids[:1])] = 900  # one of the two terms is in 90% of documents
    weighted = vector("", "aleppo ceasefire", stories.TermStats(counters, 1000))
    assert weighted.weights[0] < weighted.weights[1]
    assert np.allclose(stories.TermStats.empty().idf(ids), 1.0)


def test_term_stats_sum_the_days_as_redis_keeps_them() -> None:
    day = np.zeros(10, dtype=">u2")
    day[3] = 5
    stats = stories.TermStats.from_days([day.tobytes(), None, day[:4].tobytes()], 7)
    assert stats.counters[3] == 10 and stats.counters.sum() == 10 and stats.documents == 7


def test_counts_added_as_redis_keeps_them_saturate_and_trim() -> None:
    added = np.zeros(stories.DF_SLOTS, dtype=np.int64)
    added[[2, 5]] = [3, 70_000]
    first = stories.add_counts(None, added)
    assert len(first) == 2 * 6  # up to the highest counter written, as BITFIELD left it
    again = stories.add_counts(first, added)
    stats = stories.TermStats.from_days([again], 2)
    assert stats.counters[2] == 6 and stats.counters[5] == 0xFFFF
    assert stats.counters.sum() == 6 + 0xFFFF
    assert stories.add_counts(None, np.zeros(stories.DF_SLOTS, dtype=np.int64)) == b""


def test_a_worker_counts_its_articles_in_its_snapshot() -> None:
    stats = stories.TermStats.empty()
    stats.count(np.array([7, 9, 7], dtype=np.uint32))  # two terms may share a slot
    assert stats.documents == 1 and stats.counters[7] == 2 and stats.counters[9] == 1


def test_the_first_documents_barely_change_the_weights() -> None:
    # Two articles on one event, the first two of their language: the words they share must
    # not weigh much less than the others (the seeds would no longer be one story).
    title, text = seed(SEED_000)
    stats = stories.TermStats.empty()
    stats.count(stories.df_slots(vector(title, text).ids))
    other_title, other_text = seed(SEED_004)
    idf = stats.idf(vector(other_title, other_text).ids)
    assert idf.min() > 0.8 * idf.max()  # without the prior: 1 against 1 + ln 2


def test_centroid_decays_merges_and_truncates() -> None:
    a = stories.TermVector(np.arange(100, dtype=np.uint32), np.ones(100, dtype=np.float32))
    b = stories.TermVector(
        np.array([5, 500], dtype=np.uint32), np.array([3.0, 4.0], dtype=np.float32)
    )
    merged = stories.merge(a, stories.decay(3600.0, 3600.0), b)
    assert merged.ids.size == stories.CENTROID_TERMS
    assert np.all(np.diff(merged.ids.astype(np.int64)) > 0)  # sorted: cosine relies on it
    weights = dict(zip(merged.ids.tolist(), merged.weights.tolist(), strict=True))
    assert weights[5] == pytest.approx(3.5) and weights[500] == pytest.approx(4.0)
    assert stories.decay(-10.0, 3600.0) == 1.0


def test_a_story_centroid_does_not_depend_on_the_order_its_articles_are_processed_in() -> None:
    # An article older than the centroid was added at full weight: a backlog processed out of
    # order pulled a story that had moved on back to where it began (norm 1.28 against 0.86).
    half_life = 24 * 3600.0
    first = stories.TermVector(np.array([1, 2, 3], dtype=np.uint32), np.array([0.6, 0.6, 0.52915026], dtype=np.float32))
    later = stories.TermVector(np.array([3, 4, 5], dtype=np.uint32), np.array([0.8, 0.36, 0.48], dtype=np.float32))
    t0, t1 = 1_700_000_000.0, 1_700_000_000.0 + 48 * 3600
    in_order = stories.joined(stories.merge(None, 0.0, first), t0, later, t1, half_life)
    out_of_order = stories.joined(stories.merge(None, 0.0, later), t1, first, t0, half_life)
    assert in_order[1] == out_of_order[1] == t1
    assert np.array_equal(in_order[0].ids, out_of_order[0].ids)
    assert np.allclose(in_order[0].weights, out_of_order[0].weights)
    weights = dict(zip(out_of_order[0].ids.tolist(), out_of_order[0].weights.tolist(), strict=True))
    assert weights[1] == pytest.approx(0.6 * 0.25) and weights[3] == pytest.approx(0.8 + 0.52915026 * 0.25)


def test_a_centroid_keeps_its_64_heaviest_terms() -> None:
    many = stories.TermVector(np.arange(100, dtype=np.uint32), np.arange(100, 0, -1).astype(np.float32))
    assert stories.merge(None, 0.0, many).ids.tolist() == list(range(64))


def test_an_article_of_one_term_meets_a_centroid_of_more() -> None:
    article = stories.TermVector(np.array([5], dtype=np.uint32), np.array([1.0], dtype=np.float32))
    centroid = stories.TermVector(np.array([5, 9], dtype=np.uint32), np.array([3.0, 4.0], dtype=np.float32))
    assert stories.cosine(article, centroid) == pytest.approx(0.6)


def test_an_article_without_terms_is_an_empty_vector_close_to_no_story() -> None:
    empty = vector("", "a , b .")  # one-letter tokens make no term
    assert empty.ids.size == 0 and empty.weights.size == 0
    assert stories.cosine(empty, stories.merge(None, 0.0, vector(*seed(SEED_000)))) == 0.0


def test_every_article_is_counted_until_1000_are_then_one_in_8() -> None:
    ids = [f"https://news.example/{i}" for i in range(8000)]
    below = stories.TermStats(np.zeros(stories.DF_SLOTS, dtype=np.uint32), stories.DF_FULL - 1)
    assert all(stories.counted_in_df(article_id, below) for article_id in ids)
    full = stories.TermStats(np.zeros(stories.DF_SLOTS, dtype=np.uint32), 1000)
    counted = [article_id for article_id in ids if stories.counted_in_df(article_id, full)]
    assert 950 <= len(counted) <= 1050  # 999 of these ids; one in 7 or 9 would be 1144 or 846


def test_term_vector_round_trips_through_redis_bytes() -> None:
    v = vector(*seed(SEED_004))
    back = stories.TermVector.unpack(v.pack())
    assert np.array_equal(back.ids, v.ids)
    assert np.allclose(back.weights, v.weights, atol=1e-3)
    assert len(v.pack()) == 6 * v.ids.size


def test_decision_round_trips_through_its_memo() -> None:
    for decision in (
        DedupDecision(Status.NEW, story_id="0123456789abcdef"),
        DedupDecision(Status.DUPLICATE, "a" * 32, 0.8125, "0123456789abcdef"),
        DedupDecision(Status.UNCHANGED),
    ):
        assert DedupDecision.decode(decision.encode()) == decision
    assert not DedupDecision(Status.UNCHANGED).emit and DedupDecision(Status.UPDATE).emit


def test_the_index_keeps_a_url_known_as_long_as_the_settings_keep_its_article() -> None:
    # The worker builds its index from the settings (workers/app.py): the store's article lifetime
    # is how long a URL's doc lives (workers/dedup/index.py, the key layout).
    settings = Settings.model_construct(article_ttl_days=45.0, dedup_window_days=10.0)
    config = DedupConfig.from_settings(settings)
    assert (config.article_ttl_days, config.window_days) == (45.0, 10.0)



# --- the term-id memo ------------------------------------------------------------------------


@pytest.fixture
def small_memo(monkeypatch: pytest.MonkeyPatch) -> int:
    """An empty term-id memo of 100 terms, put back as it was after the test."""
    monkeypatch.setattr(stories, "_TERM_IDS_MAX", 100)
    monkeypatch.setattr(stories, "_TERM_IDS", {})
    return 100


def test_the_term_id_memo_keeps_to_its_bound(small_memo: int) -> None:
    few = [f"word{i}" for i in range(60)]
    many = [f"other{i}" for i in range(250)]  # one article with more terms than the memo holds
    for tokens in (few, few[:30] + many[:50], many):
        assert stories._term_ids(tokens).tolist() == [stories._term_id(t) for t in tokens]
        assert len(stories._TERM_IDS) <= small_memo


def test_an_article_whose_terms_do_not_fit_replaces_the_memo(small_memo: int) -> None:
    stories._term_ids([f"word{i}" for i in range(60)])
    others = [f"other{i}" for i in range(50)]
    stories._term_ids(others)
    assert set(stories._TERM_IDS) == set(others)


def test_a_token_of_two_letters_makes_a_term_and_one_of_one_letter_none() -> None:
    assert stories.term_counts([], ["un"]).ids.size == 1
    assert stories.term_counts([], ["a"]).ids.size == 0


def test_a_memo_replaced_by_another_article_meanwhile_loses_no_term(
    small_memo: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Articles are prepared in threads, several at once: another article's terms may replace
    # the memo while this one's are computed (here from within, at the first term computed).
    known = [f"known{i}" for i in range(50)]
    stories._term_ids(known)
    others = [f"other{i}" for i in range(90)]
    compute = stories._term_id

    def computed_while_another_article_replaces_the_memo(token: str) -> int:
        if others:
            batch = others[:]
            others.clear()
            stories._term_ids(batch)
        return compute(token)

    monkeypatch.setattr(stories, "_term_id", computed_while_another_article_replaces_the_memo)
    tokens = [*known, "new"]
    assert stories._term_ids(tokens).tolist() == [compute(t) for t in tokens]


# --- the index around the pure parts ---------------------------------------------------------

NOW = datetime.now(UTC)
DAY = math.floor(NOW.timestamp() / DF_DAY_S)
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Go's zero time: what a crawler written in Go sends for a date it never set."""
_WORDS = sorted({word for path in (SEED_000, SEED_004) for word in seed(path)[1].split()})


def prose(number: int) -> str:
    """A text of its own: seed words drawn at random, shared with no other number's."""
    rng = random.Random(number)
    return "\n".join(" ".join(rng.choice(_WORDS) for _ in range(40)) for _ in range(5))


def article(url: str, text: str) -> Article:
    return built_article(url, text, fetched_at=NOW)


class Clock:
    """The index's monotonic clock, moved by hand past ``df_refresh_s``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def refresh(self) -> None:
        """Make the next classification read the document frequencies again (flushing first)."""
        self.now += CONFIG.df_refresh_s


def test_matching_reads_the_first_matched_chars_and_an_edit_after_them_is_still_an_edit() -> None:
    index = DedupIndex(aioredis.Redis(), "t")  # _prepare makes no call to Redis
    long = "Talks continue in Geneva. " * (MATCHED_CHARS // 26 + 100)
    first = index._prepare(article("https://c.example/1", long + "It ended one way."))
    second = index._prepare(article("https://c.example/1", long + "It ended another way."))
    assert np.array_equal(first.sketch.signature, second.sketch.signature)
    assert np.array_equal(first.terms.ids, second.terms.ids)
    assert first.fingerprint != second.fingerprint  # a re-crawl with that edit is an update
    short = index._prepare(article("https://c.example/2", "Talks continue in Geneva."))
    assert short.fingerprint == minhash.content_fingerprint(["talks", "continue", "in", "geneva"])


def test_a_version_is_what_a_reader_sees_and_a_fingerprint_what_matching_reads() -> None:
    index = DedupIndex(aioredis.Redis(), "t")  # _prepare makes no call to Redis
    title, text = seed(SEED_000)

    def prepared(title: str, text: str):  # noqa: ANN202 - the index's own private type
        return index._prepare(built_article("https://c.example/1", text, fetched_at=NOW, title=title))

    first = prepared(title, text)
    respaced = prepared(f" {title} ", text.replace("\n", "\n\n").replace(" ", "  "))
    retitled = prepared("عاجل: " + title, text)
    respelt = prepared(title, text.replace("أ", "ا"))
    assert respaced.version == first.version and respaced.delivery == first.delivery
    # the same text for matching: a copy of it at another URL is exact, whatever its headline
    assert first.fingerprint == retitled.fingerprint == respelt.fingerprint
    assert first.entries == retitled.entries
    # ... and three versions of one URL, three deliveries of one crawl
    assert len({first.version, retitled.version, respelt.version}) == 3
    assert len({first.delivery, retitled.delivery, respelt.delivery}) == 3
    # a headline variant founds no second story
    assert first.founding_story == retitled.founding_story


@pytest.mark.parametrize(
    ("url", "outlet"),
    [
        ("https://edition.cnn.com/2016/12/08/talks", "cnn.com"),
        ("https://amp.cnn.com/2016/12/08/talks", "cnn.com"),
        ("https://m.cnn.com/2016/12/08/talks", "cnn.com"),
        ("https://www.bbc.co.uk/news/1", "bbc.co.uk"),
        ("https://news.bbc.co.uk/news/1", "bbc.co.uk"),
        ("https://news.xn--mgbh0fb.xn--wgbh1c/a", "مثال.مصر"),  # an internationalised suffix
        ("https://someone.blogspot.com/a", "someone.blogspot.com"),  # a suffix anyone registers under
        # No registrable domain: the host.
        ("http://192.0.2.7/a", "192.0.2.7"),
        ("http://[2001:db8::1]/a", "2001:db8::1"),
        ("http://localhost:8080/a", "localhost"),
        ("https://news.example/a", "news.example"),
    ],
)
def test_a_story_counts_an_outlet_by_its_registrable_domain(url: str, outlet: str) -> None:
    page = article(url, "Talks continue in Geneva.").model_copy(update={"domain": domain_of(url)})
    assert DedupIndex(aioredis.Redis(), "t")._prepare(page).outlet == outlet  # _prepare makes no call to Redis


def test_the_public_suffix_list_is_read_from_the_package_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the public suffix list was fetched")

    monkeypatch.setattr(tld.base, "urlopen", no_network)
    monkeypatch.setattr(tld.utils, "tld_names", {})  # as in a fresh worker process: nothing loaded
    assert registrable_domain("edition.cnn.com") == "cnn.com"
    assert tld.utils.tld_names  # loaded now, from the file the package ships


@pytest_asyncio.fixture(loop_scope="function")
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_the_event_loop_runs_while_an_article_is_prepared(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Preparing a long text is CPU work (up to a second at the bound, tens of seconds without
    # it): on the event loop, it would stop the consumer's heartbeats and every other page in
    # flight. Here the preparation waits for the loop to run a callback, which it can do only
    # while the preparation runs elsewhere.
    index = DedupIndex(redis_client, "loop")
    loop = asyncio.get_running_loop()
    prepare = index._prepare

    def prepare_once_the_loop_has_run(page: Article):  # noqa: ANN202 - the index's private type
        loop_ran = threading.Event()
        loop.call_soon_threadsafe(loop_ran.set)
        assert loop_ran.wait(timeout=5), "the event loop did not run while the article was prepared"
        return prepare(page)

    monkeypatch.setattr(index, "_prepare", prepare_once_the_loop_has_run)
    assert (await index.classify(article("https://d.example/1", prose(1)))).status is Status.NEW


async def documents_counted(client: aioredis.Redis, prefix: str) -> dict[str, int]:
    """The number of documents counted in Redis, by day key."""
    return {key.decode(): int(await client.get(key)) async for key in client.scan_iter(f"{prefix}:st:n:*")}


async def test_a_page_dated_in_year_one_counts_nowhere_and_fails_no_later_page(
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # Its day (-719162) is long out of the window: its counters would have expired before 1970,
    # which Redis refuses as an expiry. Queued all the same, they failed every refresh of the
    # document frequencies after it, and with it every page, and the flush at shutdown. (Not
    # queued at all: nothing is refused, nothing logged.) model_copy: whatever decoding accepts.
    clock = Clock()
    index = DedupIndex(redis_client, "zero", clock=clock)
    ancient = article("https://e.example/0", prose(10)).model_copy(update={"fetched_at": ZERO_TIME})
    with caplog.at_level(logging.ERROR, logger="workers.dedup.index"):
        assert (await index.classify(ancient)).status is Status.NEW
        clock.refresh()
        for number in (11, 12):
            assert (await index.classify(article(f"https://e.example/{number}", prose(number)))).status is Status.NEW
        await index.flush()
    assert await documents_counted(redis_client, "zero") == {f"zero:st:n:ar:{DAY}": 2}
    assert caplog.records == []


async def test_a_page_just_older_than_the_window_counts_nowhere_though_its_day_is_still_read(
    redis_client: aioredis.Redis,
) -> None:
    # Noon by the index's wall clock; the window's first day is a week before, read by the
    # snapshots until midnight. A page fetched 7 days and 1 hour before (a reprocess: a replay, a new
    # pipeline version's group) is on that day but out of the window, as its dedup entry is: counted,
    # it weighed in again at every reprocess. One fetched 7 days less 1 hour before is in the window.
    # Noon tomorrow, not today: that day's counts expire at the index's midnight by Redis's own
    # clock, which a run just after today's midnight (DAY is taken at import) had already passed.
    day = DAY + 1
    noon = (day + 0.5) * DF_DAY_S
    week = CONFIG.window_days * 86400
    index = DedupIndex(redis_client, "edge", wall_clock=lambda: noon)
    for number, fetched in ((31, noon - week - 3600), (32, noon - week + 3600)):
        page = article(f"https://g.example/{number}", prose(number))
        at = datetime.fromtimestamp(fetched, UTC)
        assert (await index.classify(page.model_copy(update={"fetched_at": at}))).status is Status.NEW
    await index.flush()
    assert await documents_counted(redis_client, "edge") == {f"edge:st:n:ar:{day - round(CONFIG.window_days)}": 1}


async def test_counts_redis_refuses_are_dropped_and_fail_no_page_and_an_outage_keeps_them(
    redis_client: aioredis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A refusal that lasts: the worker's Redis user may not INCRBY (an ACL), which only the
    # counts' write uses. Counts queued again at every refusal failed every page after them.
    await redis_client.acl_setuser("worker", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all", "-incrby"])
    worker_redis = aioredis.Redis.from_url(redis_url, username="worker", password="secret")
    clock = Clock()
    index = DedupIndex(worker_redis, "refused", clock=clock)
    try:
        await index.classify(article("https://f.example/1", prose(21)))
        clock.refresh()
        with caplog.at_level(logging.ERROR, logger="workers.dedup.index"):
            assert (await index.classify(article("https://f.example/2", prose(22)))).status is Status.NEW
        assert "dropped" in caplog.text
        # Dropped, not queued again: once allowed, the flushes add what came after only.
        await redis_client.acl_setuser("worker", commands=["+incrby"])
        clock.refresh()
        await index.classify(article("https://f.example/3", prose(23)))
        await index.flush()
        assert await documents_counted(redis_client, "refused") == {f"refused:st:n:ar:{DAY}": 2}

        # An outage is no refusal: the counts wait for the flush after it.
        async def outage(*_: object) -> None:
            raise redis.ConnectionError("Redis is away")

        await index.classify(article("https://f.example/4", prose(24)))
        monkeypatch.setattr(index, "_add_counts", outage)
        with pytest.raises(redis.ConnectionError):
            await index.flush()
        monkeypatch.delattr(index, "_add_counts")
        await index.flush()
        assert await documents_counted(redis_client, "refused") == {f"refused:st:n:ar:{DAY}": 3}
    finally:
        await worker_redis.aclose()


def reply_lost_after_exec(monkeypatch: pytest.MonkeyPatch, lost: BaseException) -> None:
    """Make the next transaction that adds counts lose the reply to its EXEC, which Redis ran:
    ``lost`` is raised where the client reads that reply, as a timeout or a cancellation does."""
    execute_transaction = aioredis.client.Pipeline._execute_transaction
    pending = [lost]

    async def losing(pipe: aioredis.client.Pipeline, connection: object, commands: list, raise_on_error: bool):  # noqa: ANN202
        if not pending or not any(args[0] == "INCRBY" for args, _ in commands):
            return await execute_transaction(pipe, connection, commands, raise_on_error)
        pending.clear()
        replies = len(commands) + 1  # MULTI's OK and a QUEUED for each command; then EXEC's
        read = connection.read_response

        async def read_response(*args: object, **kwargs: object) -> object:
            nonlocal replies
            reply = await read(*args, **kwargs)
            replies -= 1
            if replies < 0:
                raise lost
            return reply

        connection.read_response = read_response
        try:
            return await execute_transaction(pipe, connection, commands, raise_on_error)
        finally:
            del connection.read_response

    monkeypatch.setattr(aioredis.client.Pipeline, "_execute_transaction", losing)


async def documents_and_counters(client: aioredis.Redis, prefix: str) -> tuple[int, np.ndarray]:
    """Today's number of documents counted in Redis and its DF counters."""
    documents = await client.get(f"{prefix}:st:n:ar:{DAY}")
    counters = stories.TermStats.from_days([await client.get(f"{prefix}:st:df:ar:{DAY}")], 0).counters
    return int(documents or 0), counters


async def classify_new(index: DedupIndex, numbers: range) -> None:
    for number in numbers:
        assert (await index.classify(article(f"https://h.example/{number}", prose(number)))).status is Status.NEW


async def test_counts_whose_reply_timed_out_after_redis_added_them_count_once(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # redis-py turns a timeout on the EXEC's reply into a WatchError while keys are watched, and
    # the transaction ran again: with a proxy delaying the reply, 3 articles counted as 6.
    index = DedupIndex(redis_client, "timeout")
    await classify_new(index, range(41, 44))
    reply_lost_after_exec(monkeypatch, redis.TimeoutError("Timeout reading from socket"))
    await index.flush()
    once = await documents_and_counters(redis_client, "timeout")
    assert once[0] == 3 and once[1].sum() > 0
    await index.flush()
    again = await documents_and_counters(redis_client, "timeout")
    assert again[0] == 3 and np.array_equal(again[1], once[1])


async def test_counts_of_a_flush_cancelled_after_redis_added_them_count_once(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flush is cancelled (or times out) while it waits for the reply: its counts were put back
    # and added again at the next flush. Counted meanwhile: a batch of its own, added then.
    index = DedupIndex(redis_client, "cancelled", clock=Clock())
    await classify_new(index, range(51, 54))
    reply_lost_after_exec(monkeypatch, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await index.flush()
    once = await documents_and_counters(redis_client, "cancelled")
    assert once[0] == 3
    await index.flush()
    again = await documents_and_counters(redis_client, "cancelled")
    assert again[0] == 3 and np.array_equal(again[1], once[1])

    await classify_new(index, range(54, 55))
    reply_lost_after_exec(monkeypatch, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await index.flush()  # a batch of 1
    await classify_new(index, range(55, 57))
    await index.flush()  # that batch again, and a batch of 2
    assert (await documents_and_counters(redis_client, "cancelled"))[0] == 6


async def test_counts_not_known_to_be_added_a_day_later_are_dropped_not_sent_again(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis remembers a batch it added for FLUSHED_MARKER_S: sent again after that, it would
    # count twice. (The marker is deleted here, as its expiry would.)
    clock = Clock()
    index = DedupIndex(redis_client, "forgotten", clock=clock)
    await classify_new(index, range(61, 63))
    reply_lost_after_exec(monkeypatch, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await index.flush()
    await redis_client.delete(*[key async for key in redis_client.scan_iter("forgotten:st:flushed:*")])
    clock.now += FLUSH_RESEND_S + 1
    with caplog.at_level(logging.ERROR, logger="workers.dedup.index"):
        await index.flush()
    assert "dropped: not known to be added" in caplog.text
    assert (await documents_and_counters(redis_client, "forgotten"))[0] == 2


async def test_articles_of_one_story_that_lose_a_race_retry_one_at_a_time(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A story breaking: reports of it in flight together in one worker, every one read before any
    # commits. Each that joins the story changes its version and fails the commits of the others:
    # retried all together, each round let one through, and most lost all their attempts.
    index = DedupIndex(redis_client, "wf", CONFIG)
    _, text_000 = seed(SEED_000)
    _, text_004 = seed(SEED_004)
    first = await index.classify(article("https://a.example/first", text_000))
    lines = [line for line in f"{text_000}\n{text_004}".splitlines() if line.strip()]
    reports = [
        article(f"https://outlet{number}.example/report", "\n".join(random.Random(number).sample(lines, len(lines) // 2)))
        for number in range(16)
    ]
    all_read, first_reads, attempts = asyncio.Event(), set(), Counter()
    real_lookup = DedupIndex._lookup

    async def lookup_all_before_any_commit(self: DedupIndex, art, terms):
        read = await real_lookup(self, art, terms)
        attempts[art.ref] += 1
        if attempts[art.ref] == 1:
            first_reads.add(art.ref)
            if len(first_reads) == len(reports):
                all_read.set()
            await all_read.wait()
        return read

    monkeypatch.setattr(DedupIndex, "_lookup", lookup_all_before_any_commit)
    decisions = await asyncio.gather(*(index.classify(report) for report in reports))
    assert {decision.story_id for decision in decisions} == {first.story_id}
    assert max(attempts.values()) <= 2  # lost at most once, then its turn
