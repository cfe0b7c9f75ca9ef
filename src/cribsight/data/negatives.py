"""Non-face crops, so that CribNet learns a face-presence output (seed 001's second stage: a
detection the first stage doubts is confirmed or rejected by a second model).

Negatives come from scene images whose infant is annotated (COCO keypoints, e.g. SyRIP): the
head region is the box of the labelled face keypoints (nose, eyes, ears) grown by ``head_margin``
times its size on every side, and a crop is a negative only when it holds no labelled face keypoint
and overlaps the head region by at most ``max_head_overlap`` of its own area (``scene`` crops aside, below). Four kinds:

* ``detector``: what the runtime would really be asked to verify - the full-range detector's boxes
  at a low score (upright and on the frame turned by 90, 180, 270 degrees), run through the face
  mesh, cropped exactly as CribNet's runtime crop (``analyze.cribnet.crop_from_landmarks``: the 68
  points' box centre, 1.6 x its side, eyes level) with the data engine's jitter;
* ``body``: squares around the infant's hands, feet, elbows and knees (labelled body keypoints),
  one to two and a half head sizes wide (hands and feet are what detectors mistake for faces);
* ``random``: squares anywhere in the scene, 8% to 45% of its shorter side;
* ``scene``: squares of 60% to 120% of the scene's shorter side about its centre - what the
  runtime's opt-in frame candidate (``pipeline.frame_detection``) shows CribNet - which may hold
  the infant's face as long as its labelled keypoints span at most ``scene_max_face`` of the side
  (a face crop's span is about half its side): a scene with a small face in it is not a face crop.

Every crop gets the data engine's random rotation, flip and camera conditions. Labels: ``face`` 0;
no landmarks (visibility unknown, -1), parts and eyes unknown (-1), pose NaN, no occluder and no
face region (the mask heads learn 'nothing here'). Deterministic given the rng.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..geometry import rotated_rect_affine
from .sample import UNKNOWN, FaceSample
from .synth import SynthConfig, camera_conditions

BODY_KEYPOINTS = tuple(range(5, 17))  # COCO: shoulders, elbows, wrists, hips, knees, ankles
KINDS = ("detector", "body", "random", "scene")


@dataclass
class NegativeConfig:
    fraction: float = 0.0  # share of the build's samples that are non-face crops
    sources: list = field(default_factory=list)  # names of build sources with annotated scenes (COCO keypoints)
    kinds: dict = field(default_factory=lambda: {"detector": 0.45, "body": 0.3, "random": 0.25})
    detector_score: float = 0.15
    head_margin: float = 0.6
    max_head_overlap: float = 0.1
    scene_max_face: float = 0.15  # ``scene`` kind: largest face-keypoint span, as a share of the crop side


def head_box(sample: FaceSample, margin: float = 0.6) -> np.ndarray | None:
    """(4,) xyxy: the labelled face keypoints' box grown by ``margin`` x its larger side on every
    side (the whole head, hair included), or None with fewer than two labelled keypoints."""
    f5 = sample.extra.get("coco_face5")
    if f5 is None:
        return None
    pts = np.asarray(f5)[np.asarray(f5)[:, 2] > 0, :2]
    if len(pts) < 2:
        return None
    lo, hi = pts.min(0), pts.max(0)
    size = float(max(hi - lo))
    size = max(size, 8.0) * margin
    return np.concatenate([lo - size, hi + size])


def _overlap_fraction(square_xyxy: np.ndarray, box: np.ndarray) -> float:
    ix = max(0.0, min(square_xyxy[2], box[2]) - max(square_xyxy[0], box[0]))
    iy = max(0.0, min(square_xyxy[3], box[3]) - max(square_xyxy[1], box[1]))
    area = (square_xyxy[2] - square_xyxy[0]) * (square_xyxy[3] - square_xyxy[1])
    return ix * iy / max(area, 1e-9)


def is_negative(centre, side: float, sample: FaceSample, head: np.ndarray, max_overlap: float) -> bool:
    """True when the axis-aligned square (centre, side) holds no labelled face keypoint and overlaps
    the head region by at most ``max_overlap`` of its area (rotated crops fit inside the square's
    circumscribed box, which is what is tested: side x sqrt(2))."""
    half = side * math.sqrt(2) / 2
    sq = np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])
    f5 = np.asarray(sample.extra["coco_face5"])
    lab = f5[f5[:, 2] > 0, :2]
    inside = (lab[:, 0] >= sq[0]) & (lab[:, 0] <= sq[2]) & (lab[:, 1] >= sq[1]) & (lab[:, 1] <= sq[3])
    return not inside.any() and _overlap_fraction(sq, head) <= max_overlap


@dataclass
class Candidate:
    """Where a negative crop is taken: centre, side (pixels) and the eye-level angle (radians)."""

    centre: tuple[float, float]
    side: float
    angle: float
    kind: str


def detector_candidates(sample: FaceSample, analyzer, cfg: NegativeConfig) -> list[Candidate]:
    """The runtime's own false detections on this scene, cropped as CribNet's runtime would."""
    from .. import schema
    from ..analyze.cribnet import crop_from_landmarks

    head = head_box(sample, cfg.head_margin)
    if head is None:
        return []
    img = sample.image
    dets = list(analyzer.full(img, cfg.detector_score))
    for deg in (90, 180, 270):
        dets += analyzer.detect_rotated(img, deg, cfg.detector_score)
    out = []
    for d in dets:
        mesh = analyzer.run_mesh(img, d)
        lm68 = mesh.points_xy[list(schema.MESH468_TO_IBUG68)]
        centre, side, angle = crop_from_landmarks(lm68)
        if side < 8 or not is_negative(centre, side, sample, head, cfg.max_head_overlap):
            continue
        out.append(Candidate((float(centre[0]), float(centre[1])), float(side), float(angle), "detector"))
    return out


def _random_candidate(sample: FaceSample, head: np.ndarray, kind: str, rng: np.random.Generator,
                      cfg: NegativeConfig) -> Candidate | None:
    h, w = sample.image.shape[:2]
    head_side = float(max(head[2:] - head[:2])) / (1 + 2 * cfg.head_margin)  # the keypoints' span
    if kind == "scene":
        side = min(h, w) * rng.uniform(0.6, 1.2)
        if head_side > cfg.scene_max_face * side:
            return None
        c = np.array([w / 2, h / 2]) + rng.uniform(-0.15, 0.15, 2) * np.array([w, h])
        return Candidate((float(c[0]), float(c[1])), float(side), 0.0, kind)
    kps = np.asarray(sample.extra.get("coco_keypoints", np.zeros((0, 3))))
    body = [kps[k, :2] for k in BODY_KEYPOINTS if k < len(kps) and kps[k, 2] > 0]
    for _ in range(20):
        if kind == "body" and body:
            c = body[rng.integers(len(body))] + rng.normal(0, 0.15 * head_side, 2)
            side = head_side * rng.uniform(1.0, 2.5)
        else:
            side = min(h, w) * rng.uniform(0.08, 0.45)
            c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        if is_negative(c, side, sample, head, cfg.max_head_overlap):
            return Candidate((float(c[0]), float(c[1])), float(side), 0.0, kind)
    return None


def negative_crop(sample: FaceSample, cand: Candidate, rng: np.random.Generator, synth: SynthConfig) -> dict:
    """One labelled non-face crop (the keys of ``synth.synthesize``)."""
    S = synth.size
    side = cand.side * math.exp(rng.normal(0, synth.scale_jitter))
    centre = np.asarray(cand.centre) + rng.normal(0, synth.shift_jitter, 2) * cand.side
    if rng.random() < synth.rotate_any_prob:
        extra = rng.uniform(-180, 180)
    else:
        extra = rng.uniform(-synth.rotate_small_deg, synth.rotate_small_deg)
    angle = math.degrees(cand.angle) + extra
    M = rotated_rect_affine(centre, side, math.radians(angle), S)
    crop = cv2.warpAffine(sample.image, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    flipped = bool(rng.random() < synth.flip_prob)
    if flipped:
        crop = np.ascontiguousarray(crop[:, ::-1])
    crop, ir = camera_conditions(crop, rng, synth)
    zeros = np.zeros((S, S), np.uint8)
    return {
        "image": crop, "landmarks": np.zeros((68, 2), np.float32), "visibility": np.full(68, UNKNOWN, np.int8),
        "pose": np.full(3, np.nan, np.float32), "mask": zeros, "face_mask": zeros.copy(),
        "parts": np.full((4, 2), -1, np.int8), "cover_fraction": np.zeros(4, np.float32), "eyes_open": np.int8(-1),
        "family": np.int8(-1), "flipped": flipped, "angle": np.float32(angle), "infrared": ir, "face": np.int8(0),
    }


def _release(sample: FaceSample) -> None:
    """Drop a scene's decoded image when it can be reloaded from its file (keeps memory low)."""
    if sample.path is not None:
        sample.image_array = None


