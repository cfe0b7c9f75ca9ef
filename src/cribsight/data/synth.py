"""Synthetic occlusion and cover over real faces, labelled exactly from what was drawn.

One call of ``synthesize`` turns a FaceSample with 68 landmarks (and, for self-occlusion labels, a
head pose) into a training crop with:
* ``image`` (S, S, 3) uint8 and ``landmarks`` (68, 2) float32 crop pixels;
* ``visibility`` (68,) int8: EXTERNAL where the drawn occluder covers the point (alpha > 0.5),
  OUTSIDE where it left the image or the crop, SELF where the canonical face's surface normal at that
  point faces away from the camera under the sample's pose (back-facing, n_z > 0), else VISIBLE;
* ``mask`` (S, S) uint8 occluder mask (alpha > 0.5) and ``face_mask`` (S, S) uint8 face region
  (convex hull of the landmarks, extended over the forehead by 20% of the face height);
* ``parts`` (4, 2) int8 [occluded, covered] for eye_left, eye_right, nose, mouth (-1 unknown: the
  source did not know and nothing drawn decides it), and
  ``cover_fraction`` (4,) float32: the fraction of a part's region hidden by the occluder. A part is
  *covered* when cover_fraction >= ``cover_threshold`` (0.5) or the source says so (a real face
  mask); *occluded* when covered, or when at least half of its points are SELF or OUTSIDE
  (occluded but not covered: e.g. the far eye at large yaw);
* ``pose`` (3,) yaw, pitch, roll degrees after the augmentation; ``eyes_open`` int8 (-1 when both
  eyes are occluded, or when the source does not know); ``face`` int8 1 (a face is in the crop;
  ``data.negatives`` makes the non-face crops, 0).
Part regions: eyes = the eye contour scaled x1.6 about its centre (lids included); nose = convex
hull of points 27-35 widened by 15%; mouth = convex hull of 48-59.
Closed eyes: with ``close_eyes_prob``, both eyes of a face whose eyes are in view are shut
(``eyelids.close_eyes``: lids inpainted, lash line drawn, lid landmarks moved) and eyes_open = 0.
Geometric augmentation: random crop scale/shift, in-plane rotation (roll += angle; up to 180
degrees), horizontal flip with iBUG flip pairs (yaw and roll change sign, eye labels swap).
Deterministic for a given ``rng``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .. import schema
from ..geometry import apply_affine, matrix_from_euler, rotated_rect_affine
from ..runtime import WEIGHTS_DIR
from ..types import PART_NAMES
from . import camera
from .eyelids import close_eyes
from .occluders import DRAW, TARGETS, TextureBank, composite
from .sample import EXTERNAL, OUTSIDE, SELF, VISIBLE, FaceSample

PART_POINTS = {"eye_left": list(range(42, 48)), "eye_right": list(range(36, 42)), "nose": list(range(27, 36)),
               "mouth": list(range(48, 68))}
FAMILY_NAMES = ("none",) + tuple(DRAW)


@dataclass
class SynthConfig:
    size: int = 160
    margin: float = 1.6  # crop side / face size (largest side of the landmarks' box)
    scale_jitter: float = 0.12
    shift_jitter: float = 0.06
    rotate_small_deg: float = 30.0  # most samples: uniform in +-this
    rotate_any_prob: float = 0.15  # some samples: uniform in +-180 (overhead crib views)
    flip_prob: float = 0.5
    family_weights: dict = field(default_factory=lambda: {
        "none": 0.2, "bedding": 0.22, "hand": 0.16, "pacifier": 0.07, "bottle": 0.04, "hat": 0.07, "tubes": 0.06,
        "face_mask": 0.06, "random_shape": 0.12, "so_rect": 0.0})
    cover_threshold: float = 0.5
    infrared_prob: float = 0.25
    motion_blur_prob: float = 0.15
    low_res_prob: float = 0.15
    jpeg_prob: float = 0.3
    noise_prob: float = 0.3
    close_eyes_prob: float = 0.0  # both eyes shut by ``eyelids.close_eyes`` (eyes_open = 0), before occluders


class _FaceGeometry:
    """Canonical face vertex normals at the iBUG-68 vertices (head frame), for self-occlusion."""

    def __init__(self):
        v = np.load(WEIGHTS_DIR / "canonical_face_468.npy").astype(np.float64) * [1, -1, -1]
        t = np.load(WEIGHTS_DIR / "canonical_face_468_triangles.npy")
        n = np.zeros_like(v)
        fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
        for k in range(3):
            np.add.at(n, t[:, k], fn)
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        self.normals68 = n[list(schema.MESH468_TO_IBUG68)]

    def self_occluded(self, yaw: float, pitch: float, roll: float) -> np.ndarray:
        """(68,) bool: the surface at the point faces away from the camera (n_z > 0 in the camera frame)."""
        R = matrix_from_euler(yaw, pitch, roll)
        return (self.normals68 @ R.T)[:, 2] > 0.0


_GEOMETRY: _FaceGeometry | None = None


def face_geometry() -> _FaceGeometry:
    global _GEOMETRY
    if _GEOMETRY is None:
        _GEOMETRY = _FaceGeometry()
    return _GEOMETRY


def part_regions(lm: np.ndarray, S: int) -> dict[str, np.ndarray]:
    """(S, S) bool region per part from the landmarks (see the module docstring)."""
    out = {}
    for name, idx in (("eye_left", range(42, 48)), ("eye_right", range(36, 42))):
        p = lm[list(idx)]
        c = p.mean(0)
        poly = c + (p - c) * 1.6
        out[name] = _fill(poly, S)
    nose = lm[27:36]
    c = nose.mean(0)
    out["nose"] = _fill(c + (nose - c) * [1.15, 1.0], S, hull=True)
    out["mouth"] = _fill(lm[48:60], S, hull=True)
    return out


def _fill(poly: np.ndarray, S: int, hull: bool = False) -> np.ndarray:
    m = np.zeros((S, S), np.uint8)
    pts = np.round(poly * 4).astype(np.int32)
    if hull:
        pts = cv2.convexHull(pts)
    cv2.fillPoly(m, [pts], 1, cv2.LINE_8, shift=2)
    return m.astype(bool)


def face_region(lm: np.ndarray, S: int) -> np.ndarray:
    top = lm[17:27].copy()
    h = lm[:, 1].max() - lm[:, 1].min()
    top[:, 1] -= 0.2 * h
    return _fill(np.concatenate([lm[:17], top]), S, hull=True).astype(np.uint8)


def real_mask_polygon(lm: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """Region of a worn face mask: the jaw from point 2 to 14, closed over the nose bridge at
    point 28 (raised by ``lift`` x face size along the face's own 'up')."""
    from .occluders import face_size, face_up

    top = lm[28] + face_up(lm) * lift * face_size(lm)
    return np.concatenate([lm[2:15], [lm[15] + (top - lm[29]) * 0.5, top, lm[1] + (top - lm[29]) * 0.5]])


def _flip_parts(parts: np.ndarray) -> np.ndarray:
    order = [PART_NAMES.index(n) for n in ("eye_right", "eye_left", "nose", "mouth")]
    return parts[order]


def synthesize(sample: FaceSample, rng: np.random.Generator, cfg: SynthConfig, bank: TextureBank,
               family: str | None = None, so_variant: str | None = None, angle: float | None = None,
               flip: bool | None = None, occluder=None, camera_effects: bool = True) -> dict:
    """One labelled crop (see the module docstring). ``family`` forces an occluder family;
    ``angle`` / ``flip`` force the augmentation; ``occluder(lm, S) -> Occluder`` draws a given
    object instead of a family; ``camera_effects=False`` skips the camera conditions."""
    if sample.landmarks is None:
        raise ValueError("synthesize needs a sample with 68 landmarks")
    S = cfg.size
    img = sample.image
    H, W = img.shape[:2]
    lm0 = np.asarray(sample.landmarks, np.float64)
    known = np.all(np.isfinite(lm0), 1)
    lo, hi = np.nanmin(lm0, 0), np.nanmax(lm0, 0)
    fs = float(max(hi - lo))
    centre = (lo + hi) / 2 + rng.normal(0, cfg.shift_jitter, 2) * fs
    side = cfg.margin * fs * math.exp(rng.normal(0, cfg.scale_jitter))
    if angle is None:
        if rng.random() < cfg.rotate_any_prob:
            angle = rng.uniform(-180, 180)
        else:
            angle = rng.uniform(-cfg.rotate_small_deg, cfg.rotate_small_deg)
    M = rotated_rect_affine(centre, side, math.radians(angle), S)
    crop = cv2.warpAffine(img, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    lm = apply_affine(M, np.where(known[:, None], lm0, 0.0))
    outside = ~known | (lm0[:, 0] < 0) | (lm0[:, 1] < 0) | (lm0[:, 0] > W - 1) | (lm0[:, 1] > H - 1)
    outside |= (lm[:, 0] < 0) | (lm[:, 1] < 0) | (lm[:, 0] > S - 1) | (lm[:, 1] > S - 1)
    pose = None if sample.pose is None else np.asarray(sample.pose, np.float64).copy()
    if pose is not None:
        pose[2] = (pose[2] + angle + 180) % 360 - 180  # the crop turns the picture clockwise by angle
    src_parts = np.array([[sample.parts[p]["occluded"], sample.parts[p]["covered"]] for p in PART_NAMES], np.int8)
    src_vis = None if sample.visibility is None else np.asarray(sample.visibility, np.int8).copy()
    real_mask = np.zeros((S, S), np.uint8)
    if sample.extra.get("class") == "with_mask":
        cv2.fillPoly(real_mask, [np.round(real_mask_polygon(lm) * 4).astype(np.int32)], 1, cv2.LINE_8, shift=2)
    flipped = (rng.random() < cfg.flip_prob) if flip is None else bool(flip)
    if flipped:
        crop = np.ascontiguousarray(crop[:, ::-1])
        real_mask = np.ascontiguousarray(real_mask[:, ::-1])
        lm = np.stack([S - 1 - lm[:, 0], lm[:, 1]], 1)[list(schema.IBUG68_FLIP)]
        outside = outside[list(schema.IBUG68_FLIP)]
        if pose is not None:
            pose[0], pose[2] = -pose[0], -pose[2]
        src_parts = _flip_parts(src_parts)
        if src_vis is not None:
            src_vis = src_vis[list(schema.IBUG68_FLIP)]
    self_occ = face_geometry().self_occluded(*pose) if pose is not None else np.zeros(68, bool)
    if src_vis is not None:  # what the source annotation knows (e.g. MERL-RAV) is kept
        self_occ |= src_vis == SELF

    eyes_open = int(sample.eyes_open)
    eye_pts = list(range(36, 48))
    if cfg.close_eyes_prob > 0 and not (outside[eye_pts] | self_occ[eye_pts]).any() and rng.random() < cfg.close_eyes_prob:
        crop, lm = close_eyes(crop, lm, rng)
        eyes_open = 0

    # occluder
    names = list(cfg.family_weights)
    w = np.array([cfg.family_weights[n] for n in names], np.float64)
    fam = "custom" if occluder is not None else (family or names[rng.choice(len(names), p=w / w.sum())])
    if occluder is not None:
        occ = occluder(lm, S)
        crop = composite(crop, occ)
        occ_mask = (occ.alpha > 0.5).astype(np.uint8)
    elif fam != "none":
        targets = TARGETS[fam][rng.integers(len(TARGETS[fam]))]
        draw = DRAW[fam]
        occ = draw(lm, targets, rng, bank, S, so_variant) if fam == "so_rect" else draw(lm, targets, rng, bank, S)
        crop = composite(crop, occ)
        occ_mask = (occ.alpha > 0.5).astype(np.uint8)
    else:
        occ_mask = np.zeros((S, S), np.uint8)
    mask = np.maximum(occ_mask, real_mask)

    # labels
    xi = np.clip(np.round(lm[:, 0]).astype(int), 0, S - 1)
    yi = np.clip(np.round(lm[:, 1]).astype(int), 0, S - 1)
    vis = np.full(68, VISIBLE, np.int8)
    vis[self_occ] = SELF
    vis[(mask[yi, xi] > 0) & ~outside] = EXTERNAL
    if src_vis is not None:
        vis[src_vis == EXTERNAL] = EXTERNAL
    vis[outside] = OUTSIDE
    regions = part_regions(lm, S)
    parts = np.zeros((4, 2), np.int8)
    frac = np.zeros(4, np.float32)
    for i, name in enumerate(PART_NAMES):
        r = regions[name]
        frac[i] = float(mask[r].mean()) if r.any() else 0.0
        covered = frac[i] >= cfg.cover_threshold or src_parts[i, 1] == 1
        idx = PART_POINTS[name]
        hidden = np.isin(vis[idx], (SELF, OUTSIDE)).mean() >= 0.5 or src_parts[i, 0] == 1
        # what the source does not know stays unknown (-1) unless the drawing decides it
        parts[i, 1] = 1 if covered else (-1 if src_parts[i, 1] == -1 else 0)
        parts[i, 0] = 1 if (covered or hidden) else (-1 if src_parts[i, 0] == -1 else 0)
    if parts[0, 0] == 1 and parts[1, 0] == 1:
        eyes_open = -1

    crop, ir = camera_conditions(crop, rng, cfg) if camera_effects else (crop, False)
    return {
        "image": crop, "landmarks": lm.astype(np.float32), "visibility": vis,
        "pose": (np.full(3, np.nan) if pose is None else pose).astype(np.float32),
        "mask": mask, "face_mask": face_region(lm, S), "parts": parts, "cover_fraction": frac,
        "eyes_open": np.int8(eyes_open), "family": np.int8(FAMILY_NAMES.index(fam) if fam in FAMILY_NAMES else -1),
        "flipped": flipped, "angle": np.float32(angle), "infrared": ir, "face": np.int8(1),
    }


def camera_conditions(crop: np.ndarray, rng: np.random.Generator, cfg: SynthConfig) -> tuple[np.ndarray, bool]:
    """Motion blur, low resolution, infrared look, noise and JPEG, each with its ``cfg`` probability.
    Returns the image and whether it got the infrared look."""
    if rng.random() < cfg.motion_blur_prob:
        crop = camera.motion_blur(crop, int(rng.integers(3, 9)), rng.uniform(0, 180))
    if rng.random() < cfg.low_res_prob:
        crop = camera.low_resolution(crop, rng.uniform(0.25, 0.6))
    ir = bool(rng.random() < cfg.infrared_prob)
    if ir:
        crop = camera.infrared(crop, rng.uniform(0.3, 1.0), rng)
    if rng.random() < cfg.noise_prob:
        crop = camera.gaussian_noise(crop, rng.uniform(2, 12), rng)
    if rng.random() < cfg.jpeg_prob:
        crop = camera.jpeg(crop, int(rng.integers(25, 80)))
    return crop, ir
