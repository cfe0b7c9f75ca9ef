"""``cribsight data build CONFIG --out DIR``: training shards from real faces + synthetic occlusion.

A build config (YAML holding ``BuildConfig``) names the sources (a dataset adapter and its
arguments, a sampling weight, whether teacher labels are needed), the number of samples, the
split and the synthetic-occlusion settings. Output:
* ``shard-00000.npz`` ... arrays of ``SHARD_KEYS`` (see ``synth.synthesize``), plus ``source``;
* ``manifest.json``: counts per source, per occluder family, per label, label balance, the resolved
  config, teacher cache statistics and the generation time;
* ``config.yaml``: the resolved config.
Splits: each source image goes to ``holdout`` when a stable hash of its file name falls below
``holdout_fraction``, else to ``train``; the holdout split also uses other generator seeds and its
own texture bank, so a held-out set shares neither faces nor occluder variants with training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..datadir import data_root
from ..errors import InputError
from ..types import PART_NAMES
from .negatives import KINDS as NEGATIVE_KINDS
from .negatives import NegativeConfig, NegativePool
from .occluders import TextureBank
from .sample import FaceSample
from .synth import FAMILY_NAMES, SynthConfig, synthesize

SHARD_KEYS = ("image", "landmarks", "visibility", "pose", "mask", "face_mask", "parts", "cover_fraction",
              "eyes_open", "family", "angle", "infrared", "flipped", "face")


@dataclass
class SourceConfig:
    name: str
    adapter: str
    args: dict = field(default_factory=dict)
    weight: float = 1.0
    limit: int | None = None
    teacher: bool = True
    clean: bool = True  # the source images are assumed uncovered (parts covered = 0) unless the adapter says otherwise


@dataclass
class BuildConfig:
    samples: int = 1000
    seed: int = 0
    split: str = "train"  # "train" or "holdout"
    holdout_fraction: float = 0.1
    shard_size: int = 1000
    teacher_cache: str | None = None
    sources: list[SourceConfig] = field(default_factory=list)
    synth: SynthConfig = field(default_factory=SynthConfig)
    negatives: NegativeConfig = field(default_factory=NegativeConfig)  # non-face crops (data.negatives)

    @classmethod
    def from_dict(cls, d: dict) -> "BuildConfig":
        from ..config import check_fields

        d = dict(check_fields(cls, d, "build config"))
        srcs = [SourceConfig(**check_fields(SourceConfig, s, f"build config: sources[{i}]"))
                for i, s in enumerate(d.pop("sources", None) or [])]
        syn = SynthConfig(**check_fields(SynthConfig, d.pop("synth", None) or {}, "build config: synth"))
        neg = NegativeConfig(**check_fields(NegativeConfig, d.pop("negatives", None) or {}, "build config: negatives"))
        cfg = cls(sources=srcs, synth=syn, negatives=neg, **d)
        for name in ("samples", "shard_size"):
            if getattr(cfg, name) < 1:
                raise InputError(name, "a whole number >= 1", repr(getattr(cfg, name)))
        if cfg.split not in ("train", "holdout"):
            raise InputError("split", "train or holdout", repr(cfg.split))
        if not cfg.sources:
            raise InputError("build config", "at least one source", "none")
        bad_kinds = set(cfg.negatives.kinds) - set(NEGATIVE_KINDS)
        if bad_kinds:
            raise InputError("negatives.kinds", f"kinds from {list(NEGATIVE_KINDS)}", str(sorted(bad_kinds)))
        unknown_neg = set(cfg.negatives.sources) - {s.name for s in cfg.sources}
        if unknown_neg:
            raise InputError("negatives.sources", f"names of build sources {[s.name for s in cfg.sources]}",
                             str(sorted(unknown_neg)))
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# a source path starting with this is under the data folder ($CRIBSIGHT_DATA, else ../shared/data)
DATA_PLACEHOLDER = "{data}"


def load_config(path: Path) -> BuildConfig:
    from ..config import read_yaml_mapping

    p = Path(path)
    d = read_yaml_mapping(p, "a YAML build config")
    base = p.parent
    tc = d.get("teacher_cache")
    if isinstance(tc, str) and (tc.startswith("./") or tc.startswith("../")):
        d["teacher_cache"] = str((base / tc).resolve())
    for s in d.get("sources") or []:  # relative data paths are relative to the config file
        if not isinstance(s, dict) or not isinstance(s.get("args", {}), dict):
            continue  # BuildConfig.from_dict says what is wrong with it
        for k, v in list(s.get("args", {}).items()):
            if isinstance(v, str) and v.startswith(DATA_PLACEHOLDER):  # the data folder, wherever it is
                s["args"][k] = str(data_root() / v[len(DATA_PLACEHOLDER):].lstrip("/"))
            elif isinstance(v, str) and (v.startswith("./") or v.startswith("../")):
                s["args"][k] = str((base / v).resolve())
    return BuildConfig.from_dict(d)


def in_holdout(path: Path | None, fraction: float) -> bool:
    key = (path.name if path is not None else "").encode()
    return int(hashlib.sha1(key).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def split_samples(src: SourceConfig, cfg: BuildConfig) -> list[FaceSample]:
    """The source's samples that belong to the build's split (and its ``limit``)."""
    from .adapters import ADAPTERS

    if src.adapter not in ADAPTERS:
        raise InputError(f"source {src.name}", f"an adapter from {sorted(ADAPTERS)}", repr(src.adapter))
    samples = list(ADAPTERS[src.adapter](**src.args))
    want_holdout = cfg.split == "holdout"
    samples = [s for s in samples if in_holdout(s.path, cfg.holdout_fraction) == want_holdout]
    if src.limit:
        samples = samples[:: max(1, len(samples) // src.limit)][: src.limit]
    return samples


def prepare_source(src: SourceConfig, cfg: BuildConfig, teacher, log: Callable[[str], None]) -> list[FaceSample]:
    samples = split_samples(src, cfg)
    out = []
    for s in samples:
        if src.teacher:
            t = teacher.apply(s)
            if t is None:
                continue
            s = t
        if s.landmarks is None or not np.isfinite(s.landmarks).all():
            continue
        if src.clean:
            parts = {p: dict(v) for p, v in s.parts.items()}
            for p in PART_NAMES:
                if parts[p]["covered"] == -1:
                    parts[p] = {"occluded": 0 if parts[p]["occluded"] == -1 else parts[p]["occluded"], "covered": 0}
            s = s.with_(parts=parts)
        s.extra["source"] = src.name
        s.image_array = None  # keep memory low: images reload lazily
        out.append(s)
    log(f"source {src.name}: {len(out)} usable faces of {len(samples)} ({cfg.split})")
    return out


def generate(pool: dict[str, list[FaceSample]], weights: dict[str, float], cfg: BuildConfig,
             progress: Callable[[Iterable], Iterable] = iter,
             negatives: NegativePool | None = None) -> Iterable[tuple[str, dict]]:
    """Yield (source name, synthesized sample) ``cfg.samples`` times, deterministically; with a
    negative pool, a ``cfg.negatives.fraction`` share are non-face crops (source name "nonface")."""
    names = [n for n in pool if pool[n]]
    if not names:
        raise InputError("build", "at least one source with usable faces", "none")
    w = np.array([weights[n] for n in names], np.float64)
    w /= w.sum()
    split_seed = 0 if cfg.split == "train" else 1_000_003
    bank = TextureBank(seed=cfg.seed + split_seed)
    for i in progress(range(cfg.samples)):
        rng = np.random.default_rng([cfg.seed, split_seed, i])
        if negatives is not None and rng.random() < cfg.negatives.fraction:
            neg = negatives.draw(rng, cfg.synth)
            if neg is not None:
                yield "nonface", neg
                continue
        name = names[rng.choice(len(names), p=w)]
        s = pool[name][rng.integers(len(pool[name]))]
        out = synthesize(s, rng, cfg.synth, bank)
        s.image_array = None
        yield name, out


def build(cfg: BuildConfig, out_dir: Path, progress: Callable[[Iterable], Iterable] = iter,
          log: Callable[[str], None] = print) -> dict:
    from .teacher import Teacher

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        from ..errors import OutputError

        raise OutputError(str(out_dir), "a folder for the shards", "an existing file")
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    teacher = Teacher(Path(cfg.teacher_cache) if cfg.teacher_cache else out_dir / "teacher_cache.jsonl")
    pool = {s.name: prepare_source(s, cfg, teacher, log) for s in cfg.sources}
    negatives = None
    if cfg.negatives.fraction > 0 and cfg.negatives.sources:
        scenes = [s for src in cfg.sources if src.name in cfg.negatives.sources for s in split_samples(src, cfg)]
        negatives = NegativePool(scenes, cfg.negatives, teacher.analyzer)
        log(f"negatives: {len(negatives)} scenes, {len(negatives.detector)} detector false boxes")
    t1 = time.perf_counter()
    counts: dict[str, Any] = {"per_source": {}, "per_family": {}, "covered": {p: 0 for p in PART_NAMES},
                              "occluded": {p: 0 for p in PART_NAMES}, "unknown": {p: 0 for p in PART_NAMES},
                              "eyes_open": {"1": 0, "0": 0, "-1": 0},
                              "visibility": {"visible": 0, "external": 0, "self": 0, "outside": 0}, "infrared": 0,
                              "nonface": {}}
    buf: dict[str, list] = {k: [] for k in SHARD_KEYS + ("source",)}
    shards = []

    def flush():
        if not buf["image"]:
            return
        if not shards:
            # a folder rebuilt in place is not a shard set until the new manifest is written: a build
            # stopped after this must not leave the old manifest describing new shards (one that
            # fails before, e.g. on a missing source, leaves the old set whole)
            (out_dir / "manifest.json").unlink(missing_ok=True)
        path = out_dir / f"shard-{len(shards):05d}.npz"
        np.savez(path, **{k: np.stack(v) if k != "source" else np.array(v) for k, v in buf.items()})
        shards.append(path.name)
        for v in buf.values():
            v.clear()

    n = 0
    for name, s in generate(pool, {src.name: src.weight for src in cfg.sources}, cfg, progress, negatives):
        for k in SHARD_KEYS:
            buf[k].append(s[k])
        buf["source"].append(name)
        n += 1
        counts["per_source"][name] = counts["per_source"].get(name, 0) + 1
        if not s["face"]:
            kind = s["negative_kind"]
            counts["nonface"][kind] = counts["nonface"].get(kind, 0) + 1
            if len(buf["image"]) >= cfg.shard_size:
                flush()
            continue
        fam = FAMILY_NAMES[int(s["family"])]
        counts["per_family"][fam] = counts["per_family"].get(fam, 0) + 1
        for i, p in enumerate(PART_NAMES):
            counts["occluded"][p] += int(s["parts"][i, 0] == 1)
            counts["covered"][p] += int(s["parts"][i, 1] == 1)
            counts["unknown"][p] += int(s["parts"][i, 1] == -1)
        counts["eyes_open"][str(int(s["eyes_open"]))] += 1
        v = s["visibility"]
        for code, key in ((0, "visible"), (1, "external"), (2, "self"), (3, "outside")):
            counts["visibility"][key] += int((v == code).sum())
        counts["infrared"] += int(s["infrared"])
        if len(buf["image"]) >= cfg.shard_size:
            flush()
    flush()
    t2 = time.perf_counter()
    faces = n - sum(counts["nonface"].values())
    balance = {f"{kind}.{p}": counts[kind][p] / max(1, faces) for kind in ("occluded", "covered", "unknown")
               for p in PART_NAMES}  # over the face samples
    manifest = {
        "samples": n, "face_samples": faces, "split": cfg.split, "image_size": cfg.synth.size, "shards": shards, "counts": counts,
        "label_balance": balance, "faces_per_source": {k: len(v) for k, v in pool.items()},
        "teacher": {"version": teacher.version, "cache_hits": teacher.hits, "cache_misses": teacher.misses},
        "seconds": {"prepare": round(t1 - t0, 2), "generate": round(t2 - t1, 2)},
        "samples_per_second": round(n / max(1e-9, t2 - t1), 1), "config": cfg.to_dict(),
        "keys": list(SHARD_KEYS) + ["source"],
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    import yaml

    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return manifest


def load_shards(directory: Path, limit: int | None = None) -> dict[str, np.ndarray]:
    d = Path(directory)
    man = d / "manifest.json"
    if not man.is_file():
        raise InputError(str(d), "a shard folder with manifest.json (cribsight data build)", "no manifest")
    shards = json.loads(man.read_text())["shards"]
    parts: dict[str, list] = {}
    total = 0
    for name in shards:
        with np.load(d / name) as z:
            for k in z.files:
                parts.setdefault(k, []).append(z[k])
            total += len(z["image"])
        if limit and total >= limit:
            break
    out = {k: np.concatenate(v) for k, v in parts.items()}
    if limit:
        out = {k: v[:limit] for k, v in out.items()}
    return out


VIS_COLOURS = {0: (60, 220, 60), 1: (255, 40, 40), 2: (60, 120, 255), 3: (255, 220, 0), -1: (150, 150, 150)}


def _caption(img: np.ndarray, text: str, y: int) -> None:
    import cv2

    cv2.putText(img, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)


def contact_sheet(data: dict[str, np.ndarray], n: int = 48, cols: int = 8, scale: int = 2) -> np.ndarray:
    """RGB grid: landmarks coloured by visibility (green visible, red covered, blue self-occluded,
    yellow outside), the occluder outline (magenta), the family and the part labels."""
    import cv2

    tiles = []
    is_face = data["face"] if "face" in data else np.ones(len(data["image"]), np.int8)
    for i in range(min(n, len(data["image"]))):
        img = cv2.resize(data["image"][i], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        if not is_face[i]:
            _caption(img, "non-face", 14)
            tiles.append(img)
            continue
        cs, _ = cv2.findContours(cv2.resize(data["mask"][i], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST),
                                 cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, cs, -1, (255, 0, 255), 1)
        for (x, y), v in zip(data["landmarks"][i] * scale, data["visibility"][i]):
            cv2.circle(img, (int(round(x)), int(round(y))), 2, VIS_COLOURS[int(v)], -1, cv2.LINE_AA)
        parts = data["parts"][i]
        fam = FAMILY_NAMES[int(data["family"][i])]
        lab = " ".join(f"{p}:{'C' if parts[k, 1] else ('o' if parts[k, 0] else '-')}"
                       for k, p in enumerate(("eL", "eR", "N", "M")))
        eo = int(data["eyes_open"][i])
        for text, y in ((fam + ("" if eo < 0 else f" eyes {'open' if eo else 'shut'}"), 14), (lab, img.shape[0] - 6)):
            _caption(img, text, y)
        tiles.append(img)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[r:r + cols], 1) for r in range(0, len(tiles), cols)]
    return np.concatenate(rows, 0)
