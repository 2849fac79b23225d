"""Where the tests find the project's shared data: the seed pages and the evaluation sets, in
``shared/`` beside the repository (``../shared`` from its root), as DEVELOPERS.md lays it out."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SEEDS = SHARED / "seeds"
BENCH = SHARED / "bench"


def missing() -> list[Path]:
    return [path for path in (SEEDS, BENCH) if not path.is_dir()]
