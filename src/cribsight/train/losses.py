"""Losses of the seed methods. Each is unit-tested against hand-computed values and gradchecked."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def heteroscedastic_mc_loss(logits: torch.Tensor, sigma_raw: torch.Tensor, labels: torch.Tensor, T: int = 25,
                            generator: torch.Generator | None = None, eps: torch.Tensor | None = None,
                            weights: torch.Tensor | None = None, across_samples: bool = False) -> torch.Tensor:
    """Seed 000 Eq. 5-6, per sample, averaged over the batch.

    logits f (N, c), sigma = softplus(sigma_raw) (N, c), labels (N, c) in {0, 1, -1 unknown}.
    y_hat_t = f + sigma eps_t (Eq. 5); with the one-hot transform, the term for class i and sample
    t is (+y_hat if y = 1 else -y_hat) - log(exp(-y_hat) + exp(y_hat)), and
    L = -log( 1/T sum_t 1/c sum_i exp(term_ti) )  (Eq. 6), over the known classes only (c = their
    count); samples with no known class contribute 0. ``eps`` (T, N, c) may be given for tests.
    Note the two-logit form [-f, f]: its softmax gives P(y = 1) = sigmoid(2 f), so decoders report
    sigmoid(2 f) (``analyze.decode.probability_with_sigma``), not sigmoid(f) as the seed's Eq. 4 reads.
    ``weights`` (N, c) >= 0 turns the mean over classes into a weighted one,
    L = -log( 1/T sum_t sum_i w_i exp(term_ti) / sum_i w_i ), over the known classes; all ones is
    Eq. 6 itself and a zero weight masks a class out like an unknown label. The weights are relative
    *within a sample*: scaling all of a sample's weights changes neither its loss nor its gradient,
    and every sample with a known class counts alike in the batch mean. So a label weighted below 1
    counts less than the same sample's weight-1 labels (``covered_unknown_as_negative: {source: {part:
    weight}}``, where the converted eyes weigh less than the same crop's nose and mouth), and a
    sample whose known labels all share one weight trains as if they were all 1.
    ``across_samples``: each sample's loss is also scaled by the mean weight of its known labels
    (sum_i w_i / its number of known labels) before the batch mean (still over the samples with a
    known label), so a sample whose labels all weigh 0.1 counts a tenth of one at weight 1. With all
    weights 1 it is the same loss.
    """
    N, c = logits.shape
    sigma = F.softplus(sigma_raw)
    if eps is None:
        eps = torch.randn((T, N, c), generator=generator, dtype=logits.dtype, device=logits.device)
    y_hat = logits[None] + sigma[None] * eps  # (T, N, c)
    sign = torch.where(labels == 1, 1.0, -1.0).to(logits.dtype)[None]
    term = sign * y_hat - torch.logaddexp(-y_hat, y_hat)  # log of the probability of the true class
    known = labels >= 0
    w = known.to(logits.dtype)
    if weights is not None:
        if weights.shape != labels.shape:
            raise ValueError(f"weights: expected shape {tuple(labels.shape)} (one per label), found {tuple(weights.shape)}")
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
            raise ValueError("weights: expected finite values >= 0, found negative or non-finite ones")
        w = w * weights.to(logits.dtype)
    use = w > 0
    term = torch.where(use[None].expand_as(term), term + torch.log(torch.where(use, w, 1.0))[None],
                       torch.full_like(term, -math.inf))
    total = w.sum(1)  # (N,): the number of known classes when unweighted
    lse = torch.logsumexp(term.permute(1, 0, 2).reshape(N, -1), dim=1)  # over t and i
    per = -(lse - torch.log(torch.where(total > 0, total, 1.0) * eps.shape[0]))
    per = torch.where(total > 0, per, torch.zeros_like(per))
    if across_samples:  # scaled by the mean weight of the sample's known labels
        per = per * total / known.sum(1).clamp(min=1).to(logits.dtype)
    return per.sum() / max(1, int((total > 0).sum()))


def masked_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over labels in {0, 1}, ignoring -1 (the cross-entropy baseline of seed 000)."""
    known = labels >= 0
    if not known.any():
        return logits.sum() * 0
    return F.binary_cross_entropy_with_logits(logits[known], labels[known].to(logits.dtype))


def kdn_nll(logits: torch.Tensor, target_xy: torch.Tensor, weight: torch.Tensor | None = None,
            kernel: str = "gaussian", kernel_sigma: float = 1.0) -> torch.Tensor:
    """Seed 002 Eq. 2: -log sum_ij K(y - mu_ij) pi_ij with pi = softmax over the map.

    logits (N, K, H, W); target_xy (N, K, 2) in heatmap pixels (pixel centres at integers);
    weight (N, K) in {0, 1} selects the landmarks whose location is known.
    Gaussian kernel: K = exp(-|d|^2 / 2 s^2) / (2 pi s^2). Uniform kernel of one pixel: K = 1 inside
    the pixel cell containing y (|d|_inf < 1/2), i.e. the categorical likelihood of that pixel.
    Returns the mean NLL over the selected landmarks (nats)."""
    N, K, H, W = logits.shape
    logp = torch.log_softmax(logits.reshape(N, K, -1), -1)
    if kernel == "gaussian":
        ys = torch.arange(H, dtype=logits.dtype, device=logits.device)
        xs = torch.arange(W, dtype=logits.dtype, device=logits.device)
        dx2 = (target_xy[..., 0:1] - xs) ** 2  # (N, K, W)
        dy2 = (target_xy[..., 1:2] - ys) ** 2  # (N, K, H)
        logk = -(dy2[..., :, None] + dx2[..., None, :]) / (2 * kernel_sigma ** 2) - math.log(2 * math.pi * kernel_sigma ** 2)
        nll = -torch.logsumexp(logp + logk.reshape(N, K, -1), -1)
    elif kernel == "uniform":
        ix = torch.round(target_xy[..., 0]).long().clamp(0, W - 1)
        iy = torch.round(target_xy[..., 1]).long().clamp(0, H - 1)
        nll = -logp.gather(-1, (iy * W + ix)[..., None])[..., 0]
    else:
        raise ValueError(f"kernel: expected gaussian or uniform, found {kernel!r}")
    if weight is None:
        return nll.mean()
    w = weight.to(nll.dtype)
    return (nll * w).sum() / w.sum().clamp(min=1)


