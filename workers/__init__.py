"""wirefeed: crawled news pages in, clean, deduplicated articles out."""

from pathlib import Path

__version__ = "0.1.0"

# Bumped whenever a change to extraction or enrichment can change an article's content, or a
# change to workers.urlnorm its id. Stored on every record so that a replay replaces only what an
# older pipeline produced. 2: canonical URLs keep every query parameter but trackers (version 1
# kept only a short list, so ?newsid=1 and ?newsid=2 were one article). 3: a query parameter
# without a value (news.php?120345) is kept, a query's escapes that are not UTF-8 stay their bytes,
# hosts only IDNA 2008 reads are in Unicode and a host's trailing dot goes (each made one id of
# two articles, or two of one).
PIPELINE_VERSION = 3

# The bundled sample pages (their sources in samples/pages/SOURCES.md): the demo feeds them, the
# extraction pool warms up on them, the tests use them.
SAMPLE_PAGES = Path(__file__).resolve().parent / "samples" / "pages"
