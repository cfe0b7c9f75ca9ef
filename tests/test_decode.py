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


def _reference_decode(logits, s, iters=10, r=4):
    """The decode written out plainly: start pixel from OpenCV's Gaussian blur of pi, mean-shift
    with 2-D kernel weights on the window, Eq. 5's covariance summed over every pixel."""
    import cv2

    K, H, W = logits.shape
    pi = softmax2d(logits)
    ys, covs = [], []
    for k in range(K):
        sm = cv2.GaussianBlur(pi[k], (0, 0), s, borderType=cv2.BORDER_CONSTANT)
        y0, x0 = divmod(int(sm.argmax()), W)
        cells = [(x, y) for y in range(y0 - r, y0 + r + 1) for x in range(x0 - r, x0 + r + 1) if 0 <= x < W and 0 <= y < H]
        mu = np.array(cells, float)
        p = np.array([pi[k, y, x] for x, y in cells])
        m = np.array([x0, y0], float)
        for _ in range(iters):
            w = p * np.exp(-0.5 * ((m - mu) ** 2).sum(1) / s ** 2)
            m = w @ mu / w.sum()
        cov = s ** 2 * np.eye(2)
        for y in range(H):
            for x in range(W):
                d = m - (x, y)
                cov = cov + pi[k, y, x] * np.outer(d, d)
        ys.append(m)
        covs.append(cov)
    covs = np.array(covs)
    return np.array(ys), covs, np.linalg.det(covs) ** 0.25


@pytest.mark.parametrize("s", [0.5, 1.0, 1.7])
def test_decode_equals_the_plain_computation(s):
    rng = np.random.default_rng(3)
    H, W = 11, 14
    gy, gx = np.mgrid[0:H, 0:W]
    lg = [rng.normal(size=(H, W)) * 3]  # noise: many local maxima
    lg.append(-((gx - 0.4) ** 2 + (gy - 9.7) ** 2) / 3.0)  # a peak at the border: the window is clipped
    lg.append(-((gx - 6.3) ** 2 + (gy - 4.8) ** 2) / 2.0 + 0.5 * rng.normal(size=(H, W)))
    lg = np.array(lg)
    y, cov, sig = kdn_decode(lg, s)
    ry, rcov, rsig = _reference_decode(lg, s, r=max(4, math.ceil(4 * s)))
    assert np.allclose(y, ry, atol=1e-10) and np.allclose(cov, rcov, atol=1e-10) and np.allclose(sig, rsig, atol=1e-10)


@pytest.mark.parametrize("s", [0.3, 0.5, 1.0, 1.7, 3.0])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (11, 14), (32, 32)])
def test_band_smoothing_equals_opencv_gaussian_blur(s, shape):
    import cv2

    from cribsight.analyze.decode import _gaussian_band

    x = np.random.default_rng(4).random(shape)
    want = cv2.GaussianBlur(x, (0, 0), s, borderType=cv2.BORDER_CONSTANT)  # float64: kernel cut at 4 sigma
    got = _gaussian_band(shape[0], s) @ x @ _gaussian_band(shape[1], s).T
    assert np.allclose(got, want, atol=1e-14)


def test_decode_of_one_map_equals_the_plain_computation():
    lg = np.random.default_rng(5).normal(size=(1, 9, 12)) * 2
    for a, b in zip(kdn_decode(lg, 0.5), _reference_decode(lg, 0.5)):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-10)


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


