"""Image decoding to HWC uint8 RGB.

* EXIF orientation is applied (OpenCV's IMREAD_COLOR rule).
* Grayscale / infrared images become 3 identical channels; alpha is dropped.
* 16-bit and float images are stretched linearly to 8 bits between their 0.1th and 99.9th
  percentiles (infrared cameras seldom use the full 16-bit range; a fixed /257 would give a near
  black image).
* Errors name what was expected and what was found (empty file, unknown format, ...).
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import DecodeError, InputError

# read when a folder is walked; Radiance (.hdr, .pic) and .sr are left out - .hdr is also ENVI's and
# Analyze's text header - but such a file given by name is still recognised by its first bytes
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm", ".pbm",
                    ".pam", ".pfm", ".jp2", ".j2k", ".ras", ".avif"}

# (offset, first bytes, format), in the order tried: the ISO-media images (JPEG 2000, AVIF) before
# the MP4-like catch-all that shares their leading zero bytes
_MAGIC = [
    (0, b"\xff\xd8\xff", "JPEG"), (0, b"\x89PNG", "PNG"), (0, b"BM", "BMP"), (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"), (0, b"II+\x00", "TIFF"), (0, b"MM\x00+", "TIFF"),  # classic and BigTIFF
    (0, b"GIF8", "GIF"),
    *((0, b"P" + bytes([c]), "PNM") for c in b"1234567"), (0, b"PF\n", "PFM"), (0, b"Pf\n", "PFM"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"), (0, b"\xffO\xffQ", "JPEG 2000"),
    (4, b"ftypavif", "AVIF"), (4, b"ftypavis", "AVIF"), (0, b"\x59\xa6\x6a\x95", "Sun raster"),
    (0, b"#?RADIANCE", "Radiance HDR"), (0, b"#?RGBE", "Radiance HDR"),
    (0, b"\x00\x00\x00", "MP4/MOV-like container"), (0, b"\x1aE\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "RIFF"),  # WebP or AVI: the form type at byte 8 tells (_sniff)
]
_RIFF_FORMS = {b"WEBP": "RIFF/WebP", b"AVI ": "AVI container", b"WAVE": "WAV audio"}


# what _sniff calls the image formats OpenCV decodes (GIF is not one of them)
IMAGE_SIGNATURES = {"JPEG", "PNG", "BMP", "TIFF", "RIFF/WebP", "PNM", "PFM", "JPEG 2000", "AVIF", "Sun raster",
                    "Radiance HDR"}


def _sniff(head: bytes) -> str:
    for at, magic, name in _MAGIC:
        if head[at:at + len(magic)] == magic:
            return _RIFF_FORMS.get(head[8:12], "RIFF container") if name == "RIFF" else name
    if head[:64].isascii():
        return "text"
    return "unknown binary data"


def to_rgb_uint8(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an array image and return HWC uint8 RGB (gray -> 3 channels, alpha dropped)."""
    if not isinstance(image, np.ndarray):
        raise InputError(what, "a numpy array HxW, HxWx1, HxWx3 or HxWx4", type(image).__name__)
    if image.dtype.kind not in "biuf":  # complex, object, strings: no pixel values to read
        raise InputError(what, "an array of pixel values (uint8; other integer, float or bool arrays are stretched)",
                         f"dtype {image.dtype}")
    a = image
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(what, "shape HxW, HxWx1, HxWx3 or HxWx4", f"shape {image.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(what, "at least 2x2 pixels", f"{a.shape[1]}x{a.shape[0]}")
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        a = _stretch_to_uint8(a)
    return np.ascontiguousarray(a)


def _stretch_to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    f = a.astype(np.float32)
    finite = np.isfinite(f)
    if not finite.all():
        f = np.where(finite, f, 0.0)
    sample = f[:: max(1, f.shape[0] // 256), :: max(1, f.shape[1] // 256)]
    lo, hi = np.percentile(sample, [0.1, 99.9])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((f - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to HWC uint8 RGB. Raises DecodeError/InputError with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), "an existing image file", "no such file")
    if not p.is_file():
        raise InputError(str(p), "an image file", "a directory or special file")
    data = np.fromfile(p, dtype=np.uint8)
    if data.size == 0:
        raise DecodeError(str(p), "an image file", "an empty file (0 bytes)")
    with _quiet():
        img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
        if img is None:
            img = _decode_unchanged(data)
    if img is None:
        kind = _sniff(data[:64].tobytes())
        raise DecodeError(str(p), "a decodable image (JPEG, PNG, BMP, TIFF, WebP, PNM, JPEG 2000, ...)",
                          f"{kind} of {data.size} bytes that does not decode (corrupt or truncated?)")
    if img.ndim == 2:
        return to_rgb_uint8(img, str(p))  # gray (of any depth) -> 3 equal channels
    return to_rgb_uint8(np.ascontiguousarray(img[:, :, ::-1]), str(p))  # BGR -> RGB


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_level = None


@contextlib.contextmanager
def _quiet():
    """OpenCV's log silenced while an image decodes: a failed decode (a float TIFF's colour decode
    before ``_decode_unchanged`` reads it, a truncated BMP, JPEG 2000, ...) is our typed error, not
    ERROR lines. OpenCV's level is process-wide: the first of concurrent decodes saves it and the
    last restores it, so threads never leave it silenced; another thread's OpenCV log lines during a
    decode are lost."""
    global _quiet_depth, _quiet_level
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                cv2.utils.logging.setLogLevel(_quiet_level)


def _decode_unchanged(data: np.ndarray) -> np.ndarray | None:
    """What OpenCV's colour decode refuses but decodes unchanged - e.g. a single-channel float32 TIFF
    (thermal / infrared) - as HxW or HxWx3 (BGR), or None."""
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return img[:, :, :3]
    return None