def geodesic_loss(R_pred: torch.Tensor, R_gt: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Seed 003 Eq. 4: mean arccos((tr(R R_hat^T) - 1) / 2), in radians; clamped away from +-1 so the
    gradient stays finite."""
    tr = (R_gt * R_pred).sum((-2, -1))
    cos = ((tr - 1) / 2).clamp(-1 + 1e-6, 1 - 1e-6)
    ang = torch.acos(cos)
    if valid is None:
        return ang.mean()
    v = valid.to(ang.dtype)
    return (ang * v).sum() / v.sum().clamp(min=1)


def gaussian_heatmaps(xy: torch.Tensor, H: int, W: int, kernel: int = 7) -> torch.Tensor:
    """Seed 003 ground truth: 1 at the landmark pixel, 0 elsewhere, smoothed by a kernel x kernel
    Gaussian (std kernel / 6) and rescaled so the peak is 1. xy (N, K, 2) heatmap pixels."""
    N, K, _ = xy.shape
    ix = torch.round(xy[..., 0]).long()
    iy = torch.round(xy[..., 1]).long()
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    hm = torch.zeros(N * K, H * W, dtype=xy.dtype, device=xy.device)
    idx = (iy.clamp(0, H - 1) * W + ix.clamp(0, W - 1)).reshape(-1)
    hm[torch.arange(N * K), idx] = inside.reshape(-1).to(xy.dtype)
    hm = hm.reshape(N * K, 1, H, W)
    s = kernel / 6
    r = kernel // 2
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=xy.dtype) / s) ** 2)
    g = (g[:, None] * g[None, :])
    g = (g / g.max())[None, None]
    hm = F.conv2d(hm, g, padding=r)
    return hm.reshape(N, K, H, W)


def scaled_heatmap_loss(pred: torch.Tensor, gt: torch.Tensor, omega: float = 10.0, W: float = 10.0,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Seed 003 Eq. 5-7: mean of (omega L - L_hat)^2 * (W M + 1), M = 1 where the 3x3-dilated
    ground truth L_d >= 0.2 (foreground and difficult background), else 0. ``weight`` (N, K) masks
    landmarks without a known location."""
    dil = F.max_pool2d(gt, 3, 1, 1)
    M = (dil >= 0.2).to(pred.dtype)
    wse = (omega * gt - pred) ** 2 * (W * M + 1)
    if weight is None:
        return wse.mean()
    w = weight.to(pred.dtype)[..., None, None]
    return (wse * w).sum() / (w.sum().clamp(min=1) * pred.shape[-1] * pred.shape[-2])


def mask_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel-wise binary cross-entropy of the occlusion mask (seed 003 Eq. 8, both classes)."""
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def pose_direct_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """MNN L_ED / LPONet Eq. 3: mean absolute error of pose parameters (same units as given)."""
    err = (pred - target).abs().mean(-1)
    if valid is None:
        return err.mean()
    v = valid.to(err.dtype)
    return (err * v).sum() / v.sum().clamp(min=1)


def euler_to_matrix_t(ypr_deg: torch.Tensor) -> torch.Tensor:
    """Torch twin of ``geometry.matrix_from_euler``: R = Rz(roll) Ry(yaw) Rx(-pitch), degrees in."""
    y, p, r = (torch.deg2rad(ypr_deg[..., i]) for i in range(3))
    q = -p
    cy, sy, cq, sq, cr, sr = torch.cos(y), torch.sin(y), torch.cos(q), torch.sin(q), torch.cos(r), torch.sin(r)
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    Rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(*y.shape, 3, 3)
    Ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*y.shape, 3, 3)
    Rx = torch.stack([one, zero, zero, zero, cq, -sq, zero, sq, cq], -1).reshape(*y.shape, 3, 3)
    return Rz @ Ry @ Rx


def projection_loss(pose6: torch.Tensor, mean_face: torch.Tensor, target_xy: torch.Tensor,
                    weight: torch.Tensor | None = None) -> torch.Tensor:
    """MNN L_AE: project the mean 3D face (K, 3, head frame) with the predicted pose (yaw, pitch,
    roll in degrees, tx, ty, log-scale) by weak perspective, x = s R[:2] X + t, and take the mean
    Euclidean distance to the target landmarks (N, K, 2) over the selected ones."""
    R = euler_to_matrix_t(pose6[:, :3])
    s = torch.exp(pose6[:, 5])[:, None, None]
    proj = s * torch.einsum("nij,kj->nki", R[:, :2, :], mean_face) + pose6[:, None, 3:5]
    d = torch.linalg.norm(proj - target_xy, dim=-1)
    if weight is None:
        return d.mean()
    w = weight.to(d.dtype)
    return (d * w).sum() / w.sum().clamp(min=1)
