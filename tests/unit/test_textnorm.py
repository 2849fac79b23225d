"""Normalisation and tokenising for matching (workers/textnorm.py)."""

from __future__ import annotations

import json

import pytest

from workers.textnorm import _reference_normalize, normalize, term, token_lines, tokenize

from tests.shared_data import BENCH, SEEDS

SEED_FILES = sorted(SEEDS.glob("*.txt"))


def terms(text: str) -> list[str]:
    return [term(t) for t in tokenize(normalize(text))]


# --- normalize -------------------------------------------------------------------------------


def test_arabic_diacritics_and_tatweel_are_dropped() -> None:
    assert normalize("مَدْرَسَةٌ") == normalize("مدرسة")
    assert normalize("كـــتاب") == "كتاب"
    assert normalize("التقدّم") == normalize("التقدم")


@pytest.mark.parametrize("alef", ["أ", "إ", "آ", "ٱ"])
def test_alef_forms_become_bare_alef(alef: str) -> None:
    assert normalize(alef + "حمد") == "احمد"


def test_alef_maqsura_taa_marbuta_and_hamza_seats() -> None:
    assert normalize("الرئيسى") == normalize("الرئيسي")  # the seed pages' two spellings
    assert normalize("مدرسة") == "مدرسه"
    assert normalize("مسئول") == normalize("مسؤول")


def test_the_two_spellings_of_american_meet_as_terms() -> None:
    # أميركي (seed 000) and أمريكي (seed 004) differ by the place of a long vowel.
    assert term(normalize("أميركي")) == term(normalize("أمريكي"))
    assert terms("الأميركية") == terms("الأمريكية")
    assert terms("الأميركي والروسي") == terms("الأمريكي والروسى")


def test_short_arabic_words_keep_their_long_vowels() -> None:
    # Only long stems lose them: writer (كاتب) and books (كتب) stay apart.
    assert terms("كاتب") != terms("كتب")


def test_arabic_clitics_are_stripped_from_terms() -> None:
    forms = ["حكومة", "الحكومة", "والحكومة", "بالحكومة", "للحكومة"]
    assert len({tuple(terms(form)) for form in forms}) == 1


def test_digits_of_every_script_become_ascii() -> None:
    assert normalize("٢٠١٦") == "2016"
    assert normalize("۲۰۱۶") == "2016"  # Persian
    assert normalize("२०१६") == "2016"  # Devanagari


def test_nfkc_casefold_and_accents() -> None:
    assert normalize("ﬁnal ＡＢＣ") == "final abc"
    assert normalize("ÉCOLE Straße") == "ecole strasse"
    assert normalize("İstanbul") == "istanbul"
    assert normalize("non\u00a0breaking") == "non breaking"


def test_fast_normalize_equals_its_definition_on_real_text() -> None:
    texts = [p.read_text(encoding="utf-8") for p in SEED_FILES]
    texts += [
        "北京大学 東京タワー ภาษาไทย हिन्दी Ελληνικά Кириллица ﻻ ²³ ①",
        "İSTANBUL'DA ÇOK GÜZEL",
    ]
    pairs = BENCH / "semeval8" / "pairs.jsonl"
    with pairs.open(encoding="utf-8") as lines:
        for line, _ in zip(lines, range(200), strict=False):
            row = json.loads(line)
            texts += [row["text1"] or "", row["title1"] or ""]
    for text in texts:
        assert normalize(text) == _reference_normalize(text)


# --- tokenize --------------------------------------------------------------------------------


def test_cjk_runs_become_character_bigrams() -> None:
    assert tokenize(normalize("北京大学")) == ["北京", "京大", "大学"]
    assert tokenize(normalize("东京タワー")) == ["东京", "京タ", "タワ", "ワー"]
    assert tokenize(normalize("中")) == ["中"]


def test_thai_has_no_spaces_either() -> None:
    assert tokenize(normalize("ภาษาไทย")) == ["ภา", "าษ", "ษา", "าไ", "ไท", "ทย"]


def test_korean_words_become_syllable_bigrams_so_particles_do_not_hide_them() -> None:
    assert tokenize(normalize("북한이 미사일을")) == ["북한", "한이", "미사", "사일", "일을"]
    assert tokenize(normalize("북한 발사")) == ["북한", "발사"]


def test_mixed_scripts_and_marks() -> None:
    assert tokenize(normalize("abc北京 def")) == ["abc", "北京", "def"]
    # Devanagari vowel signs are combining marks: words stay whole.
    assert tokenize(normalize("हिन्दी भाषा")) == ["हिन्दी", "भाषा"]
    assert tokenize(normalize("snake_case, U.S. l'état")) == [
        "snake",
        "case",
        "u",
        "s",
        "l",
        "etat",
    ]


def test_token_lines_keep_line_structure_for_every_script() -> None:
    text = "First line, here.\n\n  \nSecond 北京大学\r\nthird\u2028fourth"
    assert token_lines(text) == [
        ["first", "line", "here"],
        ["second", "北京", "京大", "大学"],
        ["third"],
        ["fourth"],
    ]
    seed = SEED_FILES[0].read_text(encoding="utf-8")
    assert token_lines(seed) == [
        t for line in normalize(seed).splitlines() if (t := tokenize(line))
    ]
    assert token_lines("") == []


def test_prefix_truncation_joins_inflected_forms() -> None:
    assert terms("Türkiye'nin")[0] == terms("Türkiye'de")[0] == terms("TÜRKİYE")[0]
