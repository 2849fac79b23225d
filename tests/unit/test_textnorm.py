"""Normalisation and tokenising for matching (workers/textnorm.py)."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from workers.textnorm import (
    _ARABIC_LETTERS,
    _DELETE,
    MATCHED_CHARS,
    _reference_normalize,
    fold_dotless_i,
    matched_text,
    normalize,
    term,
    token_lines,
    tokenize,
)

from tests.shared_data import BENCH, SEEDS

SEED_FILES = sorted(SEEDS.glob("*.txt"))


def terms(text: str) -> list[str]:
    return [term(t) for t in tokenize(normalize(text))]


# --- normalize -------------------------------------------------------------------------------


def test_arabic_diacritics_and_tatweel_are_dropped() -> None:
    assert normalize("مَدْرَسَةٌ") == normalize("مدرسة")
    assert normalize("كـــتاب") == "كتاب"
    assert normalize("التقدّم") == normalize("التقدم")


def test_hebrew_points_and_cantillation_are_dropped_but_not_its_punctuation() -> None:
    assert normalize("יְרוּשָׁלַיִם") == normalize("ירושלים") == "ירושלים"
    assert normalize("בְּרֵאשִׁ֖ית") == "בראשית"  # a cantillation mark (tipcha) as well
    assert normalize("\ufb2a\ufb2bלום") == "ששלום"  # presentation forms with shin and sin dots
    # maqaf, paseq, sof pasuq and nun hafukha separate words or sentences
    for punctuation in "\u05be\u05c0\u05c3\u05c6":
        assert normalize(f"בית{punctuation}משפט") == f"בית{punctuation}משפט"
    pointed = "הַמֶּמְשָׁלָה אִשְּׁרָה בִּירוּשָׁלַיִם שִׂיחוֹת \ufb2aלום ה\u05c7"
    assert normalize(pointed) == _reference_normalize(pointed) == specified_normalize(pointed)


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
        assert normalize(text) == _reference_normalize(text) == specified_normalize(text)


def specified_normalize(text: str) -> str:
    """What normalize is, character by character as first written: stored hashes (fingerprints,
    chrome block hashes) rest on it, so its output may never change. (Hebrew points joined what
    it deletes later: only text that has them normalises otherwise, which the pinned hashes of
    tests/unit/test_stored_hashes.py do not see.)"""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(_ARABIC_LETTERS.get(c, c) for c in text)
    text = _DELETE.sub("", unicodedata.normalize("NFD", text))
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    return unicodedata.normalize("NFC", text)


# Outside the BMP: emoji (a flag, a skin tone, a keycap), mathematical letters and digits (NFKC
# folds them), Deseret capitals (case folding), Osmanya digits, Kaithi letters that compose, and
# combining marks of both planes after a letter.
ASTRAL_TEXTS = [
    "Talks in Geneva 😀 continue 🇸🇾 👍🏽 1\ufe0f\u20e3",
    "𝐀𝐋𝐄𝐏𝐏𝐎 𝟐𝟎𝟏𝟔 𝔾𝕖𝕟𝕖𝕧𝕒",
    "𐐀𐐁𐐂 deseret 𐒠𐒡𐒢 osmanya",
    "\U00011099\U000110ba kaithi, e\u0301\U0001d167 and é\U0001d165",
    "كيري: الجهود ستتواصل بشأن حلب 🇸🇾 والجيش السوري يستمر في التقدّم ٢٠١٦",
    "北京大学今天宣布😀了一项新的研究计划",
]


@pytest.mark.parametrize("text", ASTRAL_TEXTS)
def test_text_outside_the_bmp_normalises_as_specified(text: str) -> None:
    assert normalize(text) == specified_normalize(text)
    seed = SEED_FILES[0].read_text(encoding="utf-8")
    assert normalize(seed + text + seed) == specified_normalize(seed + text + seed)


def test_one_character_outside_the_bmp_costs_passes_over_the_text_not_a_step_per_character() -> None:
    # An emoji in a long page sent normalize through Python code per character (seconds for
    # megabytes, on the event loop). Counted in Python-level calls, not timed: the same on any machine.
    text = SEED_FILES[0].read_text(encoding="utf-8") * 40 + " 😀"
    calls = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        normalized = normalize(text)
    finally:
        sys.setprofile(None)
    assert normalized == specified_normalize(text)
    assert len(text) > 100_000 and calls < 100


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


def test_matching_reads_a_bounded_beginning_cut_between_words() -> None:
    short = "Talks continue in Geneva."
    assert matched_text(short) is short
    words = "Talks continue in Geneva. " * (MATCHED_CHARS // 10)
    read = matched_text(words)
    assert MATCHED_CHARS - 100 <= len(read) <= MATCHED_CHARS and words.startswith(read)
    assert tokenize(normalize(read))[-1] in {"talks", "continue", "in", "geneva"}
    # No space near the bound (Chinese): cut at it; its tokens are character pairs of the text.
    chinese = "北京大学今天宣布" * MATCHED_CHARS
    assert matched_text(chinese) == chinese[:MATCHED_CHARS]


def test_a_persian_word_matches_with_or_without_its_zero_width_non_joiner():
    assert normalize("تحریم\u200cها") == normalize("تحریمها")
    assert normalize("ශ්\u200dරී") == normalize("ශ්රී")


def test_invisible_format_characters_do_not_split_or_change_a_word_for_matching():
    assert normalize("Über\u00adle\u00adbens") == normalize("Überlebens") == "uberlebens"
    assert tokenize(normalize("Demo\u00adkratie heute")) == ["demokratie", "heute"]
    assert normalize("المؤشر \u200f%3.5\u200f") == normalize("المؤشر %3.5")
    assert normalize("word\u2060joiner\ufeff") == "wordjoiner"
    # the tag characters of a flag emoji (plane 14)
    assert normalize("flag \U0001f3f4\U000e0067\U000e0062\U000e007f") == normalize("flag \U0001f3f4")


@pytest.mark.parametrize(
    "text",
    [unicodedata.normalize("NFD", "أعلن مسؤول أميركي"), "ｶﾞｿﾘﾝ価格が上昇", "e\u0301cole", unicodedata.normalize("NFD", "북한")],
)
def test_text_that_composes_across_characters_normalises_as_specified(text: str) -> None:
    # The fast path folds one character at a time: a decomposed hamza came out as "مسوول" (its
    # reference: "مسءول"), half-width kana with their voicing marks as unvoiced kana
    assert normalize(text) == _reference_normalize(text) == specified_normalize(text)


def test_dotless_i_meets_i_only_where_matching_asks_for_it() -> None:
    assert fold_dotless_i(normalize("DİYARBAKIR")) == fold_dotless_i(normalize("Diyarbakır")) == "diyarbakir"
    assert normalize("Diyarbakır") == "diyarbakır"  # normalize's output, which stored hashes rest on, stays
