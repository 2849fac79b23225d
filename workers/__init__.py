"""wirefeed: crawled news pages in, clean, deduplicated articles out."""

from pathlib import Path

__version__ = "0.1.0"

# Bumped whenever a change to extraction or enrichment can change an article's content.
# Stored on every record so that a replay replaces only what an older pipeline produced.
PIPELINE_VERSION = 1

# The bundled sample pages (their sources in samples/pages/SOURCES.md): the demo feeds them, the
# extraction pool warms up on them, the tests use them.
SAMPLE_PAGES = Path(__file__).resolve().parent / "samples" / "pages"
