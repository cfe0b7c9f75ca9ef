import math

import numpy as np
import pytest

from cribsight.errors import InputError
from cribsight.eval import metrics as M


def _face68(scale=1.0):
    g = np.zeros((68, 2))
    g[36] = [0, 0]
    g[45] = [10 * scale, 0]
    g[36:42] = [[0, 0], [1, -1], [2, -1], [3, 0], [2, 1], [1, 1]]
    g[42:48] = g[36:42] + [7, 0]
    g[45] = [10, 0]
    return g


def test_nme_normalisers_hand_values():
    g = _face68()
    p = g.copy()
    p[:, 0] += 0.5  # every point off by 0.5 px
    io = M.NME("interocular")
    io.update(p, g)
    assert io.compute()["nme_mean"] == pytest.approx(0.5 / 10)
    ip = M.NME("interpupil")
    ip.update(p, g)
    assert ip.compute()["nme_mean"] == pytest.approx(0.5 / 7)  # eye centres are 7 px apart
    bx = M.NME("box")
    bx.update(p, g)
    assert bx.compute()["nme_mean"] == pytest.approx(0.5 / math.sqrt(10 * 2))  # box 10 x 2


def test_nme_mask_selects_points():
    g = _face68()
    p = g.copy()
    p[0] += [3, 4]  # one point 5 px off
    m = M.NME("interocular")
    m.update(p, g, mask=np.arange(68) == 0)
    assert m.compute()["nme_mean"] == pytest.approx(0.5)


def test_auc_failure_rate_and_ced():
    e = [0.0, 0.02, 0.04, 0.10]
    # integral of the CED on [0, 0.08] / 0.08 = mean over samples of (0.08 - min(e, 0.08)) / 0.08
    assert M.auc_at(e, 0.08) == pytest.approx((0.08 + 0.06 + 0.04 + 0.0) / (4 * 0.08))
    m = M.NME("interocular", failure_threshold=0.08)
    m.per_sample = e
    r = m.compute()
    assert r["failure_rate@0.08"] == 0.25
    x, y = np.array(r["ced"]["x"]), np.array(r["ced"]["y"])
    assert y[0] == 0.25 and y[-1] == 0.75 and np.all(np.diff(y) >= 0) and x[-1] == pytest.approx(0.08)


def test_gaussian_nll_hand_value():
    # d = (3, 4), sigma = 5: 25 / 50 + log(2 pi 25)
    assert M.gaussian_nll([0, 0], 5.0, [3, 4]) == pytest.approx(0.5 + math.log(50 * math.pi))
    m = M.LandmarkNLL()
    m.update(np.zeros((1, 2, 2)), np.full((1, 2), 5.0), np.array([[[3, 4], [0, 0]]]))
    assert m.compute()["nll_mean"] == pytest.approx((0.5 + 2 * math.log(50 * math.pi)) / 2)
    with pytest.raises(InputError):
        m.update(np.zeros((1, 2, 2)), np.zeros((1, 2)), np.zeros((1, 2, 2)))


def test_uncertainty_vs_error_and_precision_at_recall():
    g = _face68()[None]
    p = g.copy()
    occ = np.zeros((1, 68), bool)
    occ[0, 48:68] = True
    p[0, 48:68] += [1.0, 0]
    unc = np.where(occ, 4.0, 1.0)
    unc[0, 0] = 5.0  # one visible point with high uncertainty
    m = M.UncertaintyVsError("interocular", recall=0.4)
    m.update(p, unc, g, occ)
    r = m.compute()
    assert r["occluded"]["nme"] == pytest.approx(0.1) and r["visible"]["nme"] == 0
    assert r["occluded"]["uncertainty"] == 4.0
    assert r["visible"]["uncertainty"] == pytest.approx((47 + 5) / 48)
    # ranking: the visible point (5.0) first, then the 20 occluded ones tied at 4.0
    assert r["precision_at_recall_0.4"] == pytest.approx(20 / 21)
    assert r["occlusion_auroc"] == pytest.approx(1 - 1 / 48)


def test_pose_error_wraps_angles_and_geodesic():
    m = M.PoseError()
    m.update([[179.0, 0, 0], [10, 5, -5]], [[-179.0, 0, 0], [0, 0, 0]])
    r = m.compute()
    assert r["mae_yaw"] == pytest.approx((2 + 10) / 2)
    assert r["mae_pitch"] == pytest.approx(2.5) and r["mae_roll"] == pytest.approx(2.5)
    # geodesic: 2 degrees about one axis for the first pair; the second from cos t = (tr R - 1) / 2
    from cribsight.geometry import matrix_from_euler

    second = math.degrees(math.acos((np.trace(matrix_from_euler(10, 5, -5)) - 1) / 2))
    assert 10 < second < 20 and r["n"] == 2
    assert r["geodesic_mean"] == pytest.approx((2 + second) / 2)


