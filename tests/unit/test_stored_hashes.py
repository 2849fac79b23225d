"""Hashes that outlive the process that computed them: block hashes in the chrome index
(workers/stages/chrome.py), story term ids (workers/dedup/stories.py) and MinHash band keys
(workers/dedup/minhash.py) in Redis. Every worker, and every later version reading what an
earlier one wrote, must compute the same values: they are pinned here for fixed inputs, and
computed again in processes with other string-hash seeds (Python's hash() changes from one
process to the next, so no stored hash may rest on it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from workers.dedup import minhash, stories
from workers.stages.chrome import block_hash
from workers.textnorm import normalize, token_lines, tokenize

REPO = Path(__file__).resolve().parents[2]

CHROME_BLOCKS = ("Follow us on Twitter", "تابعونا على تويتر")
STORY_TOKENS = ("aleppo", "ceasefire", "المفاوضات", "a")
PROSE = "أعلن وزير الخارجية الأميركي جون كيري أن الجهود ستتواصل بشأن حلب، وأن الجيش السوري يستمر في التقدم."


def stored_hashes() -> dict[str, object]:
    """What this process stores for the fixed inputs, in JSON types (lists, str, int)."""
    return {
        "block_hashes": [block_hash(text) for text in CHROME_BLOCKS],
        "term_ids": {
            token: stories.term_counts([], tokenize(normalize(token))).ids.tolist() for token in STORY_TOKENS
        },
        "band_keys": [key.hex() for key in minhash.band_keys(minhash.sketch(token_lines(PROSE)), 4, 2)],
    }


def test_block_hashes_are_pinned() -> None:
    # 64-bit BLAKE2b of the normalised block ("follow us on twitter", "تابعونا علي تويتر")
    assert stored_hashes()["block_hashes"] == ["603a9e397ee7c20d", "4a74fbb20c451db5"]


def test_story_term_ids_are_pinned() -> None:
    # CRC-32 of the UTF-8 of each token's term ("aleppo", "ceasef", "مفض"); a one-letter token
    # has none
    assert stored_hashes()["term_ids"] == {
        "aleppo": [2224262478], "ceasefire": [117848458], "المفاوضات": [767364524], "a": [],
    }


def test_band_keys_are_pinned() -> None:
    # 64-bit BLAKE2b, salted with the band number, of each 4-band x 2-row slice of PROSE's MinHash signature (little-endian uint32)
    assert stored_hashes()["band_keys"] == [
        "53b9739165d3e1bf", "31fb02eb59525253", "9110948256fff043", "5ac952ba2debb84f",
    ]


def test_document_frequency_slots_are_pinned() -> None:
    # the counter of each story term id in the per-day counters Redis keeps: the top 17 bits of
    # the id times 0x9E3779B97F4A7C15, mod 2**64 (term ids of "aleppo", "ceasefire", "المفاوضات")
    ids = np.array([2224262478, 117848458, 767364524, 0xFFFFFFFF], dtype=np.uint32)
    assert stories.df_slots(ids).tolist() == [39985, 74155, 77710, 115238]


def test_stored_hashes_do_not_depend_on_the_process() -> None:
    here = stored_hashes()
    program = "import json; from tests.unit.test_stored_hashes import stored_hashes; print(json.dumps(stored_hashes()))"
    # Two seeds: at least one differs from this process's, whatever the environment set.
    for hash_seed in ("1", "2"):
        run = subprocess.run(
            [sys.executable, "-c", program],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == here
