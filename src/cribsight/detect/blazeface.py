"""BlazeFace (MediaPipe short-range and dense full-range) decoded in numpy.

Maths (MediaPipe's SSD anchors + TensorsToDetections, reproduced from the model's documented
configuration, stored in the weight manifest):

* Anchors: for each group of consecutive layers with the same stride s, a feature map of
  ceil(S / s) x ceil(S / s) cells with ``per_cell`` anchors each, centred at
  ((x + 0.5) / fm, (y + 0.5) / fm) in [0, 1] input coordinates. ``fixed_anchor_size`` means
  anchor w = h = 1, so the regressors are plain offsets in input pixels divided by S.
* Box: x_c = r0 / S + a_x, y_c = r1 / S + a_y, w = r2 / S, h = r3 / S; keypoint k:
  (r[4 + 2k] / S + a_x, r[5 + 2k] / S + a_y). Score = sigmoid(clip(logit, -100, 100)).
* Keypoints: 0 subject's right eye, 1 left eye, 2 nose tip, 3 mouth centre, 4 right tragion,
  5 left tragion.
* Weighted non-maximum suppression: the best remaining detection and all others overlapping it
  with IoU > ``nms_iou`` are replaced by their score-weighted mean box and keypoints, keeping the
  best score.
* The input is the image letterboxed (aspect kept, zero padding, centred) to S x S and scaled to
  the manifest's value range; detections are mapped back to original pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import box_iou
from ..errors import WeightsError
from ..runtime import OnnxModel, load_model


@dataclass(frozen=True)
class Detection:
    """box_xyxy: (4,) pixels; keypoints_xy: (6, 2) pixels; score in [0, 1]."""

    box_xyxy: np.ndarray
    keypoints_xy: np.ndarray
    score: float
    detector: str


def ssd_anchors(input_size: int, strides: list[int], interpolated_scale_aspect_ratio: float,
                anchor_offset: float = 0.5) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1] for fixed-size SSD anchors with aspect ratio 1."""
    centres = []
    i = 0
    n = len(strides)
    while i < n:
        j = i
        per_cell = 0
        while j < n and strides[j] == strides[i]:
            per_cell += 1 + (1 if interpolated_scale_aspect_ratio > 0 else 0)
            j += 1
        fm = math.ceil(input_size / strides[i])
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        c = np.stack([(xs + anchor_offset) / fm, (ys + anchor_offset) / fm], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(c, per_cell, axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou_thresh: float):
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    keep_b, keep_k, keep_s = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        ious = box_iou(boxes[top:top + 1], boxes[remaining])[0]
        group = remaining[ious > iou_thresh]
        if group.size == 0:
            group = np.array([top])
        w = scores[group][:, None]
        keep_b.append((boxes[group] * w).sum(0) / w.sum())
        keep_k.append((kps[group] * w[:, :, None]).sum(0) / w.sum())
        keep_s.append(scores[top])
        remaining = remaining[ious <= iou_thresh]
        remaining = remaining[remaining != top]
    if not keep_s:
        return np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros((0,), np.float32)
    return np.array(keep_b), np.array(keep_k), np.array(keep_s)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Resize keeping aspect ratio and pad (zeros, centred) to size x size.

    Returns (square uint8 image, scale, pad_x, pad_y) with original = (square - pad) / scale."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if scale < 0.5:
        # area averaging is exact but slow for non-integer factors (~2 ms at 1280x720); a bilinear
        # step to twice the target followed by a 2x area step gives the same picture (mean absolute
        # difference ~0.4 grey levels) ten times faster.
        tmp = cv2.resize(image, (2 * nw, 2 * nh), interpolation=cv2.INTER_LINEAR)
        resized = cv2.resize(tmp, (nw, nh), interpolation=cv2.INTER_AREA)
    else:
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    out[py:py + nh, px:px + nw] = resized
    return out, scale, float(px), float(py)


NMS_FLOOR = 0.15


class BlazeFace:
    """One BlazeFace variant. ``model``: manifest name of the .onnx file."""

    def __init__(self, model: str, threads: int | None = None, score_thresh: float | None = None):
        self.model: OnnxModel = load_model(model, threads)
        e = self.model.entry
        if e.get("kind") != "face_detector" or "anchors" not in e:
            raise WeightsError(f"{model}: expected a face detector (manifest kind face_detector, with anchors), "
                               f"found kind {e.get('kind')!r}")
        a = e["anchors"]
        self.size = int(e["input"]["shape"][1])
        self.anchors = ssd_anchors(self.size, a["strides"], a["interpolated_scale_aspect_ratio"], a["anchor_offset"])
        lo, hi = e["input"]["range"]
        self._scale, self._offset = (hi - lo) / 255.0, lo
        self.score_thresh = float(score_thresh if score_thresh is not None else e["decode"]["min_score"])
        self.nms_iou = float(e["decode"]["nms_iou"])
        self.name = e["detector_name"]

    def preprocess(self, image_rgb: np.ndarray):
        sq, scale, px, py = letterbox(image_rgb, self.size)
        x = sq.astype(np.float32)[None] * np.float32(self._scale) + np.float32(self._offset)
        return x, scale, px, py

    def raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, logit = self.model(x)
        return reg.reshape(-1, 16), logit.reshape(-1)

    def decode(self, reg: np.ndarray, logit: np.ndarray, scale: float, px: float, py: float,
               score_thresh: float | None = None) -> list[Detection]:
        thr = self.score_thresh if score_thresh is None else score_thresh
        scores = 1.0 / (1.0 + np.exp(-np.clip(logit.astype(np.float64), -100, 100)))
        # candidates down to NMS_FLOOR take part in the weighted NMS blend (better boxes and scores
        # for faint infant faces); only blended detections scoring >= thr are returned.
        idx = np.nonzero(scores >= min(thr, NMS_FLOOR))[0]
        if idx.size == 0:
            return []
        S = float(self.size)
        r = reg[idx].astype(np.float64)
        anc = self.anchors[idx].astype(np.float64)
        xc = r[:, 0] / S + anc[:, 0]
        yc = r[:, 1] / S + anc[:, 1]
        w = r[:, 2] / S
        h = r[:, 3] / S
        boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1)
        kps = r[:, 4:16].reshape(-1, 6, 2) / S + anc[:, None, :]
        boxes, kps, sc = weighted_nms(boxes, kps, scores[idx], self.nms_iou)
        keep = sc >= thr
        boxes, kps, sc = boxes[keep], kps[keep], sc[keep]
        out = []
        for b, k, s in zip(boxes, kps, sc):
            b_px = (b.reshape(2, 2) * S - [px, py]) / scale
            k_px = (k * S - [px, py]) / scale
            out.append(Detection(b_px.reshape(4).astype(np.float32), k_px.astype(np.float32), float(s), self.name))
        return out

    def __call__(self, image_rgb: np.ndarray, score_thresh: float | None = None) -> list[Detection]:
        x, scale, px, py = self.preprocess(image_rgb)
        reg, logit = self.raw(x)
        return self.decode(reg, logit, scale, px, py, score_thresh)
