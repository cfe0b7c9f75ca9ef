"""Fine-tuning the full-range BlazeFace detector for faces it misses (``train`` extra).

Two kinds of masked face escape the shipped detector (docs/pretrained.md): close-ups whose face runs
off the photo, and faces a few pixels tall. Neither has face boxes in the data here, so training
samples are made from faces the detector already finds, whose boxes and keypoints are then known:

* ``plain``: the photo letterboxed as the runtime does, with a random crop around it;
* ``cutoff``: a window smaller than the face (0.6-1.1 of its size) placed around it, so the face
  runs off the frame; the box and keypoints keep their true place outside the window;
* ``tiny``: 1-4 faces shrunk to 5-16 input pixels tall, feathered into another photo;
* ``negative``: a face-free part of a scene (a SyRIP scene beside the labelled head, or a photo
  beside its only known face), where every anchor's target is 0.

The targets distil the original detector and add the known faces (no hand labels): an anchor's face
probability is ``max(teacher's probability on the same input, 1 if the anchor is matched to a known
face)``; a matched anchor regresses the known box and keypoints, and an unmatched anchor the teacher
is sure of (p > 0.5) regresses the teacher's. So the student keeps what the original detector does
where nothing was added, including its score calibration, which the runtime's thresholds assume.

The network is the shipped ONNX converted to torch (onnx2torch; the conversion is exact to 1e-4)
and exported back to ONNX with the same input and output names and shapes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..detect.blazeface import letterbox, ssd_anchors

SIZE = 192
STRIDE = 4
ANCHORS = ssd_anchors(SIZE, [STRIDE], 0.0, 0.5).astype(np.float32)  # (2304, 2), normalised centres
N_ANCHORS = len(ANCHORS)
# keypoint order: right eye, left eye, nose tip, mouth centre, right tragion, left tragion
FLIP_KPS = [1, 0, 2, 3, 5, 4]


@dataclass
class Face:
    box: np.ndarray  # (4,) xyxy, pixels of the photo
    kps: np.ndarray  # (6, 2) pixels of the photo
    score: float


def match_anchors(box_n: np.ndarray) -> np.ndarray:
    """Indices of the anchors a face (normalised xyxy box of the 192 input) is matched to: anchors
    whose centre lies within max(0.08 of the face size, 0.75 of the anchor stride) of the box
    centre - the teacher itself fires on the two or three anchors nearest a face's centre - and
    always the nearest one (a face 5 px tall still gets an anchor)."""
    c = (box_n[:2] + box_n[2:]) / 2
    size = float(max(box_n[2] - box_n[0], box_n[3] - box_n[1]))
    d = np.sqrt(((ANCHORS - c) ** 2).sum(1))
    r = max(0.08 * size, 0.75 * STRIDE / SIZE)
    idx = np.nonzero(d <= r)[0]
    nearest = int(np.argmin(d))
    return np.union1d(idx, [nearest]).astype(np.int64)


def encode(box_n: np.ndarray, kps_n: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The 16 regressor values (input pixels) that decode to this box and keypoints from anchors
    ``idx`` - the inverse of ``BlazeFace.decode``: dx, dy from the anchor centre, w, h, then the six
    keypoints' offsets from the anchor centre."""
    a = ANCHORS[idx]
    c = (box_n[:2] + box_n[2:]) / 2
    wh = box_n[2:] - box_n[:2]
    out = np.empty((len(idx), 16), np.float32)
    out[:, 0:2] = (c[None] - a) * SIZE
    out[:, 2:4] = wh[None] * SIZE
    out[:, 4:] = ((kps_n[None] - a[:, None]) * SIZE).reshape(len(idx), 12)
    return out


def _affine_faces(faces: list[Face], scale: float, dx: float, dy: float) -> list[Face]:
    return [Face(f.box * scale + [dx, dy, dx, dy], f.kps * scale + [dx, dy], f.score) for f in faces]


def to_input(image: np.ndarray, faces: list[Face], with_rect: bool = False):
    """Letterbox as the runtime does; faces in normalised input coordinates (and, with
    ``with_rect``, the photo's rectangle x0, y0, x1, y1 in input pixels)."""
    sq, s, px, py = letterbox(image, SIZE)
    out = sq, [Face(f.box / SIZE, f.kps / SIZE, f.score) for f in _affine_faces(faces, s, px, py)]
    if with_rect:
        h, w = image.shape[:2]
        return (*out, (int(px), int(py), int(px + round(w * s)), int(py + round(h * s))))
    return out


