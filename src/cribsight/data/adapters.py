"""Dataset adapters: standard face-dataset layouts -> ``FaceSample`` records.

Every adapter takes the on-disk location of a dataset (its layout is documented in the adapter's
docstring) and returns a ``SampleList`` (a ``list`` of ``FaceSample`` with a ``skipped`` attribute
listing ``(item, reason)`` pairs it passed over), except ``load_celebamask`` which returns a lazy
``SampleStream`` (masks are decoded while iterating). ``ADAPTERS`` maps a config name to each one.

Common rules
------------
* Images load lazily: ``path`` is set and ``image_array`` left ``None`` (COFW is the exception: its
  images live inside the ``.mat`` file).
* A wrong layout raises ``InputError(what, expected, found)`` (missing annotation file, wrong point
  count, malformed line, ...). An annotated image that is missing on disk is skipped and recorded in
  ``skipped`` (with one logged warning); if *none* of the annotated images exists the layout is
  wrong (usually a wrong ``image_root``) and ``InputError`` is raised instead.
* ``box`` (xyxy pixels) comes from the annotation when it has one, otherwise from the min/max of the
  known landmark coordinates (or stays ``None`` when there are none).
* ``parts`` and ``eyes_open`` stay unknown (-1) unless the format says something certain.
* ``dataset`` and ``license`` are set on every sample (see ``LICENSES``).
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..geometry import euler_from_matrix
from ..io.images import IMAGE_EXTENSIONS, to_rgb_uint8
from ..schema import IBUG68_GROUPS
from ..types import PART_NAMES
from .sample import EXTERNAL, SELF, UNKNOWN, VISIBLE, FaceSample, unknown_parts

log = logging.getLogger(__name__)

LICENSES: dict[str, str] = {
    "300W": "300W: research only",
    "AFLW2000-3D": "AFLW: non-commercial research",
    "SyRIP": "SyRIP: non-commercial research",
    "UTKFace": "UTKFace: non-commercial research",
    "WFLW": "WFLW: research only",
    "COFW": "COFW: research only",
    "MERL-RAV": "MERL-RAV: see AFLW terms",
    "BIWI": "BIWI: research only",
    "CelebAMask-HQ": "CelebAMask-HQ: non-commercial research",
    "face-mask": "face-mask images: research only",
    "YunInfants": "YunInfants: see the dataset's terms",
}

# Image file extensions tried, in order, for "the image beside the annotation with the same stem".
_BESIDE_EXTS = (".jpg", ".png", ".jpeg", ".bmp", ".JPG", ".PNG", ".JPEG")

# The part groups used for per-part labels (iBUG-68, 0-based; "left" = the subject's own left).
PART_POINTS: dict[str, tuple[int, ...]] = {
    "eye_left": IBUG68_GROUPS["eye_left"],  # 42-47
    "eye_right": IBUG68_GROUPS["eye_right"],  # 36-41
    "nose": IBUG68_GROUPS["nose"],  # 27-35
    "mouth": IBUG68_GROUPS["mouth"],  # 48-67
}


class SampleList(list):
    """A list of ``FaceSample``; ``skipped`` holds ``(item, reason)`` for what the adapter passed over."""

    def __init__(self, items=(), skipped=()):
        super().__init__(items)
        self.skipped: list[tuple[str, str]] = list(skipped)


class SampleStream:
    """A lazily built sequence of ``FaceSample``: ``len()`` is known up front, each sample is made
    (its masks decoded) only when iterated or indexed. ``skipped`` as in ``SampleList``."""

    def __init__(self, items: Sequence[Any], make: Callable[[Any], FaceSample], skipped=()):
        self._items, self._make = list(items), make
        self.skipped: list[tuple[str, str]] = list(skipped)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> FaceSample:
        return self._make(self._items[i])

    def __iter__(self) -> Iterator[FaceSample]:
        for it in self._items:
            yield self._make(it)


# --------------------------------------------------------------------------------------------------
# Helpers
def _box_from_points(pts: np.ndarray | None) -> np.ndarray | None:
    """xyxy min/max of the finite rows of (N, 2) points; None when fewer than one is known."""
    if pts is None:
        return None
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        return None
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], np.float32)


def _require_dir(path: str | Path, what: str, expected: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(what, expected, f"no such path: {p}")
    if not p.is_dir():
        raise InputError(what, expected, f"a file, not a folder: {p}")
    return p


def _require_file(path: str | Path, what: str, expected: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(what, expected, f"no such file: {p}")
    if not p.is_file():
        raise InputError(what, expected, f"a folder, not a file: {p}")
    return p


def _image_beside(annotation: Path) -> Path | None:
    for ext in _BESIDE_EXTS:
        cand = annotation.with_suffix(ext)
        if cand.is_file():
            return cand
    return None


def _finish(samples: list[FaceSample], skipped: list[tuple[str, str]], what: str, where: Path | str,
            expected: str = "the annotated images to exist") -> SampleList:
    """Wrap up an adapter: raise when every annotated image is missing, warn when some are."""
    missing = [s for s in skipped if s[1].startswith("missing image")]
    if not samples and missing:
        raise InputError(what, expected,
                         f"none of the {len(missing)} annotated images under {where} (first: {missing[0][0]})")
    if skipped:
        log.warning("%s: skipped %d item(s) under %s, e.g. %s (%s)", what, len(skipped), where, *skipped[0])
    return SampleList(samples, skipped)


def _parse_floats(tokens: Sequence[str], what: str, expected: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise InputError(what, expected, "non-numeric field(s): " + " ".join(tokens[:8])[:120]) from None


def _read_pts(path: Path, n_expected: int = 68) -> np.ndarray:
    """Parse an iBUG ``.pts`` file and return its raw (n_expected, 2) float64 coordinates."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(str(path), "a readable .pts file", f"unreadable ({e})") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    header = "a .pts file: 'version: 1', 'n_points: N', '{', N lines 'x y', '}'"
    n_points, open_at = None, None
    for i, ln in enumerate(lines):
        if ln.lower().startswith("n_points"):
            m = re.match(r"n_points\s*:?\s*(\d+)\s*$", ln, re.IGNORECASE)
            if not m:
                raise InputError(str(path), "a line 'n_points: N'", repr(ln[:80]))
            n_points = int(m.group(1))
        elif ln == "{":
            open_at = i
            break
    if n_points is None or open_at is None:
        raise InputError(str(path), header, "no 'n_points:' line" if n_points is None else "no '{' line")
    try:
        close_at = lines.index("}", open_at + 1)
    except ValueError:
        raise InputError(str(path), header, "no closing '}' line") from None
    body = lines[open_at + 1:close_at]
    if n_points != n_expected:
        raise InputError(str(path), f"{n_expected} points (iBUG-68)", f"n_points: {n_points}")
    if len(body) != n_points:
        raise InputError(str(path), f"{n_points} point lines between '{{' and '}}' (n_points: {n_points})",
                         f"{len(body)} lines")
    pts = np.empty((n_points, 2), np.float64)
    for k, ln in enumerate(body):
        tok = ln.split()
        if len(tok) != 2:
            raise InputError(f"{path} point {k}", "two numbers 'x y'", repr(ln[:80]))
        pts[k] = _parse_floats(tok, f"{path} point {k}", "two numbers 'x y'")
    return pts


