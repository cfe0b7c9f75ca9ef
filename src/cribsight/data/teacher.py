"""Teacher labels: the pretrained pipeline run on clean real faces, cached.

The teacher is the pretrained path (``model="pretrained"``), never CribNet. The cache is a JSON
Lines file; each line holds the image's sha256, the teacher version (a hash of the teacher's own
weight files and settings: a new CribNet does not invalidate it), and the teacher's landmarks,
pose, eyes-open probability and face score. A rebuild re-uses lines whose image hash and
version match. Faces that the teacher finds with low confidence are marked uncertain and dropped
by the builder (``MIN_SCORE_FOR_LABEL``; in annotated scenes the face must hold the annotated nose);
eyes-open becomes a label only when confident (p > 0.8 open, p < 0.2 closed).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..runtime import WEIGHTS_DIR
from .sample import FaceSample

# The teacher is the pretrained path (detector, face mesh, PnP pose, eye aspect ratio) and never
# CribNet: the network is trained on these labels, so it must not label its own training data.
TEACHER_SETTINGS = {"model": "pretrained", "score_thresh": 0.4, "presence_thresh": 0.2}
# Which cached records become labels (not part of the cache version). The detector score is a poor
# guide to landmark quality on tight crops (UTKFace crops found by the padded short-range model
# score 0.4-0.55 with landmarks as good as the rest, looked at by eye), so every face the pipeline
# keeps is a label; in annotated scenes (COCO keypoints) the face must also hold the annotated nose.
MIN_SCORE_FOR_LABEL = 0.4


TEACHER_FILES = ("face_detection_full_range.onnx", "face_detection_short_range.onnx", "face_landmark.onnx",
                 "canonical_face_468.npy")


def teacher_version() -> str:
    """Hash of the teacher's own weight files (their manifest sha256) and settings: a new CribNet
    does not invalidate the cache, a new detector or mesh does."""
    files = json.loads((WEIGHTS_DIR / "manifest.json").read_text())["files"]
    h = hashlib.sha256(json.dumps({f: files[f]["sha256"] for f in TEACHER_FILES}, sort_keys=True).encode())
    h.update(json.dumps(TEACHER_SETTINGS, sort_keys=True).encode())
    return h.hexdigest()[:16]


def image_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def holds_annotated_nose(box, sample: FaceSample) -> bool:
    """False when the sample's COCO face keypoints label a nose outside ``box`` (the teacher found
    some other face or a false box); True when there is no such annotation."""
    f5 = sample.extra.get("coco_face5")
    if f5 is None or f5[0][2] <= 0:
        return True
    x, y = float(f5[0][0]), float(f5[0][1])
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


class Teacher:
    def __init__(self, cache_path: Path | None = None, analyzer=None):
        self.cache_path = Path(cache_path) if cache_path else None
        self.version = teacher_version()
        self.cache: dict[str, dict] = {}
        self.hits = self.misses = 0
        if self.cache_path and self.cache_path.exists():
            for line in self.cache_path.read_text().splitlines():
                if line.strip():
                    d = json.loads(line)
                    if d.get("version") == self.version:
                        self.cache[d["sha256"]] = d
        self._analyzer = analyzer

    @property
    def analyzer(self):
        if self._analyzer is None:
            from ..pipeline import Analyzer

            self._analyzer = Analyzer(model=TEACHER_SETTINGS["model"], score_thresh=TEACHER_SETTINGS["score_thresh"],
                                      presence_thresh=TEACHER_SETTINGS["presence_thresh"])
        return self._analyzer

    def label(self, sample: FaceSample) -> dict | None:
        """The teacher's record for the sample's image (the most confident face), or None."""
        key = image_hash(sample.path) if sample.path is not None else hashlib.sha256(sample.image.tobytes()).hexdigest()
        if key in self.cache:
            self.hits += 1
            rec = self.cache[key]
        else:
            self.misses += 1
            res = self.analyzer.analyze_image(sample.image)
            rec = {"sha256": key, "version": self.version, "file": str(sample.path or ""), "face": None}
            if res.faces:
                f = max(res.faces, key=lambda f: f.score)
                rec["face"] = {
                    "score": f.score, "box": list(f.box), "landmarks": [list(p) for p in f.landmarks.xy],
                    "pose": [f.pose.yaw, f.pose.pitch, f.pose.roll],
                    "eyes_open_p": None if f.eyes_open is None else f.eyes_open.p,
                }
            self.cache[key] = rec
            if self.cache_path:
                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.cache_path, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
        return rec["face"]

    def apply(self, sample: FaceSample) -> FaceSample | None:
        """The sample with teacher landmarks, pose and eyes-open, or None when the teacher is unsure."""
        face = self.label(sample)
        if face is None or face["score"] < MIN_SCORE_FOR_LABEL or not holds_annotated_nose(face["box"], sample):
            return None
        p = face["eyes_open_p"]
        eyes = -1 if p is None else (1 if p > 0.8 else 0 if p < 0.2 else -1)
        extra = dict(sample.extra, teacher={"version": self.version, "score": face["score"], "eyes_open_p": p})
        return sample.with_(landmarks=np.asarray(face["landmarks"], np.float32), pose=np.asarray(face["pose"], np.float32),
                            box=np.asarray(face["box"], np.float32), eyes_open=eyes, extra=extra)
