"""Analyzer: image -> FrameResult; frames -> iterator of FrameResult.

All ONNX Runtime (see weights/manifest.json):
1. Detector passes, tried in turn until one yields an accepted face: full-range BlazeFace on the
   letterboxed frame (faces from ~1/20 of the frame upwards); the same on the frame rotated by each
   of ``rotations`` (overhead crib views; faces within about +-60 degrees of upright are found
   upright); short-range BlazeFace on the frame padded to a 1.5x square and as it is (tight face
   crops, where the full-range model sees no face). Detections are mapped back to the frame.
2. Per detection: the face mesh on a rotated 1.5x crop; a second pass re-crops from the first
   mesh (MediaPipe's tracking ROI). First stage: a face is accepted when its detector score is at
   least ``score_thresh`` and its mesh presence at least ``presence_thresh``.
3. Pretrained path: iBUG-68 from the mesh (schema.MESH468_TO_IBUG68), head pose by PnP of the 468
   points against the canonical face, eyes open from the eye aspect ratio.
4. With CribNet (the default): the network on a crop around the mesh's 68 points gives landmarks
   with sigma and visibility, parts, eyes and the occluder mask; its face output is the second
   stage that keeps doubtful detections (down to ``candidate_score``, or rejected by the mesh) it
   is sure are faces, e.g. masked faces (see ``Analyzer._face``). With the second stage, by default
   (``extra_detector``): when no whole-frame pass yields a face, the fine-tuned full-range detector
   on the frame, its detections kept at P(face) >= ``tile_verify``. Opt-in (``frame_candidate``, for
   close-up cameras): when no pass yields a face, the frame's centre square is a last candidate;
   (``tiles``, for small faces) a grid of half-size sub-frames before it. ``mirror_search`` (with
   the second stage): the whole-frame passes again on the mirrored frame, before those.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from . import schema
from .analyze.eyes import eyes_open_from_landmarks
from .analyze.mesh import FaceMesh, MeshResult, roi_from_keypoints, roi_from_mesh
from .detect.blazeface import BlazeFace, Detection
from .errors import InputError
from .geometry import box_iou, euler_from_matrix, solve_head_pose
from .io.images import to_rgb_uint8
from .io.video import VideoFrame
from .runtime import WEIGHTS_DIR, default_threads
from .types import PART_NAMES, Face, FrameResult, Landmarks, Occlusion, PartState, Pose, Probability


@dataclass
class AnalyzerConfig:
    """Settings of the pretrained path. ``rotations``: in-plane rotations (degrees, from
    {90, 180, 270}) tried in turn when no face is found upright; () switches the search off."""

    score_thresh: float = 0.4
    presence_thresh: float = 0.2
    crop_fallback: bool = True
    rotations: tuple[int, ...] = (90, 270, 180)
    refine: bool = True
    threads: int | None = None
    model: str = "auto"  # "cribnet", "pretrained", or "auto" (cribnet when its weights ship)
    # which shipped CribNet weights (a cribnet file of weights/manifest.json): None = the default
    # model, "cribnet.onnx"; or the opt-in alternative "cribnet_v216.onnx" (MODEL_CARD_cribnet.md: far
    # fewer false 'occluded' on infants, but 1 of our 87 turned-away heads comes out all clear)
    cribnet_weights: str | None = None
    # the full-range detector: None = the shipped MediaPipe model; or a manifest name / an .onnx path
    # with its manifest entry beside it, e.g. tools/finetune_detector.py's fine-tuned detector
    detector_weights: str | None = None
    # extra pass (second stage): when no whole-frame pass yields a face, a second full-range detector
    # on the frame upright, before the mirror search, tiles and the frame candidate. "auto" (the
    # default): the shipped fine-tuned detector (face_detection_full_range_ft.onnx, docs/pretrained.md:
    # masked close-ups that run off the frame, small faces) whenever CribNet's second stage is on,
    # else none; None: off; or a manifest name / an .onnx path with its entry beside it. Its
    # detections are kept only at P(face) >= ``tile_verify`` (``extra_strict``), or else like any other.
    extra_detector: str | None = "auto"
    extra_strict: bool = True
    # with cribnet: "cribnet" (KDN modes, sigma, visibility), "mesh" (the mesh's points, no sigma or
    # visibility) or "fused" (CribNet's, but the mesh's point where CribNet says hidden; CribNet's
    # sigma and visibility). Measured in MODEL_CARD_cribnet.md: no clear winner, cribnet kept.
    landmarks_from: str = "cribnet"
    pose_from: str = "pnp"  # with cribnet: "pnp" (mesh + canonical face; measured better) or "cribnet" (6D head)
    # second stage (with cribnet, seed 001's idea): detections down to ``candidate_score``, and those
    # whose mesh presence is below ``presence_thresh``, are kept when CribNet's face output says
    # P(face) >= ``verify_face`` (0 switches the second stage off); detections that pass the first
    # stage are dropped when P(face) < ``reject_face``. See docs/pretrained.md for how they were set.
    candidate_score: float = 0.4
    verify_face: float = 0.9
    reject_face: float = 0.5
    # second stage, last resort (opt-in, for close-up cameras): when no detector pass yields a face,
    # the frame's centre square is itself a candidate (mesh on it, CribNet decides with
    # ``verify_face``) - tight close-ups whose face runs off the frame edges, which BlazeFace does
    # not box. Off by default: in crib scenes CribNet takes a few whole-scene squares for faces
    # (measured in docs/pretrained.md).
    frame_candidate: bool = False
    # second stage: when no pass yields a face, the same passes on the mirrored frame (BlazeFace is
    # not mirror-symmetric: a face scored just under the threshold often scores above it mirrored),
    # detections mapped back to the frame; the mesh and CribNet then run on the frame itself, and a
    # mirrored detection is kept only at P(face) >= ``tile_verify``, first stage or not
    mirror_search: bool = False
    # opt-in, for small faces in wide frames: after the other passes, both detectors on a ``tiles`` x
    # ``tiles`` grid of overlapping sub-frames, each half the frame's width and height (0 = off); a
    # tile's detection is kept only at P(face) >= ``tile_verify`` (with CribNet), first stage or not
    tiles: int = 0
    tile_verify: float = 0.99  # also the mirror search's bar

    # The acceptance rule, in one place for ``Analyzer`` and tools/tune_second_stage.py.
    def detection_floor(self, second_stage: bool) -> float:
        """Lowest detector score looked at: down to ``candidate_score`` with the second stage on."""
        return min(self.score_thresh, self.candidate_score) if second_stage else self.score_thresh

    def first_stage(self, score: float, presence: float) -> bool:
        """Accepted by the detector score and the face mesh's presence."""
        return score >= self.score_thresh and presence >= self.presence_thresh

    def second_stage_keeps(self, first: bool, face_p: float, strict: bool = False) -> bool:
        """With the second stage on: a first-stage face is kept unless P(face) < ``reject_face``; a
        doubtful detection only when P(face) >= ``verify_face``; a detection of an extra pass (a tile,
        the mirrored frame, the extra detector with ``extra_strict``: ``strict``) only when P(face) >= ``tile_verify``, first stage or not."""
        return face_p >= (self.tile_verify if strict else self.reject_face if first else self.verify_face)

    def strict_pass(self, detector: str) -> bool:
        """Whether a detection (by its detector name) came from an extra pass held to ``tile_verify``:
        a tile, the mirrored frame, or the extra detector with ``extra_strict``."""
        return detector.endswith((TILE, MIRROR)) or (self.extra_strict and detector.endswith(EXTRA))


