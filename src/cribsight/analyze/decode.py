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

import functools
import math

import numpy as np


def softmax2d(logits: np.ndarray) -> np.ndarray:
    """(..., H, W) logits -> probabilities summing to one over H, W."""
    z = logits.reshape(*logits.shape[:-2], -1).astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).reshape(logits.shape)


@functools.lru_cache(maxsize=32)
def _gaussian_band(n: int, kernel_sigma: float) -> np.ndarray:
    """(n, n) matrix that convolves a length-n signal with the normalised Gaussian of std
    ``kernel_sigma`` truncated at 4 sigma (OpenCV's float64 kernel length), zero outside the signal.
    Cached (every face decodes maps of one size with one kernel), so read-only."""
    import cv2

    ksize = int(round(kernel_sigma * 8 + 1)) | 1
    g = cv2.getGaussianKernel(ksize, kernel_sigma, cv2.CV_64F).ravel()
    half = ksize // 2
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    band = np.where(np.abs(d) <= half, g[np.clip(d + half, 0, ksize - 1)], 0.0)
    band.flags.writeable = False
    return band


def kdn_decode(logits: np.ndarray, kernel_sigma: float = 1.0, iters: int = 10, window: int = 4):
    """(K, H, W) logits -> (mode (K, 2) xy in heatmap pixels, cov (K, 2, 2), sigma (K,) pixels).

    The start pixel is the best of pi smoothed by the Gaussian kernel (separable, as two matrix
    products; zero outside the map). The mean-shift runs on a (2 r + 1)^2 neighbourhood of the start
    pixel, r = max(``window``, ceil(4 ``kernel_sigma``)): kernel weights beyond 4 sigma are below
    exp(-8) of the centre's; the kernel is separable, so each step needs 2 (2 r + 1) exponentials per
    landmark, not (2 r + 1)^2. The covariance uses the whole map (its first and second moments from
    one matrix product)."""
    K, H, W = logits.shape
    pi = softmax2d(logits)
    smooth = _gaussian_band(H, kernel_sigma) @ pi @ _gaussian_band(W, kernel_sigma).T
    flat = smooth.reshape(K, -1).argmax(1)
    y0, x0 = flat // W, flat % W
    r = max(window, math.ceil(4 * kernel_sigma))
    off = np.arange(-r, r + 1)
    ys, xs = y0[:, None] + off, x0[:, None] + off  # (K, w) window rows and columns
    vy, vx = (ys >= 0) & (ys < H), (xs >= 0) & (xs < W)  # cells off the map weigh nothing
    pw = pi[np.arange(K)[:, None, None], np.clip(ys, 0, H - 1)[:, :, None], np.clip(xs, 0, W - 1)[:, None, :]]
    pw = pw * (vy[:, :, None] & vx[:, None, :])  # (K, w, w)
    ys, xs = ys.astype(np.float64), xs.astype(np.float64)
    y = np.stack([x0, y0], 1).astype(np.float64)
    c = -0.5 / kernel_sigma ** 2
    for _ in range(iters):
        ey = np.exp(c * (y[:, 1:2] - ys) ** 2)  # (K, w)
        ex = np.exp(c * (y[:, 0:1] - xs) ** 2)
        wy = np.einsum("kab,kb->ka", pw, ex)  # sum over columns of pi * N_x, per row
        ws = np.einsum("ka,ka->k", wy, ey)
        sx = np.einsum("ka,kab,kb->k", ey, pw, ex * xs)
        sy = np.einsum("ka,ka->k", wy, ey * ys)
        ok = ws > 1e-300
        den = np.where(ok, ws, 1.0)
        y = np.where(ok[:, None], np.stack([sx / den, sy / den], 1), y)
    gy, gx = np.mgrid[0:H, 0:W]
    gx, gy = gx.ravel().astype(np.float64), gy.ravel().astype(np.float64)
    m = pi.reshape(K, -1) @ np.stack([gx, gy, gx * gx, gx * gy, gy * gy], 1)  # E[x], E[y], E[xx], E[xy], E[yy]
    mx, my = y[:, 0], y[:, 1]
    cxx = m[:, 2] - 2 * mx * m[:, 0] + mx * mx + kernel_sigma ** 2
    cyy = m[:, 4] - 2 * my * m[:, 1] + my * my + kernel_sigma ** 2
    cxy = m[:, 3] - mx * m[:, 1] - my * m[:, 0] + mx * my
    cov = np.stack([np.stack([cxx, cxy], 1), np.stack([cxy, cyy], 1)], 1)
    sigma = np.maximum(cxx * cyy - cxy * cxy, 0) ** 0.25
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


MIRROR_PARTS = [1, 0, 2, 3]  # PART_NAMES (eye_left, eye_right, nose, mouth) as seen in the mirrored crop


def part_probabilities(out: dict, mirrored: dict | None = None) -> dict:
    """The seed-000 part heads of one crop's network outputs (batch index 0) -> {"occ": (p, sigma),
    "cov": (p, sigma)}, each (4,) over PART_NAMES. With ``mirrored`` (the outputs for the crop
    flipped left-right, whose eye_left is the face's right eye) the two reads are combined as an
    equal mixture, the mirror's eyes swapped back (a symmetric read-out; the manifest entry's
    ``part_flip_average`` asks for it): p is the mean of the two, and sigma the mixture's std,
    sqrt(mean of the two variances + (difference of the two p / 2)^2), so two reads that disagree
    report more uncertainty than either; clipped to 0.5 like a single read's."""
    res = {}
    for name in ("occ", "cov"):
        p, s = probability_with_sigma(out[name][0], out[f"{name}_sigma"][0])
        if mirrored is not None:
            pm, sm = probability_with_sigma(mirrored[name][0], mirrored[f"{name}_sigma"][0])
            pm, sm = pm[MIRROR_PARTS], sm[MIRROR_PARTS]
            p, s = (p + pm) / 2, np.minimum(np.sqrt((s ** 2 + sm ** 2) / 2 + ((p - pm) / 2) ** 2), 0.5)
        res[name] = (p, s)
    return res


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
