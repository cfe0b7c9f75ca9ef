import math

import numpy as np
import pytest

from cribsight.analyze.decode import kdn_decode, probability_with_sigma, softmax2d, top2_decode


def _reference_mode(logits, s=1.0, iters=200):
    """Full-grid mean-shift (Eq. 4 fixed point) from the best pixel of the density on the grid."""
    K, H, W = logits.shape
    pi = softmax2d(logits).reshape(K, -1)
    gy, gx = np.mgrid[0:H, 0:W]
    mu = np.stack([gx.ravel(), gy.ravel()], 1).astype(float)
    out = []
    for k in range(K):
        dens = [(pi[k] * np.exp(-0.5 * ((m - mu) ** 2).sum(1) / s ** 2)).sum() for m in mu]
        y = mu[int(np.argmax(dens))].copy()
        for _ in range(iters):
            w = pi[k] * np.exp(-0.5 * ((y - mu) ** 2).sum(1) / s ** 2)
            y = w @ mu / w.sum()
        out.append(y)
    return np.array(out)


def test_single_spike_mode_and_sigma():
    lg = np.full((1, 9, 9), -50.0)
    lg[0, 3, 5] = 0.0
    y, cov, sig = kdn_decode(lg, 1.0)
    assert np.allclose(y, [[5, 3]], atol=1e-9) and np.allclose(cov[0], np.eye(2)) and sig[0] == pytest.approx(1.0)


def test_two_equal_spikes_mode_between_and_covariance():
    lg = np.full((1, 9, 9), -50.0)
    lg[0, 4, 3] = lg[0, 4, 4] = 0.0
    y, cov, sig = kdn_decode(lg, 1.0)
    assert np.allclose(y, [[3.5, 4.0]], atol=1e-6)
    assert np.allclose(cov[0], [[1.25, 0], [0, 1.0]], atol=1e-9)
    assert sig[0] == pytest.approx((1.25 * 1.0) ** 0.25)


def test_windowed_mode_matches_full_grid_reference():
    rng = np.random.default_rng(0)
    H = W = 16
    gy, gx = np.mgrid[0:H, 0:W]
    lg = []
    for k in range(5):
        cx, cy = rng.uniform(3, 12, 2)
        lg.append(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * rng.uniform(0.8, 2.0) ** 2) + 0.3 * rng.normal(size=(H, W)))
    lg = np.array(lg)
    y, _, _ = kdn_decode(lg, 1.0, iters=200)
    assert np.allclose(y, _reference_mode(lg), atol=1e-3)


def test_flat_map_has_large_sigma():
    _, _, sig = kdn_decode(np.zeros((1, 16, 16)), 1.0)
    # a flat density has no single mode (any interior point is one); the spread about it is at
    # least the uniform's: det(cov)^(1/4) >= sqrt((16^2 - 1) / 12 + 1) = 4.72, against 1 for a spike
    assert sig[0] >= math.sqrt((16 ** 2 - 1) / 12 + 1.0) - 1e-9


def test_top2_weighted_decode():
    hm = np.zeros((1, 5, 5))
    hm[0, 2, 2], hm[0, 2, 3] = 3.0, 1.0
    assert np.allclose(top2_decode(hm), [[2.25, 2.0]])


def test_probability_with_sigma():
    p, s = probability_with_sigma(np.array([0.0, 2.0]), np.array([-50.0, -50.0]))
    assert p[0] == pytest.approx(0.5) and p[1] == pytest.approx(1 / (1 + math.exp(-4)))
    assert s[1] == pytest.approx(0.0, abs=1e-12)
    p2, s2 = probability_with_sigma(np.array([2.0]), np.array([2.0]))
    assert 0.5 < p2[0] < p[1] and s2[0] > 0  # noise pulls the probability towards 1/2
