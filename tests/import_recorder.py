"""Imported by the extraction pool's forkserver last, in a test: records the modules imported
after it, that is by the processes it forks, which each import them again."""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec

IMPORTED: list[str] = []


class _Recorder:
    @staticmethod
    def find_spec(name: str, *_: object) -> ModuleSpec | None:
        IMPORTED.append(name)
        return None  # the import goes on, by the next finder


sys.meta_path.insert(0, _Recorder)
