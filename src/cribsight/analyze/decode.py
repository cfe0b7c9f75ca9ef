"""Decoding of network outputs, plain numpy, shared by the ONNX runtime and the training code.

KDN (seed 002): a landmark heatmap of logits (H, W) is a kernel-density mixture with weights
pi = softmax(logits) at pixel centres mu_ij and a Gaussian kernel of std ``kernel_sigma`` pixels:
    p(y) = sum_ij pi_ij N(y; mu_ij, s^2 I)                                   (Eq. 1)
The mode is found by gradient ascent (Eq. 4) in its fixed-point (mean-shift) form, which climbs
p monotonically: y <- sum_ij w_ij mu_ij / sum_ij w_ij with w_ij = pi_ij N(y; mu_ij, s^2 I),
starting at the best pixel of the smoothed map (pi convolved with the kernel = p on the grid).
The covariance (Eq. 5) is Cov = s^2 I + sum_ij pi_ij (y_m - mu_ij)(y_m - mu_ij)^T and the reported
1-sigma is det(Cov)^(1/4) (the geometric mean of the principal standard deviations).
"""
from __future__ import annotations

import math

import numpy as np


def softmax2d(logits: np.ndarray) -> np.ndarray:
    """(..., H, W) logits -> probabilities summing to one over H, W."""
    z = logits.reshape(*logits.shape[:-2], -1).astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).reshape(logits.shape)


def kdn_decode(logits: np.ndarray, kernel_sigma: float = 1.0, iters: int = 10, window: int = 4):
    """(K, H, W) logits -> (mode (K, 2) xy in heatmap pixels, cov (K, 2, 2), sigma (K,) pixels).

    The mean-shift runs on a (2 r + 1)^2 neighbourhood of the start pixel, r = max(``window``,
    ceil(4 ``kernel_sigma``)): kernel weights beyond 4 sigma are below exp(-8) of the centre's. The
    covariance uses the whole map."""
    import cv2

    K, H, W = logits.shape
    pi = softmax2d(logits)
    smooth = cv2.GaussianBlur(np.ascontiguousarray(pi.transpose(1, 2, 0), np.float64), (0, 0), kernel_sigma,
                              borderType=cv2.BORDER_CONSTANT)
    smooth = smooth.reshape(H * W, K) if K > 1 else smooth.reshape(H * W, 1)
    flat = smooth.argmax(0)
    y0, x0 = flat // W, flat % W
    r = max(window, math.ceil(4 * kernel_sigma))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    yy = np.clip(y0[:, None] + dy.ravel()[None], 0, H - 1)  # (K, w^2); clipped cells repeat the border, so
    xx = np.clip(x0[:, None] + dx.ravel()[None], 0, W - 1)  # weight only the unclipped ones
    valid = (y0[:, None] + dy.ravel()[None] == yy) & (x0[:, None] + dx.ravel()[None] == xx)
    P = pi.reshape(K, -1)
    pw = np.take_along_axis(P, yy * W + xx, 1) * valid
    mu = np.stack([xx, yy], -1).astype(np.float64)  # (K, w^2, 2)
    y = np.stack([x0, y0], 1).astype(np.float64)
    for _ in range(iters):
        d2 = ((y[:, None, :] - mu) ** 2).sum(-1)
        w = pw * np.exp(-0.5 * d2 / kernel_sigma ** 2)
        ws = w.sum(1, keepdims=True)
        y = np.where(ws > 1e-300, np.einsum("kn,kni->ki", w, mu) / np.maximum(ws, 1e-300), y)
    gy, gx = np.mgrid[0:H, 0:W]
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)  # (HW, 2)
    m1 = P @ grid  # E[mu]
    m2 = np.einsum("kn,ni,nj->kij", P, grid, grid)  # E[mu mu^T]
    cov = m2 - y[:, :, None] * m1[:, None, :] - m1[:, :, None] * y[:, None, :] + y[:, :, None] * y[:, None, :]
    cov = cov + kernel_sigma ** 2 * np.eye(2)
    sigma = np.maximum(np.linalg.det(cov), 0) ** 0.25
    return y, cov, sigma


