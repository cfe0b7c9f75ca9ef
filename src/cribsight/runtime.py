"""ONNX Runtime sessions and the weight manifest (sha256-checked at load).

Every weight file under ``cribsight/weights`` has an entry in ``manifest.json`` with its sha256,
input specification (shape, layout, colour order, value range), output meaning, provenance and
license. Preprocessing is read from the manifest, never inferred from tensor shapes.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import WeightsError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    path = WEIGHTS_DIR / "manifest.json"
    if not path.is_file():
        raise WeightsError(f"weight manifest missing: expected {path}")
    return json.loads(path.read_text())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=None)
def weight_path(name: str) -> Path:
    """Path of a weight file after checking it against the manifest's sha256."""
    entry = manifest()["files"].get(name)
    if entry is None:
        raise WeightsError(f"{name}: expected an entry in weights/manifest.json, found none")
    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise WeightsError(f"{name}: expected file {path}, found nothing")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise WeightsError(f"{name}: expected sha256 {entry['sha256']}, found {digest}")
    return path


def weight_entry(name: str) -> dict[str, Any]:
    weight_path(name)
    return manifest()["files"][name]


def default_threads() -> int:
    """Intra-op threads per ONNX Runtime session: CRIBSIGHT_THREADS if set, else 1.

    The pretrained models are small (2-4 ms per call): on this project's 2-core machine one thread
    measured 14.4 ms per 1280x720 frame against 22.5 ms with two (``cribsight bench --threads N``),
    the thread hand-off costing more than it saves. The spare core is left for video decoding or a
    second analyser.
    """
    env = os.environ.get("CRIBSIGHT_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            from .errors import InputError

            raise InputError("CRIBSIGHT_THREADS", "a whole number of threads", repr(env)) from None
    return 1


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class OnnxModel:
    """One ONNX Runtime session plus its manifest entry."""

    name: str
    entry: dict[str, Any]
    session: Any
    input_name: str
    output_names: list[str]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: x})


def load_model(name: str, threads: int | None = None) -> OnnxModel:
    """A shipped weight file by manifest name (sha256-checked), or any ``.onnx`` path that has its
    manifest entry as JSON beside it (``cribsight export`` writes one), e.g. a run being evaluated."""
    import onnxruntime as ort

    p = Path(name)
    if p.suffix == ".onnx" and p.is_file():
        side = p.with_suffix(".json")
        if not side.is_file():
            raise WeightsError(f"{p}: expected its manifest entry {side}, found nothing")
        path, entry = p, json.loads(side.read_text())
    else:
        path = weight_path(name)
        entry = manifest()["files"][name]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    expected = entry["input"]["shape"]
    if len(inp.shape) != len(expected) or any(not isinstance(a, str) and a is not None and a != b
                                               for a, b in zip(inp.shape, expected)):
        raise WeightsError(f"{name}: manifest input shape {expected}, model has {inp.shape}")
    outs = [entry["outputs"][k]["name"] for k in entry["outputs"]]
    return OnnxModel(name, entry, sess, inp.name, outs)