def _pts_files(path_or_dir: str | Path, what: str) -> tuple[list[Path], bool]:
    """(sorted .pts files, whether a single file was given)."""
    p = Path(path_or_dir)
    if p.is_file():
        if p.suffix.lower() != ".pts":
            raise InputError(what, "a .pts file or a folder of .pts files", f"a {p.suffix or 'suffix-less'} file: {p}")
        return [p], True
    if not p.is_dir():
        raise InputError(what, "a .pts file or a folder of .pts files", f"no such path: {p}")
    files = sorted(f for f in p.rglob("*") if f.suffix.lower() == ".pts" and f.is_file())
    if not files:
        raise InputError(what, "at least one .pts file (searched recursively)", f"none under {p}")
    return files, False


def _half_rule(vis: np.ndarray, idx: Sequence[int]) -> dict[str, int]:
    """Part label from per-point visibility: covered = 1 when at least half the part's points are
    EXTERNAL, occluded = 1 when at least half are EXTERNAL or SELF; otherwise 0."""
    v = vis[list(idx)]
    n = len(v)
    ext = int(np.sum(v == EXTERNAL))
    hid = int(np.sum((v == EXTERNAL) | (v == SELF)))
    return {"occluded": int(2 * hid >= n), "covered": int(2 * ext >= n)}


def _read_mat(path: Path, what: str) -> dict[str, Any]:
    import scipy.io as sio

    try:
        return sio.loadmat(str(path))
    except NotImplementedError:
        raise InputError(what, "a MATLAB v5/v7 .mat file readable by scipy.io.loadmat",
                         f"a v7.3 (HDF5) .mat file: {path} (re-save it in MATLAB with save(..., '-v7'))") from None
    except Exception as e:  # scipy raises several types on garbage input
        raise InputError(what, "a MATLAB .mat file", f"{type(e).__name__}: {e} ({path})") from None


# --------------------------------------------------------------------------------------------------
# 1. iBUG .pts (300W, 300VW frames, Menpo)
def load_ibug_pts(path_or_dir: str | Path, *, one_based: bool = True, dataset: str = "300W",
                  license: str | None = None) -> SampleList:
    """iBUG ``.pts`` annotations (300W, 300VW frames, Menpo 68-point).

    Layout: ``path_or_dir`` is one ``.pts`` file or a folder searched recursively for them. Each file::

        version: 1
        n_points: 68
        {
        x y        (68 lines, iBUG-68 order)
        }

    with the image beside it, same stem, ``.jpg`` or ``.png`` (also .jpeg/.bmp).

    * Coordinates: iBUG files are 1-based (MATLAB: the first pixel's centre is (1, 1)); 1 is
      subtracted to get 0-based pixel coordinates (OpenCV: first pixel centre at (0, 0)). Pass
      ``one_based=False`` for files already 0-based.
    * Visibility: ``UNKNOWN`` for all 68 points. The format carries no occlusion flag and 300W places
      occluded points too (at their guessed location), so "VISIBLE" would be a false claim.
    * ``box``: min/max of the 68 points. Parts stay unknown.
    """
    files, single = _pts_files(path_or_dir, "load_ibug_pts")
    license = LICENSES.get(dataset, f"{dataset}: see the dataset's terms") if license is None else license
    samples, skipped = [], []
    for f in files:
        pts = _read_pts(f)
        img = _image_beside(f)
        if img is None:
            if single:
                raise InputError(str(f), f"an image beside it named {f.stem}.jpg or {f.stem}.png", "none")
            skipped.append((str(f), "missing image (no .jpg/.png with the same stem)"))
            continue
        lm = (pts - 1.0 if one_based else pts).astype(np.float32)
        samples.append(FaceSample(path=img, box=_box_from_points(lm), landmarks=lm,
                                  visibility=np.full(68, UNKNOWN, np.int8), dataset=dataset, license=license,
                                  extra={"annotation": str(f)}))
    return _finish(samples, skipped, "load_ibug_pts", path_or_dir)


# --------------------------------------------------------------------------------------------------
# 2. WFLW
# WFLW-98 index for each iBUG-68 point (0-based), the usual correspondence:
WFLW98_TO_IBUG68: tuple[int, ...] = (
    *range(0, 33, 2),  # jaw 0-16 <- every second contour point 0, 2, ..., 32
    33, 34, 35, 36, 37,  # right brow 17-21 <- upper edge of WFLW brow 33-37 (41-38 is its lower edge)
    42, 43, 44, 45, 46,  # left brow 22-26 <- 42-46 (47-50 lower edge)
    51, 52, 53, 54, 55, 56, 57, 58, 59,  # nose 27-35 <- 51-59
    60, 61, 63, 64, 65, 67,  # right eye 36-41 <- 60-67 without the mid-lid points 62, 66
    68, 69, 71, 72, 73, 75,  # left eye 42-47 <- 68-75 without 70, 74
    *range(76, 96),  # mouth 48-67 <- 76-95 (96, 97 are the pupils)
)
WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")


