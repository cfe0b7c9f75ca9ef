"""CPU-first trainer: ``cribsight train CONFIG`` and ``cribsight export RUN``.

Deterministic given the seed (numpy sampling, torch init); resumable (``checkpoint.pt`` holds the
model, optimiser, step and RNG states); metrics as CSV and JSON, loss/metric curves as PNG; the
resolved config is saved beside every run.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import schema
from ..runtime import WEIGHTS_DIR
from ..types import PART_NAMES
from . import losses as L
from .data import Batch, ShardSet, to_heatmap
from .models import build_model, rot6d_to_matrix_t


# the loss terms compute_losses may return (each model family a subset), the keys of loss_weights
LOSS_TERMS = ("landmarks", "visibility", "mask", "pose", "projection", "occ", "cov", "eyes", "face")


@dataclass
class TrainConfig:
    model: str = "cribnet"
    model_config: dict = field(default_factory=dict)
    train: list = field(default_factory=list)  # [{path, ratio}]
    val: str | None = None
    out: str = "runs/cribnet"
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 200
    val_every: int = 500
    val_limit: int = 1000
    mc_samples: int = 25  # seed 000: T = 25
    loss_weights: dict = field(default_factory=lambda: {
        "landmarks": 1.0, "visibility": 1.0, "mask": 1.0, "pose": 1.0, "occ": 1.0, "cov": 1.0, "eyes": 1.0})
    kernel_sigma: float = 1.0  # KDN Gaussian kernel, heatmap pixels
    train_limit: int | None = None
    init_from: str | None = None  # a checkpoint.pt to start from (fine-tuning); optimiser starts fresh
    occluded_landmark_weight: float = 1.0  # weight of hidden (external / self-occluded) points in the landmark loss
    # fine-tune only the parameters whose names start with one of these (e.g. ["face"]); everything
    # else is frozen, BatchNorm statistics included (the model runs in eval mode), so every other
    # output of the initial model is kept exactly
    train_only: list | None = None
    # sources (the shards' ``source`` names) whose part labels (occluded / covered) are not used: a
    # source built with ``clean: false`` (SyRIP) only ever has covered = 1 (a drawn occluder) or
    # unknown, never 0, so its labels teach "this kind of picture is covered" (docs/models.md, v2.4)
    ignore_part_labels: list | None = None
    # sources whose unknown cover labels read as uncovered (positive-unlabelled, docs/models.md v2.6):
    # a list converts every part, a mapping {source: [part, ...]} only the parts named (v2.7), and
    # {source: {part: weight in (0, 1]}} also weighs them in the cover loss (a weighted Eq. 6). The
    # weights are relative within a crop (losses.heteroscedastic_mc_loss): below 1 a label pulls less
    # than the same crop's weight-1 labels; a crop whose known labels share one weight trains as at 1
    covered_unknown_as_negative: list | dict | None = None
    # the same for SyRIP's one-sided occluded labels (occluded or unknown, never visible), same forms
    occluded_unknown_as_negative: list | dict | None = None
    # {below_deg: pitch, weights: {part: weight}}: converted cover labels of crops whose pitch label is
    # below ``below_deg`` (looking down) take these weights instead of covered_unknown_as_negative's
    # (v2.14: an infant looking down hides its eyes under its own head, which is not a cover)
    covered_unknown_pitched_down: dict | None = None
    # {abs_yaw_below: degrees, pitch_above: degrees}: occluded_unknown_as_negative converts only on
    # crops whose pose label is known and within these bounds (v2.16: a head turned away or face down
    # keeps its unknown occluded labels instead of learning "nose and mouth visible")
    occluded_unknown_within_pose: dict | None = None
    # loss terms ("occ", "cov") whose label weights also act across crops: a crop's loss is scaled by
    # its known labels' mean weight (losses.heteroscedastic_mc_loss across_samples), so a crop whose
    # converted labels all weigh 0.1 counts a tenth of a crop at weight 1 (v2.13)
    label_weights_across_crops: list | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        from ..config import check_fields
        from ..errors import InputError

        cfg = cls(**check_fields(cls, d, "train config"))
        for name in ("steps", "batch_size", "threads", "checkpoint_every", "val_every", "val_limit", "mc_samples"):
            if getattr(cfg, name) < 1:
                raise InputError(name, "a whole number >= 1", repr(getattr(cfg, name)))
        unknown_terms = set(cfg.loss_weights) - set(LOSS_TERMS)
        if unknown_terms:
            raise InputError("loss_weights", f"loss terms from {list(LOSS_TERMS)}", str(sorted(unknown_terms)))
        for i, item in enumerate(cfg.train):
            if not isinstance(item, dict) or "path" not in item:
                raise InputError(f"train[{i}]", "a mapping with a shard folder 'path' (and 'ratio')", repr(item))
        return cfg


def load_train_config(path: Path) -> TrainConfig:
    from ..config import read_yaml_mapping

    p = Path(path)
    d = read_yaml_mapping(p, "a YAML train config")
    for item in d.get("train") or []:
        if isinstance(item, dict) and str(item.get("path", "")).startswith("."):
            item["path"] = str((p.parent / item["path"]).resolve())
    if d.get("val") and str(d["val"]).startswith("."):
        d["val"] = str((p.parent / d["val"]).resolve())
    for key in ("out", "init_from"):
        if d.get(key) and str(d[key]).startswith("."):
            d[key] = str((p.parent / d[key]).resolve())
    return TrainConfig.from_dict(d)


def mean_face_68() -> torch.Tensor:
    v = np.load(WEIGHTS_DIR / "canonical_face_468.npy")[list(schema.MESH468_TO_IBUG68)] * [1, -1, -1]
    return torch.tensor(v, dtype=torch.float32)


# ------------------------------------------------------------------------------------------------
def compute_losses(name: str, out: dict, b: Batch, cfg: TrainConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Loss terms of one model family on one batch (unweighted)."""
    S = b.image.shape[-1]
    terms: dict[str, torch.Tensor] = {}
    pose_ok = torch.isfinite(b.pose).all(-1)
    pose = torch.nan_to_num(b.pose)
    if name in ("cribnet", "kdn", "lponet", "mnn"):
        hm = out["heatmaps"]
        hs = hm.shape[-1]
        tgt = to_heatmap(b.landmarks, S, hs)
        lw = b.loc_known.float() * torch.where(b.visible > 0, 1.0, cfg.occluded_landmark_weight)
        if name == "lponet":
            gt = L.gaussian_heatmaps(tgt, hs, hs)
            stacks = out.get("heatmaps_stacks", [hm])
            terms["landmarks"] = sum(L.scaled_heatmap_loss(h, gt, weight=lw) for h in stacks) / len(stacks)
        elif name == "mnn":
            terms["landmarks"] = L.kdn_nll(hm, tgt, lw, kernel="uniform")  # softmax cross-entropy
        else:
            stacks = out.get("heatmaps_stacks", [hm])
            terms["landmarks"] = sum(L.kdn_nll(h, tgt, lw, "gaussian", cfg.kernel_sigma) for h in stacks) / len(stacks)
    if "visibility" in out:
        terms["visibility"] = L.masked_bce(out["visibility"], b.visible)
    if "mask" in out:
        m = F.interpolate(b.mask, size=out["mask"].shape[-2:], mode="area")
        masks = out.get("mask_stacks", [out["mask"]])
        terms["mask"] = sum(L.mask_bce(x, m) for x in masks) / len(masks)
    if "rot6d" in out:
        R = rot6d_to_matrix_t(out["rot6d"])
        terms["pose"] = L.geodesic_loss(R, L.euler_to_matrix_t(pose), pose_ok)
    if "euler" in out:  # LPONet's Euler ablation: degrees, the direct loss (seed 003 Eq. 3)
        terms["pose"] = L.pose_direct_loss(out["euler"] / 30.0, pose / 30.0, pose_ok)
    if "pose6" in out:
        terms["pose"] = L.pose_direct_loss(out["pose6"][:, :3] / 30.0, pose / 30.0, pose_ok)
        w = b.loc_known & (b.visible > 0)
        terms["projection"] = L.projection_loss(out["pose6_proj"], mean_face_68(), b.landmarks / S, w) * 10
    T = cfg.mc_samples
    across = set(cfg.label_weights_across_crops or ())
    if name == "bmtl":
        occ, cov = _bmtl_labels(b.parts)
        ow, cw = _bmtl_weights(b.occluded_weight, b.cover_weight)
        terms["occ"] = L.heteroscedastic_mc_loss(out["occ"], out["occ_sigma"], occ, T, gen, weights=ow,
                                                 across_samples="occ" in across)
        terms["cov"] = L.heteroscedastic_mc_loss(out["cov"], out["cov_sigma"], cov, T, gen, weights=cw,
                                                 across_samples="cov" in across)
        pres = _presence_maps(b, out["presence"].shape[-1])
        n = pres.shape[0]
        terms["landmarks"] = L.heteroscedastic_mc_loss(out["presence"].reshape(n, -1), out["presence_sigma"].reshape(n, -1),
                                                        pres.reshape(n, -1), T, gen)
    elif "occ" in out:
        terms["occ"] = L.heteroscedastic_mc_loss(out["occ"], out["occ_sigma"], b.parts[:, :, 0], T, gen,
                                                 weights=b.occluded_weight, across_samples="occ" in across)
        terms["cov"] = L.heteroscedastic_mc_loss(out["cov"], out["cov_sigma"], b.parts[:, :, 1], T, gen,
                                                 weights=b.cover_weight, across_samples="cov" in across)
    if "eyes" in out:
        terms["eyes"] = L.heteroscedastic_mc_loss(out["eyes"], out["eyes_sigma"], b.eyes_open[:, None], T, gen)
    if "face" in out:  # non-face crops: every other term but the (empty) occluder mask masks them out
        terms["face"] = F.binary_cross_entropy_with_logits(out["face"][:, 0], b.face)
    return terms