def sample_plain(rng: np.random.Generator, image: np.ndarray, faces: list[Face]):
    h, w = image.shape[:2]
    f = rng.uniform(0.8, 1.0)
    cw, ch = max(8, int(w * f)), max(8, int(h * f))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return to_input(image[y0:y0 + ch, x0:x0 + cw], _affine_faces(faces, 1.0, -x0, -y0))


def sample_cutoff(rng: np.random.Generator, image: np.ndarray, faces: list[Face]):
    """A window smaller than one face, around it, clipped to the photo: the face runs off."""
    h, w = image.shape[:2]
    f = faces[int(rng.integers(len(faces)))]
    fw, fh = f.box[2] - f.box[0], f.box[3] - f.box[1]
    side = rng.uniform(0.6, 1.1) * max(fw, fh)
    aspect = rng.uniform(0.75, 1.33)
    ww, wh = side * np.sqrt(aspect), side / np.sqrt(aspect)
    cx = (f.box[0] + f.box[2]) / 2 + rng.uniform(-0.2, 0.2) * ww
    cy = (f.box[1] + f.box[3]) / 2 + rng.uniform(-0.2, 0.2) * wh
    x0, x1 = int(max(0, cx - ww / 2)), int(min(w, cx + ww / 2))
    y0, y1 = int(max(0, cy - wh / 2)), int(min(h, cy + wh / 2))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return sample_plain(rng, image, faces)
    return to_input(image[y0:y1, x0:x1], _affine_faces(faces, 1.0, -x0, -y0))


def _feather(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.sqrt(((xx + 0.5) / w * 2 - 1) ** 2 + ((yy + 0.5) / h * 2 - 1) ** 2)
    return np.clip((1.0 - r) / 0.35, 0, 1)[..., None].astype(np.float32)


def sample_tiny(rng: np.random.Generator, background: tuple[np.ndarray, list[Face]],
                donors: list[tuple[np.ndarray, list[Face]]]):
    """1-4 faces 5-16 input pixels tall, each feathered in with the head around it, into a photo."""
    canvas, bg_faces, (rx0, ry0, rx1, ry1) = to_input(*background, with_rect=True)
    canvas = canvas.astype(np.float32)
    taken = [f.box * SIZE for f in bg_faces]
    placed: list[Face] = []
    for image, faces in donors:
        f = faces[int(rng.integers(len(faces)))]
        fh = max(f.box[3] - f.box[1], 1.0)
        s = rng.uniform(5, 16) / fh
        c = (f.box[:2] + f.box[2:]) / 2
        half = 1.2 * max(f.box[2] - f.box[0], fh)
        x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - half))
        x1, y1 = int(min(image.shape[1], c[0] + half)), int(min(image.shape[0], c[1] + half))
        pw, ph = max(2, round((x1 - x0) * s)), max(2, round((y1 - y0) * s))
        if pw >= (rx1 - rx0) // 2 or ph >= (ry1 - ry0) // 2:
            continue
        for _ in range(5):  # inside the photo, on no other face
            px, py = int(rng.integers(rx0, rx1 - pw)), int(rng.integers(ry0, ry1 - ph))
            if not any(px < t[2] and t[0] < px + pw and py < t[3] and t[1] < py + ph for t in taken):
                break
        else:
            continue
        taken.append(np.array([px, py, px + pw, py + ph], np.float32))
        patch = cv2.resize(image[y0:y1, x0:x1], (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
        a = _feather(ph, pw)
        canvas[py:py + ph, px:px + pw] = a * patch + (1 - a) * canvas[py:py + ph, px:px + pw]
        sx, sy = pw / (x1 - x0), ph / (y1 - y0)
        box = (f.box - [x0, y0, x0, y0]) * [sx, sy, sx, sy] + [px, py, px, py]
        kps = (f.kps - [x0, y0]) * [sx, sy] + [px, py]
        placed.append(Face(box / SIZE, kps / SIZE, f.score))
    return canvas.round().clip(0, 255).astype(np.uint8), [*bg_faces, *placed]


def sample_away(rng: np.random.Generator, image: np.ndarray, faces: list[Face]):
    """A face-free part of a photo with one known face: the largest strip left of, right of, above
    or below the face box grown by its size on every side, letterboxed; None when none is 48 px."""
    h, w = image.shape[:2]
    b = faces[0].box
    g = max(b[2] - b[0], b[3] - b[1])
    x0, y0, x1, y1 = (int(v) for v in np.clip([b[0] - g, b[1] - g, b[2] + g, b[3] + g], 0, [w, h, w, h]))
    strips = [s for s in (image[:, :x0], image[:, x1:], image[:y0], image[y1:]) if min(s.shape[:2]) >= 48]
    if not strips:
        return None
    s = max(strips, key=lambda s: s.shape[0] * s.shape[1])
    return to_input(np.ascontiguousarray(s), [])


def flip(image: np.ndarray, faces: list[Face]):
    out = []
    for f in faces:
        b = np.array([1 - f.box[2], f.box[1], 1 - f.box[0], f.box[3]], np.float32)
        k = f.kps[FLIP_KPS].copy()
        k[:, 0] = 1 - k[:, 0]
        out.append(Face(b, k, f.score))
    return np.ascontiguousarray(image[:, ::-1]), out


def jitter_colour(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32) * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20)
    if rng.random() < 0.2:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.2))
    return x.clip(0, 255).astype(np.uint8)


