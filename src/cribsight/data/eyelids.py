"""Synthetic closed eyes over real open-eyed faces, with exact labels.

Real closed eyes are rare in the development data (the teacher labels 13 of about 9,000 faces
'closed' with confidence), yet a sleeping infant is the commonest sight in a crib. ``close_eyes``
shuts both eyes of a crop:

1. each eye's opening (the iBUG contour 36-41 / 42-47 grown x1.25 about its centre, plus one pixel)
   is inpainted from the surrounding lid skin (OpenCV Telea), which removes iris, sclera and the
   lid margins;
2. the closed lid line is drawn from corner to corner through the points 20% of the way from the
   lower lid up to the upper lid (a closed eye's lash line lies near the lower lid), dark (the lid
   skin x 0.3) and anti-aliased, about 1/12 of the eye's width thick;
3. the landmarks follow: upper-lid points 37, 38 (43, 44) and their lower-lid partners 41, 40
   (47, 46) move onto that line, as iBUG annotates a closed eye.
The caller sets ``eyes_open`` = 0. Deterministic given the rng.
"""
from __future__ import annotations

import cv2
import numpy as np

# (outer corner, upper lid a, upper lid b, inner corner, lower lid b, lower lid a) per eye, so that
# upper a pairs with lower a and upper b with lower b
EYES = ((36, 37, 38, 39, 40, 41), (45, 44, 43, 42, 47, 46))
LASH_HEIGHT = 0.2  # the closed line: this fraction of the way from the lower lid to the upper lid


def closed_lid_points(lm: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks with both eyes closed (the moved points on the lid line)."""
    out = np.asarray(lm, np.float64).copy()
    for _, ua, ub, _, lb, la in EYES:
        for u, lo in ((ua, la), (ub, lb)):
            q = out[lo] + LASH_HEIGHT * (out[u] - out[lo])
            out[u] = q
            out[lo] = q
    return out


def close_eyes(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image with both eyes shut, moved landmarks). ``img`` HWC uint8 RGB, ``lm`` (68, 2) pixels."""
    lm = np.asarray(lm, np.float64)
    H, W = img.shape[:2]
    hole = np.zeros((H, W), np.uint8)
    for idx in EYES:
        p = lm[list(idx)]
        c = p.mean(0)
        poly = np.round((c + (p - c) * 1.25) * 4).astype(np.int32)
        cv2.fillPoly(hole, [poly], 1, cv2.LINE_8, shift=2)
    hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
    out = cv2.inpaint(img, hole, 3, cv2.INPAINT_TELEA)
    new = closed_lid_points(lm)
    ring = cv2.dilate(hole, np.ones((5, 5), np.uint8)) & ~hole.astype(bool)
    skin = out[ring.astype(bool)].reshape(-1, 3).astype(np.float32).mean(0) if ring.any() else np.full(3, 128.0)
    lash = np.zeros((H, W), np.float32)
    darkness = rng.uniform(0.2, 0.4)
    for outer, ua, ub, inner, _, _ in EYES:
        line = new[[outer, ua, ub, inner]]
        width = float(np.linalg.norm(lm[outer] - lm[inner]))
        thick = max(1, int(round(width / 12)))
        cv2.polylines(lash, [np.round(line * 4).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, shift=2)
    lash = cv2.GaussianBlur(lash, (0, 0), 0.6)[..., None].clip(0, 1)
    res = out.astype(np.float32) * (1 - lash) + (skin * darkness)[None, None] * lash
    return np.clip(res, 0, 255).astype(np.uint8), new.astype(np.float32)
