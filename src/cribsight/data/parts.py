"""Seed 001's ten facial-part classes as boxes derived from 68 landmarks, and YOLO export.

Classes (index: name: iBUG points whose box it is):
0 eyes: 36-47 | 1 nose: 27-35 | 2 face: 0-26 (with the forehead: brows raised by 20% of the face
height) | 3 right_face: the subject's right half (0-8, 17-21, 27-30, 31-33, 36-41, 48-51, 57-62,
66-67) | 4 left_face: the left half (8-16, 22-30, 33-35, 42-47, 51-57, 62-66) | 5 brows: 17-26 |
6 left_eye_face: the subject's left eye with its surroundings (22-26, 42-47, 14-16) | 7
right_eye_face: (17-21, 36-41, 0-2) | 8 eyes_nose: 27-47 | 9 mouth: 48-67.

A part is skipped when fewer than half of its points are visible (``visibility`` VISIBLE or
unknown), so a detector trained on these boxes learns only what can be seen (seed 001).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .sample import VISIBLE, UNKNOWN

PART_CLASSES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("eyes", tuple(range(36, 48))),
    ("nose", tuple(range(27, 36))),
    ("face", tuple(range(0, 27))),
    ("right_face", tuple(list(range(0, 9)) + list(range(17, 22)) + list(range(27, 34)) + list(range(36, 42))
                         + [48, 49, 50, 51, 57, 58, 59, 60, 61, 62, 66, 67])),
    ("left_face", tuple(list(range(8, 17)) + list(range(22, 31)) + [33, 34, 35] + list(range(42, 48))
                        + [51, 52, 53, 54, 55, 56, 57, 62, 63, 64, 65, 66])),
    ("brows", tuple(range(17, 27))),
    ("left_eye_face", tuple(list(range(22, 27)) + list(range(42, 48)) + [14, 15, 16])),
    ("right_eye_face", tuple(list(range(17, 22)) + list(range(36, 42)) + [0, 1, 2])),
    ("eyes_nose", tuple(range(27, 48))),
    ("mouth", tuple(range(48, 68))),
)
PART_CLASS_NAMES = tuple(n for n, _ in PART_CLASSES)


def part_boxes(landmarks: np.ndarray, visibility: np.ndarray | None = None, min_visible: float = 0.5,
               image_size: tuple[int, int] | None = None) -> list[tuple[int, np.ndarray]]:
    """[(class index, xyxy box)] for the parts whose visible fraction >= ``min_visible``.
    ``image_size`` (w, h) clips the boxes."""
    lm = np.asarray(landmarks, np.float64)
    vis = np.full(68, VISIBLE) if visibility is None else np.asarray(visibility)
    seen = (vis == VISIBLE) | (vis == UNKNOWN)
    h_face = lm[:, 1].max() - lm[:, 1].min()
    out = []
    for k, (name, idx) in enumerate(PART_CLASSES):
        idx = list(idx)
        if seen[idx].mean() < min_visible:
            continue
        pts = lm[idx]
        if name == "face":
            brows = lm[17:27].copy()
            brows[:, 1] -= 0.2 * h_face
            pts = np.concatenate([pts, brows])
        box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
        if image_size is not None:
            w, h = image_size
            box = np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1])
        if box[2] > box[0] and box[3] > box[1]:
            out.append((k, box))
    return out


def yolo_lines(boxes: list[tuple[int, np.ndarray]], width: int, height: int) -> list[str]:
    """YOLO text: ``class cx cy w h`` normalised to [0, 1]."""
    lines = []
    for k, b in boxes:
        cx, cy = (b[0] + b[2]) / 2 / width, (b[1] + b[3]) / 2 / height
        w, h = (b[2] - b[0]) / width, (b[3] - b[1]) / height
        lines.append(f"{k} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def write_yolo(path: Path, boxes: list[tuple[int, np.ndarray]], width: int, height: int) -> None:
    Path(path).write_text("\n".join(yolo_lines(boxes, width, height)) + ("\n" if boxes else ""))
