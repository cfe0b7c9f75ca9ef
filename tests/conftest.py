from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
if os.environ.get("CRIBSIGHT_DATA", "").strip():  # the same data folder the command line uses
    SHARED = Path(os.environ["CRIBSIGHT_DATA"].strip()).expanduser()


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test saying why."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data absent: {p} (the non-commercial development data lives in ../shared/data)")
    return p


@pytest.fixture(scope="session")
def analyzer():
    from cribsight.pipeline import Analyzer

    return Analyzer()


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    from cribsight.demo import sample_image

    return sample_image()
