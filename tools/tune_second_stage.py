"""Tune the second stage (``candidate_score``, ``verify_face``, ``reject_face``) on the development data.

Runs every detector pass of the Analyzer at a low score once per image, records per detection its
pass, detector score, mesh presence and CribNet's P(face) and P(nose/mouth covered), then replays
``Analyzer.analyze_image``'s acceptance rule offline for a grid of settings and prints, per
setting: SyRIP recall and false boxes per image (the foundation issue's scoring), masked and
unmasked face-mask photos found, and UTKFace crops found (every 4th image).

    python tools/tune_second_stage.py [--cache out/second_stage.json]

The records are cached; delete the cache after changing the model. The passes are the default
Analyzer's (the opt-in tiles, mirror search and frame candidate are not replayed). The chosen setting is the
default in ``AnalyzerConfig``; its end-to-end figures come from ``cribsight eval``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from cribsight.datadir import data_root

ROOT = Path(__file__).resolve().parents[1]
SHARED = data_root()  # $CRIBSIGHT_DATA, else ../shared/data
FLOOR = 0.15


def records(analyzer, path: Path) -> list[list[dict]]:
    """Per detector pass, the detections at score >= FLOOR with what the acceptance rule needs."""
    from cribsight import schema
    from cribsight.io import read_image

    image = read_image(path)
    out = []
    for stage in analyzer.detection_stages(image, FLOOR):
        dets = []
        for d in stage():
            mesh = analyzer.run_mesh(image, d)
            lm68 = mesh.points_xy.astype(np.float64)[list(schema.MESH468_TO_IBUG68)]
            c = analyzer.cribnet(image, lm68)
            dets.append({"box": [float(v) for v in d.box_xyxy], "score": float(d.score), "presence": float(mesh.presence),
                         "face_p": c.face_p, "covered": max(c.covered["nose"][0], c.covered["mouth"][0]),
                         "detector": d.detector})
        out.append(dets)
    return out


def accepted(passes: list[list[dict]], cfg) -> list[dict]:
    """The faces ``Analyzer.analyze_image`` would return under ``cfg`` (an AnalyzerConfig; its
    acceptance rule: ``detection_floor``, ``first_stage``, ``second_stage_keeps``)."""
    second = cfg.verify_face > 0
    floor = cfg.detection_floor(second)
    for dets in passes:
        faces = []
        for d in dets:
            if d["score"] < floor:
                continue
            first = cfg.first_stage(d["score"], d["presence"])
            strict = cfg.strict_pass(d.get("detector", ""))  # the extra passes' stricter bar
            if cfg.second_stage_keeps(first, d["face_p"], strict) if second else first:
                faces.append(d)
        if faces:
            return faces
    return []


def inside(box, pt) -> bool:
    return box[0] <= pt[0] <= box[2] and box[1] <= pt[1] <= box[3]


def grid():
    """The settings the tool compares (AnalyzerConfig's candidate_score, verify_face, reject_face)."""
    from cribsight.pipeline import AnalyzerConfig

    for cand, verify, reject in itertools.product((0.4, 0.3, 0.2), (0.0, 0.5, 0.9, 0.97, 0.99), (0.0, 0.2, 0.5)):
        if verify == 0 and (cand != 0.4 or reject > 0):
            continue
        yield AnalyzerConfig(candidate_score=cand, verify_face=verify, reject_face=reject)


def scores(data: dict, cfg, fold: int | None = None) -> dict:
    """SyRIP recall and false boxes per image, and the share of images with a face accepted per
    photo set, under ``cfg``; with ``fold`` 0 or 1 only the images of that parity (by position)."""
    def part(rs):
        return rs if fold is None else rs[fold::2]

    hit = fb = 0
    syrip = part(data["syrip"])
    for r in syrip:
        k = r["kp"]
        faces = accepted(r["passes"], cfg)
        h = [f for f in faces if inside(f["box"], k[0]) and (inside(f["box"], k[1]) or inside(f["box"], k[2]))]
        hit += bool(h)
        fb += len(faces) - len(h)
    n = len(syrip) or float("nan")  # an empty set scores nan
    out = {"recall": hit / n, "false_boxes": fb / n}
    for g in ("with_mask", "without_mask", "utkface"):
        found = [bool(accepted(r["passes"], cfg)) for r in part(data[g])]
        out[g] = float(np.mean(found)) if found else float("nan")
    return out


def row(cfg, s: dict) -> str:
    return (f"{cfg.candidate_score:5.2f} {cfg.verify_face:6.2f} {cfg.reject_face:6.2f} | {s['recall']:7.3f} "
            f"{s['false_boxes']:6.3f} | {s['with_mask']:5.3f} {s['without_mask']:6.3f} | {s['utkface']:5.3f}")


# A selection rule written down: the most SyRIP faces plus masked faces found with fewer false boxes
# per image than v1's landed setting (0.047). The shipped default (0.4 / 0.9 / 0.5) was picked from
# the grid by judgment; this rule is a stand-in of the same kind (on all of v2's data it picks
# 0.4 / 0.97 / 0.2, a neighbour), so its two-fold gap estimates how optimistic such a pick is.
MAX_FALSE_BOXES = 0.047


def pick(data: dict, fold: int | None = None):
    """The grid setting the selection rule picks on ``fold`` (or on all the data)."""
    best = None
    for cfg in grid():
        s = scores(data, cfg, fold)
        if s["false_boxes"] < MAX_FALSE_BOXES and (best is None or s["recall"] + s["with_mask"] > best[1]):
            best = (cfg, s["recall"] + s["with_mask"])
    return best[0] if best else None


def two_fold(data: dict) -> int:
    """How optimistic figures on the data a setting was chosen on are. Every set is split into two
    halves (alternate images); on each half the rule's pick on that half (in-sample, as the
    shipped figures are) is printed beside the rule's pick on the other half (out-of-sample), and
    the two are averaged over the halves."""
    keys = ("recall", "false_boxes", "with_mask")
    picks = {fold: pick(data, fold) for fold in (None, 0, 1)}  # the grid replayed once per pick
    for fold, cfg in picks.items():
        if cfg is None:
            print(f"{'all the data' if fold is None else f'half {fold}'}: no setting has fewer than "
                  f"{MAX_FALSE_BOXES} false boxes per image")
            return 1
    print(f"{'':34} {'cand':>5} {'verify':>6} {'reject':>6} | {'syrip R':>7} {'FB/img':>6} | {'mask':>5} {'nomask':>6} | {'utk':>5}")
    print(f"{'picked on all, scored on all':34} {row(picks[None], scores(data, picks[None]))}")
    mean = {"in": dict.fromkeys(keys, 0.0), "out": dict.fromkeys(keys, 0.0)}
    for half in (0, 1):
        for kind, on in (("in", half), ("out", 1 - half)):
            s = scores(data, picks[on], half)
            print(f"{f'picked on half {on}, scored on half {half}':34} {row(picks[on], s)}")
            for k in keys:
                mean[kind][k] += s[k] / 2
    for kind, label in (("in", "mean in-sample"), ("out", "mean out-of-sample")):
        m = mean[kind]
        print(f"{label:34} recall {m['recall']:.3f}, false boxes / image {m['false_boxes']:.3f}, masked found {m['with_mask']:.3f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "second_stage.json")
    ap.add_argument("--two-fold", action="store_true",
                    help="pick a setting by the written-down rule on half the images, score it on the other half")
    args = ap.parse_args()
    from cribsight.pipeline import Analyzer

    if args.cache.exists():
        data = json.loads(args.cache.read_text())
    else:
        an = Analyzer()
        ann = json.loads((SHARED / "syrip" / "annotations.json").read_text())
        kps = {a["image_id"]: np.asarray(a["keypoints"], float).reshape(-1, 3)[:5] for a in ann["annotations"]}
        data = {"syrip": [], "with_mask": [], "without_mask": [], "utkface": []}
        for im in ann["images"]:
            k = kps.get(im["id"])
            if k is None or not (k[0, 2] == 2 and k[1, 2] == 2 and k[2, 2] == 2):
                continue
            data["syrip"].append({"kp": k[:3, :2].tolist(), "passes": records(an, SHARED / "syrip" / "images" / im["file_name"])})
        for folder in ("with_mask", "without_mask"):
            for f in sorted((SHARED / "facemask" / folder).iterdir()):
                data[folder].append({"passes": records(an, f)})
        for f in sorted((SHARED / "utkface").iterdir())[::4]:
            data["utkface"].append({"passes": records(an, f)})
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_text(json.dumps(data))
    if args.two_fold:
        return two_fold(data)
    print(f"{'cand':>5} {'verify':>6} {'reject':>6} | {'syrip R':>7} {'FB/img':>6} | {'mask':>5} {'nomask':>6} | {'utk':>5}")
    for cfg in grid():
        print(row(cfg, scores(data, cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
