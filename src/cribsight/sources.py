"""Expansion of user paths into analysable inputs, and per-input frame iteration."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError
from .io.images import IMAGE_EXTENSIONS, read_image
from .io.video import VIDEO_EXTENSIONS, iter_video


@dataclass(frozen=True)
class Input:
    path: Path
    kind: str  # "image" | "video"
    given: str  # the path as the user wrote it (used as ``source`` in the results)


def expand(paths: list[str]) -> tuple[list[Input], list[tuple[str, str]]]:
    """Files stay as given (their type decided by extension, images by content as well); folders
    are walked recursively in sorted order, keeping image and video extensions only.
    Returns (inputs, problems) where problems are (path, one-line reason)."""
    inputs: list[Input] = []
    problems: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = False
            for f in sorted(p.rglob("*")):
                ext = f.suffix.lower()
                if f.is_file() and (ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS):
                    inputs.append(Input(f, "video" if ext in VIDEO_EXTENSIONS else "image", str(f)))
                    found = True
            if not found:
                problems.append((raw, "expected a folder holding image or video files, found none"))
        elif p.is_file():
            ext = p.suffix.lower()
            inputs.append(Input(p, "video" if ext in VIDEO_EXTENSIONS else "image", raw))
        else:
            problems.append((raw, "expected an existing file or folder, found nothing"))
    return inputs, problems


def iter_frames(inp: Input) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, timestamp_ms, RGB uint8) for one input. Errors are typed (InputError)."""
    if inp.kind == "video":
        for fr in iter_video(inp.path):
            yield fr.index, fr.timestamp_ms, fr.rgb
        return
    ext = inp.path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        # unknown extension: decode by content, image first, then video
        try:
            img = read_image(inp.path)
        except InputError:
            try:
                for fr in iter_video(inp.path):
                    yield fr.index, fr.timestamp_ms, fr.rgb
                return
            except InputError:
                raise InputError(str(inp.path), f"an image ({', '.join(sorted(IMAGE_EXTENSIONS))}) or a video "
                                 f"({', '.join(sorted(VIDEO_EXTENSIONS))})",
                                 f"a '{ext or 'no extension'}' file that decodes as neither") from None
        yield 0, 0.0, img
        return
    yield 0, 0.0, read_image(inp.path)
