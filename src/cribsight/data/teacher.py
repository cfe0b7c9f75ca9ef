"""Teacher labels: the pretrained pipeline run on clean real faces, cached.

The cache is a JSON Lines file; each line holds the image's sha256, the teacher version (the
sha256 of the weights manifest plus the analyser settings), and the teacher's landmarks, pose,
eyes-open probability, face score and mesh presence. A rebuild re-uses lines whose image hash and
version match. Faces that the teacher finds with low confidence are marked uncertain and dropped
by the builder; eyes-open becomes a label only when confident (p > 0.8 open, p < 0.2 closed).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..runtime import WEIGHTS_DIR
from .sample import FaceSample

TEACHER_SETTINGS = {"score_thresh": 0.4, "presence_thresh": 0.2, "min_score_for_label": 0.6}


def teacher_version() -> str:
    h = hashlib.sha256((WEIGHTS_DIR / "manifest.json").read_bytes())
    h.update(json.dumps(TEACHER_SETTINGS, sort_keys=True).encode())
    return h.hexdigest()[:16]


def image_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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

            self._analyzer = Analyzer(score_thresh=TEACHER_SETTINGS["score_thresh"],
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
        if face is None or face["score"] < TEACHER_SETTINGS["min_score_for_label"]:
            return None
        p = face["eyes_open_p"]
        eyes = -1 if p is None else (1 if p > 0.8 else 0 if p < 0.2 else -1)
        extra = dict(sample.extra, teacher={"version": self.version, "score": face["score"], "eyes_open_p": p})
        return sample.with_(landmarks=np.asarray(face["landmarks"], np.float32), pose=np.asarray(face["pose"], np.float32),
                            box=np.asarray(face["box"], np.float32), eyes_open=eyes, extra=extra)
