"""Benchmarks of the pretrained pipeline (or of any predictions in the JSON Lines output contract).

Each benchmark takes a ``predict(path, image=None) -> FrameResult`` callable: cribsight runs on
``image`` when given (benchmarks that alter images, such as the AFLW2000-SO rectangles, pass the
altered image and a derived file name) or on the decoded file; another system's predictions
(``predictions_from_jsonl``) are looked up by file name. Both are scored identically.

SyRIP scoring (the foundation issue's definition): among images whose nose and both eyes are
labelled visible (v = 2), the infant's face is *found* when a predicted box contains the annotated
nose and at least one annotated eye; every other predicted box is a *false box*. The 3-point error
of a found face (the highest-scoring box that hits) is the mean of the nose error and the two
eye-centre errors (eyes matched as an unordered pair), divided by d = sqrt(w * h) of the bounding
box of the five annotated face keypoints (nose, eyes, ears; those with v > 0). Predicted nose =
iBUG point 30, predicted eye centres = means of points 36-41 and 42-47.

Figures measured on few images carry a 95% interval beside them (``*_ci95``: [lo, hi]): Wilson's
for recalls and rates, DeLong's for AUROCs (``metrics.wilson_interval`` / ``auroc_interval``).
"""
from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import InputError
from ..geometry import box_contains
from ..types import PART_NAMES, FrameResult
from .metrics import wilson_interval

Predict = Callable[..., FrameResult]


def analyzer_predictor(analyzer) -> Predict:
    """``predict(path, image=None)`` running a cribsight Analyzer."""
    from ..io.images import read_image

    def predict(path: Path, image: np.ndarray | None = None) -> FrameResult:
        img = read_image(path) if image is None else image
        return analyzer.analyze_image(img, str(path))

    return predict


class DataMissing(InputError):
    """A benchmark's data folder is absent or incomplete."""


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataMissing(what, f"data at {path}", "nothing there (the data folder's README.md says what goes where)")
    return path


def _check_face_values(face, where: str) -> None:
    """ValueError naming the field when a predicted face breaks the output contract's ranges: a box
    of 4 finite numbers, probabilities (score, eyes open, part states, landmark visibility, visible
    fraction) from 0 to 1, sigmas finite and >= 0, the 68 landmarks finite. NaN is refused too:
    scored, it would move the figures silently."""
    def prob(v, name):
        if v is not None and not (math.isfinite(v) and 0 <= v <= 1):
            raise ValueError(f"{where}.{name}: expected a probability from 0 to 1, found {v}")

    def sig(v, name):
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{where}.{name}: expected a finite sigma >= 0, found {v}")

    if len(face.box) != 4 or not all(math.isfinite(v) for v in face.box):
        raise ValueError(f"{where}.box: expected 4 finite numbers, found {list(face.box)}")
    prob(face.score, "score")
    if face.eyes_open is not None:
        prob(face.eyes_open.p, "eyes_open.p")
        sig(face.eyes_open.sigma, "eyes_open.sigma")
    for part, st in (face.parts or {}).items():
        if part not in PART_NAMES:
            raise ValueError(f"{where}.parts: expected parts from {list(PART_NAMES)}, found {part!r}")
        prob(st.occluded, f"parts.{part}.occluded")
        prob(st.covered, f"parts.{part}.covered")
        sig(st.sigma_occluded, f"parts.{part}.sigma_occluded")
        sig(st.sigma_covered, f"parts.{part}.sigma_covered")
    if face.occlusion is not None:
        prob(face.occlusion.visible_fraction, "occlusion.visible_fraction")
    lm = face.landmarks
    if lm is not None:
        if len(lm.xy) != 68 or not all(math.isfinite(c) for xy in lm.xy for c in xy):
            raise ValueError(f"{where}.landmarks.xy: expected 68 finite points, found {len(lm.xy)}")
        for name, vals, check in (("sigma", lm.sigma, sig), ("visible", lm.visible, prob)):
            if vals is not None:
                if len(vals) != 68:
                    raise ValueError(f"{where}.landmarks.{name}: expected 68 values, found {len(vals)}")
                for k, v in enumerate(vals):
                    check(v, f"landmarks.{name}[{k}]")


def predictions_from_jsonl(path: str | Path) -> Predict:
    """A ``predict`` callable that looks up results by the file name of their ``source``. A file that
    cannot be read, a line that is not a frame result, or two results for one file name (which
    could be scored against the wrong image) is an ``InputError`` naming the line."""
    table: dict[str, FrameResult] = {}
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), "a readable JSON Lines prediction file", f"{type(e).__name__}: {e}") from None
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            r = FrameResult.from_json(line)
            for j, face in enumerate(r.faces):
                _check_face_values(face, f"faces[{j}]")
        except InputError as e:  # from_json's: it says what it found
            raise InputError(f"{path} line {i}", "a frame result in the output contract", e.found) from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"{path} line {i}", "a frame result in the output contract",
                             f"{type(e).__name__}: {e}") from None
        name = Path(r.source).name
        if name in table:
            raise InputError(f"{path} line {i}", "one prediction per file name (results are matched by name)",
                             f"a second one for {name}")
        table[name] = r

    return _TablePredict(table, str(path))


class _TablePredict:
    """Looks predictions up by file name, counting the images found (``hits``) and not (``misses``)
    since the last ``reset``: a file that matches none or only part of a benchmark is said."""

    def __init__(self, table: dict[str, FrameResult], path: str):
        self.table, self.path = table, path
        self.reset()

    def reset(self) -> None:
        self.hits = self.misses = 0

    def __call__(self, p: Path, image=None) -> FrameResult:
        name = Path(p).name
        if name not in self.table:
            self.misses += 1
            raise InputError(self.path, f"a prediction for {name}", "none")
        self.hits += 1
        return self.table[name]


def _median(x: list[float]) -> float | None:
    return float(np.median(x)) if x else None


def _mean(x: list[float]) -> float | None:
    return float(np.mean(x)) if x else None


