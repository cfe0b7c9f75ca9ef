"""Video decoding and encoding with PyAV (FFmpeg). Timestamps come from the container's pts."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DecodeError, InputError, OutputError

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@dataclass(frozen=True)
class VideoFrame:
    index: int
    timestamp_ms: float
    rgb: np.ndarray  # (H, W, 3) uint8
    missing_before: int = 0  # frames of the stream lost just before this one (corrupt or dropped)


def _open(p: Path):
    """An open PyAV container holding a video stream, or a typed error saying what was found."""
    import av

    if not p.is_file():
        raise InputError(str(p), "an existing video file", "no such file")
    if p.stat().st_size == 0:
        raise DecodeError(str(p), "a video file", "an empty file (0 bytes)")
    try:
        container = av.open(str(p))
    except av.FFmpegError as e:
        raise DecodeError(str(p), f"a decodable video ({', '.join(sorted(x.lstrip('.') for x in VIDEO_EXTENSIONS))})", f"{type(e).__name__}: {e}") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise DecodeError(str(p), "a video stream", f"a container with {', '.join(kinds)} only")
    return container


def _nominal(stream) -> tuple[float, int]:
    """(fps, frames) of a stream as presented. fps is the nominal rate (FFmpeg's guess: the stream's
    base rate unless that is implausible), which ``iter_video`` numbers frames on; the average rate
    would shrink with frames lost in a gap. frames is the count the container declares (0 = none)
    capped by the presented duration: an edit list (a stream-copy trim) hides pre-roll frames the
    count includes."""
    rate = stream.guessed_rate or stream.average_rate
    fps = float(rate) if rate else 0.0
    frames = int(stream.frames or 0)
    if frames and stream.duration and stream.time_base and fps:
        frames = min(frames, max(1, round(float(stream.duration * stream.time_base) * fps)))
    return fps, frames


def video_info(path: str | Path) -> dict:
    """Frames (0 when the container does not say) and nominal fps (``_nominal``), width and height
    of the first video stream; a typed error for a file that is not a video."""
    with _open(Path(path)) as c:
        s = c.streams.video[0]
        fps, frames = _nominal(s)
        return {"frames": frames, "fps": fps, "width": s.width, "height": s.height}


# a frame whose timestamp is this many nominal frame intervals after the previous one marks a gap:
# frames lost (a corrupt stretch the decoder skipped) or a drop in a variable frame rate - the
# timestamps cannot tell which, so `cribsight analyze` notes a gap and does not count it a failure.
GAP_INTERVALS = 2.5


def iter_video(path: str | Path) -> Iterator[VideoFrame]:
    """Decode every frame of the first video stream.

    ``index`` is the frame's place on the stream's nominal frame rate, from its timestamp (the
    stream's start = 0): a stretch the decoder skipped (corrupt data, or a drop in the frame rate)
    leaves a gap in the numbering, and the first frame after it says how many frames are missing (``missing_before``, when the
    timestamps jump by more than ``GAP_INTERVALS`` intervals). Without timestamps or a frame rate
    the index counts decoded frames. A decode error mid-stream raises DecodeError after the frames
    already decoded were yielded; so does a stream that ends short of the frames its container
    presents (a truncated file; ``_nominal``)."""
    import av

    p = Path(path)
    container = _open(p)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base else 0.0
        fps, declared = _nominal(stream)
        if "avi" in (container.format.name or ""):  # AVI carries no presentation timestamps: count frames
            tb = 0.0
        start = stream.start_time
        decoded, index = 0, -1
        try:
            for frame in container.decode(stream):
                missing = 0
                if frame.pts is not None and tb:
                    ts = frame.pts * tb * 1000.0
                    if fps:
                        if start is None:  # the container gives no start time: the first frame's
                            start = frame.pts
                        at = round((frame.pts - start) * tb * fps)
                        step = at - index
                        if index >= 0 and step > GAP_INTERVALS:
                            missing = step - 1
                        elif index < 0 and at > GAP_INTERVALS - 1:
                            missing = at  # the stream's first frames were lost
                        index = max(index + 1, at)
                    else:
                        index += 1
                else:
                    index += 1
                    ts = index * 1000.0 / fps if fps else float("nan")
                yield VideoFrame(index, float(ts), frame.to_ndarray(format="rgb24"), missing)
                decoded += 1
        except av.FFmpegError as e:
            raise DecodeError(str(p), "a decodable video stream", f"decode error after {decoded} frames: {e}") from None
        if decoded == 0:
            raise DecodeError(str(p), "at least one video frame", "no decodable frame")
        if declared and index + 1 < declared - max(1, declared // 100):
            raise DecodeError(str(p), f"the {declared} frames its container presents",
                              f"a stream that ends after frame {index} (truncated?)")


class VideoWriter:
    """Encode RGB frames to a video (H.264 when the FFmpeg build has it, else MPEG-4 Part 2).

    Frames are stamped in milliseconds: with ``timestamp_ms`` (the source frame's time) a render
    keeps the source's timing - a variable frame rate, a gap, ``--every N`` - and plays as long as
    the source; without, frames follow ``fps``. ``fps`` is also the rate the file declares."""

    TIME_BASE = Fraction(1, 1000)

    def __init__(self, path: str | Path, fps: float, width: int, height: int):
        import av

        self.path = Path(path)
        # the declared rate as a small fraction (7.5 fps for every 4th frame of 30, 30000/1001 for NTSC)
        self.rate = Fraction(fps if fps and math.isfinite(fps) and fps > 0 else 25).limit_denominator(1001)
        if self.rate <= 0:
            self.rate = Fraction(1, 1001)
        size = (width - width % 2, height - height % 2)
        codec = next((c for c in ("libx264", "h264", "mpeg4") if self._opens(c, size)), None)
        if codec is None:
            raise OutputError(str(self.path), "a video encoder (libx264, h264 or mpeg4) in this FFmpeg build", "none of them")
        self.container = av.open(str(self.path), mode="w")
        stream = self.container.add_stream(codec, rate=self.rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.TIME_BASE
        self.stream = stream
        self._first: float | None = None
        self._last = -1
        self._closed = False

    def _opens(self, codec: str, size: tuple[int, int]) -> bool:
        """The encoder exists in this FFmpeg build and opens with these settings (a codec that fails
        only when the first frame is written could not fall back to the next)."""
        import av

        try:
            ctx = av.CodecContext.create(codec, "w")
            ctx.width, ctx.height = size
            ctx.pix_fmt = "yuv420p"
            ctx.time_base = self.TIME_BASE
            ctx.framerate = self.rate
            ctx.open()
            return True
        except Exception:  # noqa: BLE001 - not in this build, or refuses these settings
            return False

    def write(self, rgb: np.ndarray, timestamp_ms: float | None = None) -> None:
        import av

        h, w = self.stream.height, self.stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        if timestamp_ms is not None and math.isfinite(timestamp_ms):
            if self._first is None:
                self._first = timestamp_ms
            pts = round(timestamp_ms - self._first)
        else:
            pts = self._last + max(1, round(1000 / self.rate))
        self._last = pts = max(self._last + 1, pts)  # strictly increasing, whatever the source says
        frame.pts, frame.time_base = pts, self.TIME_BASE
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file (once; the file is closed even if flushing fails)."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
