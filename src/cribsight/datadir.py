"""Where the development and evaluation data lives (never in this repository: its licenses are
non-commercial): ``$CRIBSIGHT_DATA`` when set, else ``shared/data`` beside the source checkout
(``../shared/data`` from the project root)."""
from __future__ import annotations

import os
from pathlib import Path

ENV = "CRIBSIGHT_DATA"


def data_root() -> Path:
    """The data folder: ``$CRIBSIGHT_DATA`` (``~`` expanded, a relative path taken from the working
    directory) when set and not empty, else the checkout's sibling ``shared/data``. It may not
    exist; callers say so with this path."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return Path(env).expanduser().absolute()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"
