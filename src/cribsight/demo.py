"""The embedded demo: a short clip built from a public-domain portrait, in which a blanket-like
textured occluder slides up over the lower face and back down."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ASSET = Path(__file__).resolve().parent / "assets" / "astronaut.jpg"


def sample_image() -> np.ndarray:
    """The embedded public-domain portrait (512 x 512 RGB uint8)."""
    return cv2.cvtColor(cv2.imread(str(ASSET), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def blanket_texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A knitted-blanket look: a pastel base, a stripe print, folds (low-frequency shading) and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.array([200, 170, 210], np.float32)  # pastel lilac
    stripes = 0.5 + 0.5 * np.sign(np.sin(xx / 9.0 + 0.3 * np.sin(yy / 23.0)))
    folds = 0.75 + 0.25 * np.sin(xx / 37.0 + yy / 61.0) * np.cos(yy / 29.0)
    noise = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    tex = base * (0.85 + 0.15 * stripes[..., None]) * folds[..., None] + noise
    return np.clip(tex, 0, 255).astype(np.uint8)


def demo_frames(n_frames: int = 48):
    """Yield (index, timestamp_ms, rgb) for the demo clip at 12 fps."""
    img = sample_image()
    h, w = img.shape[:2]
    tex = blanket_texture(h, w)
    top_clear, top_covered = h, int(h * 0.235)  # blanket edge from below the image up over the nose
    for i in range(n_frames):
        phase = 1 - abs(2 * i / max(1, n_frames - 1) - 1)  # 0 -> 1 -> 0
        edge = int(round(top_clear + (top_covered - top_clear) * phase))
        frame = img.copy()
        if edge < h:
            xs = np.arange(w)
            wave = (8 * np.sin(xs / 40.0 + i / 3.0)).astype(int)  # wavy blanket edge
            mask = np.zeros((h, w), np.float32)
            for x in range(w):
                mask[max(0, edge + wave[x]):, x] = 1.0
            mask = cv2.GaussianBlur(mask, (0, 0), 2.0)[..., None]
            shadow = cv2.GaussianBlur(np.roll(mask, -6, axis=0), (0, 0), 6.0)[..., None] * 0.35
            under = frame.astype(np.float32) * (1 - shadow)
            frame = (under * (1 - mask) + tex.astype(np.float32) * mask).astype(np.uint8)
        yield i, i * 1000.0 / 12.0, frame
