"""cribsight: occlusion-aware infant face analysis.

Light to import: no torch, TensorFlow or MediaPipe; ONNX Runtime sessions are created lazily by
``Analyzer``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .types import Face, FrameResult, Landmarks, Occlusion, PartState, Pose, Probability  # noqa: E402


def __getattr__(name: str):
    if name in ("Analyzer", "AnalyzerConfig"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "analyze":  # the subpackage, which is callable as the function (see analyze/__init__.py)
        import importlib

        return importlib.import_module(".analyze", __name__)
    raise AttributeError(f"module 'cribsight' has no attribute {name!r}")


__all__ = ["Analyzer", "AnalyzerConfig", "Face", "FrameResult", "Landmarks", "Occlusion", "PartState", "Pose",
           "Probability", "__version__", "analyze"]
