"""Losses against hand-computed values, with gradient checks (float64)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra (torch)")

from cribsight.train import losses as L  # noqa: E402
from cribsight.train.models import rot6d_to_matrix_t  # noqa: E402


def test_hetero_mc_zero_sigma_is_log_of_mean_probability():
    f = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([[1, 1, -1]])
    # Eq. 6 uses the two-logit form [-f, f], whose softmax gives P(y = 1) = sigmoid(2 f).
    # sigma -> softplus(-50) ~ 0: L = -log(mean(sigmoid(4), sigmoid(-2))) over the two known classes
    val = L.heteroscedastic_mc_loss(f, torch.full_like(f, -50.0), y, T=4)
    exp = -math.log((1 / (1 + math.exp(-4)) + 1 / (1 + math.exp(2))) / 2)
    assert val.item() == pytest.approx(exp, abs=1e-9)


def test_hetero_mc_with_given_noise_hand_value():
    f = torch.tensor([[1.0]], dtype=torch.float64)
    raw = torch.tensor([[math.log(math.e - 1)]], dtype=torch.float64)  # softplus = 1
    eps = torch.tensor([[[1.0]], [[-1.0]]], dtype=torch.float64)  # T = 2: y_hat = 2, 0
    val = L.heteroscedastic_mc_loss(f, raw, torch.tensor([[0]]), eps=eps)
    # label 0: probability sigmoid(-2 y_hat): (sigmoid(-4) + sigmoid(0)) / 2
    exp = -math.log((1 / (1 + math.exp(4)) + 0.5) / 2)
    assert val.item() == pytest.approx(exp, abs=1e-12)


def test_hetero_mc_unknown_only_sample_contributes_nothing_and_gradcheck():
    f = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    s = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1, 0, -1, 1], [-1, -1, -1, -1], [0, 0, 1, -1]])
    eps = torch.randn(5, 3, 4, dtype=torch.float64)
    torch.autograd.gradcheck(lambda a, b: L.heteroscedastic_mc_loss(a, b, y, eps=eps), (f, s))
    all_unknown = L.heteroscedastic_mc_loss(f[1:2], s[1:2], y[1:2], eps=eps[:, 1:2])
    assert all_unknown.item() == 0.0


def test_hetero_mc_weighted_mean_hand_value_masking_and_gradcheck():
    f = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
    tiny = torch.full_like(f, -50.0)  # sigma ~ 0
    y = torch.tensor([[1, 0, -1]])
    w = torch.tensor([[1.0, 0.25, 3.0]], dtype=torch.float64)  # the unknown class's weight is ignored
    val = L.heteroscedastic_mc_loss(f, tiny, y, T=2, weights=w)
    p1, p2 = 1 / (1 + math.exp(-4)), 1 / (1 + math.exp(-2))  # sigmoid(2 f) of label 1, sigmoid(-2 f) of label 0
    assert val.item() == pytest.approx(-math.log((1.0 * p1 + 0.25 * p2) / 1.25), abs=1e-9)
    ones = L.heteroscedastic_mc_loss(f, tiny, y, T=2, weights=torch.ones_like(f))
    assert ones.item() == pytest.approx(L.heteroscedastic_mc_loss(f, tiny, y, T=2).item(), abs=1e-12)  # Eq. 6
    zero = L.heteroscedastic_mc_loss(f, tiny, y, T=2, weights=torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64))
    assert zero.item() == pytest.approx(-math.log(p1), abs=1e-9)  # weight 0 = unknown
    g = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    s = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1, 0, -1, 1], [0, 1, 1, 0], [0, 0, 1, -1]])
    wt = torch.rand(3, 4, dtype=torch.float64) + 0.1
    eps = torch.randn(5, 3, 4, dtype=torch.float64)
    torch.autograd.gradcheck(lambda a, b: L.heteroscedastic_mc_loss(a, b, labels, eps=eps, weights=wt), (g, s))
    wz = wt.clone()
    wz[0, 1] = 0.0  # one class weighted out
    wz[1] = 0.0  # a whole sample weighted out: it contributes nothing
    torch.autograd.gradcheck(lambda a, b: L.heteroscedastic_mc_loss(a, b, labels, eps=eps, weights=wz), (g, s))
    g.grad = None
    L.heteroscedastic_mc_loss(g, s, labels, eps=eps, weights=wz).backward()
    assert (g.grad[1] == 0).all() and g.grad[0, 1] == 0
    # relative within a sample: scaling one sample's weights changes nothing
    scaled = wt.clone()
    scaled[2] *= 0.01
    assert L.heteroscedastic_mc_loss(g, s, labels, eps=eps, weights=scaled).item() == pytest.approx(
        L.heteroscedastic_mc_loss(g, s, labels, eps=eps, weights=wt).item(), abs=1e-12)
    # across samples: a sample's loss scaled by its labels' mean weight (hand value on one sample)
    one = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    tiny = torch.full_like(one, -50.0)
    lab = torch.tensor([[1, -1]])
    base = L.heteroscedastic_mc_loss(one, tiny, lab, T=2).item()
    assert L.heteroscedastic_mc_loss(one, tiny, lab, T=2, weights=torch.tensor([[0.1, 1.0]], dtype=torch.float64),
                                     across_samples=True).item() == pytest.approx(0.1 * base, abs=1e-12)
    assert L.heteroscedastic_mc_loss(g, s, labels, eps=eps, weights=torch.ones_like(wt), across_samples=True).item() == \
        pytest.approx(L.heteroscedastic_mc_loss(g, s, labels, eps=eps).item(), abs=1e-12)  # weights 1: Eq. 6
    torch.autograd.gradcheck(lambda a, b: L.heteroscedastic_mc_loss(a, b, labels, eps=eps, weights=wz, across_samples=True), (g, s))
    for bad in (torch.full((3, 4), -1.0, dtype=torch.float64), torch.full((3, 4), math.nan, dtype=torch.float64),
                torch.ones(4, dtype=torch.float64)):
        with pytest.raises(ValueError, match="weights"):
            L.heteroscedastic_mc_loss(g, s, labels, eps=eps, weights=bad)


def test_kdn_nll_uniform_is_categorical():
    logits = torch.zeros(1, 1, 3, 4, dtype=torch.float64)
    logits[0, 0, 1, 2] = math.log(5.0)  # weights: 5 at (x=2, y=1), 1 elsewhere: pi = 5/16
    val = L.kdn_nll(logits, torch.tensor([[[2.2, 0.9]]], dtype=torch.float64), kernel="uniform")
    assert val.item() == pytest.approx(-math.log(5 / 16))


def test_kdn_nll_gaussian_single_spike_hand_value():
    logits = torch.full((1, 1, 9, 9), -1e4, dtype=torch.float64)
    logits[0, 0, 4, 4] = 0.0  # all mass at (4, 4)
    y = torch.tensor([[[5.0, 4.0]]], dtype=torch.float64)  # one pixel away
    val = L.kdn_nll(logits, y, kernel="gaussian", kernel_sigma=1.0)
    assert val.item() == pytest.approx(0.5 + math.log(2 * math.pi), abs=1e-9)
    lg = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    tgt = torch.rand(2, 3, 2, dtype=torch.float64) * 4
    torch.autograd.gradcheck(lambda a: L.kdn_nll(a, tgt, torch.tensor([[1, 0, 1], [1, 1, 1]])), (lg,))


def test_geodesic_and_6d():
    from cribsight.geometry import matrix_from_euler

    R1 = torch.tensor(matrix_from_euler(0, 0, 0))[None]
    R2 = torch.tensor(matrix_from_euler(30, 0, 0))[None]
    assert L.geodesic_loss(R2, R1).item() == pytest.approx(math.radians(30))
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    R = rot6d_to_matrix_t(x)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(4, 3, 3), atol=1e-10)
    from cribsight.geometry import rot6d_to_matrix

    assert np.allclose(R.detach().numpy(), rot6d_to_matrix(x.detach().numpy()))
    Rg = torch.tensor(np.stack([matrix_from_euler(10 * i, 5, -3) for i in range(4)]))
    torch.autograd.gradcheck(lambda a: L.geodesic_loss(rot6d_to_matrix_t(a), Rg), (x,))


def test_euler_to_matrix_matches_numpy():
    from cribsight.geometry import matrix_from_euler

    ypr = torch.tensor([[25.0, -12.0, 40.0]], dtype=torch.float64)
    assert np.allclose(L.euler_to_matrix_t(ypr)[0].numpy(), matrix_from_euler(25, -12, 40))


def test_scaled_heatmap_loss_hand_value():
    gt = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    gt[0, 0, 2, 2] = 1.0
    pred = torch.zeros_like(gt)
    # omega = 2, W = 10: error only at the centre: (2 - 0)^2 * (10 * 1 + 1) = 44 over 25 pixels
    assert L.scaled_heatmap_loss(pred, gt, omega=2.0, W=10.0).item() == pytest.approx(44 / 25)
    # M covers the 3x3 dilation; a prediction of 1 everywhere: 9 mask pixels weigh 11, 16 others 1
    pred = torch.ones_like(gt)
    exp = ((2 - 1) ** 2 * 11 + 8 * 1 * 11 + 16 * 1) / 25
    assert L.scaled_heatmap_loss(pred, gt, omega=2.0, W=10.0).item() == pytest.approx(exp)


def test_scaled_heatmap_loss_weighted_hand_value_and_gradcheck():
    # the trainer's call: landmarks without a known location weigh 0, the mean is over the rest
    gt = torch.zeros(1, 2, 5, 5, dtype=torch.float64)
    gt[0, 0, 2, 2] = 1.0
    gt[0, 1, 0, 0] = 1.0
    pred = torch.zeros_like(gt)
    # landmark 0 alone: 44 / 25 as above; landmark 1 (masked out) would add 44 more
    val = L.scaled_heatmap_loss(pred, gt, omega=2.0, W=10.0, weight=torch.tensor([[1, 0]]))
    assert val.item() == pytest.approx(44 / 25)
    assert L.scaled_heatmap_loss(pred, gt, omega=2.0, W=10.0, weight=torch.tensor([[0, 0]])).item() == 0.0
    p = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda a: L.scaled_heatmap_loss(a, gt, weight=torch.tensor([[1, 1]])), (p,))


def test_kdn_nll_uniform_kernel_with_weight():
    logits = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    logits[0, 0, 1, 2] = math.log(5.0)  # landmark 0: pi = 5/16 at (2, 1)
    tgt = torch.tensor([[[2.2, 0.9], [0.0, 0.0]]], dtype=torch.float64)  # landmark 1: pi = 1/12 at (0, 0)
    both = L.kdn_nll(logits, tgt, kernel="uniform")
    assert both.item() == pytest.approx((-math.log(5 / 16) - math.log(1 / 12)) / 2)
    only0 = L.kdn_nll(logits, tgt, torch.tensor([[1, 0]]), kernel="uniform")
    assert only0.item() == pytest.approx(-math.log(5 / 16))
    lg = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda a: L.kdn_nll(a, tgt, torch.tensor([[1, 1]]), kernel="uniform"), (lg,))


def test_remaining_losses_gradcheck():
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda a: L.masked_bce(a, torch.tensor([1, -1, 0, 1, 0, -1])), (x,))
    m = torch.randn(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda a: L.mask_bce(a, (torch.arange(9).reshape(1, 1, 3, 3) % 2).double()), (m,))
    p = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)  # away from |d| = 0, where |.| has a kink
    torch.autograd.gradcheck(lambda a: L.pose_direct_loss(a, torch.full((2, 3), 5.0, dtype=torch.float64),
                                                          torch.tensor([True, False])), (p,))
    e = (torch.rand(2, 3, dtype=torch.float64) * 120 - 60).requires_grad_(True)
    torch.autograd.gradcheck(L.euler_to_matrix_t, (e,))
    xy = (torch.rand(1, 2, 2, dtype=torch.float64) * 6 + 1).requires_grad_(True)
    torch.autograd.gradcheck(lambda a: L.gaussian_heatmaps(a, 8, 8), (xy,))


def test_gaussian_heatmap_peak_and_outside():
    hm = L.gaussian_heatmaps(torch.tensor([[[3.0, 4.0], [-5.0, 2.0]]]), 8, 8)
    assert hm[0, 0].max().item() == pytest.approx(1.0) and hm[0, 0, 4, 3].item() == pytest.approx(1.0)
    assert hm[0, 1].abs().sum().item() == 0.0


def test_projection_loss_zero_at_truth_and_gradcheck():
    from cribsight.runtime import WEIGHTS_DIR
    from cribsight import schema

    face = np.load(WEIGHTS_DIR / "canonical_face_468.npy")[list(schema.MESH468_TO_IBUG68)] * [1, -1, -1]
    X = torch.tensor(face, dtype=torch.float64)
    pose = torch.tensor([[20.0, -10.0, 5.0, 30.0, 40.0, math.log(2.0)]], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        R = L.euler_to_matrix_t(pose[:, :3])
        target = 2.0 * torch.einsum("nij,kj->nki", R[:, :2], X) + torch.tensor([30.0, 40.0], dtype=torch.float64)
    assert L.projection_loss(pose, X, target).item() == pytest.approx(0.0, abs=1e-9)
    torch.autograd.gradcheck(lambda p: L.projection_loss(p, X, target + 0.5), (pose,))


def test_masked_bce_ignores_unknown():
    lg = torch.tensor([0.0, 3.0, -2.0], dtype=torch.float64)
    y = torch.tensor([1, -1, 0])
    exp = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert L.masked_bce(lg, y).item() == pytest.approx(exp)


def test_mask_bce_hand_value():
    lg = torch.tensor([[[[0.0, 2.0], [-1.0, 0.5]]]], dtype=torch.float64)
    y = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], dtype=torch.float64)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731  softplus: -log(1 - sigmoid(v))
    exp = (sp(-0.0) + sp(2.0) + sp(-1.0) + sp(-0.5)) / 4
    assert L.mask_bce(lg, y).item() == pytest.approx(exp)


def test_pose_direct_loss_hand_value_and_valid_mask():
    pred = torch.tensor([[1.0, 2.0, 3.0], [10.0, 0.0, 0.0]], dtype=torch.float64)
    tgt = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert L.pose_direct_loss(pred, tgt).item() == pytest.approx((2.0 + 10 / 3) / 2)
    assert L.pose_direct_loss(pred, tgt, torch.tensor([True, False])).item() == pytest.approx(2.0)
    assert L.pose_direct_loss(pred, tgt, torch.tensor([False, False])).item() == 0.0


def test_non_face_crops_train_only_the_face_and_mask_terms():
    """A non-face crop (data.negatives) has no landmark, part, eye or pose label: only the face
    term, and the occluder mask (empty: nothing covers a face that is not there), may pull on the
    network's outputs for it."""
    from cribsight.train.data import Batch
    from cribsight.train.models import TINY, build_model
    from cribsight.train.trainer import TrainConfig, compute_losses

    torch.manual_seed(0)
    m = build_model("cribnet", TINY["cribnet"])
    S = TINY["cribnet"]["input_size"]
    n = 3
    face = torch.tensor([1.0, 0.0, 0.0])
    b = Batch(image=torch.randn(n, 3, S, S), landmarks=torch.rand(n, 68, 2) * S,
              loc_known=(face[:, None] > 0).expand(n, 68).clone(),
              visible=torch.where(face[:, None] > 0, 1.0, -1.0).expand(n, 68).clone(),
              pose=torch.where(face[:, None] > 0, torch.zeros(n, 3), torch.full((n, 3), float("nan"))),
              mask=torch.zeros(n, 1, S, S), parts=torch.where(face[:, None, None] > 0, 0, -1).expand(n, 4, 2).long(),
              eyes_open=torch.where(face > 0, 1, -1).long(), face=face)
    with torch.no_grad():  # the outputs as leaves: the test is of the loss terms, not the network
        out = {k: v.detach().requires_grad_() for k, v in m(b.image).items() if isinstance(v, torch.Tensor)}
    terms = compute_losses("cribnet", out, b, TrainConfig(model="cribnet"), torch.Generator().manual_seed(0))
    assert {"landmarks", "visibility", "mask", "pose", "occ", "cov", "eyes", "face"} <= set(terms)
    for name, t in terms.items():
        grads = torch.autograd.grad(t, list(out.values()), allow_unused=True)
        assert any(g is not None and g[0].abs().sum() > 0 for g in grads), name  # it trains the face crop
        for key, g in zip(out, grads):
            pulled = g is not None and bool(g[1:].abs().sum() > 0)
            assert pulled == (name in ("face", "mask") and key == name), (name, key)