def targets(faces: list[Face]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-anchor known-face mask (N,), regression targets (N, 16) and their scale (N,) (the face
    size in input pixels, so a 5 px face's error counts as much as a 100 px face's). A face whose
    centre lies outside the input gets no anchor (the nearest would be a border anchor)."""
    pos = np.zeros(N_ANCHORS, np.float32)
    reg = np.zeros((N_ANCHORS, 16), np.float32)
    scale = np.ones(N_ANCHORS, np.float32)
    for f in sorted(faces, key=lambda f: -(f.box[2] - f.box[0])):  # small faces win shared anchors
        c = (f.box[:2] + f.box[2:]) / 2
        if not (0 <= c[0] <= 1 and 0 <= c[1] <= 1):  # a face whose centre is outside the input (another
            continue                                  # face of the photo, cropped away): no anchor of its own
        idx = match_anchors(f.box)
        pos[idx] = 1.0
        reg[idx] = encode(f.box, f.kps, idx)
        scale[idx] = max(float(f.box[2] - f.box[0]), float(f.box[3] - f.box[1])) * SIZE
    return pos, reg, scale


def save_teacher(path: Path, labels: dict[str, list[Face]]) -> None:
    rows = {k: [dict(box=f.box.tolist(), kps=f.kps.tolist(), score=f.score) for f in v] for k, v in labels.items()}
    path.write_text(json.dumps(rows))


def load_teacher(path: Path) -> dict[str, list[Face]]:
    rows = json.loads(path.read_text())
    return {k: [Face(np.array(f["box"], np.float32), np.array(f["kps"], np.float32), float(f["score"])) for f in v]
            for k, v in rows.items()}


class Net(torch.nn.Module):
    """The converted detector with a batch axis: NHWC uint8-range input scaled to [-1, 1] outside."""

    def __init__(self, onnx_path: Path):
        super().__init__()
        import onnx2torch  # train extra

        self.body = onnx2torch.convert(str(onnx_path))

    def forward(self, x: torch.Tensor):
        reg, logit = self.body(x)
        b = x.shape[0]
        return reg.reshape(b, N_ANCHORS, 16), logit.reshape(b, N_ANCHORS)


def loss_fn(student, teacher_out, pos, reg_t, scale, negative=None):
    """(classification, regression) loss of the student's (regressors, logits) against the frozen
    teacher's on the same input and the known faces' targets (``targets``, batched).

    Classification: BCE to ``max(teacher probability, known-face mask)``, known-face anchors weighted
    10x, summed over anchors, averaged over images - where nothing was added its gradient is zero
    for a student equal to the teacher. Regression: smooth L1 of the 16 values divided by the face
    size (keypoints at half weight) on known-face anchors (their targets) and on anchors the teacher
    is sure of (p > 0.5, its own values). ``negative`` (B,): images known to hold no face, whose
    every anchor's target is 0 whatever the teacher says (its false faces are not distilled)."""
    s_reg, s_logit = student
    t_reg, t_logit = teacher_out
    t_prob = torch.sigmoid(t_logit)
    if negative is not None:
        t_prob = t_prob * (1.0 - negative[:, None])
    target = torch.maximum(t_prob, pos)
    w = 1.0 + 9.0 * pos
    cls = (torch.nn.functional.binary_cross_entropy_with_logits(s_logit, target, reduction="none") * w).sum() / s_logit.shape[0]
    # regression: known faces where matched, else the teacher where it is sure
    sure = (t_prob > 0.5) & (pos == 0)
    tgt = torch.where(pos[..., None] > 0, reg_t, t_reg)
    sc = torch.where(pos > 0, scale, t_reg[..., 2].abs().clamp(min=1.0))
    m = (pos > 0) | sure
    if m.any():
        err = torch.nn.functional.smooth_l1_loss((s_reg[m] - tgt[m]) / sc[m][:, None], torch.zeros_like(tgt[m]),
                                                 reduction="none", beta=0.05)
        regl = (err[:, :4].sum(1) + 0.5 * err[:, 4:].sum(1)).mean()
    else:
        regl = s_reg.sum() * 0
    return cls, regl