@dataclass
class StageTimes:
    """Milliseconds per stage for the last analysed frame."""

    detect: float = 0.0
    landmarks: float = 0.0
    pose: float = 0.0
    network: float = 0.0  # CribNet crop + inference + decoding, all faces
    extra: dict = field(default_factory=dict)


def _rotate(img: np.ndarray, deg: int) -> np.ndarray:
    k = {90: 1, 180: 2, 270: 3}[deg]  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(img, k))


def _unrotate_points(pts: np.ndarray, deg: int, w: int, h: int) -> np.ndarray:
    """Map points from the image rotated counter-clockwise by ``deg`` back to the original (w x h)."""
    x, y = pts[..., 0], pts[..., 1]
    if deg == 90:  # rotated image is h wide, w high; rot90 ccw: (x, y) -> (y, w - 1 - x)
        return np.stack([w - 1 - y, x], -1)
    if deg == 180:
        return np.stack([w - 1 - x, h - 1 - y], -1)
    if deg == 270:
        return np.stack([y, h - 1 - x], -1)
    return pts


FRAME = "frame"  # detector name of the frame candidate
TILE = "_tile"  # suffix of the detector name of a tile's detection
MIRROR = "_mirror"  # suffix of the detector name of a detection found on the mirrored frame
EXTRA = "_extra"  # suffix of the detector name of the extra detector's detections
EXTRA_DETECTOR = "face_detection_full_range_ft.onnx"  # the extra pass's detector by default
# BlazeFace keypoints: the subject's right eye, left eye, nose, mouth, right ear, left ear. On the
# mirrored frame the subject's sides swap, so mapping a detection back swaps them again.
_KEYPOINT_FLIP = [1, 0, 2, 3, 5, 4]


