"""Derive the MediaPipe-468 -> iBUG-68 index table from AFLW2000-3D ground truth, and measure it
honestly with leave-one-image-out cross-validation.

For each of the 68 iBUG points the table picks the mesh vertex whose position, over the images used
for fitting, is nearest on average to the ground-truth point (distances normalised by the image's
inter-ocular distance). The reported NME is leave-one-out: each image is scored with a table fitted
on the other images only.

    python tools/derive_mesh_to_ibug68.py ../shared/data/aflw2000_sample
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io as sio

from cribsight.datadir import data_root
from cribsight.io.images import read_image
from cribsight.pipeline import Analyzer


def main(folder: str) -> None:
    an = Analyzer()
    meshes, gts = [], []
    for mat in sorted(Path(folder).glob("*.mat")):
        img = read_image(mat.with_suffix(".jpg"))
        gt = sio.loadmat(mat)["pt3d_68"][:2].T.astype(np.float64)
        faces = an.mesh_faces(img)
        if not faces:
            print("no face:", mat.name)
            continue
        # the face whose mesh is nearest the ground truth (AFLW images hold one annotated face)
        best = min(faces, key=lambda m: np.linalg.norm(m.points_xy.mean(0) - gt.mean(0)))
        meshes.append(best.points_xy.astype(np.float64))
        gts.append(gt)
    meshes, gts = np.array(meshes), np.array(gts)
    iod = np.linalg.norm(gts[:, 36] - gts[:, 45], axis=1)
    # cost[n, k, v] = |mesh_v - gt_k| / iod_n
    cost = np.linalg.norm(meshes[:, None, :, :] - gts[:, :, None, :], axis=-1) / iod[:, None, None]
    table = cost.mean(0).argmin(1)
    loo = []
    for n in range(len(gts)):
        t = np.delete(cost, n, axis=0).mean(0).argmin(1)
        loo.append(cost[n, np.arange(68), t].mean())
    fit = cost[:, np.arange(68), table].mean(1)
    print(f"images: {len(gts)}")
    print(f"NME (inter-ocular, outer corners) fitted on all: mean {fit.mean():.4f}")
    print(f"NME leave-one-out: mean {np.mean(loo):.4f}, median {np.median(loo):.4f}")
    print("MESH468_TO_IBUG68 = (" + ", ".join(str(int(v)) for v in table) + ")")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(data_root() / "aflw2000_sample"))