class NegativePool:
    """Scenes and their detector candidates; ``draw`` makes one negative crop."""

    def __init__(self, scenes: list[FaceSample], cfg: NegativeConfig, analyzer=None):
        self.cfg = cfg
        self.scenes = [s for s in scenes if head_box(s, cfg.head_margin) is not None]
        self.detector: list[tuple[int, Candidate]] = []
        if analyzer is not None and cfg.kinds.get("detector", 0) > 0:
            for i, s in enumerate(self.scenes):
                self.detector += [(i, c) for c in detector_candidates(s, analyzer, cfg)]
                _release(s)
        kinds = {k: v for k, v in cfg.kinds.items() if v > 0 and (k != "detector" or self.detector)}
        self.kind_names = list(kinds)
        p = np.array([kinds[k] for k in self.kind_names], np.float64)
        self.kind_p = p / p.sum() if p.sum() > 0 else p

    def __len__(self) -> int:
        return len(self.scenes)

    def draw(self, rng: np.random.Generator, synth: SynthConfig) -> dict | None:
        if not self.scenes or not self.kind_names:
            return None
        kind = self.kind_names[rng.choice(len(self.kind_names), p=self.kind_p)]
        if kind == "detector":
            i, cand = self.detector[rng.integers(len(self.detector))]
            scene = self.scenes[i]
        else:
            # a scene crop needs a scene whose face is small: up to 10 scenes are tried
            for _ in range(10 if kind == "scene" else 1):
                scene = self.scenes[rng.integers(len(self.scenes))]
                cand = _random_candidate(scene, head_box(scene, self.cfg.head_margin), kind, rng, self.cfg)
                if cand is not None:
                    break
            if cand is None:
                return None
        out = negative_crop(scene, cand, rng, synth)
        _release(scene)
        out["negative_kind"] = kind
        return out
