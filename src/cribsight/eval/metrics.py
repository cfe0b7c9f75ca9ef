"""Metrics as objects with ``update`` / ``reset`` / ``compute``; normalisers and thresholds explicit.

Landmarks (seed 002, 003): NME with inter-ocular (outer eye corners 36-45), inter-pupil (eye
centres) or box (sqrt(w h) of the ground-truth landmarks' box) normaliser; AUC and failure rate at
a threshold; CED curve; NLL of the ground truth under the predicted Gaussian; uncertainty vs error
for occluded and visible points (seed 002 Table 4); occlusion detection from uncertainty
(precision at a fixed recall, seed 002 Table 3).
Pose (seed 003 Table 2): MAE per angle and mean, geodesic distance.
Masks (seed 003 Eq. 12, 13): mIoU over the two classes (occluder, face), TME.
Classification (seed 000 Table 2): per-class precision, recall, F1 and their averages, AUROC,
expected calibration error and reliability diagram.
Intervals for figures measured on few images: Wilson score interval for a proportion; for an
AUROC, a logit-scale interval with the larger of DeLong's and Hanley-McNeil's variances.
Detection (seed 001): precision, recall, F1, AP at IoU 0.5 and 0.5:0.95, F1-confidence curve and the
best confidence threshold.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..geometry import box_iou, geodesic_deg, matrix_from_euler


class Metric:
    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, *args, **kwargs) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


def _as(x, shape_tail: tuple, what: str) -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.ndim == len(shape_tail):
        a = a[None]
    if a.shape[1:] != shape_tail and not (len(shape_tail) and shape_tail[0] == -1 and a.shape[2:] == shape_tail[1:]):
        raise InputError(what, f"shape (N, {', '.join('K' if s == -1 else str(s) for s in shape_tail)})", f"shape {a.shape}")
    return a


# ---------------------------------------------------------------------------------------------
# Landmarks
NORMALISERS = ("interocular", "interpupil", "box")


def landmark_normaliser(gt: np.ndarray, kind: str) -> np.ndarray:
    """(N,) normalising distances for (N, 68, 2) ground truth."""
    if kind == "interocular":
        return np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    if kind == "interpupil":
        return np.linalg.norm(gt[:, 36:42].mean(1) - gt[:, 42:48].mean(1), axis=-1)
    if kind == "box":
        span = np.nanmax(gt, 1) - np.nanmin(gt, 1)
        return np.sqrt(span[:, 0] * span[:, 1])
    raise InputError("normaliser", f"one of {NORMALISERS}", repr(kind))


def ced_curve(errors: Sequence[float], max_error: float, steps: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: (thresholds, fraction of samples with error <= threshold)."""
    x = np.linspace(0.0, max_error, steps)
    e = np.sort(np.asarray(errors, np.float64))
    y = np.searchsorted(e, x, side="right") / max(1, len(e))
    return x, y


def auc_at(errors: Sequence[float], threshold: float) -> float:
    """Area under the CED curve on [0, threshold], divided by threshold (1 = every error is 0)."""
    e = np.sort(np.asarray(errors, np.float64))
    if len(e) == 0:
        return float("nan")
    # exact integral of the step function F(x) = #{e <= x} / n over [0, t]
    inside = np.clip(e, 0, threshold)
    return float(np.sum(threshold - inside) / (len(e) * threshold))


