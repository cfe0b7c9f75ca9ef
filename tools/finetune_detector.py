"""Fine-tune the full-range BlazeFace on faces it already finds, made to run off the frame or shrunk
to a few pixels (``cribsight.train.detector`` explains the samples and targets). CPU, resumable.

    python tools/finetune_detector.py --out runs/detector_ft --steps 3000      # train (resumes)
    python tools/finetune_detector.py --out runs/detector_ft --export [--install]  # write (and ship) the ONNX

Sources (the data folder, $CRIBSIGHT_DATA else ../shared/data): UTKFace, the face-mask photos and
the SyRIP scenes of the data engine's training split (``in_holdout(name, 0.1)`` false - the held-out
10% is never used), only photos on which the shipped detector finds a face at score >= 0.6, on the photo or, for
the tight UTKFace crops, on the photo inside a frame twice its size (a photo
where it finds none may hold a face it misses, which would teach the student to miss it too); SyRIP
scenes also serve, face or not, as backgrounds for the tiny faces.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cribsight.data.build import in_holdout
from cribsight.datadir import data_root
from cribsight.detect.blazeface import BlazeFace
from cribsight.io.images import read_image
from cribsight.runtime import weight_path
from cribsight.train.detector import (N_ANCHORS, Face, Net, flip, jitter_colour, load_teacher, loss_fn, sample_away,
                                      sample_cutoff, sample_plain, sample_tiny, save_teacher, targets, to_input)
from cribsight.train.trainer import _atomic

ONNX_NAME = "face_detection_full_range.onnx"
MIN_TEACHER_SCORE = 0.6


def source_paths(split: str) -> dict[str, list[Path]]:
    root = data_root()
    want = split == "holdout"
    pick = lambda ps: sorted(p for p in ps if in_holdout(p, 0.1) == want)  # noqa: E731
    return {
        "utkface": pick((root / "utkface").glob("*.jpg")),
        "facemask": pick([*(root / "facemask" / "with_mask").iterdir(), *(root / "facemask" / "without_mask").iterdir()]),
        "syrip": pick((root / "syrip" / "images").glob("*.jpg")),
    }


def syrip_subframes() -> list[np.ndarray]:
    """Face-less parts of the training split's SyRIP scenes (tools/frame_false_faces.py's, whose
    held-out split measures false faces)."""
    from frame_false_faces import split_subframes

    return list(split_subframes("train"))


def label(paths: dict[str, list[Path]], cache: Path) -> dict[str, list[Face]]:
    if cache.exists():
        return load_teacher(cache)
    det = BlazeFace(ONNX_NAME, threads=2, score_thresh=MIN_TEACHER_SCORE)
    out: dict[str, list[Face]] = {}
    for group in paths.values():
        for p in group:
            image = read_image(p)
            found = det(image)
            if not found:  # a tight crop (UTKFace): the same detector on the photo inside a 2x frame
                h, w = image.shape[:2]
                big = np.zeros((2 * h, 2 * w, 3), np.uint8)
                big[h // 2:h // 2 + h, w // 2:w // 2 + w] = image
                shift = np.array([w // 2, h // 2], np.float32)
                found = [d.__class__(d.box_xyxy - np.tile(shift, 2), d.keypoints_xy - shift, d.score, d.detector)
                         for d in det(big)]
            out[str(p)] = [Face(d.box_xyxy, d.keypoints_xy, d.score) for d in found]
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_teacher(cache, out)
    return out


class Sampler:
    """Photos are drawn by source (``weights``), so the 8,000 UTKFace crops do not drown the masks;
    tiny faces go into face-mask photos and SyRIP scenes (a UTKFace crop has no room around its face)."""

    weights = {"facemask": 0.45, "utkface": 0.4, "syrip": 0.15}

    def __init__(self, paths, labels, seed: int, with_negatives: bool = False):
        self.rng = np.random.default_rng(seed)
        self.with_faces: dict[str, list[tuple[np.ndarray, list[Face]]]] = {k: [] for k in paths}
        self.backgrounds: list[tuple[np.ndarray, list[Face]]] = []
        for name, group in paths.items():
            for p in group:
                faces = labels.get(str(p), [])
                if faces:
                    self.with_faces[name].append((read_image(p), faces))
                if name != "utkface" and (faces or name == "syrip"):
                    self.backgrounds.append(self.with_faces[name][-1] if faces else (read_image(p), []))
        self.donors = [(im, [f for f in fs if f.box[3] - f.box[1] >= 24]) for g in self.with_faces.values() for im, fs in g]
        self.donors = [d for d in self.donors if d[1]]
        self.away = [(im, fs) for im, fs in self.with_faces.get("facemask", []) if len(fs) == 1]
        self.subframes = syrip_subframes() if with_negatives else []
        self.groups = [k for k in self.weights if self.with_faces.get(k)]
        w = np.array([self.weights[k] for k in self.groups])
        self.p = w / w.sum()

    def counts(self) -> str:
        return ", ".join(f"{k} {len(v)}" for k, v in self.with_faces.items()) + \
            f"; donors {len(self.donors)}, backgrounds {len(self.backgrounds)}, face-less sub-frames {len(self.subframes)}"

    def one(self, kind: str):
        r = self.rng
        if kind == "negative":
            out = None
            if self.subframes and r.random() < 0.5:
                out = to_input(self.subframes[int(r.integers(len(self.subframes)))], [])
            while out is None:
                out = sample_away(r, *self.away[int(r.integers(len(self.away)))])
            img, faces = out
        elif kind == "tiny":
            bg = self.backgrounds[int(r.integers(len(self.backgrounds)))]
            donors = [self.donors[int(r.integers(len(self.donors)))] for _ in range(int(r.integers(1, 5)))]
            img, faces = sample_tiny(r, bg, donors)
        else:
            group = self.with_faces[self.groups[int(r.choice(len(self.groups), p=self.p))]]
            im, fs = group[int(r.integers(len(group)))]
            img, faces = (sample_cutoff if kind == "cutoff" else sample_plain)(r, im, fs)
        if r.random() < 0.5:
            img, faces = flip(img, faces)
        return jitter_colour(r, img), faces

    def batch(self, n: int, mix=(0.3, 0.35, 0.35, 0.0)):
        kinds = self.rng.choice(["plain", "cutoff", "tiny", "negative"], size=n, p=list(mix))
        imgs, pos, reg, scale = [], [], [], []
        for k in kinds:
            img, faces = self.one(str(k))
            t = targets(faces)
            imgs.append(img)
            pos.append(t[0]), reg.append(t[1]), scale.append(t[2])
        x = torch.from_numpy(np.stack(imgs)).float() * (2.0 / 255.0) - 1.0
        neg = torch.from_numpy((kinds == "negative").astype(np.float32))
        return x, torch.from_numpy(np.stack(pos)), torch.from_numpy(np.stack(reg)), torch.from_numpy(np.stack(scale)), neg


def train(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({k: v for k, v in vars(args).items() if k not in ("export", "install")}, indent=1))
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    paths = source_paths("train")
    labels = label(paths, Path(args.teacher_cache))
    if args.exclude:  # e.g. the photos an evaluation counts as misses: kept out of every kind of sample
        rows = json.loads(Path(args.exclude).read_text())
        names = {r["name"] if isinstance(r, dict) else str(r) for r in rows}
        before = sum(map(len, paths.values()))
        paths = {k: [p for p in v if p.name not in names] for k, v in paths.items()}
        print(f"excluded {before - sum(map(len, paths.values()))} photos named in {args.exclude}", flush=True)
    sampler = Sampler(paths, labels, args.seed, with_negatives=args.negatives > 0)
    mix = np.array([0.3, 0.35, 0.35]) * (1 - args.negatives)
    mix = (*mix, args.negatives)
    print("photos with a face:", sampler.counts(), flush=True)
    onnx_path = weight_path(ONNX_NAME)
    student, teacher = Net(onnx_path), Net(onnx_path).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(student.parameters(), lr=args.lr)
    step, history = 0, []
    ck = out / "checkpoint.pt"
    if ck.exists():
        state = torch.load(ck, weights_only=False)
        student.load_state_dict(state["model"]), opt.load_state_dict(state["opt"])
        step, history = state["step"], state["history"]
        sampler.rng = np.random.default_rng(args.seed + step)
        print(f"resumed at step {step}", flush=True)
    student.train()
    t0, run = time.time(), []
    while step < args.steps:
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 if step >= 0.8 * args.steps else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        x, pos, reg_t, scale, neg = sampler.batch(args.batch, mix)
        with torch.no_grad():
            tout = teacher(x)
        cls, regl = loss_fn(student(x), tout, pos, reg_t, scale, neg)
        loss = cls + args.reg_weight * regl
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        run.append((float(cls.detach()), float(regl.detach())))
        if step % 50 == 0 or step == args.steps:
            c, r = np.mean(run, 0)
            history.append(dict(step=step, cls=float(c), reg=float(r), lr=lr))
            print(f"step {step} cls {c:.3f} reg {r:.4f} lr {lr:.2e} {time.time() - t0:.0f}s", flush=True)
            run = []
        if step % 250 == 0 or step == args.steps:
            state = dict(model=student.state_dict(), opt=opt.state_dict(), step=step, history=history)
            _atomic(ck, lambda tmp: torch.save(state, tmp))
            _atomic(out / "history.json", lambda tmp: tmp.write_text(json.dumps(history)))


def export(args):
    import onnxruntime as ort

    out = Path(args.out)
    net = Net(weight_path(ONNX_NAME))
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    net.load_state_dict(state["model"])
    net.eval()

    class Export(torch.nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            reg, logit = self.body(x)
            return reg.reshape(1, N_ANCHORS, 16), logit.reshape(1, N_ANCHORS, 1)

    dst = out / "face_detection_full_range_ft.onnx"
    x = torch.rand(1, 192, 192, 3) * 2 - 1
    torch.onnx.export(Export(net.body), x, str(dst), input_names=["input"], dynamo=False,
                      output_names=["reshaped_regressor_face_4", "reshaped_classifier_face_4"], opset_version=13)
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = Export(net.body)(x)
    got = sess.run(None, {"input": x.numpy()})
    diff = max(float(np.abs(a - b.numpy()).max()) for a, b in zip(got, ref))
    from cribsight.runtime import manifest, sha256_file

    entry = dict(manifest()["files"][ONNX_NAME])
    hist = state["history"]
    entry.update(sha256=sha256_file(dst), detector_name="blazeface_full_ft",
                 source=f"{ONNX_NAME} fine-tuned by tools/finetune_detector.py, run {out.as_posix()} ({hist[-1]['step']} steps; "
                        f"its config.json and history.json are there)", model_card="docs/pretrained.md, 'Fine-tuned detector'",
                 license="Apache-2.0 (the MediaPipe model) fine-tuned on research-only data (UTKFace, face-mask photos, "
                         "SyRIP): research and non-commercial use")
    for k in ("source_file", "source_sha256"):
        entry.pop(k, None)
    dst.with_suffix(".json").write_text(json.dumps(entry, indent=1))
    print(f"wrote {dst} and its manifest entry; torch vs ONNX Runtime max abs diff {diff:.2e}")
    if args.install:  # ship it: the file beside the others and its entry in weights/manifest.json
        import shutil

        from cribsight.runtime import WEIGHTS_DIR

        shutil.copy(dst, WEIGHTS_DIR / dst.name)
        m = manifest()
        m["files"][dst.name] = entry
        (WEIGHTS_DIR / "manifest.json").write_text(json.dumps(m, indent=2) + "\n")
        print(f"installed {WEIGHTS_DIR / dst.name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/detector_ft")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--reg-weight", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--negatives", type=float, default=0.0, help="share of face-free samples (target 0 everywhere)")
    ap.add_argument("--teacher-cache", default="out/detector_teacher.json")
    ap.add_argument("--exclude", default=None, help="JSON list of photo names (or objects with 'name') left out of training")
    ap.add_argument("--export", action="store_true", help="write the run's ONNX and its manifest entry")
    ap.add_argument("--install", action="store_true", help="with --export: also ship it in src/cribsight/weights")
    args = ap.parse_args()
    export(args) if args.export else train(args)


if __name__ == "__main__":
    main()