def load_wflw(annotation_txt: str | Path, image_root: str | Path) -> SampleList:
    """WFLW (98 points) annotation list.

    Layout: ``annotation_txt`` (e.g. ``list_98pt_rect_attr_test.txt``) has one face per line,
    whitespace separated: 196 numbers (x0 y0 x1 y1 ... x97 y97, pixels), 4 box numbers
    (x_min y_min x_max y_max), 6 attribute flags 0/1 (pose, expression, illumination, make-up,
    occlusion, blur), then the image path relative to ``image_root`` (e.g. ``51--Dresses/x.jpg``).

    * Landmarks: the 98 points mapped to iBUG-68 by ``WFLW98_TO_IBUG68`` (coordinates as stored,
      0-based); all 98 kept in ``extra["wflw98"]`` (98, 2).
    * Visibility ``UNKNOWN`` (WFLW's occlusion flag is per image, not per point); parts unknown.
    * ``box`` from the annotation; attributes in ``extra["wflw_attributes"]`` as {name: 0/1}.
    """
    ann = _require_file(annotation_txt, "load_wflw annotation", "a WFLW annotation .txt file")
    root = _require_dir(image_root, "load_wflw image_root", "the WFLW image folder")
    expected = ("207 whitespace-separated fields: 196 landmark coordinates, 4 box numbers, "
                "6 attribute flags and an image path")
    samples, skipped = [], []
    lines = ann.read_text(encoding="utf-8", errors="replace").splitlines()
    for n, line in enumerate(lines, 1):
        tok = line.split()
        if not tok:
            continue
        where = f"{ann} line {n}"
        if len(tok) < 207:
            raise InputError(where, expected, f"{len(tok)} fields")
        nums = _parse_floats(tok[:206], where, expected)
        rel = " ".join(tok[206:])  # a path with spaces survives the split
        pts98 = np.asarray(nums[:196], np.float32).reshape(98, 2)
        flags = nums[200:206]
        if any(f not in (0.0, 1.0) for f in flags):
            raise InputError(where, "6 attribute flags that are 0 or 1", " ".join(tok[200:206]))
        img = root / rel
        if not img.is_file():
            skipped.append((str(img), f"missing image (line {n})"))
            continue
        lm = pts98[list(WFLW98_TO_IBUG68)].copy()
        samples.append(FaceSample(
            path=img, box=np.asarray(nums[196:200], np.float32), landmarks=lm,
            visibility=np.full(68, UNKNOWN, np.int8), dataset="WFLW", license=LICENSES["WFLW"],
            extra={"wflw98": pts98, "wflw_attributes": {k: int(v) for k, v in zip(WFLW_ATTRIBUTES, flags)},
                   "line": n}))
    if not samples and not skipped:
        raise InputError(str(ann), expected, "no annotation lines")
    return _finish(samples, skipped, "load_wflw", root, "the annotated images under image_root")


# --------------------------------------------------------------------------------------------------
# 3. AFLW2000-3D
def load_aflw2000(dir: str | Path) -> SampleList:
    """AFLW2000-3D: one ``.mat`` per image, image beside it with the same stem (``image00002.jpg``).

    Each ``.mat`` (read with ``scipy.io.loadmat``) holds ``Pose_Para`` (1x7: pitch, yaw, roll in
    radians, then translation x, y, z and scale) and ``pt3d_68`` (3x68: x, y, depth); ``pt2d``
    (2x21 original AFLW points, -1 = absent) and ``roi`` are kept in ``extra`` when present.

    * ``pose`` = (yaw, pitch, roll) in degrees. AFLW2000-3D's signs equal ours (checked against the
      real data elsewhere in the project), so no sign flip; note the reordering pitch, yaw, roll ->
      yaw, pitch, roll.
    * ``landmarks`` = ``pt3d_68[:2].T`` as stored (the project's AFLW2000 benchmark uses them the same
      way). Visibility ``UNKNOWN``: these are fitted 3D-model points, placed for hidden points too.
    * ``box``: min/max of the 68 points (``roi`` is often far larger than the image, so it is not used).
    * ``extra``: ``pt3d_68`` (68, 3), ``pose_para`` (7,), and ``aflw21``/``roi`` when present.
    """
    root = _require_dir(dir, "load_aflw2000", "the AFLW2000-3D folder (image*.mat beside image*.jpg)")
    mats = sorted(root.glob("*.mat"))
    if not mats:
        raise InputError("load_aflw2000", "*.mat annotation files", f"none in {root}")
    samples, skipped = [], []
    for mat in mats:
        m = _read_mat(mat, str(mat))
        for key in ("Pose_Para", "pt3d_68"):
            if key not in m:
                raise InputError(str(mat), "variables Pose_Para (1x7) and pt3d_68 (3x68)",
                                 f"no {key} (variables: {sorted(k for k in m if not k.startswith('__'))})")
        pp = np.asarray(m["Pose_Para"], np.float64).ravel()
        p3 = np.asarray(m["pt3d_68"], np.float64)
        if pp.size < 3:
            raise InputError(f"{mat} Pose_Para", "at least 3 values (pitch, yaw, roll in radians)", f"{pp.size} values")
        if p3.shape != (3, 68):
            raise InputError(f"{mat} pt3d_68", "shape (3, 68)", f"shape {p3.shape}")
        img = _image_beside(mat)
        if img is None:
            skipped.append((str(mat), "missing image (no .jpg/.png with the same stem)"))
            continue
        pitch, yaw, roll = np.degrees(pp[:3])
        lm = p3[:2].T.astype(np.float32)
        extra: dict[str, Any] = {"pt3d_68": p3.T.astype(np.float32), "pose_para": pp.astype(np.float32)}
        if "pt2d" in m and np.asarray(m["pt2d"]).shape == (2, 21):
            extra["aflw21"] = np.asarray(m["pt2d"], np.float32).T
        if "roi" in m:
            extra["roi"] = np.asarray(m["roi"], np.float32).ravel()
        samples.append(FaceSample(path=img, box=_box_from_points(lm), landmarks=lm,
                                  visibility=np.full(68, UNKNOWN, np.int8),
                                  pose=np.array([yaw, pitch, roll], np.float32),
                                  dataset="AFLW2000-3D", license=LICENSES["AFLW2000-3D"], extra=extra))
    return _finish(samples, skipped, "load_aflw2000", root)