def unmirror(dets: list[Detection], w: int) -> list[Detection]:
    """Detections on the frame mirrored left-right (``image[:, ::-1]``, ``w`` wide) mapped back to the
    frame: x -> w - 1 - x (pixel centres at integers), the box's sides and the keypoints' sides
    swapped back, ``MIRROR`` appended to the detector name. Box edges are mapped as points too, as
    the rotation search's are (``_unrotate_points``): within 1 px of the edge convention x -> w - x."""
    out = []
    for d in dets:
        b = d.box_xyxy
        box = np.array([w - 1 - b[2], b[1], w - 1 - b[0], b[3]], np.float32)
        kp = d.keypoints_xy[_KEYPOINT_FLIP].astype(np.float32)
        kp[:, 0] = w - 1 - kp[:, 0]
        out.append(Detection(box, kp, d.score, f"{d.detector}{MIRROR}"))
    return out


def frame_detection(image: np.ndarray) -> Detection:
    """The frame's centre square as a face candidate of score 0 (the mesh ROI is 1.5x it, as for a
    detector box): eye keypoints where a face filling the square has them, level."""
    h, w = image.shape[:2]
    side = float(min(h, w))
    cx, cy = w / 2, h / 2
    box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)
    kp = np.array([[cx - 0.2 * side, cy - 0.1 * side], [cx + 0.2 * side, cy - 0.1 * side], [cx, cy + 0.05 * side],
                   [cx, cy + 0.25 * side], [cx - 0.45 * side, cy], [cx + 0.45 * side, cy]], np.float32)
    return Detection(box, kp, 0.0, FRAME)


def fuse_landmarks(cribnet_xy: np.ndarray, mesh_xy: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``landmarks_from="fused"``: CribNet's points, the mesh's where CribNet's visibility < 0.5."""
    return np.where((np.asarray(visible) < 0.5)[:, None], mesh_xy, cribnet_xy)


def box_from_landmarks(lm68: np.ndarray, w: int, h: int) -> np.ndarray:
    """A detector-like square face box from 68 points: centred on their box, side its larger
    extent, clipped to the frame."""
    lo, hi = lm68.min(0), lm68.max(0)
    c, half = (lo + hi) / 2, float(max(hi - lo)) / 2
    return np.clip(np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half]), 0, [w, h, w, h])


def landmark_box(face: Face) -> tuple[float, float, float, float]:
    """The box of a face's 68 landmarks (x1, y1, x2, y2)."""
    xy = np.asarray(face.landmarks.xy, np.float64)
    return (*xy.min(0), *xy.max(0))


