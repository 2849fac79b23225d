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

import os

# py3langid imports numpy, and numpy's OpenBLAS starts a thread per CPU (up to 64) on import, each
# with a buffer of its own (~41 MB of address space per CPU). Every extraction process is forked
# from this process and inherits those mappings (not the threads), and its RLIMIT_AS counts them:
# with 64 CPUs they alone exceed the default extraction_memory_limit_mb, and container CPU limits
# do not change the CPU count OpenBLAS sees. An extraction process does one page on one core, so
# no BLAS or OpenMP thread pool. Set before anything in the forkserver imports numpy: this module
# is the first it imports (workers/__init__.py imports nothing that does).
for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_threads] = "1"

import logging  # noqa: E402

from htmldate.extractors import get_external_parser  # noqa: E402

from workers import SAMPLE_PAGES  # noqa: E402
from workers.stages.decode import decode_html_bytes  # noqa: E402
from workers.stages.extract import ExtractionOptions, extract_document  # noqa: E402

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
