"""Face detectors."""
from .blazeface import BlazeFace, Detection

__all__ = ["BlazeFace", "Detection"]
