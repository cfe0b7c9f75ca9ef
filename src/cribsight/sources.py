"""Expansion of user paths into analysable inputs, and per-input frame iteration."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


from .errors import InputError
from .io.images import IMAGE_EXTENSIONS, IMAGE_SIGNATURES, _sniff, read_image
from .io.video import VIDEO_EXTENSIONS, VideoFrame, iter_video


@dataclass(frozen=True)
class Input:
    path: Path
    kind: str  # "image" | "video"
    given: str  # the path as the user wrote it (used as ``source`` in the results)


# a render is named <name>.cribsight.jpg / .mp4: never mistaken for a user's file, never read back
# as an input when a folder is walked (a render folder may be, or lie inside, an input folder)
RENDER_TAG = ".cribsight"


def render_file(render_dir: Path, name: str, kind: str) -> Path:
    """Where the render of an input of ``kind`` ("image" | "video") named ``name`` goes."""
    return render_dir / f"{name}{RENDER_TAG}.{'mp4' if kind == 'video' else 'jpg'}"


def is_render(p: Path) -> bool:
    return p.name.lower().endswith((f"{RENDER_TAG}.jpg", f"{RENDER_TAG}.mp4"))


def _kind(p: Path) -> str:
    """"video" or "image": by extension, and for an unknown extension by the file's first bytes
    (an image format's signature -> image; anything else is tried as a video)."""
    ext = p.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return "image"  # reading it will fail again, with the typed error
    return "image" if _sniff(head) in IMAGE_SIGNATURES else "video"


def expand(paths: list[str], exclude: Path | None = None) -> tuple[list[Input], list[tuple[str, str]]]:
    """Files stay as given (their type decided by extension, or by content for an unknown one);
    folders are walked recursively in sorted order, keeping image and video extensions only and
    skipping renders (``*.cribsight.jpg`` / ``.mp4``) and what lies under ``exclude`` (the render
    folder). A render given by name is analysed.
    Returns (inputs, problems) where problems are (path, one-line reason)."""
    inputs: list[Input] = []
    problems: list[tuple[str, str]] = []
    skip = exclude.resolve() if exclude is not None else None
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = False
            root = p.resolve()
            # a render folder strictly inside this folder is skipped (the folder itself, or one
            # above it, is not: a render that would replace an input is refused by the caller)
            inner = skip is not None and skip != root and skip.is_relative_to(root)
            for f in sorted(p.rglob("*")):
                ext = f.suffix.lower()
                if inner and f.resolve().is_relative_to(skip):
                    continue
                if f.is_file() and (ext in IMAGE_EXTENSIONS or ext in VIDEO_EXTENSIONS) and not is_render(f):
                    inputs.append(Input(f, "video" if ext in VIDEO_EXTENSIONS else "image", str(f)))
                    found = True
            if not found:
                problems.append((raw, "expected a folder holding image or video files, found none"))
        elif p.is_file():
            inputs.append(Input(p, _kind(p), raw))
        else:
            problems.append((raw, "expected an existing file or folder, found nothing"))
    return inputs, problems


def iter_input(inp: Input) -> Iterator[VideoFrame]:
    """The frames of one input as ``VideoFrame``s (an image is one frame, index 0). Errors are typed
    (InputError); a video's frames lost to corruption are not yielded (``iter_video``: ``missing_before``)."""
    ext = inp.path.suffix.lower()
    if inp.kind == "video" and ext not in VIDEO_EXTENSIONS:
        # an unknown extension whose first bytes are no image signature: a video, or neither
        try:
            first = True
            for fr in iter_video(inp.path):
                first = False
                yield fr
            return
        except InputError:
            if not first:
                raise
            raise InputError(str(inp.path), f"an image ({', '.join(sorted(IMAGE_EXTENSIONS))}) or a video "
                             f"({', '.join(sorted(VIDEO_EXTENSIONS))})",
                             f"a '{ext or 'no extension'}' file that decodes as neither") from None
    if inp.kind == "video":
        yield from iter_video(inp.path)
        return
    yield VideoFrame(0, 0.0, read_image(inp.path))