# --------------------------------------------------------------------------------------------------
# 4. COFW
# COFW-29 point groups (0-based), per the usual COFW ordering (horizontal-flip pairs
# (0,1) (2,3) (4,6) (5,7) (8,9) (10,11) (12,14) (13,15) (16,17) (18,19) (22,23)):
#   0-7 eyebrows, 8-15 eye corners and lids, 16-17 pupils, 18-21 nose (two nostrils, tip, base),
#   22-27 mouth (two corners, four lip mid-points), 28 chin.
COFW29_GROUPS: dict[str, tuple[int, ...]] = {
    "brows": tuple(range(0, 8)),
    "eyes": tuple(range(8, 18)),
    "nose": (18, 19, 20, 21),
    "mouth": (22, 23, 24, 25, 26, 27),
    "chin": (28,),
}
# The two eyes' points, one eye per tuple; WHICH tuple is the subject's left eye is not relied upon.
COFW29_EYE_SIDES: tuple[tuple[int, ...], tuple[int, ...]] = ((8, 10, 12, 13, 16), (9, 11, 14, 15, 17))


def _cofw_parts(occ: np.ndarray) -> dict[str, dict[str, int]]:
    """Part labels from the 29 COFW occlusion flags (half rule, as ``load_merl_rav``).

    COFW's flag says "hidden", not by what, so ``covered`` is 0 when the part is not occluded and
    unknown (-1) when it is. Eyes: each side is occluded when at least half its 5 points are; since
    the side-to-eye assignment is not relied upon, both eyes get 0 when neither side is occluded,
    1 when both are, and -1 when exactly one is."""
    parts = unknown_parts()

    def half(idx):
        return int(2 * int(np.sum(occ[list(idx)])) >= len(idx))

    for name in ("nose", "mouth"):
        o = half(COFW29_GROUPS[name])
        parts[name] = {"occluded": o, "covered": 0 if o == 0 else -1}
    a, b = (half(s) for s in COFW29_EYE_SIDES)
    if a == b:
        for eye in ("eye_left", "eye_right"):
            parts[eye] = {"occluded": a, "covered": 0 if a == 0 else -1}
    return parts


def load_cofw(mat_path: str | Path, *, split: str | None = None, one_based: bool = True) -> SampleList:
    """COFW (Caltech Occluded Faces in the Wild, 29 points with occlusion flags).

    Layout: one MATLAB v5/v7 ``.mat`` (``COFW_test.mat``/``COFW_train.mat`` style) holding, for the
    test split, ``IsT`` (N x 1 cell array of images, HxW gray or HxWx3 RGB uint8), ``phisT`` (N x 87:
    29 x, then 29 y, then 29 occlusion flags, 1 = occluded) and ``bboxesT`` (N x 4: x, y, w, h);
    the training split uses ``IsTr``, ``phisTr``, ``bboxesTr``. ``split`` = "test", "train" or None
    (every split present, test first; ``extra["split"]`` says which). v7.3 (HDF5) files are refused
    with an ``InputError`` saying so (no HDF5 reader is a dependency).

    * Coordinates and box are MATLAB 1-based; 1 is subtracted (``one_based=False`` keeps them).
    * ``extra["cofw29"]`` (29, 2) points, ``extra["cofw29_occluded"]`` (29,) uint8 flags;
      ``landmarks`` stays None (no 29 -> 68 map). ``box`` = the bbox as xyxy.
    * Images are decoded into ``image_array`` (HWC RGB uint8; gray becomes 3 channels); ``path`` is None.
    * Parts from the flags with the point groups of ``COFW29_GROUPS`` (eyes 8-17 incl. pupils, nose
      18-21, mouth 22-27; an understanding of the usual COFW order, see ``_cofw_parts``).
    """
    mat = _require_file(mat_path, "load_cofw", "a COFW .mat file")
    m = _read_mat(mat, str(mat))
    names = {"test": ("IsT", "phisT", "bboxesT"), "train": ("IsTr", "phisTr", "bboxesTr")}
    if split is not None and split not in names:
        raise InputError("load_cofw split", "'test', 'train' or None", repr(split))
    wanted = [split] if split else [s for s, keys in names.items() if keys[1] in m]
    if not wanted:
        raise InputError(str(mat), "variables IsT/phisT/bboxesT or IsTr/phisTr/bboxesTr",
                         f"variables {sorted(k for k in m if not k.startswith('__'))}")
    shift = 1.0 if one_based else 0.0
    samples = []
    for sp in wanted:
        k_img, k_phi, k_box = names[sp]
        missing = [k for k in names[sp] if k not in m]
        if missing:
            raise InputError(str(mat), f"variables {', '.join(names[sp])} for the {sp} split",
                             f"no {', '.join(missing)}")
        ims = np.asarray(m[k_img], dtype=object).ravel()
        phis = np.asarray(m[k_phi], np.float64)
        boxes = np.asarray(m[k_box], np.float64)
        if phis.ndim != 2 or phis.shape[1] != 87:
            raise InputError(f"{mat} {k_phi}", "N x 87 (29 x, 29 y, 29 occlusion flags)", f"shape {phis.shape}")
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InputError(f"{mat} {k_box}", "N x 4 (x, y, w, h)", f"shape {boxes.shape}")
        if not (len(ims) == len(phis) == len(boxes)):
            raise InputError(str(mat), f"as many images, landmark rows and boxes in the {sp} split",
                             f"{len(ims)} images, {len(phis)} rows of {k_phi}, {len(boxes)} rows of {k_box}")
        for i in range(len(phis)):
            img = to_rgb_uint8(np.asarray(ims[i]), f"{mat} {k_img}[{i}]")
            pts = np.stack([phis[i, :29], phis[i, 29:58]], axis=1) - shift
            occ = phis[i, 58:87]
            if not np.isin(occ, (0.0, 1.0)).all():
                raise InputError(f"{mat} {k_phi}[{i}] columns 58-86", "occlusion flags 0 or 1",
                                 f"values {sorted(set(np.round(occ, 3).tolist()))[:6]}")
            x, y, w, h = boxes[i]
            samples.append(FaceSample(
                image_array=img, box=np.array([x - shift, y - shift, x - shift + w, y - shift + h], np.float32),
                parts=_cofw_parts(occ.astype(np.uint8)), dataset="COFW", license=LICENSES["COFW"],
                extra={"cofw29": pts.astype(np.float32), "cofw29_occluded": occ.astype(np.uint8),
                       "split": sp, "index": i, "file": str(mat)}))
    return SampleList(samples)