class NME(Metric):
    """Normalised mean error per sample, over the points flagged in ``mask`` (all by default)."""

    def __init__(self, normaliser: str = "interocular", failure_threshold: float = 0.08, ced_max: float | None = None):
        if normaliser not in NORMALISERS:
            raise InputError("normaliser", f"one of {NORMALISERS}", repr(normaliser))
        self.normaliser, self.threshold = normaliser, failure_threshold
        self.ced_max = ced_max or failure_threshold
        self.reset()

    def reset(self) -> None:
        self.per_sample: list[float] = []

    def update(self, pred, gt, mask=None) -> None:
        p, g = _as(pred, (-1, 2), "pred"), _as(gt, (-1, 2), "gt")
        if p.shape != g.shape:
            raise InputError("NME.update", f"pred and gt of one shape ({g.shape})", f"pred {p.shape}")
        d = landmark_normaliser(g, self.normaliser)
        err = np.linalg.norm(p - g, axis=-1)
        m = np.ones(err.shape, bool) if mask is None else np.asarray(mask, bool).reshape(err.shape)
        for e, mm, n in zip(err, m, d):
            if mm.any() and n > 0:
                self.per_sample.append(float(e[mm].mean() / n))

    def compute(self) -> dict:
        e = np.asarray(self.per_sample)
        x, y = ced_curve(e, self.ced_max)
        return {
            "n": int(len(e)),
            "nme_mean": float(e.mean()) if len(e) else None,
            "nme_median": float(np.median(e)) if len(e) else None,
            f"auc@{self.threshold}": auc_at(e, self.threshold) if len(e) else None,
            f"failure_rate@{self.threshold}": float(np.mean(e > self.threshold)) if len(e) else None,
            "normaliser": self.normaliser,
            "ced": {"x": x.tolist(), "y": y.tolist()},
        }


def gaussian_nll(pred, sigma, gt) -> np.ndarray:
    """-log N(gt; pred, sigma^2 I) per point in 2D (nats): |d|^2 / (2 sigma^2) + log(2 pi sigma^2)."""
    d2 = np.sum((np.asarray(pred, np.float64) - np.asarray(gt, np.float64)) ** 2, axis=-1)
    s2 = np.asarray(sigma, np.float64) ** 2
    return d2 / (2 * s2) + np.log(2 * math.pi * s2)


class LandmarkNLL(Metric):
    """Mean NLL of the ground truth under isotropic Gaussians (pixels, or normalised units when a
    ``scale`` per sample is given: the NLL is then that of gt/scale under pred/scale)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.values: list[np.ndarray] = []

    def update(self, pred, sigma, gt, scale=None) -> None:
        p, g = _as(pred, (-1, 2), "pred"), _as(gt, (-1, 2), "gt")
        s = np.asarray(sigma, np.float64).reshape(p.shape[:2])
        if np.any(s <= 0):
            raise InputError("sigma", "positive values", f"min {s.min()}")
        if scale is not None:
            sc = np.asarray(scale, np.float64).reshape(-1, 1)
            p, g, s = p / sc[..., None], g / sc[..., None], s / sc
        self.values.append(gaussian_nll(p, s, g).reshape(-1))

    def compute(self) -> dict:
        v = np.concatenate(self.values) if self.values else np.zeros(0)
        return {"n_points": int(len(v)), "nll_mean": float(v.mean()) if len(v) else None}


class UncertaintyVsError(Metric):
    """Seed 002 Table 4: NME and mean uncertainty of occluded vs visible points, and occlusion
    detection from uncertainty alone (precision at ``recall``, seed 002 Table 3; and AUROC)."""

    def __init__(self, normaliser: str = "interocular", recall: float = 0.4):
        self.normaliser, self.recall = normaliser, recall
        self.reset()

    def reset(self) -> None:
        self.err: list[np.ndarray] = []
        self.unc: list[np.ndarray] = []
        self.occ: list[np.ndarray] = []

    def update(self, pred, uncertainty, gt, occluded) -> None:
        p, g = _as(pred, (-1, 2), "pred"), _as(gt, (-1, 2), "gt")
        d = landmark_normaliser(g, self.normaliser)[:, None]
        self.err.append((np.linalg.norm(p - g, axis=-1) / d).reshape(-1))
        self.unc.append(np.asarray(uncertainty, np.float64).reshape(-1))
        self.occ.append(np.asarray(occluded, bool).reshape(-1))

    def compute(self) -> dict:
        e, u, o = (np.concatenate(x) for x in (self.err, self.unc, self.occ))
        out = {
            "visible": {"n": int((~o).sum()), "nme": float(e[~o].mean()) if (~o).any() else None,
                        "uncertainty": float(u[~o].mean()) if (~o).any() else None},
            "occluded": {"n": int(o.sum()), "nme": float(e[o].mean()) if o.any() else None,
                         "uncertainty": float(u[o].mean()) if o.any() else None},
        }
        if o.any() and (~o).any():
            out["uncertainty_ratio"] = out["occluded"]["uncertainty"] / max(1e-12, out["visible"]["uncertainty"])
            out["occlusion_auroc"] = auroc(u, o)
            out[f"precision_at_recall_{self.recall}"] = precision_at_recall(u, o, self.recall)
        return out


# ---------------------------------------------------------------------------------------------
# Pose
class PoseError(Metric):
    """MAE of yaw, pitch, roll (degrees; angle differences wrapped to [-180, 180]) and the mean
    geodesic distance between the rotations."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.abs: list[np.ndarray] = []
        self.geo: list[float] = []

    def update(self, pred_ypr, gt_ypr) -> None:
        p, g = _as(pred_ypr, (3,), "pred_ypr"), _as(gt_ypr, (3,), "gt_ypr")
        self.abs.append(np.abs((p - g + 180) % 360 - 180))
        self.geo += [geodesic_deg(matrix_from_euler(*a), matrix_from_euler(*b)) for a, b in zip(p, g)]

    def compute(self) -> dict:
        a = np.concatenate(self.abs) if self.abs else np.zeros((0, 3))
        if not len(a):
            return {"n": 0, "mae_yaw": None, "mae_pitch": None, "mae_roll": None, "mae_mean": None, "geodesic_mean": None}
        return {"n": int(len(a)), "mae_yaw": float(a[:, 0].mean()), "mae_pitch": float(a[:, 1].mean()),
                "mae_roll": float(a[:, 2].mean()), "mae_mean": float(a.mean()), "geodesic_mean": float(np.mean(self.geo))}