# ------------------------------------------------------------------------------------------------
def three_point_error(face, nose_gt, eye_a_gt, eye_b_gt) -> float:
    lm = np.asarray(face.landmarks.xy, np.float64)
    nose = lm[30]
    e1, e2 = lm[36:42].mean(0), lm[42:48].mean(0)
    en = np.linalg.norm(nose - nose_gt)
    straight = np.linalg.norm(e1 - eye_a_gt) + np.linalg.norm(e2 - eye_b_gt)
    swapped = np.linalg.norm(e1 - eye_b_gt) + np.linalg.norm(e2 - eye_a_gt)
    return float((en + min(straight, swapped)) / 3.0)


def syrip(data_dir: Path, predict: Predict, progress: Callable[[Iterable], Iterable] = iter) -> dict:
    root = require(Path(data_dir), "syrip")
    ann = json.loads(require(root / "annotations.json", "syrip annotations").read_text())
    by_image = {a["image_id"]: a for a in ann["annotations"]}
    n_eval = found = false_boxes = 0
    errors: list[float] = []
    boxes: list[tuple[float, bool]] = []  # (score, is the image's first hit) for the F1-confidence curve
    by_posture: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failed: list[str] = []
    for im in progress(ann["images"]):
        a = by_image.get(im["id"])
        if a is None:
            continue
        k = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)[:5]
        if not (k[0, 2] == 2 and k[1, 2] == 2 and k[2, 2] == 2):
            continue
        n_eval += 1
        try:
            res = predict(root / "images" / im["file_name"])
        except Exception as e:  # a failed prediction counts as a miss, and is reported
            failed.append(f"{im['file_name']}: {e}")
            by_posture[im.get("posture", "?")][1] += 1
            continue
        nose, eye_a, eye_b = k[0, :2], k[1, :2], k[2, :2]
        hits = []
        for f in res.faces:
            inside = box_contains(f.box, np.stack([nose, eye_a, eye_b]))
            if inside[0] and (inside[1] or inside[2]):
                hits.append(f)
            else:
                false_boxes += 1
                boxes.append((f.score, False))
        if hits:
            ranked = sorted(hits, key=lambda f: -f.score)
            boxes += [(ranked[0].score, True)] + [(f.score, False) for f in ranked[1:]]
        post = by_posture[im.get("posture", "?")]
        post[1] += 1
        if hits:
            found += 1
            post[0] += 1
            best = max(hits, key=lambda f: f.score)
            if best.landmarks is not None:
                lab = k[k[:, 2] > 0, :2]
                d = math.sqrt(max(1e-9, np.ptp(lab[:, 0]) * np.ptp(lab[:, 1])))
                errors.append(three_point_error(best, nose, eye_a, eye_b) / d)
    if n_eval == 0:
        raise DataMissing("syrip", "images with nose and both eyes labelled visible", "none")
    return {
        "benchmark": "syrip",
        "images_scored": n_eval,
        "recall": found / n_eval,
        "recall_ci95": wilson_interval(found, n_eval),
        "false_boxes_per_image": false_boxes / n_eval,
        "nme3_mean": _mean(errors),
        "nme3_median": _median(errors),
        "recall_by_posture": {p: {"recall": v[0] / v[1], "recall_ci95": wilson_interval(v[0], v[1]), "images": v[1]}
                              for p, v in sorted(by_posture.items())},
        "f1_confidence": _f1_confidence(boxes, n_eval),
        "failed": failed,
    }


def _f1_confidence(boxes: list[tuple[float, bool]], n_gt: int) -> dict:
    """F1, precision and recall of 'keep boxes scoring >= c' over a grid of c (seed 001), where a
    box is a true positive when it is the best hit of its image."""
    from .metrics import f1_confidence_curve

    return f1_confidence_curve(np.array([b[0] for b in boxes]), np.array([b[1] for b in boxes], bool), n_gt)


def _detection_rate(paths: list[Path], predict: Predict, progress) -> tuple[int, int, list[str], list]:
    found, failed, results = 0, [], []
    for p in progress(paths):
        try:
            r = predict(p)
        except Exception as e:
            failed.append(f"{p.name}: {e}")
            results.append(None)
            continue
        found += bool(r.faces)
        results.append(r)
    return found, len(paths), failed, results