# --------------------------------------------------------------------------------------------------
# 5. MERL-RAV
_MERL_VIEWS = {"frontal", "left", "right", "lefthalf", "righthalf"}


def load_merl_rav(path_or_dir: str | Path, *, one_based: bool = False) -> SampleList:
    """MERL-RAV (AFLW re-annotated with 68 points and per-point visibility).

    Layout: ``.pts`` files in the iBUG layout (see ``load_ibug_pts``; a file or a folder searched
    recursively, e.g. ``merl_rav_organized/frontal/testset/``), the AFLW image beside each with the
    same stem. Point encoding:

    * (-1, -1): self-occluded (hidden by the head itself), location unknown -> ``SELF``, NaN;
    * a negative coordinate pair (x < 0 or y < 0 otherwise): externally occluded (hidden by an
      object), location = the absolute values -> ``EXTERNAL``;
    * anything else -> ``VISIBLE``.

    Coordinates are used as stored (``one_based=True`` subtracts 1 after the decoding above; the
    release does not state an origin). ``box``: min/max of the located (non-NaN) points.

    Parts (``eye_left`` = iBUG 42-47, the subject's left eye; ``eye_right`` = 36-41; ``nose`` =
    27-35; ``mouth`` = 48-67), the *half rule*: ``covered`` = 1 when at least half the part's points
    are EXTERNAL, ``occluded`` = 1 when at least half are EXTERNAL or SELF; otherwise 0 (e.g. an eye
    with 3 of 6 points EXTERNAL is covered; a nose needs 5 of 9). The folder name (frontal, left, ...)
    goes to ``extra["view"]`` when present.
    """
    files, single = _pts_files(path_or_dir, "load_merl_rav")
    samples, skipped = [], []
    for f in files:
        raw = _read_pts(f)
        self_occ = (raw[:, 0] == -1) & (raw[:, 1] == -1)
        ext = ~self_occ & ((raw[:, 0] < 0) | (raw[:, 1] < 0))
        vis = np.full(68, VISIBLE, np.int8)
        vis[ext] = EXTERNAL
        vis[self_occ] = SELF
        lm = np.abs(raw)
        if one_based:
            lm = lm - 1.0
        lm[self_occ] = np.nan
        lm = lm.astype(np.float32)
        img = _image_beside(f)
        if img is None:
            if single:
                raise InputError(str(f), f"an image beside it named {f.stem}.jpg or {f.stem}.png", "none")
            skipped.append((str(f), "missing image (no .jpg/.png with the same stem)"))
            continue
        parts = unknown_parts()
        for name, idx in PART_POINTS.items():
            parts[name] = _half_rule(vis, idx)
        extra: dict[str, Any] = {"annotation": str(f)}
        view = next((p.name for p in f.parents if p.name.lower() in _MERL_VIEWS), None)
        if view is not None:
            extra["view"] = view
        samples.append(FaceSample(path=img, box=_box_from_points(lm), landmarks=lm, visibility=vis, parts=parts,
                                  dataset="MERL-RAV", license=LICENSES["MERL-RAV"], extra=extra))
    return _finish(samples, skipped, "load_merl_rav", path_or_dir)


# --------------------------------------------------------------------------------------------------
# 6. BIWI Kinect head pose
def _read_biwi_pose(path: Path) -> tuple[np.ndarray, np.ndarray]:
    expected = "3 lines of 3 numbers (rotation matrix rows), a blank line, 1 line of 3 numbers (translation, mm)"
    rows = [ln.split() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    rows = [r for r in rows if r]
    if len(rows) != 4 or any(len(r) != 3 for r in rows):
        raise InputError(str(path), expected, f"{len(rows)} non-blank lines with {[len(r) for r in rows]} numbers")
    vals = np.array([_parse_floats(r, str(path), expected) for r in rows], np.float64)
    R, t = vals[:3], vals[3]
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-2) and np.linalg.det(R) > 0):
        raise InputError(str(path), "a rotation matrix (orthonormal, det +1)",
                         f"R R^T off identity by {np.abs(R @ R.T - np.eye(3)).max():.3g}, det {np.linalg.det(R):.3g}")
    return R, t


