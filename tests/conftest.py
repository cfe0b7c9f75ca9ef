from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cribsight.datadir import data_root

ROOT = Path(__file__).resolve().parents[1]
SHARED = data_root()  # the data folder the command line uses: $CRIBSIGHT_DATA, else ../shared/data


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
