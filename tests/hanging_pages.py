"""A worker whose extraction of one host's pages never ends, for tests that need pages in flight
until the extraction timeout: a real slow page's time depends on the machine and its load (one
that ran past a 60 s timeout on a busy CI machine took 25 s on a quiet one)."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit

from workers.stages import extract

HANGING_HOST = "hangs.example"
_extract_document = extract.extract_document


def extract_document(html: str, url: str, *args, **kwargs) -> extract.ExtractedDocument:
    if urlsplit(url).hostname == HANGING_HOST:
        threading.Event().wait()
    return _extract_document(html, url, *args, **kwargs)


# Run in the worker process before the worker (WorkerProcess's preamble). The pool sends its
# extraction processes the function by name, so they import this module: the tests directory
# goes on the path they are started with.
PREAMBLE = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import hanging_pages
from workers.stages import extract
extract.extract_document = hanging_pages.extract_document
"""
