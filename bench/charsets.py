#!/usr/bin/env python3
"""Charset benchmark: real pages and texts of every script, encoded in their legacy charsets with
every charset label removed, through the decode stage as a crawler that names no charset sends
them.

    python bench/charsets.py [--bench ../shared/bench] [--out FILE] [--failures]

The texts: the seed pages (Arabic; their sample pages in workers/samples/pages), the Arabic set,
the non-Latin and Central European, Turkish, Vietnamese pages of DAnIEL, fundus, scrapinghub and
trafilatura_eval, Western European fundus pages as a control, and Hebrew and Thai news items
(tests/fixtures/charsets: the bench sets have no Hebrew or Thai page). Each is encoded in each
legacy charset of its language (characters the charset lacks as numeric character references, as
a CMS writes them; Vietnamese in windows-1258 with the combining tone marks it needs) in three
sizes:

* ``page``: the whole page, as published, with its ``<meta charset>``, ``http-equiv`` and XML
  declaration labels removed (its ``<html lang>`` stays, as published);
* ``short``: the title and first paragraph (200-2000 bytes) in a bare page, no language declared;
* ``short+lang``: the same with ``<html lang>``.

Each goes through ``decode_message`` (the stage's entry point) with ``content_type: text/html``
and is counted as ``correct`` (the charset it was encoded in), ``equivalent`` (another charset,
the same text), ``mojibake`` (other text) or ``dead_letter`` (failed, with its reason).
"""

from __future__ import annotations

import argparse
import base64
import html as html_lib
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import decoded_html, emit, read_jsonl  # noqa: E402

