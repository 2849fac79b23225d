"""Stage 1: raw Kafka bytes -> a validated page with its HTML as text.

Charset policy, in order: a byte-order mark; valid UTF-8 with non-ASCII in it (a legacy
encoding practically never produces it by accident, and pages re-saved as UTF-8 keep their old
``<meta charset>``: trafilatura decides the same way); the charset the crawler declared; the
page's own ``<meta charset>``. The first that decodes the bytes *strictly* wins. With no
declaration at all, statistical detection. A declared charset that does not decode the bytes,
with no other that does, fails the page: guessing would publish mojibake into a newsroom feed,
which is worse than a dead letter someone can look at.
"""

from __future__ import annotations

import binascii
import codecs
import json
import re
from dataclasses import dataclass

import charset_normalizer
from pydantic import ValidationError

from workers.models import RawPage
from workers.stages.outcome import Dropped, Failed, Kept, StageResult

STAGE = "decode"

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Browsers decode these labels with a superset (WHATWG Encoding Standard), and pages rely on it:
# a page labelled GB2312 routinely contains GBK characters, one labelled ISO-8859-1 uses
# windows-1252 quotes. Decoding them strictly with the narrow codec would fail real pages.
_WHATWG_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}


@dataclass(frozen=True, slots=True)
class DecodedPage:
    page: RawPage
    html: str
    encoding: str
    html_bytes: int

    @property
    def effective_url(self) -> str:
        return str(self.page.final_url or self.page.url)


def decode_message(value: bytes | None, *, max_html_bytes: int) -> StageResult[DecodedPage]:
    if not value:
        return Failed(STAGE, "empty_message", "EmptyMessage", "the message value is empty")
    try:
        payload = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Failed.from_exception(STAGE, "not_json", exc)
    if not isinstance(payload, dict):
        return Failed(STAGE, "not_an_object", "TypeError", f"expected a JSON object, got {type(payload).__name__}")
    try:
        page = RawPage.model_validate(payload)
    except ValidationError as exc:
        return Failed(STAGE, "schema", "ValidationError", _summarise(exc))

    if not 200 <= page.status < 300:
        return Dropped(STAGE, "http_status", f"HTTP status {page.status}")
    if page.content_type and not page.content_type.split(";")[0].strip().lower().startswith(_HTML_TYPES):
        return Dropped(STAGE, "not_html", f"content type {page.content_type!r}")

    if page.html is not None:
        html, encoding, size = page.html, "utf-8", len(page.html.encode("utf-8", "surrogatepass"))
        if size > max_html_bytes:
            return Dropped(STAGE, "too_large", f"{size} bytes of HTML > limit {max_html_bytes}")
    else:
        try:
            # binascii's strict mode validates in C; base64.b64decode(validate=True) runs a regex
            # over the whole page first and cost a fifth of the worker's CPU.
            raw = binascii.a2b_base64(page.html_b64 or "", strict_mode=True)
        except binascii.Error as exc:
            return Failed.from_exception(STAGE, "bad_base64", exc)
        size = len(raw)
        if size > max_html_bytes:
            return Dropped(STAGE, "too_large", f"{size} bytes of HTML > limit {max_html_bytes}")
        decoded = decode_html_bytes(raw, page.charset)
        if isinstance(decoded, Failed):
            return decoded
        html, encoding = decoded

    if not html.strip():
        return Dropped(STAGE, "empty_html", "the page has no content")
    if "\x00" in html[:4096]:
        return Failed(STAGE, "binary_content", "BinaryContent", "NUL bytes in the page: not HTML text")
    return Kept(DecodedPage(page=page, html=html, encoding=encoding, html_bytes=size))


def decode_html_bytes(raw: bytes, declared: str | None) -> tuple[str, str] | Failed:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            text = _strict(raw[len(bom) :], encoding)
            return (text, encoding) if text is not None else _mismatch(encoding, "byte-order mark")
    if not raw.isascii() and (text := _strict(raw, "utf-8")) is not None:
        return text, "utf-8"
    candidates: list[tuple[str, str]] = []
    if declared:
        candidates.append((declared, "declared by the crawler"))
    meta = _META_CHARSET.search(raw[:8192])
    if meta:
        candidates.append((meta.group(1).decode("ascii", "replace"), "<meta charset>"))
    unknown = [name for name, _ in candidates if _codec_name(name) is None]
    for name, _origin in candidates:
        codec = _codec_name(name)
        if codec and (text := _strict(raw, codec)) is not None:
            return text, codec
    if candidates:
        if unknown and len(unknown) == len(candidates):
            return Failed(STAGE, "unknown_charset", "LookupError", f"unknown charset(s): {', '.join(unknown)}")
        return _mismatch(candidates[0][0], candidates[0][1])
    if raw.isascii():
        return raw.decode("ascii"), "ascii"
    best = charset_normalizer.from_bytes(raw).best()
    if best is None:
        return Failed(STAGE, "undetectable_charset", "UnicodeDecodeError", "no charset decodes these bytes")
    return str(best), _codec_name(best.encoding) or best.encoding


def _codec_name(name: str) -> str | None:
    try:
        codec = codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None
    return _WHATWG_SUPERSETS.get(codec, codec)


def _strict(raw: bytes, codec: str) -> str | None:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        return None


def _mismatch(charset: str, origin: str) -> Failed:
    return Failed(
        STAGE,
        "charset_mismatch",
        "UnicodeDecodeError",
        f"the bytes are not valid {charset} ({origin}), and no other declared charset decodes them",
    )


def _summarise(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:10])
