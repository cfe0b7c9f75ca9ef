"""ONNX Runtime vs the original TFLite models on real images.

Needs the original runtime (``pip install 'cribsight[parity]'``, i.e. TensorFlow) and the source
``.tflite`` files that tools/convert_mediapipe.py fetched (``CRIBSIGHT_TFLITE_DIR``, default
/tmp/mp-src); skipped, saying which is missing, otherwise.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from cribsight.runtime import manifest, sha256_file

from .conftest import SHARED

TFLITE_DIR = Path(os.environ.get("CRIBSIGHT_TFLITE_DIR", "/tmp/mp-src"))


def _images(portrait):
    imgs = [portrait]
    from cribsight.io.images import read_image

    syrip = SHARED / "syrip" / "images"
    if syrip.is_dir():
        imgs += [read_image(p) for p in sorted(syrip.iterdir())[:4]]
    return imgs


@pytest.mark.parametrize("onnx_name", ["face_detection_full_range.onnx", "face_detection_short_range.onnx",
                                       "face_landmark.onnx"])
def test_onnx_matches_tflite(onnx_name, analyzer, portrait):
    tf = pytest.importorskip("tensorflow", reason="the original TFLite runtime (cribsight[parity]) is not installed")
    entry = manifest()["files"][onnx_name]
    src = TFLITE_DIR / entry["source_file"]
    if not src.is_file():
        pytest.skip(f"source model {src} absent: run tools/convert_mediapipe.py --work {TFLITE_DIR}")
    assert sha256_file(src) == entry["source_sha256"], "the .tflite is not the one the ONNX was converted from"
    interp = tf.lite.Interpreter(model_path=str(src))
    interp.allocate_tensors()
    tin = interp.get_input_details()[0]
    outs = {d["name"]: d["index"] for d in interp.get_output_details()}
    from cribsight.runtime import load_model

    model = load_model(onnx_name)
    names = [entry["outputs"][k]["name"] for k in entry["outputs"]]
    for img in _images(portrait):
        if entry["kind"] == "face_detector":
            det = analyzer.full if "full" in onnx_name else analyzer.short
            x = det.preprocess(img)[0]
        else:
            import cv2

            x = cv2.resize(img, (192, 192)).astype(np.float32)[None] / 255.0
        interp.set_tensor(tin["index"], x)
        interp.invoke()
        ours = model(x)
        for name, o in zip(names, ours):
            ref = interp.get_tensor(outs[name]).reshape(o.shape)
            scale = max(1.0, float(np.abs(ref).max()))
            assert np.abs(o - ref).max() <= 1e-4 * scale, f"{onnx_name}:{name} differs"