from workers import SAMPLE_PAGES  # noqa: E402
from workers.stages.decode import decode_message  # noqa: E402
from workers.stages.outcome import Failed, Kept  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "charsets"
CYRILLIC = ("cp1251", "koi8-r", "iso8859-5")
CENTRAL_EUROPEAN = ("cp1250", "iso8859-2")
# language -> (the group it is tabulated in, the legacy charsets its pages were published in)
LEGACY: dict[str, tuple[str, tuple[str, ...]]] = {
    "ar": ("Arabic", ("cp1256", "iso8859-6")),
    "ru": ("Cyrillic", CYRILLIC),
    "uk": ("Cyrillic", CYRILLIC),
    "bg": ("Cyrillic", CYRILLIC),
    "el": ("Greek", ("cp1253", "iso8859-7")),
    "he": ("Hebrew", ("cp1255", "iso8859-8")),
    "zh-hans": ("Chinese", ("gb18030",)),
    "zh-hant": ("Chinese", ("big5hkscs",)),
    "ja": ("Japanese", ("cp932", "euc_jp")),
    "ko": ("Korean", ("cp949",)),
    "th": ("Thai", ("cp874",)),
    "pl": ("Central European", CENTRAL_EUROPEAN),
    "cs": ("Central European", CENTRAL_EUROPEAN),
    "tr": ("Turkish", ("cp1254",)),
    "vi": ("Vietnamese", ("cp1258",)),
    "fr": ("Western (control)", ("cp1252",)),
    "es": ("Western (control)", ("cp1252",)),
    "it": ("Western (control)", ("cp1252",)),
}
# the language of a page its dataset gives no language for, by its script
_BY_SCRIPT = {"ARABIC": "ar", "CYRILLIC": "ru", "CJK": "zh", "JAPANESE_KANA": "ja", "HANGUL": "ko", "GREEK": "el"}
_LABELS = re.compile(
    r"<meta[^>]*charset[^>]*>|<\?xml[^>]*\?>|(?<=[\s;])charset\s*=\s*[\w.:-]+", re.IGNORECASE
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_PARAGRAPH = re.compile(r"<p[^>]*>(.*?)</p>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SHORT_MIN, _SHORT_MAX = 200, 2000
SIZES = ("page", "short", "short+lang")
OUTCOMES = ("correct", "equivalent", "mojibake", "dead_letter")


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    lang: str
    html: str
    title: str
    paragraphs: tuple[str, ...]


def _plain(fragment: str) -> str:
    return " ".join(html_lib.unescape(_TAG.sub(" ", fragment)).split())


def _source(name: str, lang: str, page: str, text: str | None = None, title: str | None = None) -> Source:
    if title is None:
        found = _TITLE.search(page)
        title = _plain(found.group(1)) if found else ""
    lines = (text or "").splitlines() or [_plain(p) for p in _PARAGRAPH.findall(page)]
    paragraphs = tuple(line.strip() for line in lines if len(line.strip()) >= 20)
    return Source(name, lang, page, title, paragraphs)


def sources(bench: Path) -> Iterator[Source]:
    """The real texts, each with its language."""
    for seed in ("seed-000-irfaasawtak", "seed-004-masr-news"):
        yield _source(f"seeds/{seed}", "ar", decoded_html((SAMPLE_PAGES / f"{seed}.html").read_bytes()))
    for record in read_jsonl(bench / "arabic" / "manifest.jsonl"):
        page = decoded_html((bench / "arabic" / record["file"]).read_bytes())
        yield _source(f"arabic/{record['id']}", "ar", page, record.get("expected_text"))
    for dataset in ("daniel", "fundus", "scrapinghub", "trafilatura_eval"):
        for record in read_jsonl(bench / dataset / "ground_truth.jsonl"):
            lang = (record.get("lang") or _BY_SCRIPT.get(record.get("script") or "", "")).lower()
            if lang != "zh" and lang not in LEGACY:
                continue
            page = decoded_html((bench / dataset / f"{record['id']}.html").read_bytes())
            yield _source(f"{dataset}/{record['id']}", lang, page, record.get("text"), record.get("title"))
    for path in sorted(FIXTURES.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        body = "".join(f"<h2>{title}</h2><p>{text}</p>" for title, text in zip(lines[::2], lines[1::2]))
        page = f"<html><head><title>{lines[0]}</title></head><body>{body}</body></html>"
        yield _source(f"fixtures/{path.stem}", path.stem.split("-")[0], page, "\n".join(lines[1:]), lines[0])


def _chinese_variant(text: str) -> str:
    """zh-hant when the text is Traditional Chinese (Big5 has more of its characters than GB2312)."""
    han = [char for char in text if "\u4e00" <= char <= "\u9fff"]

    def missing(codec: str) -> int:
        return sum(1 for char in han if not _encodable(char, codec))

    return "zh-hant" if missing("big5") < missing("gb2312") else "zh-hans"


def _encodable(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def encode(text: str, codec: str) -> bytes:
    """The text as a legacy site serves it: characters the charset lacks as numeric references;
    Vietnamese in windows-1258, which has few precomposed letters, with combining tone marks."""
    if codec != "cp1258":
        return text.encode(codec, errors="xmlcharrefreplace")
    out = []
    for char in text:
        decomposed = unicodedata.normalize("NFD", char)
        for candidate in (char, unicodedata.normalize("NFC", decomposed[:2]) + decomposed[2:], decomposed):
            if all(_encodable(part, codec) for part in candidate):
                out.append(candidate.encode(codec))
                break
        else:
            out.append(char.encode(codec, errors="xmlcharrefreplace"))
    return b"".join(out)


def short_page(source: Source, codec: str, lang: str | None) -> bytes | None:
    """The title and first paragraphs, 200 to 2000 bytes of text, in a bare page."""
    text = ""
    for paragraph in source.paragraphs:
        text = f"{text} {paragraph}".strip()
        if len(encode(source.title + text, codec)) >= _SHORT_MIN:
            break
    while len(encode(source.title + text, codec)) > _SHORT_MAX:
        text = text[: len(text) * 9 // 10]
    if len(encode(source.title + text, codec)) < _SHORT_MIN:
        return None
    opening = f'<html lang="{lang}">' if lang else "<html>"
    page = f"{opening}<head><title>{source.title}</title></head><body><h1>{source.title}</h1><p>{text}</p></body></html>"
    return encode(page, codec)


def outcome(raw: bytes, codec: str) -> tuple[str, str]:
    """How the decode stage read bytes encoded in ``codec``, and what it answered."""
    value = json.dumps({
        "url": "https://bench.wirefeed.invalid/charsets", "fetched_at": "2026-11-22T10:00:00Z",
        "content_type": "text/html", "html_b64": base64.b64encode(raw).decode(),
    }).encode()
    result = decode_message(value, max_html_bytes=32 * 1024 * 1024)
    if isinstance(result, Failed):
        return "dead_letter", result.reason
    assert isinstance(result, Kept)
    if result.value.encoding == codec:
        return "correct", codec
    if result.value.html == raw.decode(codec):
        return "equivalent", result.value.encoding
    return "mojibake", result.value.encoding


def run(bench: Path) -> dict[str, object]:
    table: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    by_codec: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    wrong = []
    for source in sources(bench):
        lang = _chinese_variant(source.html) if source.lang == "zh" else source.lang
        group, codecs = LEGACY[lang]
        unlabelled = _LABELS.sub("", source.html)
        for codec in codecs:
            cases = {
                "page": encode(unlabelled, codec),
                "short": short_page(source, codec, None),
                "short+lang": short_page(source, codec, source.lang),
            }
            for size, raw in cases.items():
                if raw is None:
                    continue
                result, answer = outcome(raw, codec)
                table[group][size][result] += 1
                by_codec[codec][size][result] += 1
                if result in ("mojibake", "dead_letter"):
                    wrong.append({"source": source.name, "codec": codec, "size": size, "outcome": result, "answer": answer})
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for sizes in table.values():
        for size, counts in sizes.items():
            totals[size].update(counts)
    return {
        "by_script": {group: _ordered(sizes) for group, sizes in sorted(table.items())},
        "by_charset": {codec: _ordered(sizes) for codec, sizes in sorted(by_codec.items())},
        "total": _ordered(totals),
        "wrong": wrong,
    }


def _ordered(sizes: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    return {size: {name: sizes[size][name] for name in OUTCOMES} for size in SIZES if size in sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=REPO.parent / "shared" / "bench")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--failures", action="store_true", help="list every mojibake and dead letter")
    args = parser.parse_args()
    result = run(args.bench)
    if not args.failures:
        result["wrong"] = len(result["wrong"])  # type: ignore[arg-type]
    emit(result, args.out)


if __name__ == "__main__":
    main()
