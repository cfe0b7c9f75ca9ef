"""Shard datasets for training: mixed sampling, input normalisation and target construction."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.build import load_shards
from ..data.sample import EXTERNAL, SELF, VISIBLE
from ..types import PART_NAMES

MEAN, STD = 0.5, 0.5  # input = (rgb / 255 - 0.5) / 0.5, in [-1, 1]


@dataclass
class Batch:
    image: torch.Tensor  # (N, 3, S, S) normalised
    landmarks: torch.Tensor  # (N, 68, 2) input pixels
    loc_known: torch.Tensor  # (N, 68) bool: location known and inside the crop
    visible: torch.Tensor  # (N, 68) float 1 visible, 0 hidden, -1 unknown
    pose: torch.Tensor  # (N, 3) degrees, NaN unknown
    mask: torch.Tensor  # (N, 1, S, S) occluder on the face
    parts: torch.Tensor  # (N, 4, 2) long, -1 unknown
    eyes_open: torch.Tensor  # (N,) long, -1 unknown
    face: torch.Tensor  # (N,) float 1 a face, 0 a non-face crop (data.negatives)
    # (N, 4) float weight of each covered label in the cover loss: 1, or the weight given in
    # ``covered_unknown_as_negative`` where an unknown label was read as uncovered; None: all 1
    cover_weight: torch.Tensor | None = None
    occluded_weight: torch.Tensor | None = None  # the same for the occluded labels (``occluded_unknown_as_negative``)


def _names(value) -> set[str]:
    """A source-name option as a set: a list, or one name written without brackets in YAML."""
    return {value} if isinstance(value, str) else set(value or ())


def _check_weights(where: str, weights: dict) -> None:
    """Every {part: weight} a number in (0, 1] (a typed error naming the part otherwise)."""
    from ..errors import InputError

    for part, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 < float(w) <= 1.0:
            raise InputError(f"{where}.{part}", "a weight in (0, 1]", repr(w))


def _parts_by_source(value, option: str = "covered_unknown_as_negative") -> dict[str, np.ndarray]:
    """``covered_unknown_as_negative`` (or ``occluded_unknown_as_negative``) as {source: (4,) float
    over PART_NAMES, the weight of that part's converted labels in the loss, 0 = not converted}: a list (or one name) names sources
    whose every part is converted at weight 1; a mapping names the parts per source, as a list
    (weight 1) or as {part: weight in (0, 1]}."""
    from ..errors import InputError

    if not isinstance(value, dict):
        return {name: np.ones(len(PART_NAMES)) for name in _names(value)}
    out = {}
    for source, parts in value.items():
        where = f"{option}.{source}"
        if not isinstance(parts, (dict, list, tuple, str)):
            raise InputError(where, "a list of part names or a mapping {part: weight}", repr(parts))
        weights = dict(parts) if isinstance(parts, dict) else {p: 1.0 for p in _names(parts)}
        unknown = set(weights) - set(PART_NAMES)
        if unknown or not weights:
            raise InputError(where, f"part names (a list, or {{part: weight}}) from {', '.join(PART_NAMES)}",
                             ", ".join(sorted(map(str, unknown))) if unknown else "no parts")
        _check_weights(where, weights)
        out[str(source)] = np.array([float(weights.get(p, 0.0)) for p in PART_NAMES])
    return out


def _pitched_down(value) -> tuple[float, np.ndarray] | None:
    """``covered_unknown_pitched_down`` ({below_deg: pitch, weights: {part: weight in (0, 1]}}) as
    (pitch in degrees, (4,) weights over PART_NAMES, NaN = part not named), or None."""
    from ..errors import InputError

    if value is None:
        return None
    where = "covered_unknown_pitched_down"
    if not isinstance(value, dict) or set(value) != {"below_deg", "weights"}:
        raise InputError(where, "a mapping {below_deg: degrees, weights: {part: weight}}", repr(value))
    below = value["below_deg"]
    if isinstance(below, bool) or not isinstance(below, (int, float)) or not -90.0 <= float(below) <= 0.0:
        raise InputError(f"{where}.below_deg", "a pitch in [-90, 0] degrees (negative: looking down)", repr(below))
    weights = value["weights"]
    if not isinstance(weights, dict) or not weights or set(weights) - set(PART_NAMES):
        raise InputError(f"{where}.weights", f"{{part: weight}} with parts from {', '.join(PART_NAMES)}", repr(weights))
    _check_weights(f"{where}.weights", weights)
    return float(below), np.array([float(weights.get(p, np.nan)) for p in PART_NAMES])


def _within_pose(value) -> tuple[float, float] | None:
    """``occluded_unknown_within_pose`` ({abs_yaw_below: degrees, pitch_above: degrees}) as (yaw
    bound in (0, 90], pitch bound in [-90, 0]), or None."""
    from ..errors import InputError

    if value is None:
        return None
    where = "occluded_unknown_within_pose"
    if not isinstance(value, dict) or set(value) != {"abs_yaw_below", "pitch_above"}:
        raise InputError(where, "a mapping {abs_yaw_below: degrees, pitch_above: degrees}", repr(value))
    yaw, pitch = value["abs_yaw_below"], value["pitch_above"]
    if isinstance(yaw, bool) or not isinstance(yaw, (int, float)) or not 0.0 < float(yaw) <= 90.0:
        raise InputError(f"{where}.abs_yaw_below", "a yaw in (0, 90] degrees", repr(yaw))
    if isinstance(pitch, bool) or not isinstance(pitch, (int, float)) or not -90.0 <= float(pitch) <= 0.0:
        raise InputError(f"{where}.pitch_above", "a pitch in [-90, 0] degrees (negative: looking down)", repr(pitch))
    return float(yaw), float(pitch)


class ShardSet:
    """All shards of one or more folders in memory, sampled with per-folder ratios (seed 003's
    mixed-dataset sampling)."""

    def __init__(self, sources: list[dict], limit: int | None = None, ignore_part_labels: list | None = None,
                 covered_unknown_as_negative: list | dict | None = None,
                 occluded_unknown_as_negative: list | dict | None = None,
                 covered_unknown_pitched_down: dict | None = None,
                 occluded_unknown_within_pose: dict | None = None):
        self.parts: list[dict[str, np.ndarray]] = []
        # part labels (occluded / covered) of samples from these sources read as unknown (-1)
        self.ignore_part_labels = _names(ignore_part_labels)
        # covered labels of samples from these sources read unknown (-1) as uncovered (0): positive-
        # unlabelled sources whose unlabelled parts are mostly uncovered (occluded labels untouched).
        # A list of sources converts every part; a mapping {source: [part, ...]} only the parts named.
        # A mapping {source: {part: weight}} also weighs the converted labels in the cover loss.
        self._cover_parts = _parts_by_source(covered_unknown_as_negative)
        # the same for occluded labels (index 0): SyRIP's are one-sided too (occluded or unknown)
        self._occ_parts = _parts_by_source(occluded_unknown_as_negative, "occluded_unknown_as_negative")
        # converted cover labels of crops whose pitch label is below a threshold (looking down) take
        # other weights: an infant looking down hides its eyes under its own brow, not under a cover
        self._pitched = _pitched_down(covered_unknown_pitched_down)
        if self._pitched is not None:
            from ..errors import InputError

            if not self._cover_parts:
                raise InputError("covered_unknown_pitched_down", "covered_unknown_as_negative set (it reweighs its labels)", "none")
            converted = np.any([w > 0 for w in self._cover_parts.values()], 0)
            idle = [p for p, w, c in zip(PART_NAMES, self._pitched[1], converted) if np.isfinite(w) and not c]
            if idle:  # a weight for a part no source converts would silently do nothing
                raise InputError("covered_unknown_pitched_down.weights",
                                 "parts that covered_unknown_as_negative converts", ", ".join(idle))
        # unknown occluded labels are converted only on crops whose pose label is known and within
        # these bounds (a face the teacher saw frontal enough that its nose and mouth are in view);
        # elsewhere they stay unknown: a turned-away or face-down head must not learn "visible"
        self._occ_pose = _within_pose(occluded_unknown_within_pose)
        if self._occ_pose is not None and not self._occ_parts:
            from ..errors import InputError

            raise InputError("occluded_unknown_within_pose", "occluded_unknown_as_negative set (it limits its conversions)", "none")
        self.ratios: list[float] = []
        for s in sources:
            self.parts.append(load_shards(Path(s["path"]), limit))
            self.ratios.append(float(s.get("ratio", 1.0)))
        for option, names in (("ignore_part_labels", self.ignore_part_labels),
                              ("covered_unknown_as_negative", set(self._cover_parts)),
                              ("occluded_unknown_as_negative", set(self._occ_parts))):
            if names:
                self._check_source_names(option, names)
        r = np.array(self.ratios)
        self.ratios = list(r / r.sum())
        self.size = self.parts[0]["image"].shape[1]

    def _check_source_names(self, option: str, names: set) -> None:
        from ..errors import InputError

        if not all("source" in part for part in self.parts):
            raise InputError(option, "shards with a per-sample 'source'", "shards without one")
        known = {str(n) for part in self.parts for n in np.unique(part["source"])}
        unknown = names - known
        if unknown:  # a misspelt name would silently keep the labels it was meant to change
            raise InputError(option, f"source names in the shards ({', '.join(sorted(known))})", ", ".join(sorted(unknown)))

    def _sources(self, idx: list[tuple[int, int]]) -> list[str]:
        """The source names of the samples ``idx`` (every shard has a 'source' when an option that
        needs one is set: checked in __init__)."""
        return [str(self.parts[w]["source"][i]) for w, i in idx]

    def __len__(self) -> int:
        return sum(len(p["image"]) for p in self.parts)

    def sample_indices(self, rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
        which = rng.choice(len(self.parts), size=n, p=self.ratios)
        return [(int(w), int(rng.integers(len(self.parts[w]["image"])))) for w in which]

    def batch(self, idx: list[tuple[int, int]], input_size: int) -> Batch:
        def take(key):
            return np.stack([self.parts[w][key][i] for w, i in idx])

        # shards built before non-face crops existed hold faces only
        face = np.array([self.parts[w]["face"][i] if "face" in self.parts[w] else 1 for w, i in idx], np.float32)
        img = torch.from_numpy(take("image")).permute(0, 3, 1, 2).float() / 255.0
        S = img.shape[-1]
        if input_size != S:
            img = F.interpolate(img, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False)
        img = (img - MEAN) / STD
        k = input_size / S
        lm = torch.from_numpy(take("landmarks")).float()
        lm = (lm + 0.5) * k - 0.5  # pixel centres at integers in both frames
        vis = torch.from_numpy(take("visibility")).long()
        inside = (lm >= 0).all(-1) & (lm <= input_size - 1).all(-1)
        loc_known = ((vis == VISIBLE) | (vis == EXTERNAL) | (vis == SELF)) & inside
        visible = torch.where(vis == VISIBLE, 1.0, 0.0)
        visible = torch.where(vis < 0, -1.0, visible)
        m = torch.from_numpy(take("mask") * take("face_mask")).float()[:, None]
        if input_size != S:
            m = F.interpolate(m, size=(input_size, input_size), mode="area")
        parts = take("parts").astype(np.int64)
        pose = take("pose")  # (N, 3) yaw, pitch, roll degrees, NaN unknown
        weights = [None, None]  # occluded, covered
        if self._cover_parts or self._occ_parts or self.ignore_part_labels:
            src = self._sources(idx)
            none = np.zeros(len(PART_NAMES))
            for k, by_source in ((0, self._occ_parts), (1, self._cover_parts)):
                if not by_source:
                    continue
                lab = parts[:, :, k]  # a view: (N, 4) labels
                weight = np.array([by_source.get(s, none) for s in src]).reshape(len(src), len(PART_NAMES))
                converted = (weight > 0) & (lab == -1)
                if k == 0 and self._occ_pose is not None:
                    yaw, pitch = pose[:, 0], pose[:, 1]
                    with np.errstate(invalid="ignore"):  # NaN (unknown pose) compares False: not converted
                        frontal = (np.abs(yaw) < self._occ_pose[0]) & (pitch > self._occ_pose[1])
                    converted &= frontal[:, None]
                lab[converted] = 0
                if k == 1 and self._pitched is not None:
                    below, override = self._pitched
                    pitch = pose[:, 1]
                    down = (np.isfinite(pitch) & (pitch < below))[:, None] & converted & np.isfinite(override)[None]
                    weight = np.where(down, np.broadcast_to(override, weight.shape), weight)
                if (weight[converted] != 1).any():
                    weights[k] = torch.from_numpy(np.where(converted, weight, 1.0).astype(np.float32))
            if self.ignore_part_labels:
                parts[np.array([s in self.ignore_part_labels for s in src], bool)] = -1
        return Batch(img, lm, loc_known, visible, torch.from_numpy(pose).float(), m,
                     torch.from_numpy(parts), torch.from_numpy(take("eyes_open")).long(),
                     torch.from_numpy(face), weights[1], weights[0])


def to_heatmap(xy: torch.Tensor, input_size: int, hm_size: int) -> torch.Tensor:
    """Input pixel coordinates -> heatmap pixel coordinates (pixel centres at integers)."""
    stride = input_size / hm_size
    return (xy + 0.5) / stride - 0.5


def from_heatmap(xy, input_size: int, hm_size: int):
    stride = input_size / hm_size
    return (xy + 0.5) * stride - 0.5
