"""Pure parts of deduplication and stories (workers/dedup/minhash.py, stories.py, the decision)."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from workers.dedup import minhash, stories
from workers.dedup.index import DedupConfig, DedupDecision, Status
from workers.textnorm import normalize, token_lines, tokenize, word_count

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
