"""Warms the extraction code up in the pool's forkserver, before it forks any worker.

The forkserver imports this module (``ExtractionPool``, workers/pool.py), so every extraction
process, the first ones and each replacement (after ``extraction_tasks_per_process`` pages, a
timeout or a crash), is forked warm and shares the warm state copy-on-write. A cold process
pays, over its first few hundred pages, about 15 ms more per page (bench, 300 bench pages cold
vs warm): justext loads its stop lists, readability and htmldate compile their patterns, and
dateparser builds the word patterns of each of its ~200 locales the first time htmldate gives
it a date written in words (~2 s of CPU alone).
"""

from __future__ import annotations

import logging

from htmldate.extractors import get_external_parser

from workers import SAMPLE_PAGES
from workers.stages.decode import decode_html_bytes
from workers.stages.extract import ExtractionOptions, extract_document

log = logging.getLogger(__name__)

# A date no locale reads: dateparser then tries, and so prepares, every one of its locales.
_UNREADABLE_DATE = "zzqx 1"


def warm_up() -> None:
    try:
        get_external_parser().get_date_data(_UNREADABLE_DATE)
        for path in sorted(SAMPLE_PAGES.glob("*.html")):
            decoded = decode_html_bytes(path.read_bytes(), None)
            if isinstance(decoded, tuple):
                extract_document(decoded[0], f"https://warm-up.wirefeed.invalid/{path.stem}", ExtractionOptions())
    except Exception:  # noqa: BLE001 - a failed warm-up only costs speed; the forkserver must start
        log.exception("extraction warm-up failed; processes start cold")


warm_up()