# ---------------------------------------------------------------------------------------------
# Masks
class MaskIoU(Metric):
    """Seed 003 Eq. 12: mIoU = 1/(2N) sum_i sum_c IoU(pred_ic, gt_ic) over c in {occluder, face}.
    An image where a class is absent from both masks counts IoU 1 for it (nothing to get wrong)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.per_image: list[float] = []

    def update(self, pred_mask, gt_mask) -> None:
        p = np.asarray(pred_mask, bool)
        g = np.asarray(gt_mask, bool)
        if p.shape != g.shape:
            raise InputError("MaskIoU.update", f"masks of one shape ({g.shape})", f"pred {p.shape}")
        if p.ndim == 2:
            p, g = p[None], g[None]
        for pi, gi in zip(p, g):
            ious = []
            for a, b in ((pi, gi), (~pi, ~gi)):
                union = np.logical_or(a, b).sum()
                ious.append(1.0 if union == 0 else np.logical_and(a, b).sum() / union)
            self.per_image.append(float(np.mean(ious)))

    def compute(self) -> dict:
        v = self.per_image
        return {"n": len(v), "miou": float(np.mean(v)) if v else None}


def total_mean_error(nme_percent: float, mae_deg: float, miou_percent: float) -> float:
    """Seed 003 Eq. 13: TME = (NME + MAE + (100 - mIoU)) / 3, NME and mIoU in percent, MAE in degrees."""
    return (nme_percent + mae_deg + (100.0 - miou_percent)) / 3.0


# ---------------------------------------------------------------------------------------------
# Classification
def auroc(scores, labels) -> float:
    """Area under the ROC curve by the rank statistic (ties count one half)."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels, bool).reshape(-1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> list[float] | None:
    """Wilson score interval [lo, hi] for a proportion k/n (95% by default): unlike k/n +- z se it
    has width at k = 0 or k = n and stays inside [0, 1]. None when n = 0."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise InputError("k", f"a count between 0 and n = {n}", str(k))
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [0.0 if k == 0 else mid - half, 1.0 if k == n else mid + half]


def f1_interval(pred, labels, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of F1 = 2 tp / (2 tp + fp + fn) over samples (resampled with
    replacement ``n_boot`` times, a fixed seed so a report is repeatable): F1 has no closed-form
    interval. Resamples with no positive and no positive prediction are dropped. None when there is
    no sample or F1 is undefined on the whole set."""
    pred = np.asarray(pred, bool).ravel()
    y = np.asarray(labels, bool).ravel()
    if pred.shape != y.shape:
        raise InputError("labels", f"{pred.size} labels, one per prediction", str(y.size))
    if y.size == 0 or not (pred | y).any():
        return None
    idx = np.random.default_rng(seed).integers(0, y.size, (n_boot, y.size))
    tp = (pred & y)[idx].sum(1)
    wrong = (pred ^ y)[idx].sum(1)  # fp + fn
    ok = 2 * tp + wrong > 0
    f1 = 2 * tp[ok] / (2 * tp[ok] + wrong[ok])
    a = (1 - level) / 2
    return [float(np.quantile(f1, a)), float(np.quantile(f1, 1 - a))]


