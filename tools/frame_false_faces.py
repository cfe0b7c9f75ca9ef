"""False faces on face-less frames: how often the Analyzer reports a face on a SyRIP scene with the
infant's head cut away - the parts of the scene left of, right of, above and below the head region
(the labelled face keypoints' box grown by 0.6 of its size), each kept when it is at least 40% of
the scene's width and height and 200 px. Any face reported there is false. Counted separately for
the opt-in frame candidate (on unless ``--no-frame``) and for the detector passes (tiles and mirror search included when asked for).

    python tools/frame_false_faces.py [--model runs/cribnet_ft/cribnet.onnx] [--verify-face 0.9] [--split holdout]
                                      [--tiles 3] [--no-frame] [--mirror-search on|off]
                                      [--detector-weights D.onnx] [--extra-detector auto|off|D.onnx] [--extra-strict on|off]

``--split``: scenes of the data engine's held-out 10% of SyRIP (never used for training negatives)
or of its training split. ``--model``: a CribNet ONNX with its manifest JSON beside it (default:
the shipped weights).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from cribsight.data.build import in_holdout
from cribsight.data.negatives import head_box
from cribsight.data.sample import FaceSample
from cribsight.datadir import data_root
from cribsight.io.images import read_image
from cribsight.pipeline import FRAME, Analyzer

SYRIP = data_root() / "syrip"  # $CRIBSIGHT_DATA, else ../shared/data


def subframes(image: np.ndarray, face5: np.ndarray, margin: float = 0.6):
    h, w = image.shape[:2]
    head = head_box(FaceSample(image_array=image, extra={"coco_face5": face5}), margin)  # the data engine's head region
    if head is None:
        return
    x1, y1, x2, y2 = (int(v) for v in np.clip(head, 0, [w, h, w, h]))
    for s in (image[:, :x1], image[:, x2:], image[:y1], image[y2:]):
        if s.shape[0] >= 0.4 * h and s.shape[1] >= 0.4 * w and min(s.shape[:2]) >= 200:
            yield np.ascontiguousarray(s)


def split_subframes(split: str):
    """The face-less sub-frames of the SyRIP scenes of one split ("holdout" or "train")."""
    ann = json.loads((SYRIP / "annotations.json").read_text())
    kps = {x["image_id"]: np.asarray(x["keypoints"], float).reshape(-1, 3)[:5] for x in ann["annotations"]}
    for im in ann["images"]:
        path = SYRIP / "images" / im["file_name"]
        if im["id"] in kps and in_holdout(path, 0.1) == (split == "holdout"):
            yield from subframes(read_image(path), kps[im["id"]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--verify-face", type=float, default=None)
    ap.add_argument("--split", choices=("holdout", "train"), default="holdout")
    ap.add_argument("--tiles", type=int, default=None, help="the Analyzer's tiles (default: its default)")
    ap.add_argument("--no-frame", action="store_true", help="without the frame candidate")
    ap.add_argument("--mirror-search", choices=("on", "off"), default=None, help="the Analyzer's mirror search (default: its default)")
    ap.add_argument("--detector-weights", default=None, help="the Analyzer's full-range detector (default: the shipped one)")
    ap.add_argument("--extra-detector", default="auto", help="the Analyzer's extra detector pass: auto (its default), off, or a file")
    ap.add_argument("--extra-strict", choices=("on", "off"), default="on", help="its detections kept only at P(face) >= tile_verify")
    a = ap.parse_args()
    opts = {"frame_candidate": not a.no_frame, "detector_weights": a.detector_weights,
            "extra_detector": None if a.extra_detector == "off" else a.extra_detector, "extra_strict": a.extra_strict == "on"}
    if a.mirror_search is not None:
        opts["mirror_search"] = a.mirror_search == "on"
    if a.tiles is not None:
        opts["tiles"] = a.tiles
    if a.verify_face is not None:
        opts["verify_face"] = a.verify_face
    an = Analyzer(**opts)
    if a.model:
        from cribsight.analyze.cribnet import CribNet

        an.cribnet = CribNet(a.model)
    n = frame = det = 0
    for s in split_subframes(a.split):
        n += 1
        for f in an.analyze_image(s).faces:
            frame += f.detector.startswith(FRAME)
            det += not f.detector.startswith(FRAME)
    print(f"model {a.model or 'shipped'}, detector {a.detector_weights or 'shipped'}, extra detector {a.extra_detector} (strict {a.extra_strict}), verify_face {an.config.verify_face}, tiles {an.config.tiles}, "
          f"mirror search {an.config.mirror_search}, {a.split} split: "
          f"{n} face-less sub-frames; false faces from the frame candidate {frame}, from the detector passes {det}")


if __name__ == "__main__":
    main()
