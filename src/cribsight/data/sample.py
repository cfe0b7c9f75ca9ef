"""FaceSample: the one record type everything is trained or evaluated on.

Arrays (all optional except the image source):
* ``landmarks``: (68, 2) float32, image pixels, iBUG-68 order; NaN where unknown.
* ``visibility``: (68,) int8 per point: VISIBLE 0, EXTERNAL (hidden by an object) 1,
  SELF (hidden by the head's own pose) 2, OUTSIDE (beyond the image border) 3, UNKNOWN -1.
* ``pose``: (yaw, pitch, roll) degrees, the conventions of ``cribsight.geometry``.
* ``mask``: (H, W) uint8 over the whole image: 1 where an external object hides the face, 0 elsewhere;
  ``face_mask`` (H, W) uint8: 1 on the face region (visible or not) when known.
* ``parts``: per part name in ``PART_NAMES`` a dict {"occluded": 0/1/-1, "covered": 0/1/-1} (seed
  000: -1 = unknown); ``eyes_open``: 1 open, 0 closed, -1 unknown.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..types import PART_NAMES

VISIBLE, EXTERNAL, SELF, UNKNOWN = 0, 1, 2, -1
OUTSIDE = 3  # outside the image: occluded, not covered


def unknown_parts() -> dict[str, dict[str, int]]:
    return {p: {"occluded": -1, "covered": -1} for p in PART_NAMES}


@dataclass
class FaceSample:
    """One face. ``image`` is loaded lazily from ``path`` (or given directly as HWC uint8 RGB)."""

    path: Path | None = None
    image_array: np.ndarray | None = None
    box: np.ndarray | None = None  # (4,) xyxy pixels
    landmarks: np.ndarray | None = None
    visibility: np.ndarray | None = None
    pose: np.ndarray | None = None
    mask: np.ndarray | None = None
    face_mask: np.ndarray | None = None
    parts: dict[str, dict[str, int]] = field(default_factory=unknown_parts)
    eyes_open: int = -1
    dataset: str = ""
    license: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    loader: Callable[[Path], np.ndarray] | None = None

    @property
    def image(self) -> np.ndarray:
        if self.image_array is None:
            if self.path is None:
                raise ValueError("FaceSample has neither an image nor a path")
            from ..io.images import read_image

            self.image_array = (self.loader or read_image)(self.path)
        return self.image_array

    def with_(self, **changes) -> "FaceSample":
        return replace(self, **changes)

    @property
    def provenance(self) -> dict[str, str]:
        return {"dataset": self.dataset, "file": "" if self.path is None else str(self.path), "license": self.license}