def _bmtl_labels(parts: torch.Tensor):
    """Our per-part labels -> seed 000's: occlusion (an eye, both eyes, nose, mouth), cover (eyes, nose, mouth)."""
    eo = parts[:, 0:2, 0]
    any_eye = torch.where((eo == 1).any(1), 1, torch.where((eo == 0).all(1), 0, -1))
    both = torch.where((eo == 1).all(1), 1, torch.where((eo == 0).any(1), 0, -1))
    occ = torch.stack([any_eye, both, parts[:, 2, 0], parts[:, 3, 0]], 1)
    ec = parts[:, 0:2, 1]
    eyes_cov = torch.where((ec == 1).all(1), 1, torch.where((ec == 0).all(1), 0, -1))
    cov = torch.stack([eyes_cov, parts[:, 2, 1], parts[:, 3, 1]], 1)
    return occ, cov


def _bmtl_weights(occluded: torch.Tensor | None, covered: torch.Tensor | None):
    """Our per-part label weights (N, 4) -> seed 000's classes, as ``_bmtl_labels`` maps the labels:
    a class made of both eyes takes the smaller eye weight. None stays None (all weights 1)."""
    def eyes(w):
        return w[:, 0:2].min(1).values

    occ = None if occluded is None else torch.stack([eyes(occluded)] * 2 + [occluded[:, 2], occluded[:, 3]], 1)
    cov = None if covered is None else torch.stack([eyes(covered), covered[:, 2], covered[:, 3]], 1)
    return occ, cov