def auroc_delong(scores, labels) -> tuple[float, float]:
    """AUROC and DeLong's variance of it (DeLong, DeLong & Clarke-Pearson 1988): with V10_i the
    share of negatives scored below positive i (ties one half) and V01_j the share of positives
    scored above negative j, AUROC = mean V10 = mean V01 and var = s2(V10)/m + s2(V01)/n."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels, bool).reshape(-1)
    pos, neg = s[y], s[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    cmp = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = cmp.mean(axis=1), cmp.mean(axis=0)
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    return float(v10.mean()), float(var)


def hanley_mcneil_var(a: float, m: int, n: int) -> float:
    """Hanley & McNeil's (1982) variance of an AUROC ``a`` from ``m`` positives and ``n`` negatives
    (exponential score model): (A(1-A) + (m-1)(Q1-A^2) + (n-1)(Q2-A^2)) / (m n), Q1 = A/(2-A),
    Q2 = 2A^2/(1+A)."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return (a * (1 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (m * n)


def auroc_interval(scores, labels, z: float = Z95) -> list[float] | None:
    """95% interval [lo, hi] of the AUROC, built on the logit scale (logit A +- z se / (A (1 - A)))
    and mapped back, so it stays inside (0, 1). se is the larger of DeLong's and Hanley-McNeil's:
    DeLong's alone covers the true AUROC well at tens of examples per class but only ~80-90% of
    the time with 2-7 positives (simulated, tests/test_metrics.py), the sizes of our real-infant
    labels; the larger of the two keeps coverage at or above ~91% down to one positive. None when
    a class is empty or the sample AUROC is exactly 0 or 1 - perfect separation gives both
    variances 0, which would claim a certainty a small sample does not have."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels, bool).reshape(-1)
    a, var = auroc_delong(s, y)
    if math.isnan(a) or a <= 0.0 or a >= 1.0:
        return None
    var = max(var, hanley_mcneil_var(a, int(y.sum()), int((~y).sum())))
    lg, se = math.log(a / (1 - a)), math.sqrt(var) / (a * (1 - a))
    return [1 / (1 + math.exp(-(lg - z * se))), 1 / (1 + math.exp(-(lg + z * se)))]


def precision_at_recall(scores, labels, recall: float) -> float:
    """Precision of the rule score >= t with the largest t whose recall reaches ``recall``."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels, bool).reshape(-1)
    order = np.argsort(-s, kind="mergesort")
    tp = np.cumsum(y[order])
    k = int(np.searchsorted(tp, math.ceil(recall * y.sum() - 1e-9)))
    k = min(k, len(s) - 1)
    # include every item tied with the k-th score
    t = s[order][k]
    sel = s >= t
    return float(y[sel].mean())


def pr_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds descending, precision, recall) for the rule score >= threshold."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels, bool).reshape(-1)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s) - 1]
    tp = np.cumsum(y_sorted)[distinct]
    fp = (distinct + 1) - tp
    return s_sorted[distinct], tp / np.maximum(tp + fp, 1), tp / max(1, y.sum())


