"""The tuning defaults that the pure parts carry for their own tests and benchmarks are the
settings' defaults: the values chosen by measurement live in workers/settings.py, and a copy
that drifted from them would make bench/dedup.py report one configuration while workers ran
another."""

from __future__ import annotations

from workers.chrome_index import ChromeIndexSettings
from workers.chrome_index import settings_from as chrome_settings_from
from workers.dedup.index import DedupConfig
from workers.settings import Settings
from workers.stages.extract import ExtractionOptions

# The fields' defaults, not this machine's environment or .env file.
DEFAULTS = Settings.model_construct()


def test_the_dedup_defaults_are_the_settings_defaults():
    assert DedupConfig() == DedupConfig.from_settings(DEFAULTS)


def test_the_chrome_index_defaults_are_the_settings_defaults():
    assert ChromeIndexSettings() == chrome_settings_from(DEFAULTS)


def test_the_chrome_guards_defaults_are_the_settings_defaults():
    # the guard's thresholds were fixed in ExtractionOptions: no setting could change them
    options = ExtractionOptions()
    assert (options.chrome_max_block_chars, options.chrome_max_share) == (
        DEFAULTS.chrome_max_block_chars, DEFAULTS.chrome_max_share
    )
