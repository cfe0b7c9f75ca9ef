"""Benchmarks of the pretrained pipeline (or of any predictions in the JSON Lines output contract).

Each benchmark takes a ``predict(path) -> FrameResult`` callable, so cribsight and other systems'
predictions (``predictions_from_jsonl``) are scored identically.

SyRIP scoring (the foundation issue's definition): among images whose nose and both eyes are
labelled visible (v = 2), the infant's face is *found* when a predicted box contains the annotated
nose and at least one annotated eye; every other predicted box is a *false box*. The 3-point error
of a found face (the highest-scoring box that hits) is the mean of the nose error and the two
eye-centre errors (eyes matched as an unordered pair), divided by d = sqrt(w * h) of the bounding
box of the five annotated face keypoints (nose, eyes, ears; those with v > 0). Predicted nose =
iBUG point 30, predicted eye centres = means of points 36-41 and 42-47.
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
from ..types import FrameResult

Predict = Callable[[Path], FrameResult]


class DataMissing(InputError):
    """A benchmark's data folder is absent or incomplete."""


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataMissing(what, f"data at {path}", "nothing there (see ../shared/data/README.md)")
    return path


def predictions_from_jsonl(path: str | Path) -> Predict:
    """A ``predict`` callable that looks up results by the file name of their ``source``."""
    table: dict[str, FrameResult] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = FrameResult.from_json(line)
                table[Path(r.source).name] = r

    def predict(p: Path) -> FrameResult:
        name = Path(p).name
        if name not in table:
            raise InputError(str(path), f"a prediction for {name}", "none")
        return table[name]

    return predict


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
        "false_boxes_per_image": false_boxes / n_eval,
        "nme3_mean": _mean(errors),
        "nme3_median": _median(errors),
        "recall_by_posture": {p: {"recall": v[0] / v[1], "images": v[1]} for p, v in sorted(by_posture.items())},
        "failed": failed,
    }


def _detection_rate(paths: list[Path], predict: Predict, progress) -> tuple[int, int, list[str]]:
    found, failed = 0, []
    for p in progress(paths):
        try:
            found += bool(predict(p).faces)
        except Exception as e:
            failed.append(f"{p.name}: {e}")
    return found, len(paths), failed


def utkface(data_dir: Path, predict: Predict, progress=iter, limit: int | None = None) -> dict:
    """Face detection rate on UTKFace crops by age group (0-3 vs 4+), from the file names
    ``age_gender_race_datetime.jpg.chip.jpg``. ``limit``: evaluate an evenly spaced subset."""
    root = require(Path(data_dir), "utkface")
    files = sorted(p for p in root.iterdir() if p.name.endswith(".jpg"))
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    groups: dict[str, list[Path]] = {"age_0_3": [], "age_4_plus": []}
    for p in files:
        m = re.match(r"(\d+)_", p.name)
        if not m:
            continue
        groups["age_0_3" if int(m.group(1)) <= 3 else "age_4_plus"].append(p)
    out = {"benchmark": "utkface", "groups": {}, "failed": []}
    for g, paths in groups.items():
        found, n, failed = _detection_rate(paths, predict, progress)
        out["groups"][g] = {"detection_rate": found / n if n else None, "images": n}
        out["failed"] += failed
    return out


def facemask(data_dir: Path, predict: Predict, progress=iter, limit: int | None = None) -> dict:
    root = require(Path(data_dir), "facemask")
    out = {"benchmark": "facemask", "groups": {}, "failed": []}
    for folder in ("with_mask", "without_mask"):
        files = sorted(require(root / folder, f"facemask/{folder}").iterdir())
        if limit:
            files = files[:: max(1, len(files) // limit)][:limit]
        found, n, failed = _detection_rate(files, predict, progress)
        out["groups"][folder] = {"detection_rate": found / n if n else None, "images": n}
        out["failed"] += failed
    return out


def aflw2000(data_dir: Path, predict: Predict, progress=iter) -> dict:
    """NME (68 points, normalised by the outer-eye-corner distance |p36 - p45|, and by the
    ground-truth box size sqrt(w h)) and pose MAE (degrees) against ``Pose_Para``."""
    import scipy.io as sio

    root = require(Path(data_dir), "aflw2000")
    mats = sorted(root.glob("*.mat"))
    if not mats:
        raise DataMissing("aflw2000", "*.mat annotation files", f"none in {root}")
    nme_io, nme_box, pose_err, missed, failed = [], [], [], [], []
    for mat in progress(mats):
        m = sio.loadmat(mat)
        gt = m["pt3d_68"][:2].T.astype(np.float64)
        pitch, yaw, roll = np.degrees(m["Pose_Para"][0, :3])
        img = next((mat.with_suffix(s) for s in (".jpg", ".png") if mat.with_suffix(s).exists()), None)
        try:
            res = predict(img)
        except Exception as e:
            failed.append(f"{mat.name}: {e}")
            continue
        faces = [f for f in res.faces if f.landmarks is not None]
        if not faces:
            missed.append(mat.stem)
            continue
        f = min(faces, key=lambda f: np.linalg.norm(np.asarray(f.landmarks.xy).mean(0) - gt.mean(0)))
        err = np.linalg.norm(np.asarray(f.landmarks.xy) - gt, axis=1).mean()
        nme_io.append(err / np.linalg.norm(gt[36] - gt[45]))
        nme_box.append(err / math.sqrt(np.ptp(gt[:, 0]) * np.ptp(gt[:, 1])))
        if f.pose is not None:
            pose_err.append([abs(f.pose.yaw - yaw), abs(f.pose.pitch - pitch), abs(f.pose.roll - roll)])
    pe = np.asarray(pose_err) if pose_err else np.zeros((0, 3))
    return {
        "benchmark": "aflw2000",
        "images": len(mats),
        "detected": len(nme_io),
        "missed": missed,
        "nme_interocular_mean": _mean(nme_io),
        "nme_interocular_median": _median(nme_io),
        "nme_box_mean": _mean(nme_box),
        "pose_mae_yaw": float(pe[:, 0].mean()) if len(pe) else None,
        "pose_mae_pitch": float(pe[:, 1].mean()) if len(pe) else None,
        "pose_mae_roll": float(pe[:, 2].mean()) if len(pe) else None,
        "pose_mae_mean": float(pe.mean()) if len(pe) else None,
        "failed": failed,
    }