class BinaryClassification(Metric):
    """Per-class precision, recall, F1 at ``threshold``, AUROC, ECE and a reliability diagram for
    multi-label probabilities. Labels of -1 (unknown, seed 000) are ignored. ``f1_intervals``: also a
    bootstrap 95% interval of each class's F1 (``f1_ci95``)."""

    def __init__(self, class_names: Sequence[str], threshold: float = 0.5, n_bins: int = 10, f1_intervals: bool = False):
        self.names, self.threshold, self.n_bins = list(class_names), threshold, n_bins
        self.f1_intervals = f1_intervals
        self.reset()

    def reset(self) -> None:
        self.p: list[np.ndarray] = []
        self.y: list[np.ndarray] = []

    def update(self, probs, labels) -> None:
        p = np.asarray(probs, np.float64).reshape(-1, len(self.names))
        y = np.asarray(labels, np.float64).reshape(-1, len(self.names))
        if np.any((p < 0) | (p > 1)):
            raise InputError("probs", "probabilities in [0, 1]", f"range [{p.min()}, {p.max()}]")
        self.p.append(p)
        self.y.append(y)

    def compute(self) -> dict:
        P = np.concatenate(self.p) if self.p else np.zeros((0, len(self.names)))
        Y = np.concatenate(self.y) if self.y else np.zeros((0, len(self.names)))
        per = {}
        for c, name in enumerate(self.names):
            known = Y[:, c] >= 0
            p, y = P[known, c], Y[known, c] == 1
            pred = p >= self.threshold
            tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
            prec = tp / (tp + fp) if tp + fp else float("nan")
            rec = tp / (tp + fn) if tp + fn else float("nan")
            f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
            per[name] = {"n": int(known.sum()), "positives": int(y.sum()), "precision": prec, "recall": rec,
                         "f1": f1, "f1_ci95": f1_interval(pred, y) if self.f1_intervals else None,
                         "auroc": auroc(p, y), "ece": expected_calibration_error(p, y, self.n_bins)}
        f1s = [v["f1"] for v in per.values() if not math.isnan(v["f1"])]
        known = Y >= 0
        pall, yall = P[known], Y[known] == 1
        return {"threshold": self.threshold, "per_class": per,
                "macro_f1": float(np.mean(f1s)) if f1s else None,
                "ece_all": expected_calibration_error(pall, yall, self.n_bins),
                "reliability": reliability_diagram(pall, yall, self.n_bins)}