def biwi_to_pose(R_biwi: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees from a BIWI rotation matrix (rows as in the pose file).

    Frame change, as understood here: the BIWI matrix is read as the head-to-camera rotation already
    expressed in axes that agree with ``cribsight.geometry`` (camera x right, y down, z forward;
    head x to the subject's left, y down, z into the head), i.e. the constant frame change is the
    identity and ``R_ours = R_biwi``; angles are then ``euler_from_matrix(R_ours)``. Evidence: the
    conversion common in head-pose evaluation code (transpose, then roll = -atan2(R10, R00),
    yaw = asin(R20), pitch = atan2(R21, R22)), whose signs are validated by models trained with
    AFLW's (= our) conventions, gives exactly the same angles for single-axis rotations; it differs
    only by Euler order (x-y-z instead of our z-y-x) when angles combine, e.g. (40, 20, 10) there
    reads (32.4, 31.5, 26.7). This was not checked against the BIWI documentation or data.
    """
    return np.asarray(euler_from_matrix(np.asarray(R_biwi, np.float64)), np.float32)


def load_biwi(dir: str | Path) -> SampleList:
    """BIWI Kinect head pose database.

    Layout: ``dir`` is the database root with one folder per sequence (``01/``, ``02/``, ...) or one
    sequence folder; in it ``frame_XXXXX_rgb.png`` and ``frame_XXXXX_pose.txt``, the latter::

        r00 r01 r02
        r10 r11 r12
        r20 r21 r22

        tx ty tz          (head centre, millimetres, camera frame)

    * ``pose`` = (yaw, pitch, roll) degrees via ``biwi_to_pose``: the frame change is the identity as
      understood here (see that function); the tests only check self-consistency (a pose file built
      from a known rotation gives its angles back), not BIWI's own axis definition.
    * ``extra``: ``biwi_rotation`` (3, 3) as stored, ``biwi_translation_mm`` (3,), ``sequence``, ``frame``.
    * No box or landmarks (the depth-based head centre is not a face box).
    """
    root = _require_dir(dir, "load_biwi", "the BIWI folder (sequence folders with frame_XXXXX_rgb.png and _pose.txt)")
    poses = sorted(root.glob("frame_*_pose.txt")) + sorted(root.glob("*/frame_*_pose.txt"))
    if not poses:
        raise InputError("load_biwi", "frame_XXXXX_pose.txt files in the folder or its sequence folders",
                         f"none under {root}")
    samples, skipped = [], []
    for p in poses:
        R, t = _read_biwi_pose(p)
        img = p.with_name(p.name[: -len("_pose.txt")] + "_rgb.png")
        if not img.is_file():
            skipped.append((str(p), f"missing image {img.name}"))
            continue
        m = re.match(r"frame_(\d+)_pose\.txt$", p.name)
        samples.append(FaceSample(path=img, pose=biwi_to_pose(R), dataset="BIWI", license=LICENSES["BIWI"],
                                  extra={"biwi_rotation": R.astype(np.float32),
                                         "biwi_translation_mm": t.astype(np.float32),
                                         "sequence": p.parent.name, "frame": int(m.group(1)) if m else -1}))
    return _finish(samples, skipped, "load_biwi", root)


# --------------------------------------------------------------------------------------------------
# 7. CelebAMask-HQ-style occlusion masks (C-CM binary form)
def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) without decoding when Pillow is available."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except ImportError:
        pass
    except Exception as e:
        raise InputError(str(path), "a readable image", f"{type(e).__name__}: {e}") from None
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise InputError(str(path), "a decodable image", "cv2.imread failed")
    return a.shape[1], a.shape[0]


def load_celebamask(dir: str | Path) -> SampleStream:
    """CelebAMask-HQ-style face images with a binary visible-face mask (the C-CM form).

    Layout::

        dir/images/<id>.jpg     (or .png)
        dir/masks/<id>.png      single channel: 255 = visible face skin, 0 = background or occluder

    * ``face_mask`` = (mask > 127) as uint8 (resized nearest-neighbour to the image size when the
      mask is smaller, as CelebAMask-HQ's 512 px masks for 1024 px images). NOTE: in this form the
      mask marks *visible* face skin only (occluded face area is 0), so it is a lower bound of the
      face region that ``FaceSample.face_mask`` describes; ``extra["face_mask_kind"] = "visible_skin"``.
      ``mask`` (occluder pixels) stays None: the binary form cannot tell occluder from background.
      The per-part-mask form of CelebAMask-HQ is not read.
    * Returns a ``SampleStream``: the file pairing is checked now, each mask is decoded when its
      sample is iterated (a few thousand full-size masks would not fit in memory).
    * An image without a mask is skipped (``skipped``); none at all -> ``InputError``.
    """
    root = _require_dir(dir, "load_celebamask", "a folder with images/ and masks/")
    img_dir = _require_dir(root / "images", "load_celebamask images/", "a folder images/ of <id>.jpg")
    mask_dir = _require_dir(root / "masks", "load_celebamask masks/", "a folder masks/ of <id>.png")
    images = sorted(p for p in img_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise InputError(str(img_dir), "image files <id>.jpg", "none")
    pairs, skipped = [], []
    for img in images:
        mask = mask_dir / (img.stem + ".png")
        if mask.is_file():
            pairs.append((img, mask))
        else:
            skipped.append((str(img), f"missing mask masks/{img.stem}.png"))
    if not pairs:
        raise InputError(str(mask_dir), "a mask <id>.png for the images in images/",
                         f"none of the {len(images)} images has one (first expected: {skipped[0][1]})")
    if skipped:
        log.warning("load_celebamask: %d image(s) without a mask, e.g. %s", len(skipped), skipped[0][0])

    def make(pair: tuple[Path, Path]) -> FaceSample:
        img, mask_path = pair
        m = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise InputError(str(mask_path), "a decodable single-channel PNG mask", "cv2.imread failed")
        w, h = _image_size(img)
        if m.shape != (h, w):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        return FaceSample(path=img, face_mask=(m > 127).astype(np.uint8), dataset="CelebAMask-HQ",
                          license=LICENSES["CelebAMask-HQ"],
                          extra={"id": img.stem, "mask_file": str(mask_path), "face_mask_kind": "visible_skin"})

    return SampleStream(pairs, make, skipped)


# --------------------------------------------------------------------------------------------------
# 8. COCO person keypoints (SyRIP)
COCO_FACE5 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def load_coco_keypoints(annotation_json: str | Path, image_dir: str | Path, *, dataset: str = "SyRIP",
                        license: str | None = None) -> SampleList:
    """COCO person-keypoint annotations (SyRIP infants): one sample per person annotation.

    Layout: ``annotation_json`` with ``images`` (``id``, ``file_name``, optional ``posture``,
    ``width``, ``height``), ``annotations`` (``image_id``, ``keypoints`` = 17 x (x, y, v), ``bbox`` =
    x, y, w, h of the whole person) and ``categories`` whose keypoint names start with nose,
    left_eye, right_eye, left_ear, right_ear (the subject's own left/right, COCO convention);
    ``file_name`` is relative to ``image_dir``.

    * ``extra["coco_face5"]`` (5, 3) float32: x, y, v of the five face keypoints (v = 2 labelled
      visible, 1 labelled occluded, 0 not labelled, then x = y = 0); ``extra["coco_keypoints"]`` all.
    * ``extra["body_box"]``: the bbox as xyxy; ``extra["posture"]`` when the image has one.
    * ``box``: min/max of the labelled (v > 0) face keypoints when at least two are labelled, else
      None. It spans eyes, nose and ears only, so it is a partial face box, not a detector target.
    * ``landmarks``/``parts`` stay None/unknown: SyRIP's v is not a reliable occlusion label.
    ``iscrowd`` annotations are skipped.
    """
    ann = _require_file(annotation_json, "load_coco_keypoints", "a COCO keypoints .json file")
    root = _require_dir(image_dir, "load_coco_keypoints image_dir", "the image folder")
    license = LICENSES.get(dataset, f"{dataset}: see the dataset's terms") if license is None else license
    try:
        d = json.loads(ann.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(str(ann), "valid JSON", f"{type(e).__name__}: {e}") from None
    if not isinstance(d, dict) or not isinstance(d.get("images"), list) or not isinstance(d.get("annotations"), list):
        found = type(d).__name__ if not isinstance(d, dict) else f"keys {sorted(d)}"
        raise InputError(str(ann), "a COCO object with 'images' and 'annotations' lists", found)
    for cat in d.get("categories") or []:
        names = cat.get("keypoints")
        if names and tuple(names[:5]) != COCO_FACE5:
            raise InputError(f"{ann} category {cat.get('name')!r}", f"keypoints starting {list(COCO_FACE5)}",
                             f"{names[:5]}")
    images = {}
    for im in d["images"]:
        if "id" not in im or "file_name" not in im:
            raise InputError(f"{ann} images[]", "entries with 'id' and 'file_name'", f"keys {sorted(im)}")
        images[im["id"]] = im
    samples, skipped = [], []
    for k, a in enumerate(d["annotations"]):
        where = f"{ann} annotations[{k}]"
        if a.get("iscrowd"):
            skipped.append((where, "iscrowd annotation"))
            continue
        kp = a.get("keypoints")
        if not isinstance(kp, list) or len(kp) < 15 or len(kp) % 3:
            raise InputError(where, "'keypoints' as a list of at least 5 (x, y, v) triples",
                             f"{type(kp).__name__} of length {len(kp) if isinstance(kp, list) else '-'}")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise InputError(where, "'bbox' as [x, y, w, h]", repr(bbox)[:60])
        im = images.get(a.get("image_id"))
        if im is None:
            raise InputError(where, "an image_id listed in 'images'", repr(a.get("image_id")))
        kps = np.asarray(_parse_floats([str(v) for v in kp], where, "numeric keypoints"), np.float32).reshape(-1, 3)
        if not np.isin(kps[:, 2], (0.0, 1.0, 2.0)).all():
            raise InputError(where, "keypoint visibility v in {0, 1, 2}", f"{sorted(set(kps[:, 2].tolist()))}")
        img = root / im["file_name"]
        if not img.is_file():
            skipped.append((str(img), f"missing image ({where})"))
            continue
        face5 = kps[:5].copy()
        labelled = face5[face5[:, 2] > 0, :2]
        x, y, w, h = (float(v) for v in bbox)
        extra: dict[str, Any] = {"coco_face5": face5, "coco_keypoints": kps,
                                 "body_box": np.array([x, y, x + w, y + h], np.float32),
                                 "image_id": im["id"], "annotation_id": a.get("id")}
        if "posture" in im:
            extra["posture"] = im["posture"]
        samples.append(FaceSample(path=img, box=_box_from_points(labelled) if len(labelled) >= 2 else None,
                                  dataset=dataset, license=license, extra=extra))
    return _finish(samples, skipped, "load_coco_keypoints", root, "the annotated images under image_dir")


# --------------------------------------------------------------------------------------------------
# 9. UTKFace
_UTK_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)\.jpg(?:\.chip\.jpg)?$", re.IGNORECASE)
UTK_GENDERS = ("male", "female")
UTK_RACES = ("White", "Black", "Asian", "Indian", "Others")


def load_utkface(dir: str | Path) -> SampleList:
    """UTKFace aligned crops, labels in the file name.

    Layout: a flat folder of ``age_gender_race_datetime.jpg.chip.jpg`` (aligned 200x200 crops; the
    uncropped ``age_gender_race_datetime.jpg`` form is accepted too), with age in years, gender
    0 male / 1 female, race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.

    * ``extra``: ``age`` (int), ``gender`` (0/1), ``gender_name``, ``race`` (0-4), ``race_name``,
      ``datetime`` (the 17-digit string).
    * Image files whose name does not parse (the public release has a few without race, e.g.
      ``39_1_20170116174525125.jpg.chip.jpg``) are skipped and listed in ``skipped``, not fatal.
      Non-image files are ignored. No box, landmarks or parts.
    """
    root = _require_dir(dir, "load_utkface", "the UTKFace folder of age_gender_race_datetime.jpg.chip.jpg")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise InputError("load_utkface", "image files named age_gender_race_datetime.jpg.chip.jpg", f"none in {root}")
    samples, skipped = [], []
    for f in files:
        m = _UTK_NAME.match(f.name)
        if not m:
            skipped.append((f.name, "name not age_gender_race_datetime.jpg.chip.jpg"))
            continue
        age, gender, race = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if gender > 1 or race > 4 or age > 130:
            skipped.append((f.name, f"out-of-range label (age {age}, gender {gender}, race {race})"))
            continue
        samples.append(FaceSample(path=f, dataset="UTKFace", license=LICENSES["UTKFace"],
                                  extra={"age": age, "gender": gender, "gender_name": UTK_GENDERS[gender],
                                         "race": race, "race_name": UTK_RACES[race], "datetime": m.group(4)}))
    if not samples:
        raise InputError("load_utkface", "at least one file named age_gender_race_datetime.jpg.chip.jpg",
                         f"{len(skipped)} image files in {root}, none parseable (first: {skipped[0][0]})")
    return _finish(samples, skipped, "load_utkface", root)


# --------------------------------------------------------------------------------------------------
# 10. Class-per-folder datasets (face-mask)
DEFAULT_COVERED_CLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType({"with_mask": ("nose", "mouth")})


def load_class_folders(dir: str | Path, covered_classes: Mapping[str, Sequence[str]] = DEFAULT_COVERED_CLASSES,
                       *, dataset: str = "face-mask", license: str | None = None) -> SampleList:
    """Class-per-folder image datasets (face-mask detection: ``with_mask/``, ``without_mask/``).

    Layout: ``dir/<class>/<image>`` (images found recursively inside each class folder).

    * ``extra["class"]`` = the folder name.
    * For a class listed in ``covered_classes`` its parts get ``{"occluded": 1, "covered": 1}``; the
      other parts stay unknown. Every other class leaves all parts unknown: an unmasked photo says
      nothing certain about covers (a hand may still cover the mouth).
    * Default ``{"with_mask": ("nose", "mouth")}``. Caution: a mask always covers the mouth but only
      *usually* the nose (masks worn below the nose exist in the face-mask data), so the nose label is
      noisy; ``{"with_mask": ("mouth",)}`` gives only certain labels.
    * No box or landmarks (the folder label says nothing about them).
    """
    root = _require_dir(dir, "load_class_folders", "a folder with one sub-folder of images per class")
    for cls, parts in covered_classes.items():
        bad = [p for p in parts if p not in PART_NAMES]
        if bad:
            raise InputError(f"load_class_folders covered_classes[{cls!r}]", f"part names from {PART_NAMES}", f"{bad}")
    license = LICENSES.get(dataset, f"{dataset}: see the dataset's terms") if license is None else license
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    samples, skipped = [], []
    for cd in class_dirs:
        files = sorted(f for f in cd.rglob("*") if f.is_file())
        for f in files:
            if f.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append((str(f), "not an image file"))
                continue
            parts = unknown_parts()
            for p in covered_classes.get(cd.name, ()):
                parts[p] = {"occluded": 1, "covered": 1}
            samples.append(FaceSample(path=f, parts=parts, dataset=dataset, license=license,
                                      extra={"class": cd.name}))
    if not samples:
        raise InputError("load_class_folders", "class sub-folders containing images",
                         f"{len(class_dirs)} sub-folder(s) and no images under {root}")
    missing_cls = [c for c in covered_classes if c not in {cd.name for cd in class_dirs}]
    if missing_cls and covered_classes is not DEFAULT_COVERED_CLASSES:
        log.warning("load_class_folders: covered class folder(s) %s absent under %s", missing_cls, root)
    return _finish(samples, skipped, "load_class_folders", root)


# --------------------------------------------------------------------------------------------------
# 11. YunInfants-style labels (seed 000, section 2.1.1)
YUN_FIELDS = ("occ_eye", "occ_eyes", "occ_nose", "occ_mouth", "cov_eyes", "cov_nose", "cov_mouth", "eye_open")


def yun_to_parts(v: Sequence[int]) -> tuple[dict[str, dict[str, int]], int]:
    """(parts, eyes_open) from the 8 YunInfants labels (order ``YUN_FIELDS``, values 1/0/-1).

    * nose, mouth: occluded = occ_nose / occ_mouth, covered = cov_nose / cov_mouth, directly.
    * eyes occluded: occ_eyes = 1 -> both eyes 1 (this wins over a contradictory occ_eye = 0);
      else occ_eye = 0 -> both 0; else occ_eye = 1 with occ_eyes = 0 -> one eye hidden but which one
      is not recorded -> both -1; anything else involving -1 -> both -1.
    * eyes covered: cov_eyes for both eyes. eyes_open = eye_open.
    """
    occ_eye, occ_eyes, occ_nose, occ_mouth, cov_eyes, cov_nose, cov_mouth, eye_open = (int(x) for x in v)
    if occ_eyes == 1:
        eyes_occ = 1
    elif occ_eye == 0:
        eyes_occ = 0
    else:
        eyes_occ = -1
    parts = unknown_parts()
    parts["eye_left"] = {"occluded": eyes_occ, "covered": cov_eyes}
    parts["eye_right"] = {"occluded": eyes_occ, "covered": cov_eyes}
    parts["nose"] = {"occluded": occ_nose, "covered": cov_nose}
    parts["mouth"] = {"occluded": occ_mouth, "covered": cov_mouth}
    return parts, eye_open


def load_yuninfants(label_file: str | Path, image_root: str | Path) -> SampleList:
    """YunInfants-style occlusion / cover / eye-openness labels (seed 000, section 2.1.1).

    Layout: ``label_file`` has one image per line, whitespace separated::

        path occ_eye occ_eyes occ_nose occ_mouth cov_eyes cov_nose cov_mouth eye_open

    ``path`` relative to ``image_root`` (the last 8 fields are the labels, so a path may contain
    spaces); each label is 1, 0 or -1 (the annotator could not tell). Blank lines and lines starting
    with ``#`` are ignored.

    * ``extra["yun_labels"]`` = the raw (8,) int8 vector (order ``YUN_FIELDS``).
    * ``parts``/``eyes_open`` via ``yun_to_parts`` (see there for the eye rules).
    """
    lab = _require_file(label_file, "load_yuninfants", "a YunInfants label file")
    root = _require_dir(image_root, "load_yuninfants image_root", "the image folder")
    expected = "'path occ_eye occ_eyes occ_nose occ_mouth cov_eyes cov_nose cov_mouth eye_open' with labels 1, 0 or -1"
    samples, skipped = [], []
    n_lines = 0
    for n, line in enumerate(lab.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        n_lines += 1
        tok = s.split()
        where = f"{lab} line {n}"
        if len(tok) < 9:
            raise InputError(where, expected, f"{len(tok)} fields")
        rel, labels = " ".join(tok[:-8]), tok[-8:]
        try:
            v = [int(x) for x in labels]
        except ValueError:
            raise InputError(where, expected, "labels " + " ".join(labels)) from None
        if any(x not in (1, 0, -1) for x in v):
            raise InputError(where, expected, "labels " + " ".join(labels))
        img = Path(rel) if Path(rel).is_absolute() else root / rel
        if not img.is_file():
            skipped.append((str(img), f"missing image (line {n})"))
            continue
        parts, eyes_open = yun_to_parts(v)
        samples.append(FaceSample(path=img, parts=parts, eyes_open=eyes_open, dataset="YunInfants",
                                  license=LICENSES["YunInfants"],
                                  extra={"yun_labels": np.asarray(v, np.int8), "line": n}))
    if n_lines == 0:
        raise InputError(str(lab), expected, "no label lines")
    return _finish(samples, skipped, "load_yuninfants", root, "the labelled images under image_root")


# --------------------------------------------------------------------------------------------------
ADAPTERS: dict[str, Callable[..., Any]] = {
    "ibug": load_ibug_pts,
    "wflw": load_wflw,
    "aflw2000": load_aflw2000,
    "cofw": load_cofw,
    "merl_rav": load_merl_rav,
    "biwi": load_biwi,
    "celebamask": load_celebamask,
    "coco_keypoints": load_coco_keypoints,
    "utkface": load_utkface,
    "class_folders": load_class_folders,
    "yuninfants": load_yuninfants,
}


def get_adapter(name: str) -> Callable[..., Any]:
    """The adapter registered under ``name`` (case-insensitive, '-' == '_')."""
    key = name.strip().lower().replace("-", "_")
    if key not in ADAPTERS:
        raise InputError("dataset adapter", f"one of {sorted(ADAPTERS)}", repr(name))
    return ADAPTERS[key]
