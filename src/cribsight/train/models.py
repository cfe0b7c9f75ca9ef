"""The seed models and the deployed CribNet, registered by name with dataclass configs.

Every model returns a dict of raw tensors (no losses, no decoding) in train and eval alike:
  heatmaps (N, K, h, w) logits     visibility (N, K) logits       rot6d (N, 6)
  mask (N, 1, h, w) logits         occ (N, 4) logits, occ_sigma (N, 4) pre-softplus
  cov (N, 3 or 4) logits, cov_sigma  eyes (N, 1) logits, eyes_sigma (N, 1)
  presence (N, 3, 10, 10) logits, presence_sigma (BMTL)   pose6 (N, 6) (MNN: yaw, pitch, roll, tx, ty, log s)
which outputs exist depends on the model (``OUTPUTS``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..schema import IBUG68_GROUPS
from ..types import PART_NAMES

REGISTRY: dict[str, tuple[type, type]] = {}


def register(name: str, config_cls: type):
    def deco(cls):
        REGISTRY[name] = (cls, config_cls)
        cls.model_name = name
        return cls
    return deco


def build_model(name: str, config: dict | None = None) -> nn.Module:
    if name not in REGISTRY:
        from ..errors import InputError

        raise InputError("model", f"one of {sorted(REGISTRY)}", repr(name))
    from ..config import check_fields

    cls, cfg_cls = REGISTRY[name]
    cfg = cfg_cls(**check_fields(cfg_cls, config or {}, f"model_config of {name}"))
    return cls(cfg)


def config_dict(model: nn.Module) -> dict:
    return dataclasses.asdict(model.cfg)


# ------------------------------------------------------------------------------------------------
def conv_bn(cin, cout, k=3, s=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (stride s), 1x1 project; residual when shapes match."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [] if expand == 1 else [conv_bn(cin, hid, 1)]
        layers += [conv_bn(hid, hid, 3, stride, groups=hid), conv_bn(hid, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


def _c(ch: float, width: float) -> int:
    return max(8, int(round(ch * width / 8)) * 8)


class MobileNetV2Base(nn.Module):
    """MobileNetV2 up to stride 16 (the seed-000 base: its 14th conv layer, 96 channels at width 1).
    ``taps`` returns the stride-4, 8 and 16 feature maps for decoders."""

    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]

    def __init__(self, width: float = 1.0, cin: int = 3):
        super().__init__()
        c = _c(32, width)
        self.stem = conv_bn(cin, c, 3, 2)
        blocks, ends, chans = [], [], []
        for t, ch, n, s in self.SETTINGS:
            cout = _c(ch, width)
            for i in range(n):
                blocks.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                c = cout
            ends.append(len(blocks) - 1)
            chans.append(c)
        self.blocks = nn.ModuleList(blocks)
        self.out_ch = c
        # cumulative strides after each setting: 2, 4, 8, 16, 16 -> taps at settings 1, 2 and 4
        self.taps = {ends[1]: 4, ends[2]: 8, ends[4]: 16}
        self.tap_channels = {4: chans[1], 8: chans[2], 16: chans[4]}

    def forward(self, x):
        x = self.stem(x)
        feats = {}
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in self.taps:
                feats[self.taps[i]] = x
        return feats


def rot6d_to_matrix_t(x: torch.Tensor) -> torch.Tensor:
    """Torch twin of ``geometry.rot6d_to_matrix`` (seed 003 Eq. 2): columns b1, b2, b3."""
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = F.normalize(a1, dim=-1, eps=1e-8)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=1e-8)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


# ------------------------------------------------------------------------------------------------
@dataclass
class BMTLConfig:
    input_size: int = 160
    width: float = 1.0
    shared_channels: int = 128
    presence_grid: int = 10


@register("bmtl", BMTLConfig)
class BMTL(nn.Module):
    """Seed 000: MobileNetV2 base -> shared conv + ReLU + BN -> heads for occlusion (4: an eye,
    both eyes, nose, mouth), cover (3: eyes, nose, mouth), eye openness (1), each logits + sigma
    (softplus applied by the loss/decoder), and 3 landmark presence maps (eyes, nose, mouth) with
    sigma maps on the stride-16 grid (10 x 10 at 160 x 160)."""

    OUTPUTS = ("occ", "occ_sigma", "cov", "cov_sigma", "eyes", "eyes_sigma", "presence", "presence_sigma")

    def __init__(self, cfg: BMTLConfig):
        super().__init__()
        self.cfg = cfg
        self.base = MobileNetV2Base(cfg.width)
        c = cfg.shared_channels
        self.shared = nn.Sequential(nn.Conv2d(self.base.out_ch, c, 3, 1, 1), nn.ReLU(inplace=True), nn.BatchNorm2d(c))
        self.fc_occ, self.fc_cov, self.fc_eye = nn.Linear(c, 8), nn.Linear(c, 6), nn.Linear(c, 2)
        self.lm1 = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.ReLU(inplace=True))
        self.lm2 = nn.Conv2d(c, 6, 1)

    def forward(self, x):
        z = self.shared(self.base(x)[16])
        g = z.mean((2, 3))
        occ, cov, eye = self.fc_occ(g), self.fc_cov(g), self.fc_eye(g)
        lm = self.lm2(self.lm1(z))
        if lm.shape[-1] != self.cfg.presence_grid:
            lm = F.interpolate(lm, size=(self.cfg.presence_grid,) * 2, mode="bilinear", align_corners=False)
        return {"occ": occ[:, :4], "occ_sigma": occ[:, 4:], "cov": cov[:, :3], "cov_sigma": cov[:, 3:],
                "eyes": eye[:, :1], "eyes_sigma": eye[:, 1:], "presence": lm[:, :3], "presence_sigma": lm[:, 3:]}


# ------------------------------------------------------------------------------------------------
class Residual(nn.Module):
    """Pre-activation bottleneck residual block (He et al. 2016), used by the hourglass and MNN."""

    def __init__(self, cin, cout):
        super().__init__()
        mid = max(8, cout // 2)
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1),
                                  nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, 1, 1),
                                  nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """Recursive hourglass of ``depth`` halvings; returns the output and the decoder maps by scale."""

    def __init__(self, depth: int, ch: int):
        super().__init__()
        self.depth = depth
        self.up1 = Residual(ch, ch)
        self.low1 = Residual(ch, ch)
        self.low2 = Hourglass(depth - 1, ch) if depth > 1 else Residual(ch, ch)
        self.low3 = Residual(ch, ch)

    def forward(self, x):
        up = self.up1(x)
        low = self.low1(F.max_pool2d(x, 2))
        if self.depth > 1:
            low, maps, bottleneck = self.low2(low)
        else:
            low = self.low2(low)
            maps, bottleneck = [], low
        low = self.low3(low)
        out = up + F.interpolate(low, scale_factor=2, mode="nearest")
        return out, maps + [low], bottleneck


@dataclass
class LPONetConfig:
    input_size: int = 256
    channels: int = 128
    depth: int = 4
    stacks: int = 2
    landmarks: int = 68
    fpf_maps: int = 2  # m: decoder maps fused by FPF (2 = FPF_Half, 4 = FPF_Full)
    ioaf: bool = True
    pose_6d: bool = True


@register("lponet", LPONetConfig)
class LPONet(nn.Module):
    """Seed 003: stem to 1/4 resolution, ``stacks`` hourglasses; per stack a landmark heatmap head
    and an occlusion-mask head on the FPF-fused decoder output; the IOAF module builds the next
    stack's input as (f(X_O) + f(L_hm) + X_prev) || O_hat (Eq. 1); head pose from the last
    hourglass's encoder end: GAP -> FC 256 -> FC 6 (6D rotation, Eq. 2; output ``rot6d``) or, with
    ``pose_6d: false`` (the paper's Euler ablation), FC 3 (yaw, pitch, roll in degrees; output
    ``euler``, trained with the direct loss of Eq. 3)."""

    OUTPUTS = ("heatmaps", "mask", "rot6d")

    def __init__(self, cfg: LPONetConfig):
        super().__init__()
        self.cfg = cfg
        self.pose_key = "rot6d" if cfg.pose_6d else "euler"
        self.OUTPUTS = ("heatmaps", "mask", self.pose_key)
        C = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(3, C // 2, 7, 2, 3), nn.BatchNorm2d(C // 2), nn.ReLU(inplace=True),
                                  Residual(C // 2, C), nn.MaxPool2d(2), Residual(C, C))
        self.hgs = nn.ModuleList(Hourglass(cfg.depth, C) for _ in range(cfg.stacks))
        m = cfg.fpf_maps
        self.fpf = nn.ModuleList(nn.ModuleList(nn.Conv2d(C, C // m, 1) for _ in range(m)) for _ in range(cfg.stacks))
        self.fuse = nn.ModuleList(nn.Sequential(nn.Conv2d(2 * C, C, 1), nn.BatchNorm2d(C), nn.ReLU(inplace=True))
                                  for _ in range(cfg.stacks))
        self.hm = nn.ModuleList(nn.Conv2d(C, cfg.landmarks, 1) for _ in range(cfg.stacks))
        self.occ = nn.ModuleList(nn.Conv2d(C, 1, 1) for _ in range(cfg.stacks))
        self.f_out = nn.ModuleList(nn.Conv2d(C, C, 1) for _ in range(cfg.stacks - 1))
        self.f_hm = nn.ModuleList(nn.Conv2d(cfg.landmarks, C, 1) for _ in range(cfg.stacks - 1))
        self.f_in = nn.ModuleList(nn.Conv2d(C + 1 if cfg.ioaf else C, C, 1) for _ in range(cfg.stacks - 1))
        self.pose = nn.Sequential(nn.Linear(C, 256), nn.ReLU(inplace=True), nn.Linear(256, 6 if cfg.pose_6d else 3))

    def forward(self, x):
        x = self.stem(x)
        heatmaps, masks = [], []
        bottleneck = None
        for s, hg in enumerate(self.hgs):
            out, maps, bottleneck = hg(x)
            size = out.shape[-2:]
            # FPF: m decoder maps (coarse to fine, skipping the coarsest when m is small), reduced to C/m, upsampled
            chosen = maps[:: max(1, len(maps) // self.cfg.fpf_maps)][: self.cfg.fpf_maps]
            fused = [F.interpolate(conv(mp), size=size, mode="bilinear", align_corners=False)
                     for conv, mp in zip(self.fpf[s], chosen)]
            feat = self.fuse[s](torch.cat([out] + fused, 1))
            hm, occ = self.hm[s](feat), self.occ[s](feat)
            heatmaps.append(hm)
            masks.append(occ)
            if s < len(self.hgs) - 1:
                nxt = self.f_out[s](feat) + self.f_hm[s](hm) + x
                x = self.f_in[s](torch.cat([nxt, torch.sigmoid(occ)], 1) if self.cfg.ioaf else nxt)
        pose = self.pose(bottleneck.mean((2, 3)))
        out = {"heatmaps": heatmaps[-1], "mask": masks[-1], self.pose_key: pose}
        if self.training:
            out["heatmaps_stacks"] = heatmaps
            out["mask_stacks"] = masks
        return out


# ------------------------------------------------------------------------------------------------
@dataclass
class MNNConfig:
    input_size: int = 256
    base_channels: int = 64
    max_channels: int = 256
    stages: int = 8  # halvings: 256 -> 1 with 8
    landmarks: int = 68


@register("mnn", MNNConfig)
class MNN(nn.Module):
    """Seed 004: U-Net of bottleneck residual blocks with skip connections. At the bottleneck two
    1x1 convs with 6 outputs each (``pose6``: yaw, pitch, roll, tx, ty, log-scale for the direct
    loss; ``pose6_proj`` for the mean-face projection loss); at the decoder end per-landmark
    heatmap logits (softmax over space = location distribution) and a visibility map average-pooled
    to one logit per landmark. ``forward(x, pose_only=True)`` runs the encoder only (fast pose)."""

    OUTPUTS = ("heatmaps", "visibility", "pose6", "pose6_proj")

    def __init__(self, cfg: MNNConfig):
        super().__init__()
        self.cfg = cfg
        chs = [min(cfg.max_channels, cfg.base_channels * 2 ** max(0, i - 1)) for i in range(cfg.stages + 1)]
        self.stem = nn.Sequential(nn.Conv2d(3, chs[0], 3, 1, 1), nn.BatchNorm2d(chs[0]), nn.ReLU(inplace=True))
        self.enc = nn.ModuleList(Residual(chs[i], chs[i + 1]) for i in range(cfg.stages))
        self.dec = nn.ModuleList(Residual(chs[i + 1] + chs[i], chs[i]) for i in reversed(range(cfg.stages)))
        self.fc_pose = nn.Conv2d(chs[-1], 6, 1)
        self.fc_pose_proj = nn.Conv2d(chs[-1], 6, 1)
        self.fc_lnd = nn.Conv2d(chs[0], cfg.landmarks, 1)
        self.fc_vis = nn.Conv2d(chs[0], cfg.landmarks, 1)

    def forward(self, x, pose_only: bool = False):
        x = self.stem(x)
        skips = []
        for e in self.enc:
            skips.append(x)
            x = e(F.max_pool2d(x, 2))
        pose = self.fc_pose(x).mean((2, 3))
        pose_proj = self.fc_pose_proj(x).mean((2, 3))
        if pose_only:
            return {"pose6": pose, "pose6_proj": pose_proj}
        for d, skip in zip(self.dec, reversed(skips)):
            x = d(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return {"heatmaps": self.fc_lnd(x), "visibility": self.fc_vis(x).mean((2, 3)), "pose6": pose,
                "pose6_proj": pose_proj}


# ------------------------------------------------------------------------------------------------
@dataclass
class KDNConfig:
    input_size: int = 256
    channels: int = 128
    depth: int = 4
    stages: int = 2
    landmarks: int = 68


@register("kdn", KDNConfig)
class KDN(nn.Module):
    """Seed 002: a cascade of hourglass stages; each stage outputs landmark logits (the kernel-density
    weights pi = softmax over space) and the next stage sees the features plus the previous
    stage's probability map. Returns the last stage's ``heatmaps`` and all stages for the loss."""

    OUTPUTS = ("heatmaps",)

    def __init__(self, cfg: KDNConfig):
        super().__init__()
        self.cfg = cfg
        C = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(3, C // 2, 7, 2, 3), nn.BatchNorm2d(C // 2), nn.ReLU(inplace=True),
                                  Residual(C // 2, C), nn.MaxPool2d(2), Residual(C, C))
        self.hgs = nn.ModuleList(Hourglass(cfg.depth, C) for _ in range(cfg.stages))
        self.head = nn.ModuleList(nn.Conv2d(C, cfg.landmarks, 1) for _ in range(cfg.stages))
        self.back = nn.ModuleList(nn.Conv2d(C + cfg.landmarks, C, 1) for _ in range(cfg.stages - 1))

    def forward(self, x):
        x = self.stem(x)
        stages = []
        for s, hg in enumerate(self.hgs):
            out, _, _ = hg(x)
            logits = self.head[s](out)
            stages.append(logits)
            if s < len(self.hgs) - 1:
                n, k, h, w = logits.shape
                prob = torch.softmax(logits.reshape(n, k, -1), -1).reshape(n, k, h, w) * (h * w)
                x = x + self.back[s](torch.cat([out, prob], 1))
        out = {"heatmaps": stages[-1]}
        if self.training:
            out["heatmaps_stacks"] = stages
        return out


# ------------------------------------------------------------------------------------------------
@dataclass
class CribNetConfig:
    input_size: int = 128
    width: float = 0.75
    decoder_channels: int = 64
    landmarks: int = 68
    head_channels: int = 128
    face_head: bool = False  # the face-presence logit (trained with non-face crops)
    # the part layer also sees, per part, the occluder mask and decoder features pooled over that
    # part's landmark heatmaps (where the part is), not only the whole-crop pooled features (v2.8)
    part_regions: bool = False


@register("cribnet", CribNetConfig)
class CribNet(nn.Module):
    """The deployed model. A MobileNetV2 encoder (seed 000's base) to stride 16; a light FPN decoder
    to stride 4 fusing the stride-8 and stride-16 maps (LPONet's FPF idea); heads:
      * ``heatmaps``: 68 KDN logit maps at stride 4 (seed 002: NLL training, mode + covariance);
      * ``visibility``: 68 logits from a visibility map average-pooled (seed 004);
      * ``mask``: occluder-on-face logits at stride 4 (seed 003);
      * ``rot6d``: 6D rotation from the pooled encoder (seeds 003/004);
      * ``occ`` / ``cov`` (4 each: eye_left, eye_right, nose, mouth) and ``eyes`` (1), each with a
        pre-softplus sigma (seed 000 heteroscedastic heads), from the pooled encoder plus the
        pooled, mask-weighted decoder features;
      * ``face`` (1) with ``face_head``: the logit that the crop holds a face, visible or covered
        (seed 001's second stage: it confirms or rejects detections the first stage doubts).
    With ``part_regions`` the part layer's input adds, for each part, the occluder probability and
    the decoder features averaged over the part's landmark heatmaps (softmax, detached: the regions
    say where the part is and are not trained by the part losses)."""

    OUTPUTS = ("heatmaps", "visibility", "mask", "rot6d", "occ", "occ_sigma", "cov", "cov_sigma", "eyes", "eyes_sigma",
               "face")

    def __init__(self, cfg: CribNetConfig):
        super().__init__()
        self.cfg = cfg
        self.enc = MobileNetV2Base(cfg.width)
        D = cfg.decoder_channels
        tc = self.enc.tap_channels
        self.lat16, self.lat8, self.lat4 = nn.Conv2d(tc[16], D, 1), nn.Conv2d(tc[8], D, 1), nn.Conv2d(tc[4], D, 1)
        self.smooth = nn.Sequential(conv_bn(D, D, 3), conv_bn(D, D, 3))
        self.hm = nn.Conv2d(D, cfg.landmarks, 1)
        self.vis = nn.Conv2d(D, cfg.landmarks, 1)
        self.mask = nn.Conv2d(D, 1, 1)
        H = cfg.head_channels
        self.glob = nn.Sequential(nn.Linear(tc[16] + 2 * D, H), nn.ReLU(inplace=True))
        self.pose = nn.Linear(H, 6)
        regions = len(PART_LANDMARKS) * (D + 1) if cfg.part_regions else 0
        self.parts = nn.Linear(H + regions, 18)  # occ 4 + sigma 4, cov 4 + sigma 4, eyes 1 + sigma 1
        if cfg.part_regions:
            groups = torch.zeros(len(PART_LANDMARKS), cfg.landmarks)
            for j, idx in enumerate(PART_LANDMARKS):
                groups[j, list(idx)] = 1.0 / len(idx)
            self.register_buffer("part_groups", groups, persistent=False)
        self.face = nn.Linear(H, 1) if cfg.face_head else None
        if not cfg.face_head:
            self.OUTPUTS = tuple(o for o in type(self).OUTPUTS if o != "face")

    def forward(self, x):
        f = self.enc(x)
        p16 = self.lat16(f[16])
        p8 = self.lat8(f[8]) + F.interpolate(p16, size=f[8].shape[-2:], mode="nearest")
        p4 = self.lat4(f[4]) + F.interpolate(p8, size=f[4].shape[-2:], mode="nearest")
        d = self.smooth(p4)
        mask = self.mask(d)
        m = torch.sigmoid(mask)
        masked = (d * m).sum((2, 3)) / (m.sum((2, 3)) + 1.0)
        g = self.glob(torch.cat([f[16].mean((2, 3)), d.mean((2, 3)), masked], 1))
        hm = self.hm(d)
        if self.cfg.part_regions:
            where = torch.matmul(self.part_groups, torch.softmax(hm.detach().flatten(2), -1))  # (N, 4, h*w)
            feats = torch.matmul(where, torch.cat([d, m], 1).flatten(2).transpose(1, 2))  # (N, 4, D + 1)
            parts = self.parts(torch.cat([g, feats.flatten(1)], 1))
        else:
            parts = self.parts(g)
        return {"heatmaps": hm, "visibility": self.vis(d).mean((2, 3)), "mask": mask, "rot6d": self.pose(g),
                "occ": parts[:, 0:4], "occ_sigma": parts[:, 4:8], "cov": parts[:, 8:12], "cov_sigma": parts[:, 12:16],
                "eyes": parts[:, 16:17], "eyes_sigma": parts[:, 17:18],
                **({"face": self.face(g)} if self.face is not None else {})}

    def adapt_state_dict(self, sd: dict) -> dict:
        """A checkpoint of the same network without ``part_regions`` made loadable: the part layer's
        new inputs get zero weights, so the loaded model starts with the checkpoint's outputs exactly."""
        w = sd.get("parts.weight")
        if w is not None and w.shape[1] < self.parts.in_features:
            sd = dict(sd)
            sd["parts.weight"] = torch.cat([w, w.new_zeros(w.shape[0], self.parts.in_features - w.shape[1])], 1)
        return sd


# each part's iBUG-68 points, in the part outputs' order (eye_left = the subject's left eye, 42-47)
PART_LANDMARKS = tuple(IBUG68_GROUPS[p] for p in PART_NAMES)


TINY = {
    "bmtl": {"input_size": 64, "width": 0.25, "shared_channels": 16, "presence_grid": 4},
    "lponet": {"input_size": 64, "channels": 16, "depth": 2, "stacks": 2, "landmarks": 68, "fpf_maps": 2},
    "mnn": {"input_size": 32, "base_channels": 8, "max_channels": 16, "stages": 5, "landmarks": 68},
    "kdn": {"input_size": 64, "channels": 16, "depth": 2, "stages": 2, "landmarks": 68},
    "cribnet": {"input_size": 64, "width": 0.25, "decoder_channels": 16, "landmarks": 68, "head_channels": 16,
                "face_head": True},
}