def _presence_maps(b: Batch, g: int) -> torch.Tensor:
    """Seed 000: 3 maps (eyes, nose, mouth) on a g x g grid: 1 where a visible landmark of the group falls."""
    S = b.image.shape[-1]
    out = torch.zeros(b.image.shape[0], 3, g, g, dtype=torch.long)
    groups = [range(36, 48), range(27, 36), range(48, 68)]
    cell = torch.clamp((b.landmarks / S * g).long(), 0, g - 1)
    for k, idx in enumerate(groups):
        idx = list(idx)
        for n in range(b.image.shape[0]):
            v = (b.visible[n, idx] > 0) & b.loc_known[n, idx]
            c = cell[n, idx][v]
            out[n, k, c[:, 1], c[:, 0]] = 1
    return out


# ------------------------------------------------------------------------------------------------
@torch.no_grad()
def validate(model, name: str, data: ShardSet, cfg: TrainConfig) -> dict:
    """Quick validation figures on held-out shards (numpy decoding shared with the runtime). The
    model is left in the mode it came in (training, or eval throughout for ``train_only``)."""
    from ..analyze.decode import kdn_decode, probability_with_sigma, top2_decode
    from ..eval.metrics import BinaryClassification, auroc
    from ..geometry import euler_from_matrix

    was_training = model.training
    model.eval()
    part = data.parts[0]
    n = min(cfg.val_limit, len(part["image"]))
    input_size = model.cfg.input_size
    res: dict = {}
    cls = BinaryClassification([f"cov_{p}" for p in PART_NAMES] + [f"occ_{p}" for p in PART_NAMES])
    bm = BinaryClassification(["cov_eyes", "cov_nose", "cov_mouth", "occ_an_eye", "occ_both_eyes", "occ_nose", "occ_mouth"])
    vis_s, vis_y, nme, pose_err, face_s, face_y = [], [], [], [], [], []
    sig_vis, sig_occ = [], []
    for start in range(0, n, 64):
        idx = [(0, i) for i in range(start, min(n, start + 64))]
        b = data.batch(idx, input_size)
        out = model(b.image)
        if "occ" in out and name != "bmtl":
            po, _ = probability_with_sigma(out["occ"].numpy(), out["occ_sigma"].numpy())
            pc, _ = probability_with_sigma(out["cov"].numpy(), out["cov_sigma"].numpy())
            cls.update(np.concatenate([pc, po], 1), np.concatenate([b.parts[:, :, 1].numpy(), b.parts[:, :, 0].numpy()], 1))
        elif name == "bmtl":  # seed 000's classes: cover (eyes, nose, mouth), occlusion (an eye, both, nose, mouth)
            occ_y, cov_y = _bmtl_labels(b.parts)
            po, _ = probability_with_sigma(out["occ"].numpy(), out["occ_sigma"].numpy())
            pc, _ = probability_with_sigma(out["cov"].numpy(), out["cov_sigma"].numpy())
            bm.update(np.concatenate([pc, po], 1), np.concatenate([cov_y.numpy(), occ_y.numpy()], 1))
        if "face" in out:
            face_s.append(out["face"][:, 0].numpy())
            face_y.append(b.face.numpy())
        if "visibility" in out:
            vis_s.append(torch.sigmoid(out["visibility"]).numpy().ravel())
            vis_y.append(b.visible.numpy().ravel())
        if "heatmaps" in out:
            hs = out["heatmaps"].shape[-1]
            for k in range(len(idx)):
                if name == "lponet":  # Gaussian-target heatmaps: seed 003's top-2 decoding, no sigma
                    mode, sig = top2_decode(out["heatmaps"][k].numpy()), None
                else:
                    mode, _, sig = kdn_decode(out["heatmaps"][k].numpy(), cfg.kernel_sigma)
                pred = (mode + 0.5) * (input_size / hs) - 0.5
                gt = b.landmarks[k].numpy()
                known = b.loc_known[k].numpy()
                io = np.linalg.norm(gt[36] - gt[45])
                if known.sum() > 10 and io > 1:
                    nme.append(float(np.linalg.norm(pred - gt, axis=1)[known].mean() / io))
                v = b.visible[k].numpy()
                if sig is not None:
                    sig_vis += list(sig[(v > 0) & known])
                    sig_occ += list(sig[(v == 0) & known])
        if "rot6d" in out or "pose6" in out or "euler" in out:
            Rs = rot6d_to_matrix_t(out["rot6d"]).numpy() if "rot6d" in out else None
            direct = out["euler"] if "euler" in out else out["pose6"][:, :3] if "pose6" in out else None
            for k in range(len(idx)):
                if torch.isfinite(b.pose[k]).all():
                    ypr = np.array(euler_from_matrix(Rs[k])) if Rs is not None else direct[k].numpy()
                    pose_err.append(np.abs((ypr - b.pose[k].numpy() + 180) % 360 - 180).mean())
    c = cls.compute()
    if cls.p:
        res["covered_f1"] = {p: c["per_class"][f"cov_{p}"]["f1"] for p in PART_NAMES}
        res["covered_auroc"] = {p: c["per_class"][f"cov_{p}"]["auroc"] for p in PART_NAMES}
        res["occluded_auroc"] = {p: c["per_class"][f"occ_{p}"]["auroc"] for p in PART_NAMES}
        res["part_ece"] = c["ece_all"]
    if bm.p:
        c = bm.compute()
        res["covered_f1"] = {p: c["per_class"][f"cov_{p}"]["f1"] for p in ("eyes", "nose", "mouth")}
        res["covered_auroc"] = {p: c["per_class"][f"cov_{p}"]["auroc"] for p in ("eyes", "nose", "mouth")}
        res["occluded_auroc"] = {p: c["per_class"][f"occ_{p}"]["auroc"] for p in ("an_eye", "both_eyes", "nose", "mouth")}
        res["part_ece"] = c["ece_all"]
    if vis_s:
        s, y = np.concatenate(vis_s), np.concatenate(vis_y)
        res["visibility_auroc"] = auroc(s[y >= 0], y[y >= 0] > 0)
    if face_s:
        fy = np.concatenate(face_y)
        if 0 < fy.sum() < len(fy):
            res["face_auroc"] = auroc(np.concatenate(face_s), fy > 0)
    if nme:
        res["nme_interocular"] = float(np.mean(nme))
    if sig_vis and sig_occ:
        res["sigma_visible"] = float(np.mean(sig_vis))
        res["sigma_occluded"] = float(np.mean(sig_occ))
    if pose_err:
        res["pose_mae"] = float(np.mean(pose_err))
    model.train(was_training)
    return res


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def trainable_parameters(model, train_only: list | None) -> list:
    """The parameters the optimiser updates: all, or (``train_only``) those whose names start with
    one of the prefixes; the rest get ``requires_grad=False``. A prefix matching nothing is an error."""
    if not train_only:
        return list(model.parameters())
    from ..errors import InputError

    named = list(model.named_parameters())
    for prefix in train_only:
        if not any(n.startswith(prefix) for n, _ in named):
            raise InputError("train_only", f"prefixes of parameter names ({sorted({n.split('.')[0] for n, _ in named})})",
                             repr(prefix))
    for n, p in named:
        p.requires_grad_(n.startswith(tuple(train_only)))
    return [p for _, p in named if p.requires_grad]


