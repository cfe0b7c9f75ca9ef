"""Convert MediaPipe's Apache-2.0 face models to ONNX for cribsight (one-off, reproducible).

Sources (both Apache-2.0, fetched from the package registries, never at cribsight run time):
  * PyPI wheel ``mediapipe==0.10.21``: ``mediapipe/modules/face_detection/face_detection_short_range.tflite``,
    ``mediapipe/modules/face_landmark/face_landmark.tflite`` and the wheel's LICENSE.
  * npm ``@mediapipe/face_detection@0.4.1657300184``: ``face_detection_full_range.tflite`` (the dense
    full-range model; the sparse one in the wheel does not convert).
  * npm ``@mediapipe/face_mesh@0.4.1657299874``: the packed asset
    ``geometry_pipeline_metadata_landmarks.binarypb`` (canonical 3D face, 468 vertices).

Run it from a virtual environment with ``tensorflow-cpu`` and ``tf2onnx`` installed:

    python -m venv /tmp/conv && /tmp/conv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0
    /tmp/conv/bin/python tools/convert_mediapipe.py --work /tmp/mp-src

It writes ``src/cribsight/weights/*.onnx``, ``canonical_face_468.npy`` and updates the ``sha256``
fields of ``src/cribsight/weights/manifest.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "cribsight" / "weights"
WHEEL = "mediapipe==0.10.21"
NPM_DET = "@mediapipe/face_detection@0.4.1657300184"
NPM_MESH = "@mediapipe/face_mesh@0.4.1657299874"


def fetch(work: Path) -> dict[str, Path]:
    work.mkdir(parents=True, exist_ok=True)
    if not list(work.glob("mediapipe-0.10.21-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(work)], check=True)
    for pkg in (NPM_DET, NPM_MESH):
        subprocess.run(["npm", "pack", pkg], cwd=work, check=True, capture_output=True)
    wheel = next(work.glob("mediapipe-0.10.21-*.whl"))
    out: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as z:
        for name, key in [
            ("mediapipe/modules/face_detection/face_detection_short_range.tflite", "short"),
            ("mediapipe/modules/face_landmark/face_landmark.tflite", "mesh"),
            ("mediapipe-0.10.21.dist-info/LICENSE", "license"),
        ]:
            p = work / Path(name).name
            p.write_bytes(z.read(name))
            out[key] = p
    det_tgz = next(work.glob("mediapipe-face_detection-*.tgz"))
    with tarfile.open(det_tgz) as t:
        p = work / "face_detection_full_range.tflite"
        p.write_bytes(t.extractfile("package/face_detection_full_range.tflite").read())
        out["full"] = p
    mesh_tgz = next(work.glob("mediapipe-face_mesh-*.tgz"))
    with tarfile.open(mesh_tgz) as t:
        loader = t.extractfile("package/face_mesh_solution_packed_assets_loader.js").read().decode()
        data = t.extractfile("package/face_mesh_solution_packed_assets.data").read()
    key = "geometry_pipeline_metadata_landmarks.binarypb"
    i = loader.index(key)
    start = int(loader[i:].split('"start":')[1].split(",")[0])
    end = int(loader[i:].split('"end":')[1].split("}")[0])
    p = work / key
    p.write_bytes(data[start:end])
    out["geometry"] = p
    return out


# --- minimal protobuf wire-format reader (the geometry metadata is a tiny message) ----------------
def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, v


def canonical_face(binarypb: bytes) -> np.ndarray:
    """GeometryPipelineMetadata.canonical_mesh (field 1) -> Mesh3d.vertex_buffer (field 3, packed floats,
    5 per vertex: x, y, z, u, v for VERTEX_PT). Returns (468, 3) float32 in centimetres."""
    mesh = next(v for f, w, v in _fields(binarypb) if f == 1 and w == 2)
    floats: list[float] = []
    for f, w, v in _fields(mesh):
        if f == 3 and w == 2:
            floats.extend(struct.unpack(f"<{len(v) // 4}f", v))
        elif f == 3 and w == 5:
            floats.append(struct.unpack("<f", v)[0])
    arr = np.asarray(floats, np.float32).reshape(-1, 5)
    if arr.shape[0] != 468:
        raise ValueError(f"expected 468 vertices, found {arr.shape[0]}")
    return arr[:, :3].copy()


def canonical_triangles(binarypb: bytes) -> np.ndarray:
    """Mesh3d.index_buffer (field 4, uint32, 3 per triangle) -> (T, 3) int32 vertex indices."""
    mesh = next(v for f, w, v in _fields(binarypb) if f == 1 and w == 2)
    idx = [v for f, w, v in _fields(mesh) if f == 4 and w == 0]
    return np.asarray(idx, np.int32).reshape(-1, 3)


def convert(tflite: Path, onnx_out: Path) -> None:
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite), "--output", str(onnx_out),
                    "--opset", "13"], check=True, capture_output=True)


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/mp-src"))
    ap.add_argument("--only-geometry", action="store_true", help="only (re)write the canonical face files")
    args = ap.parse_args()
    src = fetch(args.work)
    if not args.only_geometry:
        convert(src["short"], WEIGHTS / "face_detection_short_range.onnx")
        convert(src["full"], WEIGHTS / "face_detection_full_range.onnx")
        convert(src["mesh"], WEIGHTS / "face_landmark.onnx")
    geometry = src["geometry"].read_bytes()
    np.save(WEIGHTS / "canonical_face_468.npy", canonical_face(geometry))
    np.save(WEIGHTS / "canonical_face_468_triangles.npy", canonical_triangles(geometry))
    (WEIGHTS / "LICENSE-mediapipe.txt").write_bytes(src["license"].read_bytes())
    manifest_path = WEIGHTS / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name, entry in manifest["files"].items():
        entry["sha256"] = sha256(WEIGHTS / name)
        src_key = entry.get("source_file")
        if src_key:
            entry["source_sha256"] = sha256(args.work / src_key)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print("wrote", ", ".join(manifest["files"]))


if __name__ == "__main__":
    main()