def reliability_diagram(p, y, n_bins: int = 10) -> dict:
    """Equal-width bins on [0, 1]: count, mean confidence and observed frequency per bin."""
    p = np.asarray(p, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf = np.bincount(idx, weights=p, minlength=n_bins) / np.maximum(count, 1)
    freq = np.bincount(idx, weights=y, minlength=n_bins) / np.maximum(count, 1)
    return {"count": count.tolist(), "confidence": conf.tolist(), "frequency": freq.tolist()}


def expected_calibration_error(p, y, n_bins: int = 10) -> float:
    """ECE = sum_b (n_b / n) |mean(y)_b - mean(p)_b| over equal-width bins."""
    p = np.asarray(p, np.float64).reshape(-1)
    if len(p) == 0:
        return float("nan")
    r = reliability_diagram(p, y, n_bins)
    c = np.asarray(r["count"])
    return float(np.sum(c / len(p) * np.abs(np.asarray(r["frequency"]) - np.asarray(r["confidence"]))))


# ---------------------------------------------------------------------------------------------
# Detection
def f1_confidence_curve(scores, is_tp, n_gt: int, steps: int = 101) -> dict:
    """Precision, recall and F1 of 'keep detections scoring >= c' for c on a grid over [0, 1]
    (seed 001's F1-confidence curve); precision is 1 where nothing is kept. Also the best c: of
    thresholds tied at the best F1, the highest (the same boxes are kept with fewer doubts)."""
    s = np.asarray(scores, np.float64)
    t = np.asarray(is_tp, bool)
    grid = np.arange(steps) / (steps - 1)  # i / 100 is the double nearest 0.7 etc.; linspace's 0.7000000000000001 drops a 0.7 box
    f1, prec, rec = [], [], []
    for c in grid:
        sel = s >= c
        tp = int(t[sel].sum())
        fp = int(sel.sum()) - tp
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / n_gt if n_gt else 0.0
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
        prec.append(p)
        rec.append(r)
    best = len(f1) - 1 - int(np.argmax(f1[::-1]))
    return {"confidence": grid.tolist(), "f1": f1, "precision": prec, "recall": rec,
            "best_threshold": float(grid[best]), "best_f1": float(f1[best])}



class DetectionMetric(Metric):
    """Greedy matching by descending score at each IoU threshold (a prediction matches the unmatched
    ground-truth box of highest IoU >= threshold). AP by all-point interpolation (VOC 2010+/COCO
    style without the 101-point sampling). ``tiers``: optional difficulty tier per ground-truth box
    for recall by tier at IoU 0.5."""

    IOUS = tuple(np.round(np.arange(0.5, 0.96, 0.05), 2))

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.images: list[tuple[np.ndarray, np.ndarray, np.ndarray, list]] = []

    def update(self, pred_boxes, pred_scores, gt_boxes, tiers: Sequence[str] | None = None) -> None:
        pb = np.asarray(pred_boxes, np.float64).reshape(-1, 4)
        ps = np.asarray(pred_scores, np.float64).reshape(-1)
        gb = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        if len(pb) != len(ps):
            raise InputError("DetectionMetric.update", "one score per predicted box", f"{len(pb)} boxes, {len(ps)} scores")
        self.images.append((pb, ps, gb, list(tiers) if tiers is not None else ["all"] * len(gb)))

    def _match(self, iou_t: float):
        scores, tps, matched_tiers = [], [], []
        for pb, ps, gb, tiers in self.images:
            order = np.argsort(-ps, kind="mergesort")
            ious = box_iou(pb[order], gb) if len(gb) and len(pb) else np.zeros((len(pb), len(gb)))
            used = np.zeros(len(gb), bool)
            hit_tier = [None] * len(gb)
            for r, i in enumerate(order):
                tp = False
                if len(gb):
                    cand = np.where(used, -1.0, ious[r])
                    j = int(np.argmax(cand))
                    if cand[j] >= iou_t:
                        used[j], tp = True, True
                        hit_tier[j] = ps[i]
                scores.append(ps[i])
                tps.append(tp)
            matched_tiers.append((tiers, hit_tier))
        return np.asarray(scores), np.asarray(tps, bool), matched_tiers

    @staticmethod
    def _ap(scores, tps, n_gt) -> float:
        if n_gt == 0:
            return float("nan")
        order = np.argsort(-scores, kind="mergesort")
        tp = np.cumsum(tps[order])
        fp = np.cumsum(~tps[order])
        rec = tp / n_gt
        prec = tp / np.maximum(tp + fp, 1)
        mrec = np.r_[0.0, rec, 1.0]
        mpre = np.r_[1.0, prec, 0.0]
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))

    def compute(self, conf_threshold: float | None = None) -> dict:
        n_gt = sum(len(g) for _, _, g, _ in self.images)
        scores, tps, tier_hits = self._match(0.5)
        aps = [self._ap(*self._match(t)[:2], n_gt) for t in self.IOUS]
        curve = f1_confidence_curve(scores, tps, n_gt)
        thr = curve["best_threshold"] if conf_threshold is None else conf_threshold
        sel = scores >= thr
        tp = int(tps[sel].sum())
        fp = int(sel.sum()) - tp
        by_tier: dict[str, list[int]] = {}
        for tiers, hits in tier_hits:
            for t, h in zip(tiers, hits):
                v = by_tier.setdefault(t, [0, 0])
                v[1] += 1
                v[0] += h is not None and h >= thr
        return {
            "n_images": len(self.images), "n_gt": n_gt,
            "conf_threshold": float(thr), "best_f1_threshold": curve["best_threshold"],
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / n_gt if n_gt else None,
            "f1": 2 * tp / (2 * tp + fp + (n_gt - tp)) if n_gt + tp + fp else None,
            "ap50": aps[0], "map50_95": float(np.nanmean(aps)),
            "recall_by_tier": {t: v[0] / v[1] for t, v in sorted(by_tier.items())},
            "f1_confidence": {k: curve[k] for k in ("confidence", "f1", "precision", "recall")},
        }