def test_part_probabilities_average_the_mirror_with_its_eyes_swapped():
    from cribsight.analyze.decode import part_probabilities

    f = np.array([[0.5, -1.0, 2.0, 0.0]])
    out = {"occ": f, "occ_sigma": np.full((1, 4), -50.0), "cov": -f, "cov_sigma": np.full((1, 4), -50.0)}
    one = part_probabilities(out)
    q = 1 / (1 + np.exp(-2 * f[0]))  # sigma ~ 0: P = sigmoid(2 f)
    assert np.allclose(one["occ"][0], q) and np.allclose(one["cov"][0], 1 - q) and np.allclose(one["occ"][1], 0, atol=1e-12)
    mf = np.array([[3.0, 1.0, -2.0, 0.0]])  # the mirror: its eye_left is the face's right eye
    mirrored = {"occ": mf, "occ_sigma": np.full((1, 4), -50.0), "cov": mf, "cov_sigma": np.array([[0.0, 1.0, 2.0, 3.0]])}
    two = part_probabilities(out, mirrored)
    qm = 1 / (1 + np.exp(-2 * mf[0]))
    assert np.allclose(two["occ"][0], (q + qm[[1, 0, 2, 3]]) / 2)
    # sigma: the equal mixture's std, sqrt(mean variance + (difference / 2)^2), at most 0.5
    p1 = one["cov"][0]
    pm, sm = probability_with_sigma(mf[0], mirrored["cov_sigma"][0])
    pm, sm = pm[[1, 0, 2, 3]], sm[[1, 0, 2, 3]]
    want = np.minimum(np.sqrt(sm ** 2 / 2 + ((p1 - pm) / 2) ** 2), 0.5)  # the original's sigma ~ 0
    assert np.allclose(two["cov"][1], want, atol=1e-12)
    assert (two["cov"][1] >= np.abs(p1 - pm) / 2 - 1e-12).all()  # two reads that disagree: uncertain
    # the swap is the data engine's: a flipped crop's part labels are these columns of the original's
    from cribsight.analyze.decode import MIRROR_PARTS
    from cribsight.data.synth import _flip_parts

    labels = np.arange(8, dtype=np.int8).reshape(4, 2)
    assert (_flip_parts(labels) == labels[MIRROR_PARTS]).all()
    # a read and its own mirror read with the eyes swapped give a symmetric result
    swapped = {k: v[:, [1, 0, 2, 3]] for k, v in out.items()}
    sym = part_probabilities(out, swapped)
    assert np.allclose(sym["occ"][0], q)


def test_bilinear_sampling_and_visibility_fusion():
    from cribsight.analyze.decode import bilinear_at, landmark_visibility, sigmoid

    ys, xs = np.mgrid[0:8, 0:6]
    grid = 2.0 * xs + 3.0 * ys  # bilinear sampling reproduces a plane exactly
    pts = np.array([[1.5, 2.25], [0.0, 0.0], [5.0, 7.0], [4.75, 6.5]])
    assert np.allclose(bilinear_at(grid, pts), 2 * pts[:, 0] + 3 * pts[:, 1])
    assert np.allclose(bilinear_at(grid, np.array([[-3.0, 20.0]])), [3 * 7])  # clamped to the border
    v = np.linspace(-3, 3, 4)
    mask = np.zeros((8, 6))
    mask[:, 3:] = 5.0  # occluder over the right half
    assert np.allclose(landmark_visibility(v, mask, pts), sigmoid(v))  # no fusion: the head alone
    fus = {"visibility": 1.0, "mask": -0.5, "bias": 0.25}
    got = landmark_visibility(v, mask, pts, fus)
    assert np.allclose(got, sigmoid(v - 0.5 * bilinear_at(mask, pts) + 0.25))
    assert got[0] > sigmoid(v[0]) and got[2] < sigmoid(v[2])  # off the occluder up, under it down


def test_logistic_fit_recovers_a_known_model():
    from cribsight.analyze.calibrate import logistic_fit
    from cribsight.errors import InputError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40000, 2))
    y = rng.random(40000) < 1 / (1 + np.exp(-(1.5 * X[:, 0] - 0.8 * X[:, 1] + 0.3)))
    w, b = logistic_fit(X, y)
    assert np.allclose(w, [1.5, -0.8], atol=0.06) and abs(b - 0.3) < 0.05
    with pytest.raises(InputError, match="both classes"):
        logistic_fit(X, np.ones(len(X)))
