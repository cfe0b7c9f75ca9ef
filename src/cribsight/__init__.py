"""cribsight: occlusion-aware infant face analysis.

Light to import: no torch, TensorFlow or MediaPipe; ONNX Runtime sessions are created lazily by
``Analyzer``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .types import Face, FrameResult, Landmarks, Occlusion, PartState, Pose, Probability  # noqa: E402


def __getattr__(name: str):
    if name in ("Analyzer", "AnalyzerConfig", "analyze"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'cribsight' has no attribute {name!r}")


__all__ = ["Analyzer", "AnalyzerConfig", "Face", "FrameResult", "Landmarks", "Occlusion", "PartState", "Pose",
           "Probability", "__version__", "analyze"]
