"""Fitting the landmark-visibility fusion (``decode.landmark_visibility``) of an exported CribNet.

The visibility head alone ranks hidden landmarks well, and the occluder-mask head marks where an
object lies on the face; a landmark under the predicted occluder is less likely seen. The fusion
P(visible) = sigmoid(a v + b m + c) (v: the landmark's visibility logit, m: the mask logit at its
decoded position) is a logistic regression fitted by maximum likelihood on the data engine's
*training* crops - never the held-out set the figures are reported on - and stored in the model's
manifest entry as ``visibility_fusion``; the runtime and ``cribsight eval synthetic`` apply it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .decode import sigmoid, visibility_features


def logistic_fit(X: np.ndarray, y: np.ndarray, ridge: float = 1e-6, iters: int = 50) -> tuple[np.ndarray, float]:
    """Maximum-likelihood logistic regression P(y = 1 | x) = sigmoid(w.x + b) by Newton's method
    (iteratively reweighted least squares), a tiny ridge on w for separable data -> (w, b)."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise InputError("logistic_fit", "X (n, k) and y (n,) with n > 0", f"X {X.shape}, y {y.shape}")
    if y.min() == y.max():
        raise InputError("logistic_fit", "both classes in y", f"only {int(y[0])}")
    A = np.c_[X, np.ones(len(X))]
    theta = np.zeros(A.shape[1])
    reg = np.full(A.shape[1], ridge)
    reg[-1] = 0.0
    for _ in range(iters):
        p = sigmoid(A @ theta)
        grad = A.T @ (p - y) + reg * theta
        H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-12 * np.eye(len(theta))
        step = np.linalg.solve(H, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return theta[:-1], float(theta[-1])


def visibility_samples(model: str, shards: Path, limit: int = 2000, progress=iter) -> tuple[np.ndarray, np.ndarray]:
    """The fusion's features (visibility logit, mask logit at the landmark) and labels (1 = seen)
    of every labelled landmark of the first ``limit`` crops in ``shards`` (face crops only)."""
    from ..data.build import load_shards
    from ..data.sample import VISIBLE
    from ..eval.benchmarks import network_on_crop
    from ..runtime import load_model

    net = load_model(model)
    d = load_shards(Path(shards), limit)
    is_face = d["face"] if "face" in d else np.ones(len(d["image"]), np.int8)
    X, Y = [], []
    for i in progress(range(len(d["image"]))):
        if not is_face[i]:
            continue
        out, _, _, hm_xy = network_on_crop(net, d["image"][i], mirror=False)  # parts are not used
        v = d["visibility"][i]
        ok = v >= 0
        f = visibility_features(out["visibility"][0], out["mask"][0, 0], hm_xy)
        X.append(f[ok])
        Y.append(v[ok] == VISIBLE)
    if not X:
        raise InputError(str(shards), "face crops with labelled landmarks", "none")
    return np.concatenate(X), np.concatenate(Y)


def fit_visibility_fusion(model: str, shards: Path, limit: int = 2000, progress=iter) -> dict:
    """The ``visibility_fusion`` manifest entry for ``model`` fitted on ``shards`` (training crops),
    with the AUROC of the head alone and of the fusion on those crops."""
    from ..eval.metrics import auroc

    X, y = visibility_samples(model, shards, limit, progress)
    w, b = logistic_fit(X, y)
    return {"visibility": float(w[0]), "mask": float(w[1]), "bias": b, "landmarks": int(len(y)),
            "fitted_on": f"first {limit} crops of {Path(shards).name}",
            "auroc_head_on_fit_data": auroc(X[:, 0], y), "auroc_fused_on_fit_data": auroc(X @ w + b, y)}
