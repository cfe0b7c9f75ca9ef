"""Frozen result dataclasses and their JSON (de)serialisation (design doc section 6).

Coordinates are pixels of the original image; angles are degrees. A field that the current models
cannot estimate is ``None`` (JSON ``null``), never a guessed constant.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

PART_NAMES = ("eye_left", "eye_right", "nose", "mouth")


def _round(x: float | None, nd: int = 3) -> float | None:
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, nd)


@dataclass(frozen=True)
class Landmarks:
    """68 points in ``scheme`` order. ``xy``: (68, 2) pixels of the original image.

    ``sigma``: per-point 1-sigma localisation uncertainty in pixels, or None when the model in use
    does not estimate it. ``visible``: per-point probability of being visible, or None likewise.
    """

    scheme: str
    xy: tuple[tuple[float, float], ...]
    sigma: tuple[float, ...] | None = None
    visible: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "xy": [[_round(x, 2), _round(y, 2)] for x, y in self.xy],
            "sigma": None if self.sigma is None else [_round(s, 2) for s in self.sigma],
            "visible": None if self.visible is None else [_round(v, 3) for v in self.visible],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Landmarks":
        return cls(
            scheme=d["scheme"],
            xy=tuple((float(x), float(y)) for x, y in d["xy"]),
            sigma=None if d.get("sigma") is None else tuple(float(s) for s in d["sigma"]),
            visible=None if d.get("visible") is None else tuple(float(v) for v in d["visible"]),
        )


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees (camera frame, see ``cribsight.geometry`` for the sign conventions).

    yaw > 0: the face turns towards the image's left (the subject's right); pitch > 0: the face
    looks up; roll > 0: the head tilts so that it rotates clockwise in the image.
    ``sigma``: 1-sigma per angle (yaw, pitch, roll) in degrees, or None when not estimated.
    """

    yaw: float
    pitch: float
    roll: float
    sigma: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "yaw": _round(self.yaw, 2),
            "pitch": _round(self.pitch, 2),
            "roll": _round(self.roll, 2),
            "sigma": None if self.sigma is None else [_round(s, 2) for s in self.sigma],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Pose":
        s = d.get("sigma")
        return cls(float(d["yaw"]), float(d["pitch"]), float(d["roll"]), None if s is None else tuple(s))


@dataclass(frozen=True)
class Probability:
    """A probability ``p`` with its 1-sigma uncertainty (None when not estimated)."""

    p: float
    sigma: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"p": _round(self.p), "sigma": _round(self.sigma)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Probability":
        return cls(float(d["p"]), None if d.get("sigma") is None else float(d["sigma"]))


@dataclass(frozen=True)
class PartState:
    """Probability that a part is occluded (hidden for any reason) / covered (by an external object)."""

    occluded: float | None = None
    covered: float | None = None
    sigma_occluded: float | None = None
    sigma_covered: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _round(getattr(self, k)) for k in ("occluded", "covered", "sigma_occluded", "sigma_covered")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PartState":
        return cls(**{k: (None if d.get(k) is None else float(d[k]))
                      for k in ("occluded", "covered", "sigma_occluded", "sigma_covered")})


@dataclass(frozen=True)
class Occlusion:
    """Fraction of the face region that is visible and an optional occlusion mask (None if unknown)."""

    visible_fraction: float | None = None
    mask: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"visible_fraction": _round(self.visible_fraction), "mask": self.mask}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Occlusion":
        v = d.get("visible_fraction")
        return cls(None if v is None else float(v), d.get("mask"))


@dataclass(frozen=True)
class Face:
    """One face. ``box``: (x1, y1, x2, y2) pixels of the original image; ``score`` in [0, 1]."""

    box: tuple[float, float, float, float]
    score: float
    detector: str
    landmarks: Landmarks | None = None
    pose: Pose | None = None
    eyes_open: Probability | None = None
    parts: dict[str, PartState] | None = None
    occlusion: Occlusion | None = None
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        parts = self.parts if self.parts is not None else {n: PartState() for n in PART_NAMES}
        return {
            "box": [_round(v, 2) for v in self.box],
            "score": _round(self.score, 4),
            "detector": self.detector,
            "track_id": self.track_id,
            "landmarks": None if self.landmarks is None else self.landmarks.to_dict(),
            "pose": None if self.pose is None else self.pose.to_dict(),
            "eyes_open": None if self.eyes_open is None else self.eyes_open.to_dict(),
            "parts": {n: parts[n].to_dict() for n in PART_NAMES},
            "occlusion": (self.occlusion or Occlusion()).to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Face":
        return cls(
            box=tuple(float(v) for v in d["box"]),
            score=float(d["score"]),
            detector=d["detector"],
            track_id=d.get("track_id"),
            landmarks=None if d.get("landmarks") is None else Landmarks.from_dict(d["landmarks"]),
            pose=None if d.get("pose") is None else Pose.from_dict(d["pose"]),
            eyes_open=None if d.get("eyes_open") is None else Probability.from_dict(d["eyes_open"]),
            parts=None if d.get("parts") is None else {k: PartState.from_dict(v) for k, v in d["parts"].items()},
            occlusion=None if d.get("occlusion") is None else Occlusion.from_dict(d["occlusion"]),
        )


@dataclass(frozen=True)
class FrameResult:
    """Everything cribsight says about one image or video frame. No face -> ``faces == ()``."""

    source: str
    frame: int
    timestamp_ms: float
    width: int
    height: int
    faces: tuple[Face, ...] = ()
    alerts: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "frame": self.frame,
            "timestamp_ms": _round(self.timestamp_ms, 3),
            "width": self.width,
            "height": self.height,
            "faces": [f.to_dict() for f in self.faces],
            "alerts": list(self.alerts),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrameResult":
        return cls(
            source=d["source"], frame=int(d["frame"]), timestamp_ms=float(d["timestamp_ms"]),
            width=int(d["width"]), height=int(d["height"]),
            faces=tuple(Face.from_dict(f) for f in d["faces"]), alerts=tuple(d.get("alerts", ())),
        )

    @classmethod
    def from_json(cls, line: str) -> "FrameResult":
        """A result from one JSON line of the output contract; a line that is not one is an
        InputError. Values are read as written (rounded by ``to_json``; a pretrained face's null
        parts come back as null part states), so compare results on their JSON, not as objects."""
        from .errors import InputError

        try:
            d = json.loads(line)
            if not isinstance(d, dict):
                raise TypeError(f"a JSON {type(d).__name__}")
            return cls.from_dict(d)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            raise InputError("frame result", "a JSON line of the output contract", what[:300]) from None


@dataclass(frozen=True)
class FailedInput:
    """An input that could not be analysed, with the one-line reason."""

    source: str
    error: str
    frame: int | None = field(default=None)