def box_agreement(face: Face) -> float:
    """IoU of a face's box with the box of its own 68 landmarks: how well the detector's box sits
    on the face that the per-face analysis found in it (a box on the ear or the forehead agrees less)."""
    b, lb = np.array([face.box], np.float64), np.array([landmark_box(face)], np.float64)
    return float(box_iou(b, lb)[0, 0])


def suppress_overlaps(items: list, iou: float = 0.3, inside: float = 0.5, box=lambda d: d.box_xyxy,
                      better=lambda d: d.score) -> list:
    """Best first (by ``better``: the score), a detection (or a Face, with ``box=landmark_box``) is
    dropped when it overlaps a kept one at IoU > ``iou`` or when more than ``inside`` of the smaller
    box lies in the other (the short-range detector's box around the full-range one's, IoU only
    ~0.15). The kept ones stay in their given order."""
    def duplicate(b, c) -> bool:
        inter = max(0.0, min(b[2], c[2]) - max(b[0], c[0])) * max(0.0, min(b[3], c[3]) - max(b[1], c[1]))
        area_b, area_c = (b[2] - b[0]) * (b[3] - b[1]), (c[2] - c[0]) * (c[3] - c[1])
        return inter > iou * max(area_b + area_c - inter, 1e-9) or inter > inside * max(min(area_b, area_c), 1e-9)

    kept: list = []
    for d in sorted(items, key=lambda d: -better(d)):
        if not any(duplicate(box(d), box(k)) for k in kept):
            kept.append(d)
    return [d for d in items if any(d is k for k in kept)]