def _subset(files: list[Path], limit: int | None) -> list[Path]:
    return files[:: max(1, len(files) // limit)][:limit] if limit else files


def utkface(data_dir: Path, predict: Predict, progress=iter, limit: int | None = None) -> dict:
    """Face detection rate on UTKFace crops by age group (0-3 vs 4+), from the file names
    ``age_gender_race_datetime.jpg.chip.jpg``. ``limit``: evaluate an evenly spaced subset."""
    root = require(Path(data_dir), "utkface")
    files = _subset(sorted(p for p in root.iterdir() if p.name.endswith(".jpg")), limit)
    groups: dict[str, list[Path]] = {"age_0_3": [], "age_4_plus": []}
    for p in files:
        m = re.match(r"(\d+)_", p.name)
        if not m:
            continue
        groups["age_0_3" if int(m.group(1)) <= 3 else "age_4_plus"].append(p)
    out = {"benchmark": "utkface", "groups": {}, "failed": []}
    for g, paths in groups.items():
        found, n, failed, _ = _detection_rate(paths, predict, progress)
        out["groups"][g] = {"detection_rate": found / n if n else None, "detection_rate_ci95": wilson_interval(found, n),
                            "images": n}
        out["failed"] += failed
    return out


def covered_score(res: FrameResult) -> float | None:
    """P(nose or mouth covered) of the most confident face: max of the two part probabilities, or
    None when the predictions carry no covered probability (the pretrained path)."""
    if not res.faces:
        return None
    f = max(res.faces, key=lambda f: f.score)
    if not f.parts:
        return None
    vals = [f.parts[k].covered for k in ("nose", "mouth") if k in f.parts and f.parts[k].covered is not None]
    return max(vals) if vals else None


# The shipped CribNet was trained on the data engine's train split of the face-mask photos
# (configs/data/train.yaml, holdout_fraction 0.1): figures over every photo include images it saw.
TRAIN_HOLDOUT_FRACTION = 0.1


def facemask(data_dir: Path, predict: Predict, progress=iter, limit: int | None = None, threshold: float = 0.5) -> dict:
    """Detection rate per folder and, when the predictions carry part cover probabilities, the
    AUROC of P(nose or mouth covered) for masked vs unmasked faces and F1 at ``threshold``
    (images without a detected face are scored with P = 0, a miss). The same figures again over
    ``never_trained_on``: the photos of the data engine's held-out split (a stable hash of the file
    name, ``data.build.in_holdout``), which no shipped CribNet was trained on."""
    from ..data.build import in_holdout

    root = require(Path(data_dir), "facemask")
    out = {"benchmark": "facemask", "groups": {}, "failed": []}
    scores, labels, held = [], [], []
    held_total = held_masked = held_masked_found = 0  # every held-out photo: a failed one is a miss, as per folder
    for folder, label in (("with_mask", 1), ("without_mask", 0)):
        files = _subset(sorted(require(root / folder, f"facemask/{folder}").iterdir()), limit)
        found, n, failed, results = _detection_rate(files, predict, progress)
        out["groups"][folder] = {"detection_rate": found / n if n else None, "detection_rate_ci95": wilson_interval(found, n),
                                 "images": n}
        out["failed"] += failed
        for f, r in zip(files, results):
            h = in_holdout(f, TRAIN_HOLDOUT_FRACTION)
            held_total += h
            if label == 1 and h:
                held_masked += 1
                held_masked_found += bool(r is not None and r.faces)
            if r is not None:
                scores.append(covered_score(r))
                labels.append(label)
                held.append(h)
    y, held = np.array(labels, int) == 1, np.array(held, bool)
    out["covered"] = _covered_figures(scores, y, threshold)
    sub = [sc for sc, h in zip(scores, held) if h]
    out["never_trained_on"] = {
        "images": held_total, "with_mask": held_masked,
        "with_mask_detection_rate": held_masked_found / held_masked if held_masked else None,
        "with_mask_detection_rate_ci95": wilson_interval(held_masked_found, held_masked),
        "covered": _covered_figures(sub, y[held], threshold)}
    if not any(sc is not None for sc in scores):
        out["covered_note"] = "the predictions carry no part cover probability (pretrained path): AUROC/F1 not computable"
    elif out["covered"] is None:
        out["covered_note"] = "only one class (masked or unmasked) was scored: AUROC/F1 not computable"
    return out


def _covered_figures(scores: list, y: np.ndarray, threshold: float) -> dict | None:
    """AUROC (with interval), F1 and calibration of P(nose or mouth covered) over all images (a
    missed face scores 0) and AUROC over the found faces; None without cover probabilities."""
    from .metrics import BinaryClassification, auroc, auroc_interval

    if not any(s is not None for s in scores) or len(set(y.tolist())) < 2:
        return None
    p = np.array([0.0 if s is None else s for s in scores])
    m = BinaryClassification(["nose_or_mouth_covered"], threshold)
    m.update(p[:, None], y.astype(int)[:, None])
    c = m.compute()
    found = np.array([sc is not None for sc in scores])
    return {**c["per_class"]["nose_or_mouth_covered"], "auroc_ci95": auroc_interval(p, y), "threshold": threshold,
            "reliability": c["reliability"], "confusion": _confusion(p >= threshold, y),
            # the classifier alone: images where a face was found
            "auroc_found_faces": auroc(p[found], y[found]),
            "auroc_found_faces_ci95": auroc_interval(p[found], y[found]), "found_faces": int(found.sum())}


def _confusion(pred: np.ndarray, truth: np.ndarray) -> dict:
    return {"tp": int((pred & truth).sum()), "fp": int((pred & ~truth).sum()),
            "fn": int((~pred & truth).sum()), "tn": int((~pred & ~truth).sum())}


# ------------------------------------------------------------------------------------------------
# AFLW2000-3D: landmarks and pose; the seed-003 SO rectangles; robustness curves
def _aflw_items(data_dir: Path):
    import scipy.io as sio

    root = require(Path(data_dir), "aflw2000")
    mats = sorted(root.glob("*.mat"))
    if not mats:
        raise DataMissing("aflw2000", "*.mat annotation files", f"none in {root}")
    for mat in mats:
        m = sio.loadmat(mat)
        gt = m["pt3d_68"][:2].T.astype(np.float64)
        pitch, yaw, roll = np.degrees(m["Pose_Para"][0, :3])
        img = next((mat.with_suffix(s) for s in (".jpg", ".png") if mat.with_suffix(s).exists()), None)
        if img is None:
            raise DataMissing("aflw2000", f"an image beside {mat.name}", "none")
        yield img, gt, np.array([yaw, pitch, roll])


class _LandmarkPoseScore:
    """Accumulates NME (inter-ocular, box), pose MAE and misses for one condition."""

    def __init__(self):
        from .metrics import NME, PoseError

        self.nme_io, self.nme_box, self.pose = NME("interocular", ced_max=0.25), NME("box"), PoseError()
        self.missed: list[str] = []
        self.failed: list[str] = []
        self.n = 0

    def add(self, name: str, res: FrameResult | None, gt: np.ndarray, ypr: np.ndarray) -> None:
        self.n += 1
        faces = [f for f in res.faces if f.landmarks is not None] if res is not None else []
        if not faces:
            self.missed.append(name)
            return
        f = min(faces, key=lambda f: np.linalg.norm(np.asarray(f.landmarks.xy).mean(0) - gt.mean(0)))
        lm = np.asarray(f.landmarks.xy)
        self.nme_io.update(lm, gt)
        self.nme_box.update(lm, gt)
        if f.pose is not None:
            self.pose.update([f.pose.yaw, f.pose.pitch, f.pose.roll], ypr)

    def add_altered(self, name: Path, image: np.ndarray, gt: np.ndarray, ypr: np.ndarray, predict: Predict,
                    export: Path | None) -> None:
        """Score ``predict(name, image)`` on an altered image, writing the image to ``export`` first."""
        if export is not None:
            import cv2

            export.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(export / name.name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        try:
            res = predict(name, image)
        except Exception as e:
            self.failed.append(f"{name.name}: {e}")
            res = None
        self.add(name.stem, res, gt, ypr)

    def result(self) -> dict:
        io, bx, pe = self.nme_io.compute(), self.nme_box.compute(), self.pose.compute()
        return {"images": self.n, "detected": self.n - len(self.missed), "missed": self.missed,
                "nme_interocular_mean": io["nme_mean"], "nme_interocular_median": io["nme_median"],
                "auc@0.08": io["auc@0.08"], "failure_rate@0.08": io["failure_rate@0.08"],
                "nme_box_mean": bx["nme_mean"], "ced_interocular": io["ced"],
                "pose_mae_yaw": pe["mae_yaw"], "pose_mae_pitch": pe["mae_pitch"], "pose_mae_roll": pe["mae_roll"],
                "pose_mae_mean": pe["mae_mean"], "pose_geodesic_mean": pe["geodesic_mean"], "failed": self.failed}


def aflw2000(data_dir: Path, predict: Predict, progress=iter) -> dict:
    """NME (68 points; inter-ocular = outer eye corners |p36 - p45|, and box = sqrt(w h) of the
    ground-truth points), AUC and failure rate at 0.08, pose MAE (degrees) against ``Pose_Para``."""
    sc = _LandmarkPoseScore()
    for img, gt, ypr in progress(list(_aflw_items(data_dir))):
        try:
            res = predict(img)
        except Exception as e:
            sc.failed.append(f"{img.name}: {e}")
            res = None
        sc.add(img.stem, res, gt, ypr)
    return {"benchmark": "aflw2000", **sc.result()}


SO_VARIANTS = ("none", "left", "top", "right", "bottom", "middle")


def so_rectangle(gt: np.ndarray, variant: str, frac: float = 0.4) -> tuple[int, int, int, int]:
    """The seed-003 AFLW2000-SO occluder for one face: a rectangle over ``frac`` of the face box
    (the box of the 68 ground-truth points): the image-left, top, image-right or bottom ``frac`` of
    it, or a centred ``frac`` x ``frac`` block ("middle"). The seed gives only the five names and a
    picture; the 40% extent is our choice, fixed so runs are comparable."""
    x1, y1 = gt.min(0)
    x2, y2 = gt.max(0)
    w, h = x2 - x1, y2 - y1
    r = {
        "left": (x1, y1, x1 + frac * w, y2), "right": (x2 - frac * w, y1, x2, y2),
        "top": (x1, y1, x2, y1 + frac * h), "bottom": (x1, y2 - frac * h, x2, y2),
        "middle": (x1 + (1 - frac) / 2 * w, y1 + (1 - frac) / 2 * h, x2 - (1 - frac) / 2 * w, y2 - (1 - frac) / 2 * h),
    }[variant]
    return tuple(int(round(v)) for v in r)


def apply_so(img: np.ndarray, gt: np.ndarray, variant: str) -> np.ndarray:
    if variant == "none":
        return img
    out = img.copy()
    x1, y1, x2, y2 = so_rectangle(gt, variant)
    out[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = 0  # the part is removed (black), as in the seed
    return out


def _variant_name(img: Path, variant: str) -> Path:
    return img if variant == "none" else img.with_name(f"{img.stem}_{variant}{img.suffix}")


def aflw2000_so(data_dir: Path, predict: Predict, progress=iter, export: Path | None = None) -> dict:
    """Pose MAE and NME on AFLW2000 under the five seed-003 rectangle occlusions (plus none), and
    face detection over all of them (seed 001's metrics: AP@0.5, mAP@0.5:0.95, F1 at the best
    threshold, recall at IoU 0.5 by occlusion variant as the difficulty tier) against the box of the
    68 ground-truth points (no forehead: a detector's box overlaps it at IoU ~0.6-0.8).
    Predictions from another system name the variants ``<stem>_<variant>.jpg``; ``export`` writes
    those images so that system can be run on them."""
    from ..io.images import read_image

    from .metrics import DetectionMetric

    items = list(_aflw_items(data_dir))
    scores = {v: _LandmarkPoseScore() for v in SO_VARIANTS}
    det = DetectionMetric()
    for img_path, gt, ypr in progress(items):
        img = read_image(img_path)
        gt_box = [*gt.min(0), *gt.max(0)]
        for v in SO_VARIANTS:
            def scored(name, image, v=v, gt_box=gt_box):
                res = predict(name, image)
                if res is not None:
                    det.update([f.box for f in res.faces], [f.score for f in res.faces], [gt_box], [v])
                return res
            scores[v].add_altered(_variant_name(img_path, v), apply_so(img, gt, v), gt, ypr, scored, export)
    d = det.compute()
    return {"benchmark": "aflw2000-so", "variants": {v: s.result() for v, s in scores.items()},
            "detection": {k: d[k] for k in ("n_gt", "ap50", "map50_95", "precision", "recall", "f1", "best_f1_threshold",
                                            "recall_by_tier")}}


ROBUSTNESS_LEVELS = {
    "noise_sigma": [0, 5, 10, 20, 40],
    "blur_sigma_px": [0, 1, 2, 4, 8],
    "resolution_factor": [1.0, 0.5, 0.25, 0.125, 0.0625],
    "infrared_strength": [0.0, 0.25, 0.5, 0.75, 1.0],
}


def corrupt(img: np.ndarray, family: str, level: float, seed: int) -> np.ndarray:
    from ..data import camera

    rng = np.random.default_rng(seed)
    if family == "noise_sigma":
        return camera.gaussian_noise(img, level, rng)
    if family == "blur_sigma_px":
        return camera.gaussian_blur(img, level)
    if family == "resolution_factor":
        return camera.low_resolution(img, level)
    if family == "infrared_strength":
        return camera.infrared(img, level, rng)
    raise InputError("corruption", f"one of {sorted(ROBUSTNESS_LEVELS)}", repr(family))


def robustness(data_dir: Path, predict: Predict, progress=iter, export: Path | None = None) -> dict:
    """Detection rate, NME and pose MAE on AFLW2000 versus Gaussian noise, blur, resolution and
    infrared simulation (seed 002 Fig. 5 style). Deterministic: image i uses seed i."""
    from ..io.images import read_image

    items = list(_aflw_items(data_dir))
    images = [read_image(p) for p, _, _ in items]
    curves: dict[str, list[dict]] = {}
    for family, levels in progress(list(ROBUSTNESS_LEVELS.items())):
        curves[family] = []
        for level in levels:
            sc = _LandmarkPoseScore()
            for i, ((img_path, gt, ypr), img) in enumerate(zip(items, images)):
                name = img_path.with_name(f"{img_path.stem}_{family}_{level}{img_path.suffix}")
                sc.add_altered(name, corrupt(img, family, level, seed=i), gt, ypr, predict, export)
            r = sc.result()
            curves[family].append({"level": level, "detection_rate": r["detected"] / r["images"],
                                   "nme_interocular_mean": r["nme_interocular_mean"], "pose_mae_mean": r["pose_mae_mean"]})
    return {"benchmark": "robustness", "data": "aflw2000", "curves": curves}


# ------------------------------------------------------------------------------------------------
# SyRIP development labels (our own, by eye) and the synthetic held-out set
DEV_LABELS = Path(__file__).resolve().parent / "syrip_dev_labels.csv"


def read_dev_labels(path: Path = DEV_LABELS) -> list[dict]:
    rows = []
    for line in Path(path).read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("file_name,"):
            continue
        name, face, covered, eyes = line.split(",")
        rows.append({"file_name": name, "face": face, "covered": [c for c in covered.split(";") if c], "eyes": eyes})
    return rows


def _rates_at(scores: list, truth: list, threshold: float, name: str) -> dict:
    """False-alarm rate (negatives at or above ``threshold``) and recall (positives at or above it),
    each with its Wilson interval; None where there are no negatives / positives."""
    c = _confusion(np.asarray(scores, np.float64) >= threshold, np.asarray(truth, bool))
    fa, tp, n_neg, n_pos = c["fp"], c["tp"], c["fp"] + c["tn"], c["tp"] + c["fn"]
    return {f"{name}_false_alarm_rate": fa / n_neg if n_neg else None,
            f"{name}_false_alarm_rate_ci95": wilson_interval(fa, n_neg),
            f"{name}_recall": tp / n_pos if n_pos else None, f"{name}_recall_ci95": wilson_interval(tp, n_pos)}


def syrip_dev(data_dir: Path, predict: Predict, progress=iter, labels: Path = DEV_LABELS) -> dict:
    """Our by-eye labels on 390 SyRIP images: visible-face recall (a box holding the annotated nose and
    an eye), mouth-covered AUROC and eyes-open AUROC over the found visible faces, and the rate at
    which a face turned away or face down comes out 'all clear' (a face reported with P(nose
    occluded) and P(mouth occluded) both < 0.5, or with no occlusion estimate at all) - the target
    is <= 0.05. No face reported for such an image is not 'all clear' (the monitor says face lost).
    At the contract's 0.5: the share of found visible faces whose mouth is uncovered by our labels but
    reported covered (``mouth_covered_false_alarm_rate``, what would set off a covered-mouth alert) and
    the share of covered mouths reported covered (``mouth_covered_recall``); the same two rates and
    the AUROC for the mouth's landmarks read as hidden (mean P(visible) of points 48-67 below 0.5,
    ``mouth_landmarks_hidden_*``), the other signal a monitor could alarm on; and the share of
    visible faces' noses / mouths our labels call uncovered that come out occluded at 0.5
    (``nose_occluded_when_uncovered_rate``, ``mouth_...``: an upper bound on false 'occluded', since
    a profile can hide a part nothing covers). The same two rates at 0.5 for the other covers:
    ``eyes_covered_*`` (either eye's P(covered), against our 'eyes' label) and ``nose_covered_*``. The
    eye-cover false alarms split by whether we could see the eyes (labelled open or closed:
    ``eyes_covered_when_uncovered_seen_rate``) or not (eyes 'unknown', mostly infants looking down,
    the eyes hidden by their own head: ``..._not_seen_rate``)."""
    from .metrics import auroc_interval

    root = require(Path(data_dir), "syrip")
    ann = json.loads(require(root / "annotations.json", "syrip annotations").read_text())
    ids = {im["file_name"]: im["id"] for im in ann["images"]}
    kps = {a["image_id"]: np.asarray(a["keypoints"], np.float64).reshape(-1, 3)[:5] for a in ann["annotations"]}
    rows = read_dev_labels(labels)
    vis_found = vis_n = 0
    away_by = {}  # our label (turned_away / face_down) -> [all clear, scored]
    away_clear_files = []
    eye_s, eye_y, hid_s, hid_y = [], [], [], []
    # per label of ours, the parts whose P(covered) scores it (the eyes': the higher eye)
    cover_parts = {"mouth": ("mouth",), "eyes": ("eye_left", "eye_right"), "nose": ("nose",)}
    cover = {label: ([], []) for label in cover_parts}  # P(covered) and our label
    occ_when_uncovered = {"nose": [], "mouth": []}  # P(occluded) of parts our labels call uncovered
    eye_cover_by_sight = {"seen": [], "not_seen": []}  # P(eyes covered) where nothing covers them, by our eyes label
    failed = []
    for r in progress(rows):
        try:
            res = predict(root / "images" / r["file_name"])
        except Exception as e:
            failed.append(f"{r['file_name']}: {e}")
            continue
        k = kps.get(ids.get(r["file_name"]))
        face = None
        if k is not None:
            for f in sorted(res.faces, key=lambda f: -f.score):
                inside = box_contains(f.box, k[:3, :2])
                if inside[0] and (inside[1] or inside[2]):
                    face = f
                    break
        if face is None and res.faces and r["face"] != "visible":
            face = max(res.faces, key=lambda f: f.score)
        if r["face"] == "visible":
            vis_n += 1
            if face is not None:
                vis_found += 1
                for label, names in cover_parts.items():
                    values = [face.parts[n].covered for n in names] if face.parts else [None]
                    if None not in values:  # another system's predictions may leave a part out
                        cover[label][0].append(max(values))
                        cover[label][1].append(label in r["covered"])
                        if label == "eyes" and "eyes" not in r["covered"]:
                            sight = "seen" if r["eyes"] in ("open", "closed") else "not_seen"
                            eye_cover_by_sight[sight].append(max(values))
                for part, values in occ_when_uncovered.items():
                    if face.parts and face.parts[part].occluded is not None and part not in r["covered"]:
                        values.append(face.parts[part].occluded)
                if face.landmarks is not None and face.landmarks.visible is not None:
                    # the mouth unseen by the landmarks: 1 - mean P(visible) of points 48-67
                    hid_s.append(1.0 - float(np.mean(face.landmarks.visible[48:68])))
                    hid_y.append("mouth" in r["covered"])
                if r["eyes"] in ("open", "closed") and face.eyes_open is not None:
                    eye_s.append(face.eyes_open.p)
                    eye_y.append(r["eyes"] == "open")
        else:
            by = away_by.setdefault(r["face"], [0, 0])
            by[1] += 1
            if face is not None:
                p = face.parts
                nose = None if not p else p["nose"].occluded
                mouth = None if not p else p["mouth"].occluded
                if nose is None or mouth is None or (nose < 0.5 and mouth < 0.5):
                    by[0] += 1
                    away_clear_files.append(r["file_name"])
    mouth_s, mouth_y = cover["mouth"]
    away_clear, away_n = (sum(v[k] for v in away_by.values()) for k in (0, 1))
    return {
        "benchmark": "syrip-dev", "images": len(rows),
        "visible_faces": vis_n, "visible_face_recall": vis_found / vis_n if vis_n else None,
        "visible_face_recall_ci95": wilson_interval(vis_found, vis_n),
        "mouth_covered_auroc": _auroc_or_none(mouth_s, mouth_y),
        "mouth_covered_auroc_ci95": auroc_interval(mouth_s, mouth_y) if mouth_s else None,
        "mouth_covered_positives": int(sum(mouth_y)), "mouth_covered_scored": len(mouth_s),
        **{k: v for label, (sc, y) in cover.items() for k, v in _rates_at(sc, y, 0.5, f"{label}_covered").items()},
        "mouth_landmarks_hidden_auroc": _auroc_or_none(hid_s, hid_y),
        **_rates_at(hid_s, hid_y, 0.5, "mouth_landmarks_hidden"),
        **{k: v for part, values in occ_when_uncovered.items()
           for k, v in _share_at(values, 0.5, f"{part}_occluded_when_uncovered").items()},
        # eyes nothing covers, split by whether we could see them (open / closed) or not (eyes
        # 'unknown': mostly infants looking down, the eyes hidden by the head itself)
        **{k: v for sight, values in eye_cover_by_sight.items()
           for k, v in _share_at(values, 0.5, f"eyes_covered_when_uncovered_{sight}").items()},
        "eyes_open_auroc": _auroc_or_none(eye_s, eye_y),
        "eyes_open_auroc_ci95": auroc_interval(eye_s, eye_y) if eye_s else None,
        "eyes_closed_scored": int(len(eye_y) - sum(eye_y)), "eyes_scored": len(eye_s),
        "turned_away_or_face_down": away_n, "all_clear_rate_when_turned_away": away_clear / away_n if away_n else None,
        "all_clear_rate_when_turned_away_ci95": wilson_interval(away_clear, away_n),
        # the same per label (face down into a surface is the dangerous case), and which images
        "all_clear_by_label": {k: {"all_clear": v[0], "scored": v[1], "rate_ci95": wilson_interval(v[0], v[1])}
                               for k, v in sorted(away_by.items())},
        "all_clear_files": away_clear_files,
        "failed": failed,
    }


# ------------------------------------------------------------------------------------------------
# Infant video development labels (our own, by eye, on sampled frames)
VIDEO_LABELS = Path(__file__).resolve().parent / "video_dev_labels.csv"


def read_video_labels(path: Path = VIDEO_LABELS) -> list[dict]:
    """Rows of ``video,frame,eye_left,eye_right,nose,mouth,eyes`` (frame: 0-based index in decode
    order; parts covered 1 / 0 / -1 unsure; eyes open / closed / unknown); a malformed or repeated
    (video, frame) line is an ``InputError`` naming it."""
    rows, seen = [], set()
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line or line.startswith("#") or line.startswith("video,"):
            continue
        cells = line.split(",")
        try:
            video, frame, *parts, eyes = cells
            covered = dict(zip(PART_NAMES, (int(c) for c in parts), strict=True))
            frame = int(frame)
        except ValueError:
            raise InputError(f"{path} line {i}", "video,frame,eye_left,eye_right,nose,mouth,eyes with integer frame "
                             "and part labels", repr(line)) from None
        if frame < 0 or set(covered.values()) - {-1, 0, 1} or eyes not in ("open", "closed", "unknown"):
            raise InputError(f"{path} line {i}", "a frame >= 0, part labels in {-1, 0, 1} and eyes open / closed / "
                             "unknown", repr(line))
        if (video, frame) in seen:
            raise InputError(f"{path} line {i}", "one line per video frame", f"a second one for {video} frame {frame}")
        seen.add((video, frame))
        rows.append({"video": video, "frame": frame, "covered": covered, "eyes": eyes})
    return rows


def video_dev(data_dir: Path, predict: Predict, progress=iter, labels: Path = VIDEO_LABELS) -> dict:
    """Our by-eye labels on sampled frames of the infant video(s) in ``data_dir``: the share of the
    scored frames in which a face is found (every labelled frame shows the face) and the number of
    frames with more than one face reported (one infant: the others are false); per part, P(covered)
    against our covered label at the contract's 0.5 - false-alarm rate and recall with Wilson
    intervals, and the AUROC when both classes are scored; the same for 'nose or mouth covered' (the
    larger of the two probabilities, what a covered-airway alert would read; positive when either
    label is 1, negative when both are 0, else not scored); the share of parts labelled uncovered
    reported occluded at 0.5 (``*_occluded_when_uncovered``); eyes-open AUROC, and the share of
    open-eyed frames reported open. Unsure labels (-1) are left out. The infant's face is the
    highest-scoring one. Frames are decoded one at a time, in order, up to the last labelled one.
    A video that is missing or stops decoding, a frame the video does not hold, and a frame whose
    prediction fails are not scored: ``frames_failed`` counts them and ``failed`` says why."""
    from ..io.video import iter_video
    from .metrics import auroc_interval

    root = require(Path(data_dir), "video")
    rows = read_video_labels(labels)
    by_video: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_video[r["video"]].append(r)
    scored = found = extra = 0
    cover = {p: ([], []) for p in (*PART_NAMES, "nose_or_mouth")}  # P(covered) and our label
    occ_when_uncovered = {p: [] for p in PART_NAMES}
    eye_s, eye_y = [], []
    failed = []
    for video, wanted in by_video.items():
        wanted = sorted(wanted, key=lambda r: r["frame"])
        at = wanted[0]["frame"]  # the labelled frame being looked for
        try:
            frames = iter_video(require(root / video, f"video {video}"))  # decoded as the rows ask for them
            for r in progress(wanted):
                at = r["frame"]
                vf = next((f for f in frames if f.index >= r["frame"]), None)
                if vf is None or vf.index != r["frame"]:
                    failed.append(f"{video} frame {r['frame']}: not in the video")
                    continue
                try:
                    res = predict(root / video, image=vf.rgb)
                except Exception as e:  # one frame's failure is a line, the others still count
                    failed.append(f"{video} frame {vf.index}: {e}")
                    continue
                scored += 1
                if not res.faces:
                    continue
                found += 1
                extra += len(res.faces) > 1
                _score_video_face(max(res.faces, key=lambda f: f.score), r, cover, occ_when_uncovered, eye_s, eye_y)
        except InputError as e:  # missing, or undecodable from here on: the frames already scored still count
            failed.append(f"{video}, labelled frames from {at} on: {e}")
    n = len(rows)
    out = {"benchmark": "video-dev", "videos": len(by_video), "frames": n, "frames_failed": n - scored,
           "face_found_rate": found / scored if scored else None, "face_found_rate_ci95": wilson_interval(found, scored),
           "frames_with_more_than_one_face": extra}
    for p, (sc, y) in cover.items():
        out[f"{p}_covered_positives"] = int(sum(y))
        out[f"{p}_covered_scored"] = len(sc)
        out[f"{p}_covered_auroc"] = _auroc_or_none(sc, y)
        out[f"{p}_covered_auroc_ci95"] = auroc_interval(sc, y)  # None without both classes, or when perfect
        out.update(_rates_at(sc, y, 0.5, f"{p}_covered"))
    for p, values in occ_when_uncovered.items():
        out.update(_share_at(values, 0.5, f"{p}_occluded_when_uncovered"))
    out["eyes_open_auroc"] = _auroc_or_none(eye_s, eye_y)
    out["eyes_open_auroc_ci95"] = auroc_interval(eye_s, eye_y)
    out["eyes_closed_scored"] = int(len(eye_y) - sum(eye_y))
    out.update(_share_at([s for s, y in zip(eye_s, eye_y) if y], 0.5, "eyes_reported_open_when_open"))
    out["failed"] = failed
    return out


def _score_video_face(face, r: dict, cover: dict, occ_when_uncovered: dict, eye_s: list, eye_y: list) -> None:
    """Add one labelled frame's face to ``video_dev``'s tallies."""
    lab = r["covered"]
    if face.parts:
        for p in PART_NAMES:
            c, o = face.parts[p].covered, face.parts[p].occluded
            if c is not None and lab[p] >= 0:
                cover[p][0].append(c)
                cover[p][1].append(lab[p] == 1)
            if o is not None and lab[p] == 0:
                occ_when_uncovered[p].append(o)
        nm = [face.parts[p].covered for p in ("nose", "mouth")]
        positive = 1 in (lab["nose"], lab["mouth"])
        if None not in nm and (positive or lab["nose"] == lab["mouth"] == 0):
            cover["nose_or_mouth"][0].append(max(nm))
            cover["nose_or_mouth"][1].append(positive)
    if r["eyes"] in ("open", "closed") and face.eyes_open is not None:
        eye_s.append(face.eyes_open.p)
        eye_y.append(r["eyes"] == "open")


def _share_at(scores: list, threshold: float, name: str) -> dict:
    """The share of ``scores`` at or above ``threshold`` with its Wilson interval and count."""
    k = int(np.sum(np.asarray(scores, np.float64) >= threshold))
    return {f"{name}_rate": k / len(scores) if scores else None, f"{name}_rate_ci95": wilson_interval(k, len(scores)),
            f"{name}_scored": len(scores)}


def _auroc_or_none(scores, labels) -> float | None:
    """AUROC, or None (JSON null) when the scored set lacks a class - an AUROC is not defined then,
    and NaN is not valid JSON."""
    from .metrics import auroc

    return auroc(scores, labels) if 0 < sum(labels) < len(labels) else None


def network_on_crop(net, image: np.ndarray, mirror: bool = True):
    """A data-engine crop through an exported network the way the synthetic benchmark scores it:
    resized to the network's input, normalised, run; -> (outputs by name, landmark modes (68, 2)
    and 1-sigma (68,) in the crop's pixels from KDN decoding, the modes in heatmap pixels - where
    ``analyze.decode.landmark_visibility`` samples the mask). When the model's manifest entry asks
    for flip-averaged parts and ``mirror`` is on, ``outputs["mirrored"]`` holds the mirrored crop's."""
    import cv2

    from ..analyze.decode import kdn_decode

    S = int(net.entry["input"]["shape"][2])
    x = cv2.resize(image, (S, S), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = ((x / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    out = dict(zip(net.entry["outputs"], net(x)))
    if mirror and net.entry.get("part_flip_average"):  # as the runtime: the mirrored crop's outputs beside them
        out["mirrored"] = dict(zip(net.entry["outputs"], net(np.ascontiguousarray(x[..., ::-1]))))
    hm = out["heatmaps"][0]
    mode, _, sig = kdn_decode(hm, float(net.entry.get("kernel_sigma", 1.0)))
    k = image.shape[0] / hm.shape[-1]
    return out, (mode + 0.5) * k - 0.5, sig * k, mode


def one_sided_sources(shards: dict) -> set[str]:
    """Face sources in the shards whose covered labels are never 0 (only 1 or unknown)."""
    if "source" not in shards:
        return set()
    src, cov = shards["source"].astype(str), shards["parts"][:, :, 1]
    face = shards["face"].astype(bool) if "face" in shards else np.ones(len(src), bool)
    return {str(n) for n in np.unique(src[face]) if not (cov[face & (src == n)] == 0).any()}


def synthetic(data_dir: Path, predict=None, progress=iter, model: str = "cribnet.onnx", limit: int | None = None) -> dict:
    """The data engine's held-out set (its own faces, generator seeds and texture bank, plus the
    seed-003 rectangles): the network on each crop, decoded by the runtime code. Per-part covered
    and occluded F1 at 0.5, AUROC and ECE; landmark-visibility AUROC and ECE (with the model's
    visibility fusion when its manifest entry has one, as the runtime); seed 002 Table 4 (mean sigma
    of occluded vs visible landmarks, NME of each; sigma = det(Cov)^(1/4) px, and seed 002's own
    uncertainty |Cov|^(1/2) = sigma^2 px^2); occlusion-mask mIoU; pose MAE; with non-face
    crops in the set and a face output, the face-presence AUROC (the other figures are over the
    face crops only). Runs a shipped
    ONNX model (``model``); other systems' predictions cannot be scored on it."""
    import cv2

    from ..analyze.decode import landmark_visibility, part_probabilities, sigmoid
    from ..data.build import load_shards
    from ..data.sample import VISIBLE, EXTERNAL, SELF
    from ..geometry import euler_from_matrix, rot6d_to_matrix
    from ..runtime import load_model
    from .metrics import BinaryClassification, MaskIoU, PoseError, UncertaintyVsError, auroc, expected_calibration_error

    d = load_shards(require(Path(data_dir), "synthetic held-out shards"), limit)
    net = load_model(model)
    cls = BinaryClassification([f"covered_{p}" for p in PART_NAMES] + [f"occluded_{p}" for p in PART_NAMES],
                               f1_intervals=True)
    # sources whose part labels are one-sided (covered or unknown, never uncovered: SyRIP, built with
    # clean: false) reward a model that calls all their faces covered; F1 again without them
    one_sided = one_sided_sources(d)
    cls_two = BinaryClassification([f"covered_{p}" for p in PART_NAMES])
    unc = UncertaintyVsError("interocular")
    unc_det = UncertaintyVsError("interocular")  # seed 002's own measure, |Cov|^(1/2) = sigma^2 (px^2)
    miou, pose = MaskIoU(), PoseError()
    vs, vy, fs, fy = [], [], [], []
    n = len(d["image"])
    is_face = d["face"] if "face" in d else np.ones(n, np.int8)
    for i in progress(range(n)):
        img = d["image"][i]
        S0 = img.shape[0]
        out, pred, sig_px, hm_xy = network_on_crop(net, img)
        if "face" in out:
            fs.append(float(out["face"][0, 0]))
            fy.append(bool(is_face[i]))
        if not is_face[i]:  # a non-face crop has no other label
            continue
        read = part_probabilities(out, out.get("mirrored"))
        pc, po = read["cov"][0], read["occ"][0]
        parts = d["parts"][i]
        cls.update(np.concatenate([pc, po])[None], np.concatenate([parts[:, 1], parts[:, 0]])[None])
        if "source" not in d or str(d["source"][i]) not in one_sided:
            cls_two.update(pc[None], parts[:, 1][None])
        gt = d["landmarks"][i]
        v = d["visibility"][i]
        known = np.isin(v, (VISIBLE, EXTERNAL, SELF))
        if known.all():
            unc.update(pred[None], sig_px[None], gt[None], (v != VISIBLE)[None])
            unc_det.update(pred[None], (sig_px ** 2)[None], gt[None], (v != VISIBLE)[None])
        p = landmark_visibility(out["visibility"][0], out["mask"][0, 0], hm_xy, net.entry.get("visibility_fusion"))
        ok = v >= 0
        vs.append(p[ok])
        vy.append(v[ok] == VISIBLE)
        m = cv2.resize(sigmoid(out["mask"][0, 0]).astype(np.float32), (S0, S0)) > 0.5
        face = d["face_mask"][i] > 0
        miou.update(m & face, (d["mask"][i] > 0) & face)
        if np.isfinite(d["pose"][i]).all():
            pose.update(euler_from_matrix(rot6d_to_matrix(out["rot6d"][0])), d["pose"][i])
    c = cls.compute()
    c2 = cls_two.compute()
    u = unc.compute()
    ud = unc_det.compute()
    pe = pose.compute()
    return {
        "benchmark": "synthetic", "samples": n, "face_samples": int(np.sum(is_face)),
        "face_auroc": _auroc_or_none(fs, fy),
        "covered_f1": {p: c["per_class"][f"covered_{p}"]["f1"] for p in PART_NAMES},
        "covered_f1_ci95": {p: c["per_class"][f"covered_{p}"]["f1_ci95"] for p in PART_NAMES},  # bootstrap over faces
        "covered_auroc": {p: c["per_class"][f"covered_{p}"]["auroc"] for p in PART_NAMES},
        "occluded_f1": {p: c["per_class"][f"occluded_{p}"]["f1"] for p in PART_NAMES},
        "one_sided_sources": sorted(one_sided),
        "covered_f1_two_sided": {p: c2["per_class"][f"covered_{p}"]["f1"] for p in PART_NAMES},
        "part_ece": c["ece_all"], "part_reliability": c["reliability"],
        "visibility_auroc": auroc(np.concatenate(vs), np.concatenate(vy)),
        "visibility_ece": expected_calibration_error(np.concatenate(vs), np.concatenate(vy)),
        "visibility_fusion": net.entry.get("visibility_fusion") is not None,
        "sigma_visible_px": u["visible"]["uncertainty"], "sigma_occluded_px": u["occluded"]["uncertainty"],
        "sigma_ratio_occluded_to_visible": u.get("uncertainty_ratio"),
        "det_cov_sqrt_visible_px2": ud["visible"]["uncertainty"], "det_cov_sqrt_occluded_px2": ud["occluded"]["uncertainty"],
        "det_cov_sqrt_ratio_occluded_to_visible": ud.get("uncertainty_ratio"),
        "nme_visible": u["visible"]["nme"], "nme_occluded": u["occluded"]["nme"],
        "occlusion_precision_at_recall_0.4": u.get("precision_at_recall_0.4"),
        "mask_miou": miou.compute()["miou"], "pose_mae_mean": pe["mae_mean"], "failed": [],
    }
