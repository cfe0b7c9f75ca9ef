"""Camera conditions applied to RGB uint8 images, deterministic given a numpy Generator.

Used by the robustness benchmark (seed 002 Fig. 5 style curves) and by the data engine.
"""
from __future__ import annotations

import cv2
import numpy as np


def gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` grey levels."""
    if sigma <= 0:
        return img.copy()
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32), 0, 255).astype(np.uint8)


def gaussian_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px <= 0:
        return img.copy()
    return cv2.GaussianBlur(img, (0, 0), sigma_px)


def motion_blur(img: np.ndarray, length_px: int, angle_deg: float) -> np.ndarray:
    if length_px <= 1:
        return img.copy()
    k = np.zeros((length_px, length_px), np.float32)
    k[length_px // 2, :] = 1.0
    m = cv2.getRotationMatrix2D((length_px / 2 - 0.5, length_px / 2 - 0.5), angle_deg, 1.0)
    k = cv2.warpAffine(k, m, (length_px, length_px))
    k /= max(k.sum(), 1e-6)
    return cv2.filter2D(img, -1, k)


def low_resolution(img: np.ndarray, factor: float) -> np.ndarray:
    """Down-sample by ``factor`` (< 1) with area averaging and back up bilinearly: same size, less detail."""
    if factor >= 1:
        return img.copy()
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def infrared(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Night-vision look, ``strength`` in [0, 1]: grey (IR sensors see skin bright and colours
    alike), contrast squeezed towards mid grey, sensor noise, vignetting and a soft glare spot."""
    if strength <= 0:
        return img.copy()
    h, w = img.shape[:2]
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # IR: skin reflects near-infrared well, so faces read lighter; lift and flatten
    contrast = 1.0 - 0.6 * strength
    g = 128 + (g - 128) * contrast + 20 * strength
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    g *= 1.0 - 0.45 * strength * np.clip(r2, 0, 2) / 2
    gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    glare = np.exp(-(((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (0.08 * max(h, w)) ** 2)))
    g += 70 * strength * glare
    g += rng.normal(0, 12 * strength, g.shape).astype(np.float32)
    g = np.clip(g, 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)