class Analyzer:
    """The cribsight face analyser. Safe to share between threads: its ONNX Runtime sessions are,
    its settings are a private copy of ``config`` (changing that object later changes nothing), and
    ``times`` (the last call's stage timings) is kept per thread."""

    def __init__(self, config: AnalyzerConfig | None = None, **overrides):
        if config is not None and not isinstance(config, AnalyzerConfig):
            raise InputError("Analyzer config", "an AnalyzerConfig (or keyword options, e.g. Analyzer(model='pretrained'))",
                             f"{type(config).__name__} {config!r}"[:200])
        cfg = dataclasses.replace(config) if config is not None else AnalyzerConfig()  # the caller's object stays as it was
        self._local = threading.local()
        for k, v in overrides.items():
            if not hasattr(cfg, k):
                raise InputError("Analyzer option", f"one of {sorted(AnalyzerConfig.__dataclass_fields__)}", repr(k))
            setattr(cfg, k, v)
        if not isinstance(cfg.rotations, (tuple, list)):
            raise InputError("rotations", "a tuple of degrees from {90, 180, 270} (() for none)", repr(cfg.rotations))
        cfg.rotations = tuple(cfg.rotations)
        bad = set(cfg.rotations) - {90, 180, 270}
        if bad:
            raise InputError("rotations", "degrees from {90, 180, 270}", str(sorted(bad)))
        t = cfg.tiles
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not (t == 0 or 3 <= t <= 8):
            raise InputError("tiles", "0 (off) or a grid size from 3 to 8 (neighbouring tiles overlap)", repr(t))
        for name in ("frame_candidate", "mirror_search", "crop_fallback", "refine", "extra_strict"):
            if not isinstance(getattr(cfg, name), bool):
                raise InputError(name, "True or False", repr(getattr(cfg, name)))
        for name in ("score_thresh", "presence_thresh", "candidate_score", "verify_face", "reject_face", "tile_verify"):
            v = getattr(cfg, name)  # scores and probabilities: a number from 0 to 1 (NaN would accept nothing, silently)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0 <= v <= 1:
                raise InputError(name, "a number from 0 to 1", repr(v))
        for name in ("detector_weights", "extra_detector"):
            dw = getattr(cfg, name)
            if dw is not None and not isinstance(dw, (str, os.PathLike)):
                raise InputError(name, "None (the default), a weight file name or an .onnx path", repr(dw))
        th = cfg.threads
        if th is not None and (isinstance(th, bool) or not isinstance(th, (int, np.integer)) or th < 1):
            raise InputError("threads", "None (the default) or a whole number of threads >= 1", repr(th))
        self.config = cfg
        threads = cfg.threads or default_threads()
        self.full = BlazeFace(str(cfg.detector_weights or "face_detection_full_range.onnx"), threads, cfg.score_thresh)
        self.short = BlazeFace("face_detection_short_range.onnx", threads, cfg.score_thresh)
        self.mesh = FaceMesh("face_landmark.onnx", threads)
        canon = np.load(WEIGHTS_DIR / "canonical_face_468.npy").astype(np.float64)
        # canonical frame (x subject's left, y up, z out of the face) -> head frame (x, y down, z into head)
        self.model_3d = canon * np.array([1.0, -1.0, -1.0])
        self.times = StageTimes()
        from .runtime import manifest

        if cfg.model not in ("auto", "cribnet", "pretrained"):
            raise InputError("model", "auto, cribnet or pretrained", repr(cfg.model))
        if cfg.landmarks_from not in ("cribnet", "mesh", "fused"):
            raise InputError("landmarks_from", "cribnet, mesh or fused", repr(cfg.landmarks_from))
        if cfg.pose_from not in ("pnp", "cribnet"):
            raise InputError("pose_from", "pnp or cribnet", repr(cfg.pose_from))
        files = manifest()["files"]
        shipped = sorted(k for k, e in files.items() if e.get("model") == "cribnet")
        if cfg.cribnet_weights is not None:  # asked for by name: it must ship, and be used
            if cfg.cribnet_weights not in shipped:
                raise InputError("cribnet_weights", f"a shipped CribNet file ({', '.join(shipped) or 'none ship'})",
                                 repr(cfg.cribnet_weights))
            if cfg.model == "pretrained":
                raise InputError("cribnet_weights", "model cribnet or auto (the pretrained path runs no CribNet)",
                                 f"model={cfg.model!r}")
        weights = cfg.cribnet_weights or "cribnet.onnx"
        has_cribnet = weights in files
        if cfg.model == "cribnet" and not has_cribnet:
            raise InputError("model", "cribnet weights in weights/manifest.json", "none shipped")
        self.cribnet = None
        if cfg.model == "cribnet" or (cfg.model == "auto" and has_cribnet):
            from .analyze.cribnet import CribNet

            self.cribnet = CribNet(weights, threads)
        extra = cfg.extra_detector
        if extra == "auto":
            extra = EXTRA_DETECTOR if self._second_stage() else None
        self.extra = BlazeFace(str(extra), threads, cfg.score_thresh) if extra is not None else None
        if (cfg.tiles or cfg.frame_candidate or cfg.mirror_search or extra is not None) and not self._second_stage():
            raise InputError("tiles / frame_candidate / mirror_search / extra_detector", "CribNet's second stage (model cribnet, verify_face > 0): "
                             "their candidates are only trusted with its P(face)",
                             f"model={cfg.model!r}, verify_face={cfg.verify_face}")

    # ------------------------------------------------------------------------------------------
    def _second_stage(self) -> bool:
        return self.cribnet is not None and self.cribnet.has_face_output and self.config.verify_face > 0

    def _whole_frame_passes(self, image: np.ndarray, score: float):
        yield lambda: self.full(image, score)
        for deg in self.config.rotations:
            yield lambda deg=deg: self.detect_rotated(image, deg, score)
        if self.config.crop_fallback:
            yield lambda: self._detect_padded(image, score)
            yield lambda: self.short(image, score)

    def detection_stages(self, image: np.ndarray, score: float, frame: bool = False, mirror: bool = False):
        """Detector passes in the order they are tried, each a callable -> detections >= ``score``:
        the full-range detector upright, then on the frame rotated by each of ``rotations``, then
        (``crop_fallback``) the short-range detector on the frame padded to a 1.5x square and as it
        is (tight face crops, where the full-range model sees no face); with ``mirror``, the same
        passes on the mirrored frame (``unmirror``); with ``tiles``, both detectors on a grid of
        half-size sub-frames; with ``frame``, last, the frame's centre square as a candidate of
        score 0 (``frame_detection``)."""
        yield from self._whole_frame_passes(image, score)
        if self.extra is not None and self._second_stage():
            yield lambda: [dataclasses.replace(d, detector=f"{d.detector}{EXTRA}") for d in self.extra(image, score)]
        if mirror:
            w = image.shape[1]
            for stage in self._whole_frame_passes(np.ascontiguousarray(image[:, ::-1]), score):
                yield lambda stage=stage: unmirror(stage(), w)
        if self.config.tiles:
            yield lambda: self._detect_tiles(image, score)
        if frame:
            yield lambda: [frame_detection(image)]

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Detections (score >= ``score_thresh``) of the first detector pass that finds any."""
        for stage in self.detection_stages(image, self.config.score_thresh):
            dets = stage()
            if dets:
                return dets
        return []

    def detect_rotated(self, image: np.ndarray, deg: int, score: float | None = None) -> list[Detection]:
        """Full-range detections on the frame turned by ``deg`` degrees, mapped back to the frame."""
        h, w = image.shape[:2]
        out = []
        for d in self.full(_rotate(image, deg), score):
            kp = _unrotate_points(d.keypoints_xy, deg, w, h)
            b = d.box_xyxy
            corners = _unrotate_points(np.array([[b[0], b[1]], [b[2], b[3]]]), deg, w, h)
            box = np.concatenate([corners.min(0), corners.max(0)])
            out.append(Detection(box.astype(np.float32), kp.astype(np.float32), d.score, f"{d.detector}_rot{deg}"))
        return out

    def _detect_padded(self, image: np.ndarray, score: float | None = None) -> list[Detection]:
        h, w = image.shape[:2]
        side = int(max(h, w) * 1.5)
        py, px = (side - h) // 2, (side - w) // 2
        padded = np.zeros((side, side, 3), np.uint8)
        padded[py:py + h, px:px + w] = image
        shift = np.array([px, py, px, py], np.float32)
        return [Detection(d.box_xyxy - shift, d.keypoints_xy - shift[:2], d.score, d.detector)
                for d in self.short(padded, score)]

    def _detect_tiles(self, image: np.ndarray, score: float | None = None) -> list[Detection]:
        """Full- and short-range detections on a ``tiles`` x ``tiles`` grid (3 or more) of half-size
        sub-frames (evenly spaced, so neighbours overlap), mapped back to the frame; one face seen by
        two tiles or both detectors is reported once (``suppress_overlaps``)."""
        h, w = image.shape[:2]
        th, tw = h // 2, w // 2
        out = []
        for y0 in np.linspace(0, h - th, self.config.tiles).astype(int):
            for x0 in np.linspace(0, w - tw, self.config.tiles).astype(int):
                tile = np.ascontiguousarray(image[y0:y0 + th, x0:x0 + tw])
                shift = np.array([x0, y0, x0, y0], np.float32)
                for det in (self.full, self.short):
                    out += [Detection(d.box_xyxy + shift, d.keypoints_xy + shift[:2], d.score, f"{d.detector}{TILE}")
                            for d in det(tile, score)]
        return suppress_overlaps(out)

    def run_mesh(self, image: np.ndarray, det: Detection) -> MeshResult:
        """Mesh from the detector ROI; with ``refine``, a second pass from the ROI of the first mesh
        (MediaPipe's tracking ROI), kept unless its presence score collapses. Measured on the
        developer data: AFLW2000 sample NME 0.114 -> 0.100 and SyRIP recall 0.571 -> 0.597 (the
        second pass raises the presence score of true infant faces), for ~3.5 ms per face."""
        kp = det.keypoints_xy
        res = self.mesh(image, *roi_from_keypoints(det.box_xyxy, kp[0], kp[1]))
        if self.config.refine:
            res2 = self.mesh(image, *roi_from_mesh(res.points_xy))
            if res2.presence >= res.presence * 0.5:
                res = res2
        return res

    def mesh_faces(self, image: np.ndarray) -> list[MeshResult]:
        """Face meshes of every detected face (used by tools that need the raw 468 points)."""
        image = to_rgb_uint8(image)
        return [self.run_mesh(image, d) for d in self.detect(image)]

    # ------------------------------------------------------------------------------------------
    @property
    def times(self) -> StageTimes:
        """Stage timings of this thread's last call."""
        t = getattr(self._local, "times", None)
        if t is None:
            t = self._local.times = StageTimes()
        return t

    @times.setter
    def times(self, value: StageTimes) -> None:
        self._local.times = value

    def analyze_image(self, image: np.ndarray, source: str = "<array>", frame: int = 0,
                      timestamp_ms: float = 0.0) -> FrameResult:
        """Analyse one HWC RGB image (uint8; gray, other depths and float are converted; an OpenCV BGR
        array must be converted first: ``cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)``). ``source`` (a
        str or path), ``frame`` (a whole number >= 0) and ``timestamp_ms`` (a number; NaN when
        unknown is written as null) label the result.

        Detector passes in turn (``detection_stages``) until one yields an accepted face; each
        detection gets the mesh, and with CribNet the network, and is accepted or dropped (``_face``)."""
        source, frame, timestamp_ms = _result_labels(source, frame, timestamp_ms)
        image = to_rgb_uint8(image)
        h, w = image.shape[:2]
        self.times = StageTimes()
        second = self._second_stage()
        score = self.config.detection_floor(second)
        faces: list[Face] = []
        for stage in self.detection_stages(image, score, frame=second and self.config.frame_candidate,
                                           mirror=second and self.config.mirror_search):
            t0 = time.perf_counter()
            dets = stage()
            self.times.detect += (time.perf_counter() - t0) * 1e3
            faces = [f for f in (self._face(image, d, w, h) for d in dets) if f is not None]
            if faces:
                # one face found twice (the detector's weighted NMS can leave two blended boxes, e.g.
                # on the face and on the ear of a head turned on its side): two faces whose 68-point
                # boxes overlap are one; kept is the one whose box sits best on its own landmarks
                faces = suppress_overlaps(faces, box=landmark_box, better=box_agreement)
                break
        return FrameResult(source, frame, timestamp_ms, w, h, tuple(faces), ())

    def _face(self, image: np.ndarray, det: Detection, w: int, h: int) -> Face | None:
        """One detection -> a Face, or None when it is not accepted as one.

        First stage: detector score >= ``score_thresh`` and mesh presence >= ``presence_thresh``.
        With CribNet's face output (second stage), a detection that fails the first stage is kept
        when P(face) >= ``verify_face`` (detector name + "+cribnet"), and one that passes it is
        dropped when P(face) < ``reject_face``; a detection of a tile or of the mirrored frame is kept
        only at P(face) >= ``tile_verify``. A frame candidate's box is the square around the mesh's 68 points."""
        b = det.box_xyxy
        if not (b[2] - b[0] > 1 and b[3] - b[1] > 1):  # a degenerate box (seen at low scores): no ROI
            return None
        t0 = time.perf_counter()
        mesh = self.run_mesh(image, det)
        pts = mesh.points_xy.astype(np.float64)
        lm68 = pts[list(schema.MESH468_TO_IBUG68)]
        t1 = time.perf_counter()
        self.times.landmarks += (t1 - t0) * 1e3
        first = self.config.first_stage(det.score, mesh.presence)
        second = self._second_stage()  # CribNet with a face output, and verify_face > 0
        # detections of the extra passes (tiles, the mirrored frame, the extra detector) face the stricter rule
        strict = self.config.strict_pass(det.detector)
        c = None
        if self.cribnet is not None and (first or second):
            # the second stage decides on P(face) inside the call, before the decoding it would waste
            keep = (lambda face_p: self.config.second_stage_keeps(first, face_p, strict)) if second else None
            c = self.cribnet(image, lm68, keep=keep)
            t2 = time.perf_counter()
            self.times.network += (t2 - t1) * 1e3
            t1 = t2
            if c is None:
                return None
        elif not first:
            return None
        detector = det.detector if first else f"{det.detector}+cribnet"
        R, _, _ = solve_head_pose(pts, self.model_3d, w, h)
        yaw, pitch, roll = euler_from_matrix(R)
        # a frame candidate's box says nothing of the face: the face box is the mesh's 68 points' square
        box = tuple(float(v) for v in (box_from_landmarks(lm68, w, h) if det.detector == FRAME else det.box_xyxy))
        self.times.pose += (time.perf_counter() - t1) * 1e3
        if c is None:
            return Face(box=box, score=float(det.score), detector=detector,
                        landmarks=Landmarks(schema.IBUG68, tuple((float(x), float(y)) for x, y in lm68), None, None),
                        pose=Pose(yaw, pitch, roll, None), eyes_open=eyes_open_from_landmarks(lm68, yaw, pitch, mesh.presence),
                        parts=None, occlusion=Occlusion(None, None))
        if self.config.landmarks_from in ("cribnet", "fused"):
            pts68 = fuse_landmarks(c.landmarks, lm68, c.visible) if self.config.landmarks_from == "fused" else c.landmarks
            lms = Landmarks(schema.IBUG68, tuple((float(x), float(y)) for x, y in pts68),
                            tuple(float(v) for v in c.sigma), tuple(float(v) for v in c.visible))
        else:
            lms = Landmarks(schema.IBUG68, tuple((float(x), float(y)) for x, y in lm68), None, None)
        pose = Pose(c.yaw, c.pitch, c.roll, None) if self.config.pose_from == "cribnet" else Pose(yaw, pitch, roll, None)
        parts = {p: PartState(occluded=c.occluded[p][0], covered=c.covered[p][0], sigma_occluded=c.occluded[p][1],
                              sigma_covered=c.covered[p][1]) for p in PART_NAMES}
        both_eyes_hidden = c.occluded["eye_left"][0] > 0.5 and c.occluded["eye_right"][0] > 0.5
        eyes = None if both_eyes_hidden else Probability(c.eyes_open[0], c.eyes_open[1])
        return Face(box=box, score=float(det.score), detector=detector, landmarks=lms, pose=pose, eyes_open=eyes,
                    parts=parts, occlusion=Occlusion(c.visible_fraction, c.mask_polygons))

    def analyze_frames(self, frames: Iterable, source: str) -> Iterator[FrameResult]:
        """Results of a frame stream: ``io.iter_video``'s ``VideoFrame``s, or (index, timestamp_ms,
        image) tuples."""
        for fr in frames:
            if isinstance(fr, VideoFrame):
                yield self.analyze_image(fr.rgb, source, fr.index, fr.timestamp_ms)
            else:
                index, ts, img = fr
                yield self.analyze_image(img, source, index, ts)


def _result_labels(source, frame, timestamp_ms) -> tuple[str, int, float]:
    """``source``, ``frame`` and ``timestamp_ms`` as the contract's types (a path or numpy scalar is
    converted), or a typed error - not a result that fails later, when it is written."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise InputError("source", "a str or path naming the input", f"{type(source).__name__} {source!r}"[:200])
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or frame < 0:
        raise InputError("frame", "a whole number >= 0", f"{type(frame).__name__} {frame!r}")
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, float, np.integer, np.floating)):
        raise InputError("timestamp_ms", "a number of milliseconds (NaN when unknown)",
                         f"{type(timestamp_ms).__name__} {timestamp_ms!r}"[:200])
    return source, int(frame), float(timestamp_ms)


_DEFAULT: Analyzer | None = None
_DEFAULT_LOCK = threading.Lock()


def analyze(image: np.ndarray, source: str = "<array>") -> FrameResult:
    """Analyse one HWC uint8 RGB image with a shared default Analyzer (built once, on the first call,
    whichever thread makes it)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = Analyzer()
    return _DEFAULT.analyze_image(image, source)
