"""wirefeed: crawled news pages in, clean, deduplicated articles out."""

__version__ = "0.1.0"

# Bumped whenever a change to extraction or enrichment can change an article's content.
# Stored on every record so that a replay replaces only what an older pipeline produced.
PIPELINE_VERSION = 1
