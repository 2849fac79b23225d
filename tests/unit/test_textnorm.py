"""Normalisation and tokenising for matching (workers/textnorm.py)."""

from __future__ import annotations

import json
import re
import sys
import unicodedata

import pytest

from workers.textnorm import (
    _ARABIC_LETTERS,
    _DELETE,
    COMBINING_MARKS,
    MATCHED_CHARS,
    _reference_normalize,
    fold_dotless_i,
    is_unspaced,
    matched_text,
    normalize,
    strip_format_characters,
    term,
    token_lines,
    tokenize,
    word_count,
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
    [
        unicodedata.normalize("NFD", "أعلن مسؤول أميركي"), "ｶﾞｿﾘﾝ価格が上昇", "e\u0301cole", unicodedata.normalize("NFD", "북한"),
        "ㅎㅏㄴ국 ㅋㅋ", "\uffa1\uffc2 \uffbe\uffc2\uffa4",
    ],
)
def test_text_that_composes_across_characters_normalises_as_specified(text: str) -> None:
    # The fast path folds one character at a time: a decomposed hamza came out as "مسوول" (its
    # reference: "مسءول"), half-width kana with their voicing marks as unvoiced kana, Hangul
    # letters written apart (compatibility or half-width jamo) as conjoining jamo, not syllables
    assert normalize(text) == _reference_normalize(text) == specified_normalize(text)


def test_dotless_i_meets_i_only_where_matching_asks_for_it() -> None:
    assert fold_dotless_i(normalize("DİYARBAKIR")) == fold_dotless_i(normalize("Diyarbakır")) == "diyarbakir"
    assert normalize("Diyarbakır") == "diyarbakır"  # normalize's output, which stored hashes rest on, stays


# --- found by mutation testing ----------------------------------------------------------------


def test_persian_keyboard_yeh_and_kaf_become_arabic_ones() -> None:
    assert normalize("علی") == normalize("علي") == "علي"
    assert normalize("کتاب") == normalize("كتاب") == "كتاب"


def test_stripping_format_characters_keeps_everything_a_reader_sees() -> None:
    assert strip_format_characters("Über\u00adle\u200bbens تحریم\u200cها") == "Überlebens تحریمها"


def test_combining_marks_are_the_letters_marks_but_not_the_variation_selectors() -> None:
    marks = re.compile(f"[{COMBINING_MARKS}]")
    # an accent (Mn), a Devanagari vowel sign (Mc), a Thai tone mark (Mn), a musical stem (Mc, plane 1)
    for mark in ("\u0301", "\u093f", "\u0e48", "\U0001d165"):
        assert marks.fullmatch(mark), hex(ord(mark))
    # the first and last variation selectors of both blocks, the enclosing keycap (Me), a letter
    for other in ("\ufe00", "\ufe0f", "\U000e0100", "\U000e01ef", "\u20e3", "a"):
        assert not marks.match(other), hex(ord(other))


@pytest.mark.parametrize(
    "letter",
    [
        "\u0e01",  # Thai
        "\u0e81",  # Lao
        "\u1000",  # Myanmar, first
        "\u1100",  # Hangul Jamo, first
        "\u11ff",  # Hangul Jamo, last
        "\ua960",  # Hangul Jamo extended A, first
        "\uac00",  # Hangul syllables, first
        "\ud7b0",  # Hangul Jamo extended B, first
        "\u1780",  # Khmer, first
        "\u3005",  # ideographic iteration mark
        "\u3007",  # ideographic zero
        "\u303b",  # vertical ideographic iteration mark
        "\u3041",  # Hiragana
        "\u30fe",  # Katakana voiced iteration mark
        "\u3400",  # CJK extension A, first
        "\u4dbf",  # CJK extension A, last
        "\u4e00",  # CJK unified ideographs, first
        "\u9fff",  # CJK unified ideographs, last
        "\ufa0e",  # a CJK compatibility ideograph that NFKC keeps
        "\U00020000",  # CJK extension B, first
    ],
)
def test_every_script_without_spaces_becomes_bigrams_up_to_its_edges(letter: str) -> None:
    run = letter * 3
    assert normalize(run) == run
    assert tokenize(run) == [letter * 2, letter * 2]
    assert is_unspaced(letter * 2)


@pytest.mark.parametrize(
    "letter",
    [
        "\u0f00",  # Tibetan, after Thai and Lao
        "\u10ff",  # Georgian, before Hangul Jamo
        "\u1200",  # Ethiopic, after Hangul Jamo
        "\u312f",  # Bopomofo, before the Hangul compatibility Jamo
        "\u303c",  # the masu mark, after the vertical iteration mark
        "\ua000",  # Yi, after the CJK unified ideographs
        "\ua980",  # a Javanese sign, after Hangul Jamo extended A
    ],
)
def test_the_letters_beside_the_scripts_without_spaces_stay_words(letter: str) -> None:
    word = letter * 3
    assert normalize(word) == word
    assert tokenize(word) == [word]
    assert not is_unspaced(word)


def test_a_word_with_two_runs_without_spaces_splits_both_into_bigrams() -> None:
    assert tokenize(normalize("x北京大学y东京大学")) == ["x", "北京", "京大", "大学", "y", "东京", "京大", "大学"]


def test_a_token_is_unspaced_when_it_begins_with_a_script_without_spaces() -> None:
    assert is_unspaced("北京") and is_unspaced("北")
    assert not is_unspaced("talks") and not is_unspaced("a北")


def test_a_bigram_counts_as_half_a_word() -> None:
    assert word_count([]) == 0
    assert word_count(["talks"]) == 1
    assert word_count(["talks", "geneva"]) == 2
    assert word_count(["talks", "北京", "京大", "大学"]) == 2.5


def test_a_text_up_to_the_bound_is_read_whole_even_with_a_space_near_its_end() -> None:
    text = "x" * (MATCHED_CHARS - 10) + " Geneva..."
    assert len(text) == MATCHED_CHARS
    assert matched_text(text) == text


def test_the_cut_goes_back_to_a_space_at_most_a_hundred_characters_before_the_bound() -> None:
    within = "x" * (MATCHED_CHARS - 100) + " " + "y" * 200
    assert matched_text(within) == "x" * (MATCHED_CHARS - 100)
    beyond = "x" * (MATCHED_CHARS - 101) + " " + "y" * 200
    assert matched_text(beyond) == beyond[:MATCHED_CHARS]


def test_arabic_terms_lose_one_prefix_and_one_suffix_of_those_listed() -> None:
    forms = ["معلم", "المعلم", "والمعلم", "بالمعلم", "كالمعلم", "فالمعلم", "للمعلم", "ومعلم"]
    forms += ["معلمها", "معلمان", "معلمات", "معلمون", "معلمين", "معلميه", "معلمة", "معلمي"]
    assert {term(normalize(form)) for form in forms} == {"معلم"}
    # one prefix: the word's own و after the article stays
    assert term(normalize("والوزير")) == term(normalize("الوزير")) == "وزير"
    # one suffix: the yeh before the possessive stays
    assert term(normalize("معلميها")) == "معلمي"


def test_arabic_affixes_come_off_only_when_three_letters_remain() -> None:
    assert term(normalize("البيت")) == term(normalize("بيتها")) == "بيت"
    assert term(normalize("ولد")) == "ولد"  # a boy, not و + لد
    assert term(normalize("بيان")) == "بيان"  # a statement, not بي + ان


def test_other_tokens_are_cut_to_six_characters() -> None:
    assert terms("Washington Washingtons Putin") == ["washin", "washin", "putin"]