def top2_decode(heatmaps: np.ndarray) -> np.ndarray:
    """Seed 003 style: the heatmap-weighted mean of the best pixel and its best 8-neighbour.
    (K, H, W) -> (K, 2) xy in heatmap pixels."""
    K, H, W = heatmaps.shape
    out = np.zeros((K, 2))
    for k in range(K):
        h = heatmaps[k]
        i = int(h.argmax())
        y0, x0 = divmod(i, W)
        best, by, bx = -np.inf, y0, x0
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = y0 + dy, x0 + dx
                if (dy or dx) and 0 <= yy < H and 0 <= xx < W and h[yy, xx] > best:
                    best, by, bx = h[yy, xx], yy, xx
        v1, v2 = max(h[y0, x0], 0.0), max(best, 0.0)
        if v1 + v2 <= 0:
            out[k] = (x0, y0)
        else:
            out[k] = ((v1 * x0 + v2 * bx) / (v1 + v2), (v1 * y0 + v2 * by) / (v1 + v2))
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -60, 60)))


def softplus(x):
    x = np.asarray(x, np.float64)
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def probability_with_sigma(logit, sigma_logit):
    """Seed 000 heads: a logit f and a pre-softplus std. Training (Eq. 5-6) uses the two-logit form
    [-f, f], so P(y = 1 | f) = sigmoid(2 f) and the noisy logit is 2 (f + sigma eps). The reported
    probability is E[sigmoid(2 (f + sigma eps))], eps ~ N(0, 1), by the probit approximation
    sigmoid(2 f / sqrt(1 + pi (2 sigma)^2 / 8)); its reported std is the delta-method value
    2 q (1 - q) sigma with q = sigmoid(2 f), clipped to [0, 0.5]."""
    f = np.asarray(logit, np.float64)
    s = softplus(sigma_logit)
    p = sigmoid(2 * f / np.sqrt(1 + math.pi * (2 * s) ** 2 / 8))
    q = sigmoid(2 * f)
    return p, np.clip(2 * q * (1 - q) * s, 0, 0.5)


def bilinear_at(grid: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Values of a (H, W) map at (N, 2) points given in its pixel coordinates (pixel centres at
    integers), bilinear, points outside clamped to the border."""
    g = np.asarray(grid, np.float64)
    h, w = g.shape
    x = np.clip(np.asarray(xy, np.float64)[:, 0], 0, w - 1)
    y = np.clip(np.asarray(xy, np.float64)[:, 1], 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(int), w - 2) if w > 1 else np.zeros(len(x), int)
    y0 = np.minimum(np.floor(y).astype(int), h - 2) if h > 1 else np.zeros(len(y), int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = g[y0, x0] * (1 - fx) + g[y0, x1] * fx
    bottom = g[y1, x0] * (1 - fx) + g[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def visibility_features(vis_logits: np.ndarray, mask_logits: np.ndarray, hm_xy: np.ndarray) -> np.ndarray:
    """Per landmark: its visibility logit and the occluder-mask logit at its decoded position
    (``hm_xy``, heatmap pixels; the mask has the heatmaps' grid) -> (68, 2)."""
    return np.stack([np.asarray(vis_logits, np.float64), bilinear_at(mask_logits, hm_xy)], 1)


def landmark_visibility(vis_logits: np.ndarray, mask_logits: np.ndarray, hm_xy: np.ndarray,
                        fusion: dict | None = None) -> np.ndarray:
    """P(landmark visible), (68,). Without ``fusion``: the visibility head alone, sigmoid(v). With
    it (the model's manifest entry ``visibility_fusion``, fitted on training crops by
    ``analyze.calibrate.fit_visibility_fusion``): sigmoid(a v + b m + c), m the occluder-mask logit
    at the landmark - a point under the predicted occluder is less likely seen."""
    if not fusion:
        return sigmoid(vis_logits)
    f = visibility_features(vis_logits, mask_logits, hm_xy)
    return sigmoid(fusion["visibility"] * f[:, 0] + fusion["mask"] * f[:, 1] + fusion["bias"])
