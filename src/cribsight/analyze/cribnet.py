"""CribNet on ONNX Runtime: the occlusion-aware multi-task network applied to each face.

Crop: a square around the centre of the 68 landmarks' box (from the pretrained path), side 1.6 x
the box's largest side, rotated so the eyes are level - the crop the training shards were made
with (``data.synth``; jitter aside). Outputs are decoded with the numpy code shared with training
(``analyze.decode``) and mapped back to image pixels; the crop's rotation is removed from the roll.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import apply_affine, euler_from_matrix, matrix_from_euler, rot6d_to_matrix, rotated_rect_affine
from ..runtime import OnnxModel, load_model
from ..types import PART_NAMES
from .decode import kdn_decode, landmark_visibility, part_probabilities, probability_with_sigma, sigmoid

MARGIN = 1.6


@dataclass(frozen=True)
class CribNetResult:
    landmarks: np.ndarray  # (68, 2) image pixels
    sigma: np.ndarray  # (68,) pixels, 1-sigma
    visible: np.ndarray  # (68,) probabilities
    yaw: float
    pitch: float
    roll: float
    occluded: dict  # part -> (p, sigma)
    covered: dict
    eyes_open: tuple[float, float]
    visible_fraction: float
    mask_polygons: list  # [[[x, y], ...], ...] image pixels, occluder on the face
    face_p: float | None  # P(the crop holds a face, visible or covered); None when the model has no face output


def crop_from_landmarks(lm: np.ndarray):
    lm = np.asarray(lm, np.float64)
    lo, hi = lm.min(0), lm.max(0)
    centre = (lo + hi) / 2
    side = MARGIN * float(max(hi - lo))
    r, l_ = lm[36:42].mean(0), lm[42:48].mean(0)
    angle = math.atan2(-(l_[1] - r[1]), l_[0] - r[0])
    return centre, side, angle


class CribNet:
    def __init__(self, model: str = "cribnet.onnx", threads: int | None = None):
        self.model: OnnxModel = load_model(model, threads)
        e = self.model.entry
        self.size = int(e["input"]["shape"][2])
        self.kernel_sigma = float(e.get("kernel_sigma", 1.0))
        self.names = list(e["outputs"])
        self.has_face_output = "face" in self.names
        self.visibility_fusion = e.get("visibility_fusion")  # fitted on training crops (analyze.calibrate)
        # part outputs averaged over the crop and its mirror (decode.part_probabilities): one more run
        self.part_flip_average = bool(e.get("part_flip_average", False))

    def __call__(self, image: np.ndarray, landmarks68: np.ndarray, keep=None) -> CribNetResult | None:
        """The network on the face crop of ``landmarks68``, decoded. ``keep(face_p)`` (optional): a
        second-stage test on P(face); when it says no, None is returned before the rest is decoded
        and before the mirror read (``part_flip_average``), which only a kept face needs."""
        S = self.size
        centre, side, angle = crop_from_landmarks(landmarks68)
        M = rotated_rect_affine(centre, side, angle, S)
        crop = cv2.warpAffine(image, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x = (crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 - 0.5) / 0.5
        out = dict(zip(self.names, self.model(x)))
        face_p = float(sigmoid(out["face"][0, 0])) if "face" in out else None
        if keep is not None and not keep(face_p):
            return None
        hm = out["heatmaps"][0]
        hs = hm.shape[-1]
        stride = S / hs
        mode, _, sig = kdn_decode(hm, self.kernel_sigma)
        crop_xy = (mode + 0.5) * stride - 0.5
        inv = cv2.invertAffineTransform(M)
        lm = apply_affine(inv, crop_xy)
        scale = side / S
        R_crop = rot6d_to_matrix(out["rot6d"][0])
        # the crop turned the picture clockwise by angle: remove it from the roll
        R = matrix_from_euler(0, 0, -math.degrees(angle)) @ R_crop
        yaw, pitch, roll = euler_from_matrix(R)
        mirrored = dict(zip(self.names, self.model(np.ascontiguousarray(x[..., ::-1])))) if self.part_flip_average else None
        parts = part_probabilities(out, mirrored)
        (po, so), (pc, sc) = parts["occ"], parts["cov"]
        pe, se = probability_with_sigma(out["eyes"][0], out["eyes_sigma"][0])
        m = sigmoid(out["mask"][0, 0])
        face = np.zeros((hs, hs), np.uint8)
        hm_lm = (crop_xy + 0.5) / stride - 0.5
        top = hm_lm[17:27].copy()
        top[:, 1] -= 0.2 * (hm_lm[:, 1].max() - hm_lm[:, 1].min())
        hull = cv2.convexHull(np.round(np.concatenate([hm_lm[:17], top]) * 4).astype(np.int32))
        cv2.fillPoly(face, [hull], 1, cv2.LINE_8, shift=2)
        vis_frac = 1.0 - float((m * face).sum() / max(1, face.sum()))
        polys = []
        cs, _ = cv2.findContours(((m > 0.5) & (face > 0)).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in cs:
            if len(c) < 3:  # a one- or two-cell sliver has no area: not a polygon
                continue
            pts = (c.reshape(-1, 2).astype(np.float64) + 0.5) * stride - 0.5
            polys.append(np.round(apply_affine(inv, pts), 1).tolist())
        return CribNetResult(
            landmarks=lm.astype(np.float32), sigma=(sig * stride * scale).astype(np.float32),
            visible=landmark_visibility(out["visibility"][0], out["mask"][0, 0], hm_lm, self.visibility_fusion).astype(np.float32),
            yaw=yaw, pitch=pitch, roll=roll,
            occluded={p: (float(po[i]), float(so[i])) for i, p in enumerate(PART_NAMES)},
            covered={p: (float(pc[i]), float(sc[i])) for i, p in enumerate(PART_NAMES)},
            eyes_open=(float(pe[0]), float(se[0])), visible_fraction=vis_frac, mask_polygons=polys,
            face_p=face_p)