def set_train_mode(model, cfg: TrainConfig) -> None:
    """Training mode, or with ``train_only`` eval mode throughout: frozen layers' BatchNorm
    statistics must not move, or the outputs the fine-tune leaves alone would change."""
    model.train(not cfg.train_only)


def train(cfg: TrainConfig, resume: bool = True, log: Callable[[str], None] = print,
          progress: Callable | None = None, stop_after: int | None = None) -> Path:
    """Train (or resume) the run in ``cfg.out``. ``stop_after``: checkpoint and return at that step of
    the schedule, so a long run can be done in pieces on a CPU budget."""
    import yaml

    unknown_terms = set(cfg.label_weights_across_crops or ()) - {"occ", "cov"}
    if unknown_terms:
        from ..errors import InputError

        raise InputError("label_weights_across_crops", "loss terms from occ, cov", ", ".join(sorted(map(str, unknown_terms))))
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        from ..errors import OutputError

        raise OutputError(str(out), "a run folder", "an existing file")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.model_config)
    if cfg.init_from:
        init = load_checkpoint(Path(cfg.init_from), "init_from")
        sd = init["model"]
        if hasattr(model, "adapt_state_dict"):  # e.g. CribNet's part_regions added to a checkpoint without them
            sd = model.adapt_state_dict(sd)
        _load_weights(model, sd, cfg.init_from)
        log(f"initialised from {cfg.init_from} (step {init.get('step')})")
    params = trainable_parameters(model, cfg.train_only)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    ck = out / "checkpoint.pt"
    if resume and ck.exists():
        state = load_checkpoint(ck, "checkpoint")
        planned = state["sched"].get("total_steps")
        if planned is not None and planned != cfg.steps:
            from ..errors import InputError

            raise InputError("steps", f"the {planned} steps of the schedule {ck} was trained on (a one-cycle "
                             "schedule cannot be stretched; to train on, start a new run with init_from: "
                             f"{ck})", f"{cfg.steps}")
        _load_weights(model, state["model"], str(ck))
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step = state["step"]
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["gen"])
        log(f"resumed at step {step}")
    data = ShardSet(cfg.train, cfg.train_limit, ignore_part_labels=cfg.ignore_part_labels,
                    covered_unknown_as_negative=cfg.covered_unknown_as_negative,
                    occluded_unknown_as_negative=cfg.occluded_unknown_as_negative,
                    covered_unknown_pitched_down=cfg.covered_unknown_pitched_down,
                    occluded_unknown_within_pose=cfg.occluded_unknown_within_pose)
    val = ShardSet([{"path": cfg.val}], cfg.val_limit) if cfg.val else None
    log(f"model {cfg.model}: {sum(p.numel() for p in model.parameters())} parameters; {len(data)} training samples")
    # everything is checked: from here on the run folder is written
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    metrics_csv = out / "metrics.csv"
    history = {"train": [], "val": []}
    if step and (out / "metrics.json").exists():
        history = json.loads((out / "metrics.json").read_text())
    elif step and metrics_csv.exists():  # no metrics.json (deleted, or an older run): the csv's rows
        with open(metrics_csv, newline="") as f:
            history["train"] = [{k: (int(float(v)) if k == "step" else float(v)) for k, v in r.items() if v not in ("", None)}
                                for r in csv.DictReader(f)]
    # metrics.json is saved with each checkpoint: rows logged after the last one (an interrupted run)
    # are dropped, so a resumed run's metrics.csv has each step once
    history["train"] = [r for r in history["train"] if r["step"] <= step]
    history["val"] = [r for r in history["val"] if r["step"] <= step]
    fh = open(metrics_csv, "w", newline="")
    writer = None
    if history["train"]:
        writer = csv.DictWriter(fh, fieldnames=list(history["train"][0]))
        writer.writeheader()
        writer.writerows(history["train"])
    set_train_mode(model, cfg)
    t0 = time.perf_counter()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    steps_iter = range(step, end)
    if progress:
        steps_iter = progress(steps_iter)
    for step in steps_iter:
        b = data.batch(data.sample_indices(rng, cfg.batch_size), model.cfg.input_size)
        outs = model(b.image)
        terms = compute_losses(cfg.model, outs, b, cfg, gen)
        loss = sum(cfg.loss_weights.get(k, 1.0) * v for k, v in terms.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        row = {"step": step + 1, "loss": float(loss.detach()), "lr": sched.get_last_lr()[0],
               "sec": round(time.perf_counter() - t0, 2), **{k: float(v.detach()) for k, v in terms.items()}}
        if writer is None:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            writer.writeheader()
        writer.writerow(row)
        history["train"].append(row)
        if (step + 1) % 20 == 0:
            fh.flush()
        if val is not None and ((step + 1) % cfg.val_every == 0 or step + 1 == cfg.steps):
            v = {"step": step + 1, **_flat(validate(model, cfg.model, val, cfg))}
            history["val"].append(v)
            log(json.dumps(v))
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == end:
            fh.flush()
            # metrics first: a stop between the two leaves them ahead of the checkpoint, and a resume
            # drops the rows past its step (the other order would lose the rows in between)
            _atomic(out / "metrics.json", lambda tmp: tmp.write_text(json.dumps(history) + "\n"))
            _atomic(ck, lambda tmp: torch.save({
                "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step + 1,
                "rng": rng.bit_generator.state, "gen": gen.get_state(), "model_name": cfg.model,
                "model_config": dataclasses.asdict(model.cfg)}, tmp))
    fh.close()
    _atomic(out / "metrics.json", lambda tmp: tmp.write_text(json.dumps(history) + "\n"))
    plot_curves(history, out)
    return out


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through a temporary file and a rename: a run stopped mid-save (Ctrl-C, SIGTERM,
    a full disk) keeps the previous file whole."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path, what: str) -> dict:
    """A training checkpoint, or a typed error saying what was found (missing, not a checkpoint)."""
    from ..errors import InputError

    if not path.is_file():
        raise InputError(str(path), f"a checkpoint.pt ({what})", "no such file")
    try:
        state = torch.load(path, weights_only=False)
    except Exception as e:  # noqa: BLE001 - truncated, corrupt or not a torch file
        raise InputError(str(path), f"a checkpoint.pt ({what})", f"a file torch cannot load ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(str(path), f"a checkpoint.pt ({what})", "a file without model weights")
    return state


def _load_weights(model, state_dict: dict, where: str) -> None:
    """Load weights; a checkpoint of another model or model_config is a typed error."""
    from ..errors import InputError

    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)[:200]
        raise InputError(where, "weights of this model and model_config", f"others ({first})") from None


def plot_curves(history: dict, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    tr = history["train"]
    if not tr:
        return
    keys = [k for k in tr[0] if k not in ("step", "lr", "sec")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    steps = np.array([r["step"] for r in tr])
    for k in keys:
        y = np.array([r.get(k, np.nan) for r in tr], float)
        w = max(1, len(y) // 50)
        ys = np.convolve(y, np.ones(w) / w, mode="valid")
        axes[0].plot(steps[w - 1:], ys, label=k)
    axes[0].set(xlabel="step", ylabel="loss (smoothed)", yscale="symlog", title="training losses")
    axes[0].legend(fontsize=7)
    va = history.get("val", [])
    if va:
        for k in va[0]:
            if k == "step":
                continue
            axes[1].plot([r["step"] for r in va], [r.get(k) for r in va], "o-", label=k)
        axes[1].set(xlabel="step", title="validation")
        axes[1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
def export_onnx(run: Path, out_path: Path | None = None, opset: int = 17) -> Path:
    """Export the run's model to ONNX (outputs in ``OUTPUTS`` order) with a manifest entry beside it."""
    from ..errors import InputError

    run = Path(run)
    if not (run / "checkpoint.pt").is_file():
        raise InputError(str(run), "a training run folder with checkpoint.pt (from cribsight train)", "no checkpoint.pt")
    state = load_checkpoint(run / "checkpoint.pt", "from cribsight train")
    model = build_model(state["model_name"], state["model_config"])
    _load_weights(model, state["model"], str(run / "checkpoint.pt"))
    model.eval()
    size = model.cfg.input_size
    x = torch.zeros(1, 3, size, size)
    names = list(model.OUTPUTS)

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            o = self.m(x)
            return tuple(o[k] for k in names)

    out_path = Path(out_path) if out_path else run / f"{state['model_name']}.onnx"
    if out_path.is_dir() or not out_path.parent.is_dir():
        from ..errors import OutputError

        raise OutputError(str(out_path), "an ONNX file path in an existing folder",
                          "a folder" if out_path.is_dir() else f"no folder {out_path.parent}")
    run_cfg = yaml_load(run / "config.yaml")
    torch.onnx.export(Wrap(model), (x,), str(out_path), input_names=["input"], output_names=names, opset_version=opset,
                      dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}}, dynamo=False)
    entry = {
        "kind": "face_analysis", "model": state["model_name"], "model_config": state["model_config"],
        "input": {"name": "input", "shape": [1, 3, size, size], "layout": "NCHW", "color": "RGB", "dtype": "float32",
                  "normalisation": "(rgb / 255 - 0.5) / 0.5",
                  "crop": "square around the 68 landmarks' box centre, side 1.6 x its largest side, rotated so the eyes are level"},
        "outputs": {n: {"name": n} for n in names},
        "landmark_scheme": "ibug68", "kernel_sigma": float(run_cfg.get("kernel_sigma", 1.0)),
        "steps": state["step"],
    }
    base = _fine_tuned_from(run_cfg)
    if base:
        entry["fine_tuned_from"] = base
    (out_path.with_suffix(".json")).write_text(json.dumps(entry, indent=2) + "\n")
    return out_path


def _shown_path(path: Path) -> str:
    """A path for a manifest: relative to the working directory when inside it, else its name (an
    absolute path would name the machine it was exported on)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def _fine_tuned_from(cfg: dict) -> dict | None:
    """Where a fine-tuned run (its resolved ``config.yaml``) started, from ``init_from``: that
    checkpoint (relative to the working directory when inside it, else its file name), its sha256
    (the path alone would point at other weights once that run is retrained), its own step count and
    what was trained, or None."""
    from ..runtime import sha256_file

    if not cfg.get("init_from"):
        return None
    init = Path(cfg["init_from"])
    found = init.is_file()
    return {"checkpoint": _shown_path(init), "sha256": sha256_file(init) if found else None,
            "steps": torch.load(init, weights_only=False).get("step") if found else None,
            "train_only": cfg.get("train_only")}


def _how_trained(entry: dict) -> str:
    """The training steps behind an exported model, for its manifest's provenance."""
    base = entry.get("fine_tuned_from")
    if not base:
        return f"cribsight train, {entry['steps']} steps"
    what = f"only {', '.join(base['train_only'])}" if base.get("train_only") else "every parameter"
    first = f"{base['steps']} steps" if base.get("steps") is not None else "a run"
    return f"cribsight train, {first}, then {entry['steps']} steps training {what} from its checkpoint {base['checkpoint']}"


def check_install_name(name: str, model: str) -> None:
    """A weights file name ``install_weights`` accepts: ``<model>.onnx`` (the default model) or
    ``<model>_<tag>.onnx`` (an alternative beside it); anything else is an ``InputError``."""
    import re

    from ..errors import InputError

    if not re.fullmatch(rf"{re.escape(model)}(_[A-Za-z0-9]+)*\.onnx", name):
        raise InputError("--install-as", f"a file name {model}.onnx or {model}_<tag>.onnx (letters, digits, no "
                         "folders)", repr(name))


def install_weights(onnx_path: Path, run: Path, name: str | None = None) -> Path:
    """Copy an exported model into ``cribsight/weights`` as ``name`` (default ``<model>.onnx``, the
    default model) and record it in manifest.json with its sha256, training provenance and license
    (the training data is non-commercial, so are the weights)."""
    import shutil

    from ..runtime import WEIGHTS_DIR, sha256_file

    entry = json.loads(Path(onnx_path).with_suffix(".json").read_text())
    name = name or f"{entry['model']}.onnx"
    check_install_name(name, entry["model"])
    dest = WEIGHTS_DIR / name
    shutil.copyfile(onnx_path, dest)
    man_path = WEIGHTS_DIR / "manifest.json"
    man = json.loads(man_path.read_text())
    cfg = yaml_load(Path(run) / "config.yaml")
    entry.update({
        "sha256": sha256_file(dest),  # what the runtime checks it against
        "source": f"trained by cribsight ({_how_trained(entry)}) on data-engine shards; "
                  f"config: {cfg.get('model')} {json.dumps(cfg.get('model_config'))}; run: {_shown_path(Path(run))}",
        "training_data": "UTKFace, face-mask images, SyRIP, AFLW2000-3D sample (../shared/data) with teacher labels "
                         "and synthetic occluders; see MODEL_CARD_cribnet.md",
        "license": "research and non-commercial use only (trained on non-commercial data)",
        "license_file": "MODEL_CARD_cribnet.md",
    })
    man["files"][name] = entry
    man_path.write_text(json.dumps(man, indent=2) + "\n")
    return dest


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text()) or {}
