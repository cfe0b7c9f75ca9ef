"""Which landmarks to report: CribNet's KDN modes, the face mesh's points, or the fusion (CribNet's,
the mesh's where CribNet says hidden)? Prints NME (outer-eye-corner normaliser, as the benchmarks)
for each source on the same faces:

    python tools/compare_landmark_sources.py [--holdout out/shards/holdout] [--limit N]

1. AFLW2000-SO (seed 003's rectangles on the AFLW2000 sample, real ground truth): the default
   Analyzer with ``landmarks_from`` set to each source - same detections, same crops - per variant,
   mean and median NME.
2. The synthetic held-out shards (teacher or AFLW ground truth under synthetic occluders), face
   crops whose 68 points are all labelled: CribNet on the crop as the synthetic benchmark runs it
   (``benchmarks.network_on_crop``);
   the mesh on the crop's centre square (ROI 1.5x the landmark box, as after a detector) with its
   refinement pass; NME over visible and over hidden points, for all crops and for those where the
   mesh is confident (presence > 0.5).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cribsight import schema
from cribsight.analyze.cribnet import MARGIN
from cribsight.analyze.decode import landmark_visibility
from cribsight.analyze.mesh import FaceMesh, roi_from_mesh
from cribsight.data.build import load_shards
from cribsight.data.sample import EXTERNAL, SELF, VISIBLE
from cribsight.datadir import data_root
from cribsight.eval import benchmarks as B
from cribsight.eval.metrics import landmark_normaliser
from cribsight.pipeline import Analyzer, fuse_landmarks
from cribsight.runtime import load_model

SHARED = data_root()  # $CRIBSIGHT_DATA, else ../shared/data
SOURCES = ("cribnet", "mesh", "fused")


def aflw_so() -> None:
    print("AFLW2000-SO: NME mean / median per variant")
    for src in SOURCES:
        r = B.aflw2000_so(SHARED / "aflw2000_sample", B.analyzer_predictor(Analyzer(landmarks_from=src)))
        cells = [f"{k} {v['nme_interocular_mean']:.3f} / {v['nme_interocular_median']:.3f}" for k, v in r["variants"].items()]
        print(f"  {src:8s} " + ", ".join(cells))


def holdout(path: Path, limit: int | None) -> None:
    d = load_shards(path, limit)
    net = load_model("cribnet.onnx")
    mesh = FaceMesh("face_landmark.onnx")
    idx = list(schema.MESH468_TO_IBUG68)
    err = {s: [] for s in SOURCES}
    hidden, confident = [], []
    for i in range(len(d["image"])):
        v = d["visibility"][i]
        if ("face" in d and not d["face"][i]) or not np.isin(v, (VISIBLE, EXTERNAL, SELF)).all():
            continue
        img, gt = d["image"][i], d["landmarks"][i]
        S0 = img.shape[0]
        out, p_net, _, hm_xy = B.network_on_crop(net, img)
        m = mesh(img, ((S0 - 1) / 2, (S0 - 1) / 2), S0 / MARGIN * 1.5, 0.0)
        m2 = mesh(img, *roi_from_mesh(m.points_xy))
        m = m2 if m2.presence >= 0.5 * m.presence else m
        p_mesh = m.points_xy[idx]
        # P(visible) as the runtime computes it (fusion included)
        vis = landmark_visibility(out["visibility"][0], out["mask"][0, 0], hm_xy, net.entry.get("visibility_fusion"))
        norm = float(landmark_normaliser(gt[None], "interocular")[0])
        for s, p in (("cribnet", p_net), ("mesh", p_mesh), ("fused", fuse_landmarks(p_net, p_mesh, vis))):
            err[s].append(np.linalg.norm(p - gt, axis=1) / norm)
        hidden.append(v != VISIBLE)
        confident.append(m.presence > 0.5)
    h, c = np.array(hidden), np.array(confident)
    print(f"synthetic holdout {path}: {len(h)} crops with all 68 points labelled ({c.sum()} with mesh presence > 0.5)")
    print("  NME visible / hidden points: all crops | mesh-confident crops")
    for s in SOURCES:
        e = np.array(err[s])
        print(f"  {s:8s} {e[~h].mean():.3f} / {e[h].mean():.3f} | {e[c][~h[c]].mean():.3f} / {e[c][h[c]].mean():.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holdout", type=Path, default=Path("out/shards/holdout"))
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args()
    aflw_so()
    holdout(a.holdout, a.limit)


if __name__ == "__main__":
    main()