def test_mask_iou_eq12():
    g = np.zeros((4, 4), bool)
    g[:2] = True  # 8 occluder pixels
    p = np.zeros((4, 4), bool)
    p[:1] = True  # 4 of them
    m = M.MaskIoU()
    m.update(p, g)
    # occluder IoU 4/8, face IoU 8/12
    assert m.compute()["miou"] == pytest.approx((0.5 + 8 / 12) / 2)
    m.update(np.zeros((4, 4), bool), np.zeros((4, 4), bool))  # nothing occluded, nothing predicted
    # the occluder class is absent from both: IoU 1 for it, the face class is perfect too
    assert m.compute()["n"] == 2 and m.compute()["miou"] == pytest.approx(((0.5 + 8 / 12) / 2 + 1) / 2)


def test_tme_eq13():
    assert M.total_mean_error(3.0, 4.0, 90.0) == pytest.approx((3 + 4 + 10) / 3)


def test_auroc_hand_values_and_ties():
    assert M.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert M.auroc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    assert math.isnan(M.auroc([0.1, 0.2], [1, 1]))


def test_wilson_interval_hand_values_and_coverage():
    lo, hi = M.wilson_interval(5, 10)
    # centre (0.5 + z^2/20) / (1 + z^2/10) = 0.5; half-width z sqrt(0.025 + z^2/400) / (1 + z^2/10)
    assert (lo, hi) == (pytest.approx(0.236593, abs=1e-6), pytest.approx(0.763407, abs=1e-6))
    assert M.wilson_interval(0, 10) == [0.0, pytest.approx(0.277533, abs=1e-6)]  # z^2 / (n + z^2)
    assert M.wilson_interval(10, 10) == [pytest.approx(0.722467, abs=1e-6), 1.0]
    assert M.wilson_interval(0, 0) is None
    with pytest.raises(InputError):
        M.wilson_interval(11, 10)
    # a 95% interval holds the true rate about 95% of the time (p = 0.1, n = 40)
    rng = np.random.default_rng(0)
    ks = rng.binomial(40, 0.1, size=4000)
    cover = np.mean([lo <= 0.1 <= hi for lo, hi in (M.wilson_interval(int(k), 40) for k in ks)])
    assert 0.92 <= cover <= 0.98


def test_f1_interval_bootstrap():
    # every prediction right: every resample's F1 is 1
    assert M.f1_interval([1, 0, 1, 0], [1, 0, 1, 0]) == [1.0, 1.0]
    assert M.f1_interval([0, 0], [0, 0]) is None  # F1 undefined: no positive, none predicted
    assert M.f1_interval([], []) is None
    with pytest.raises(InputError):
        M.f1_interval([1, 0], [1])
    rng = np.random.default_rng(1)
    y = rng.random(400) < 0.3
    pred = np.where(rng.random(400) < 0.85, y, ~y)  # 15% of predictions flipped
    f1 = 2 * (pred & y).sum() / (2 * (pred & y).sum() + (pred ^ y).sum())
    lo, hi = M.f1_interval(pred, y)
    assert lo < f1 < hi and 0.03 < hi - lo < 0.2
    assert M.f1_interval(pred, y) == [lo, hi]  # a fixed seed: repeatable
    lo4, hi4 = M.f1_interval(np.tile(pred, 4), np.tile(y, 4))
    assert hi4 - lo4 < 0.7 * (hi - lo)  # four times the samples: about half the width
    # BinaryClassification gives it per class only when asked
    bc = M.BinaryClassification(["a"], f1_intervals=True)
    bc.update(pred.astype(float)[:, None], y.astype(float)[:, None])
    assert bc.compute()["per_class"]["a"]["f1_ci95"] == [lo, hi]
    plain = M.BinaryClassification(["a"])
    plain.update(pred.astype(float)[:, None], y.astype(float)[:, None])
    assert plain.compute()["per_class"]["a"]["f1_ci95"] is None


