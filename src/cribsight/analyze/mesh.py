"""MediaPipe face mesh (468 points) on ONNX Runtime, crop from a detection, decode to image pixels.

Crop (MediaPipe's detection -> ROI rule): centre = detector box centre, side = 1.5 x max(w, h),
rotated by a = atan2(-(y_l - y_r), x_l - x_r) from the detector's right-eye and left-eye keypoints so
that the eyes are horizontal in the crop. The 192 x 192 crop is scaled to [0, 1]; the model returns
468 (x, y, z) in crop pixels and a presence logit. Points go back to the image by the inverse affine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import apply_affine, rotated_rect_affine
from ..runtime import OnnxModel, load_model


@dataclass(frozen=True)
class MeshResult:
    """points_xy: (468, 2) float32 image pixels; z: (468,) float32 relative depth in image pixels
    (smaller = nearer the camera); presence: probability that the crop holds a face."""

    points_xy: np.ndarray
    z: np.ndarray
    presence: float


def roi_from_keypoints(box_xyxy, right_eye_xy, left_eye_xy, scale: float = 1.5):
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    centre = ((x1 + x2) / 2, (y1 + y2) / 2)
    side = max(x2 - x1, y2 - y1) * scale
    angle = math.atan2(-(left_eye_xy[1] - right_eye_xy[1]), left_eye_xy[0] - right_eye_xy[0])
    return centre, side, angle


def roi_from_mesh(points_xy: np.ndarray, scale: float = 1.5):
    """A refined ROI from a previous mesh: eye corners give the angle, the rotated extent the size."""
    p = np.asarray(points_xy, np.float64)
    r_eye = (p[33] + p[133]) / 2  # subject's right eye corners (image left)
    l_eye = (p[362] + p[263]) / 2
    angle = math.atan2(-(l_eye[1] - r_eye[1]), l_eye[0] - r_eye[0])
    c, s = math.cos(angle), math.sin(angle)
    # coordinates in the rotated frame (x along the eye line)
    u = p[:, 0] * c - p[:, 1] * s
    v = p[:, 0] * s + p[:, 1] * c
    uc, vc = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    centre = (uc * c + vc * s, -uc * s + vc * c)
    side = max(u.max() - u.min(), v.max() - v.min()) * scale
    return centre, side, angle


class FaceMesh:
    def __init__(self, model: str = "face_landmark.onnx", threads: int | None = None):
        self.model: OnnxModel = load_model(model, threads)
        e = self.model.entry
        self.size = int(e["input"]["shape"][1])
        lo, hi = e["input"]["range"]
        self._scale, self._offset = np.float32((hi - lo) / 255.0), np.float32(lo)

    def crop(self, image_rgb: np.ndarray, centre, side: float, angle: float):
        m = rotated_rect_affine(centre, side, angle, self.size)
        crop = cv2.warpAffine(image_rgb, m, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return crop, m

    def __call__(self, image_rgb: np.ndarray, centre, side: float, angle: float) -> MeshResult:
        crop, m = self.crop(image_rgb, centre, side, angle)
        x = crop.astype(np.float32)[None] * self._scale + self._offset
        pts, logit = self.model(x)
        pts = pts.reshape(468, 3).astype(np.float64)
        inv = cv2.invertAffineTransform(m)
        xy = apply_affine(inv, pts[:, :2])
        z = pts[:, 2] * (side / self.size)
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(logit.reshape(-1)[0], -100, 100))))
        return MeshResult(xy.astype(np.float32), z.astype(np.float32), presence)