def test_auroc_delong_hand_values_interval_and_coverage():
    s, y = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1], [1, 1, 1, 0, 0, 0, 0]
    # V10 = (1, 1, 3/4), V01 = (2/3, 1, 1, 1): AUROC 11/12, var = (1/48)/3 + (1/36)/4 = 1/72
    a, var = M.auroc_delong(s, y)
    assert a == pytest.approx(11 / 12) and a == pytest.approx(M.auroc(s, y)) and var == pytest.approx(1 / 72)
    # Hanley-McNeil: Q1 = 11/13, Q2 = 2 (11/12)^2 / (23/12); its variance is the larger here
    a2 = (11 / 12) ** 2
    hm = (11 / 144 + 2 * (11 / 13 - a2) + 3 * (2 * a2 / (23 / 12) - a2)) / 12
    assert M.hanley_mcneil_var(11 / 12, 3, 4) == pytest.approx(hm) and hm > 1 / 72
    lo, hi = M.auroc_interval(s, y)
    half = M.Z95 * math.sqrt(hm) / (11 / 144)  # logit(11/12) = ln 11, d logit / dA = 1 / (A (1 - A))
    assert lo == pytest.approx(1 / (1 + math.exp(-(math.log(11) - half))))
    assert hi == pytest.approx(1 / (1 + math.exp(-(math.log(11) + half))))
    assert M.auroc_interval([0.9, 0.8, 0.1], [1, 1, 0]) is None  # perfect separation: no honest interval
    assert M.auroc_interval([0.9, 0.8], [1, 1]) is None


@pytest.mark.parametrize("m, n", [(25, 35), (3, 60), (1, 30)])
def test_auroc_interval_coverage_down_to_few_positives(m, n):
    # positives N(1, 1), negatives N(0, 1): true AUROC = Phi(1 / sqrt 2); DeLong's variance alone
    # covers only ~0.89 at 3 / 60 and ~0.49 at 1 / 30
    true = 0.5 * (1 + math.erf(0.5))
    rng = np.random.default_rng(m)
    hits = kept = 0
    for _ in range(400):
        ci = M.auroc_interval(np.r_[rng.normal(1, 1, m), rng.normal(0, 1, n)], np.r_[np.ones(m), np.zeros(n)])
        if ci is not None:  # None only for a perfect sample AUROC
            kept += 1
            hits += ci[0] <= true <= ci[1]
    assert kept >= 300 and 0.90 <= hits / kept <= 0.995


def test_classification_prf_ignores_unknown_and_ece():
    c = M.BinaryClassification(["nose", "mouth"], threshold=0.5, n_bins=2)
    probs = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.1, 0.4]])
    labels = np.array([[1, 0], [0, 1], [1, -1], [0, 0]])
    c.update(probs, labels)
    r = c.compute()
    nose = r["per_class"]["nose"]
    # nose: tp 1 (0.9), fp 1 (0.8), fn 1 (0.3)
    assert nose["precision"] == 0.5 and nose["recall"] == 0.5 and nose["f1"] == 0.5
    mouth = r["per_class"]["mouth"]
    assert mouth["n"] == 3 and mouth["precision"] == 1.0 and mouth["recall"] == 1.0
    # ECE over known labels, 2 bins: [0, .5): p (.3, .1, .2, .4) mean .25, y (1, 0, 0, 0) mean .25 -> 0
    #                                 [.5, 1]: p (.9, .8, .7) mean .8, y (1, 0, 1) mean 2/3 -> 0.1333
    assert r["ece_all"] == pytest.approx(3 / 7 * (0.8 - 2 / 3))
    with pytest.raises(InputError):
        c.update([[1.2, 0.0]], [[1, 0]])


def test_detection_ap_f1_and_tiers():
    m = M.DetectionMetric()
    # image 1: two gt; a perfect hit (0.9), a false box (0.8), a miss
    m.update([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [[0, 0, 10, 10], [20, 20, 30, 30]], tiers=["easy", "hard"])
    # image 2: one gt hit at IoU 0.5 < x < 0.55 (shifted box) with score 0.7
    m.update([[0, 0, 10, 10]], [0.7], [[0, 0, 10, 10 * 0.52]], tiers=["hard"])
    r = m.compute(conf_threshold=0.5)
    assert r["n_gt"] == 3 and r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 3)
    # ranked: 0.9 TP, 0.8 FP, 0.7 TP -> AP = 1/3 * 1 + 1/3 * 2/3
    assert r["ap50"] == pytest.approx(1 / 3 + 2 / 9)
    assert r["recall_by_tier"] == {"easy": 1.0, "hard": 0.5}
    assert r["map50_95"] < r["ap50"]  # the shifted box fails the stricter IoUs
    # F1 is 2/3 for every threshold up to 0.7 (all three boxes), 0.4 above it, then 0.5: the best
    # is the highest threshold that reaches 2/3
    assert r["best_f1_threshold"] == pytest.approx(0.7)
