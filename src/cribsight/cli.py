"""Command line: cribsight analyze | demo | bench | eval."""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="cribsight: occlusion-aware infant face analysis.")
console = Console(stderr=True, soft_wrap=True)

from .datadir import data_root


def _analyzer(rotations: str | None = None, **options):
    """An Analyzer with the options the user gave (None = the default)."""
    from .errors import CribsightError, InputError
    from .pipeline import Analyzer

    opts = {k: v for k, v in options.items() if v is not None}
    if str(opts.get("extra_detector", "")).lower() in ("off", "none"):
        opts["extra_detector"] = None  # the extra pass switched off
    try:
        if rotations is not None:
            try:
                opts["rotations"] = tuple(int(r) for r in rotations.split(",") if r.strip())
            except ValueError:
                raise InputError("--rotations", "comma-separated degrees from {90, 180, 270}", repr(rotations)) from None
        return Analyzer(**opts)
    except CribsightError as e:  # a bad option or missing weights: one line and exit code 2, not a traceback
        error_line(str(e))
        raise typer.Exit(2)


SECOND_STAGE_HELP = ("second stage: keep a doubtful detection (detector score >= --candidate-score, or mesh presence "
                     "below --presence-thresh) when CribNet's P(face) is at least this (default 0.9; 0 = off)")
CANDIDATE_HELP = "lowest detector score the second stage looks at (default 0.4)"
FRAME_HELP = ("second stage, last resort for close-up cameras: when no detector pass finds a face, look at the frame's "
              "centre square as a candidate (kept only at P(face) >= --verify-face, so it needs CribNet's second stage; "
              "default off: in crib scenes it takes a few whole-scene squares for faces)")
TILES_HELP = ("opt-in, small faces in wide frames: when no other pass finds a face, run both detectors on an N x N grid "
              "of half-size sub-frames (0 = off, else 3 to 8; a tile's detection is kept only at P(face) >= 0.99, so it "
              "needs CribNet's second stage; ~120 ms more on a face-less frame)")
MIRROR_HELP = ("opt-in: when no whole-frame pass finds a face, run them again on the mirrored frame (BlazeFace is not "
               "mirror-symmetric); a mirrored detection is kept only at P(face) >= 0.99, so it needs CribNet's second stage "
               "(default off: more false faces in face-less crib scenes; ~120 ms more on a face-less 1280x720 frame)")
WEIGHTS_HELP = ("which shipped CribNet weights: cribnet.onnx (the default) or cribnet_v216.onnx (opt-in: 'occluded' "
                "far less over-reported on infants, but 1 of our 87 turned-away heads comes out all clear; "
                "MODEL_CARD_cribnet.md)")
DETECTOR_HELP = ("the full-range face detector: a shipped weight file by name (default face_detection_full_range.onnx) "
                 "or an .onnx path with its manifest entry (.json) beside it, e.g. tools/finetune_detector.py's")
EXTRA_HELP = ("extra pass: when no whole-frame pass finds a face, a second detector on the frame - by default (auto) the "
              "shipped fine-tuned one, face_detection_full_range_ft.onnx, with CribNet's second stage; 'off'; or a weight file "
              "by name or an .onnx path with its manifest entry beside it; its detections are kept only at P(face) >= 0.99")
EXTRA_STRICT_HELP = "keep the extra detector's detections only at P(face) >= 0.99 (default on; off: like any other detection)"
REJECT_HELP = "second stage: drop a detection that passes the detector and mesh when CribNet's P(face) is below this (default 0.5)"


def error_line(message: str, tag: str = "[red]error[/red]") -> None:
    """One ``error`` (or ``tag``) line on stderr. The message is printed as text, never as rich markup:
    a file named ``photo[bold].jpg`` or an extra named ``cribsight[train]`` keeps its brackets."""
    from rich.markup import escape

    console.print(f"{tag} {escape(message)}", highlight=False)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False, disable=not sys.stderr.isatty() and "CRIBSIGHT_PROGRESS" not in os.environ)


def _tracker(prog: Progress, label: str):
    """An ``iter``-like callable that shows a progress bar for what it iterates."""
    def track(it):
        items = list(it)
        task = prog.add_task(label, total=len(items))
        for x in items:
            yield x
            prog.advance(task)
    return track


class _Skip(Exception):
    """Stop the current input (already reported) and go on with the next."""


def _reason(e: Exception, names: tuple[str, ...] = ()) -> str:
    """One line for a failure: our typed errors say what they are; anything else gets its type. A
    typed error about one of ``names`` (the input, as given and as a path) leaves its name out: the
    line already starts with it."""
    from .errors import CribsightError

    if getattr(e, "what", None) in names and hasattr(e, "expected"):
        return f"expected {e.expected}, found {e.found}"
    return str(e) if isinstance(e, (CribsightError, OSError)) else f"{type(e).__name__}: {e}"


def _check_outputs(inputs: list, out: Path, render_dir: Path | None, names: list[str]) -> None:
    """Refuse, before anything is written, an output that would destroy an input or that cannot be
    written: the results file being one of the inputs or a folder, a render replacing an input, a
    render folder that is a file. OSErrors of creating them become OutputError (one line, exit 2)."""
    from .errors import InputError, OutputError
    from .sources import render_file

    # compared without case too: on a case-insensitive file system (macOS, Windows) P.cribsight.jpg
    # is p.cribsight.jpg (on Linux this may refuse a harmless run; never a destructive one)
    given = {str(inp.path.resolve()).lower(): inp.given for inp in inputs}
    if str(out.resolve()).lower() in given:
        raise InputError("--out", "a results file that is not one of the inputs", f"{out} (an input: it would be overwritten)")
    if out.is_dir():
        raise OutputError(str(out), "a JSON Lines file path", "a folder")
    if render_dir is not None:
        if render_dir.exists() and not render_dir.is_dir():
            raise OutputError(str(render_dir), "a folder for the renders", "an existing file")
        for inp, name in zip(inputs, names):
            dst = str(render_file(render_dir, name, inp.kind).resolve()).lower()
            if dst in given:
                raise InputError("--render", "a folder where no render replaces an input",
                                 f"{render_dir}: the render of {inp.given} would overwrite {given[dst]}")
    _make_folder(out.parent)
    if render_dir is not None:
        _make_folder(render_dir)


def _make_folder(folder: Path) -> None:
    """Create an output folder (and its parents); an OSError becomes OutputError (one line, exit 2)."""
    from .errors import OutputError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(str(e.filename or folder), "a folder that can be created", f"{type(e).__name__}: {e.strerror}") from None


def render_names(paths: list[Path]) -> list[str]:
    """Names for the renders of ``paths`` (``sources.render_file`` adds ``.cribsight.jpg`` or
    ``.mp4``): the stem when it is unique among the inputs, else the input's position and stem
    (``0003_x``), so a/x.jpg and b/x.jpg (or x.jpg and x.mp4) never overwrite each other's render;
    a name still taken (an input called ``0001_x.jpg``) gets a counter (``0001_x_2``). Compared
    without case, as on a case-insensitive file system."""
    from collections import Counter

    n = Counter(p.stem.lower() for p in paths)
    names: list[str] = []
    used: set[str] = set()
    for i, p in enumerate(paths):
        base = p.stem if n[p.stem.lower()] == 1 else f"{i:04d}_{p.stem}"
        name, k = base, 1
        while name.lower() in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name.lower())
        names.append(name)
    return names


def run_analyze(paths: list[str], out: Path, render_dir: Path | None, analyzer, progress: Progress | None = None,
                every: int = 1) -> dict:
    """Analyse inputs, writing one JSON line per frame (flushed) and optional renders; of a video,
    only the frames whose index is a multiple of ``every`` (all are decoded: the index comes from
    the timestamps). Returns a summary dict; failures never stop the batch: a frame that cannot be
    analysed is reported with its index and the video goes on; an input that cannot be decoded is
    reported and the batch goes on."""
    from .errors import OutputError
    from .io.video import VideoWriter, video_info
    from .render import render
    from .sources import expand, iter_input, render_file

    inputs, problems = expand(paths, exclude=render_dir)
    failed: list[tuple[str, str]] = list(problems)
    for path, why in problems:  # at once, not after a long batch
        error_line(f"{path}: {why}")
    n_frames = n_faces = 0
    ms: list[float] = []
    names = render_names([inp.path for inp in inputs])
    summary = {"inputs": len(inputs) + len(problems), "frames": 0, "faces": 0, "failed": failed, "median_ms": None,
               "out": str(out)}
    if not inputs:  # nothing to analyse: an earlier results file is left as it was
        return {**summary, "out": f"{out} (not written)"}
    _check_outputs(inputs, out, render_dir, names)
    try:
        fh = open(out, "w")
    except OSError as e:
        raise OutputError(str(out), "a writable JSON Lines file", f"{type(e).__name__}: {e.strerror}") from None
    prog = progress or _progress()
    with fh, prog:
        task = prog.add_task("analyse", total=len(inputs))
        for inp, name in zip(inputs, names):
            writer = None
            try:
                if inp.kind == "video":
                    info = video_info(inp.path)
                    vtask = prog.add_task(f"  {inp.path.name}", total=info["frames"] or None)
                for fr in iter_input(inp):
                    index, ts, img = fr.index, fr.timestamp_ms, fr.rgb
                    if fr.missing_before:  # a gap in the timestamps: said (not a failure), the video goes on
                        # lost data or a drop in a variable frame rate: timestamps alone cannot tell which
                        error_line(f"{inp.given} frames {index - fr.missing_before}-{index - 1}: no frame decoded "
                                   "(lost data, or the camera's frame rate dropped)", tag="[yellow]note[/yellow]")
                    if index % every:
                        if inp.kind == "video":
                            prog.advance(vtask)
                        continue
                    try:  # one frame that cannot be analysed or drawn is reported; the rest go on
                        t0 = time.perf_counter()
                        res = analyzer.analyze_image(img, inp.given, index, ts)
                        ms.append((time.perf_counter() - t0) * 1e3)
                        fh.write(res.to_json() + "\n")
                        fh.flush()
                        n_frames += 1
                        n_faces += len(res.faces)
                        if render_dir:
                            drawn = render(img, res)
                            if inp.kind == "video":
                                if writer is None:
                                    writer = VideoWriter(render_file(render_dir, name, "video"), info["fps"] / every,
                                                         img.shape[1], img.shape[0])
                                writer.write(drawn, ts)  # the source's timing: the render plays as long
                            else:
                                import cv2

                                dst = render_file(render_dir, name, "image")
                                if not cv2.imwrite(str(dst), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
                                    raise OutputError(str(dst), "a writable JPEG path", "cv2.imwrite failed")
                    except Exception as e:  # noqa: BLE001 - a batch never stops on one frame
                        where = inp.given if inp.kind != "video" else f"{inp.given} frame {index}"
                        why = _reason(e, (inp.given, str(inp.path)))
                        failed.append((where, why))
                        error_line(f"{where}: {why}")
                        if isinstance(e, OutputError):
                            raise _Skip from None  # the output itself is broken: no use going on with this input
                    if inp.kind == "video":
                        prog.advance(vtask)
            except _Skip:
                pass
            except Exception as e:  # noqa: BLE001 - decoding this input failed: report it, go on with the next
                why = _reason(e, (inp.given, str(inp.path)))
                failed.append((inp.given, why))
                error_line(f"{inp.given}: {why}")
            finally:
                if writer is not None:
                    try:
                        writer.close()
                    except Exception as e:  # noqa: BLE001 - the render could not be finished: said, the batch goes on
                        failed.append((f"{inp.given} render", _reason(e)))
                        error_line(f"{inp.given} render: {_reason(e)}")
            prog.advance(task)
    return {**summary, "frames": n_frames, "faces": n_faces, "median_ms": statistics.median(ms) if ms else None}


def _summary_table(s: dict) -> Table:
    t = Table(title="cribsight analyze")
    for col in ("inputs", "frames", "faces", "failed", "median ms/frame", "results"):
        t.add_column(col)
    t.add_row(str(s["inputs"]), str(s["frames"]), str(s["faces"]), str(len(s["failed"])),
              "-" if s["median_ms"] is None else f"{s['median_ms']:.1f}", s["out"])
    return t


@app.command()
def analyze(
    paths: list[str] = typer.Argument(..., help="images, videos or folders"),
    out: Path = typer.Option(Path("results.jsonl"), "--out", "-o", help="JSON Lines output, one object per frame"),
    render_dir: Optional[Path] = typer.Option(None, "--render", help="write annotated images/videos here"),
    score_thresh: Optional[float] = typer.Option(None, help="detector score threshold (default 0.4)"),
    presence_thresh: Optional[float] = typer.Option(None, help="face-mesh presence threshold (default 0.2)"),
    rotations: Optional[str] = typer.Option(None, help="rotations tried in turn when no face is upright (default 90,270,180; '' for none)"),
    threads: Optional[int] = typer.Option(None, help="ONNX Runtime intra-op threads (default 1, or CRIBSIGHT_THREADS)"),
    verify_face: Optional[float] = typer.Option(None, help=SECOND_STAGE_HELP),
    candidate_score: Optional[float] = typer.Option(None, help=CANDIDATE_HELP),
    reject_face: Optional[float] = typer.Option(None, help=REJECT_HELP),
    frame_candidate: Optional[bool] = typer.Option(None, help=FRAME_HELP),
    mirror_search: Optional[bool] = typer.Option(None, help=MIRROR_HELP),
    tiles: Optional[int] = typer.Option(None, help=TILES_HELP),
    cribnet_weights: Optional[str] = typer.Option(None, help=WEIGHTS_HELP),
    detector_weights: Optional[str] = typer.Option(None, help=DETECTOR_HELP),
    extra_detector: Optional[str] = typer.Option(None, help=EXTRA_HELP),
    extra_strict: Optional[bool] = typer.Option(None, help=EXTRA_STRICT_HELP),
    every: int = typer.Option(1, min=1, help="of a video, analyse only the frames whose index is a multiple of this "
                                             "(every frame is still decoded; the render holds the analysed ones)"),
):
    """Analyse images, folders and videos; write JSON Lines (and renders). Exit 1 if any input failed."""
    an = _analyzer(rotations, score_thresh=score_thresh, presence_thresh=presence_thresh, threads=threads,
                   verify_face=verify_face, candidate_score=candidate_score, reject_face=reject_face,
                   frame_candidate=frame_candidate, mirror_search=mirror_search, tiles=tiles,
                   cribnet_weights=cribnet_weights, detector_weights=detector_weights,
                   extra_detector=extra_detector, extra_strict=extra_strict)
    s = run_analyze(paths, out, render_dir, an, every=every)
    console.print(_summary_table(s))
    if s["failed"]:
        raise typer.Exit(1)


@app.command()
def demo(out_dir: Path = typer.Option(Path("out/demo"), "--out", help="where to write the demo outputs")):
    """Build the embedded occlusion clip, analyse it, and write JSON Lines plus a rendered video."""
    from .demo import demo_frames
    from .io.video import VideoWriter

    out_dir.mkdir(parents=True, exist_ok=True)
    clip = out_dir / "demo_input.mp4"
    frames = list(demo_frames())
    h, w = frames[0][2].shape[:2]
    with VideoWriter(clip, 12, w, h) as vw:
        for _, _, f in frames:
            vw.write(f)
    an = _analyzer()
    s = run_analyze([str(clip)], out_dir / "demo.jsonl", out_dir / "rendered", an)
    console.print(_summary_table(s))
    print(f"input clip:     {clip}")
    print(f"results (JSONL): {out_dir / 'demo.jsonl'}")
    from .sources import render_file

    print(f"rendered video: {render_file(out_dir / 'rendered', 'demo_input', 'video')}")
    if s["failed"]:
        raise typer.Exit(1)


def _stats(xs: list[float]) -> tuple[float, float]:
    import numpy as np

    return float(np.median(xs)), float(np.percentile(xs, 90))


def _bench_source(source: Path | None, default: Path) -> Path | None:
    """The image folder to time: ``source``, or ``default`` when it exists; None = the demo sample
    (``--source demo``, or no shared data). A given source that is not a folder is an error - a
    typo must not silently time the demo instead."""
    from .errors import InputError

    if source is None:
        return default if default.is_dir() else None
    if str(source) == "demo":
        return None
    if not source.is_dir():
        raise InputError("--source", "a folder of images or 'demo'", f"{source} (not a folder)")
    return source


def _bench_images(src: Path, limit: int) -> list[Path]:
    """The first ``limit`` image files of a bench folder (by extension); none is an InputError."""
    from .errors import InputError
    from .io.images import IMAGE_EXTENSIONS

    files = sorted(f for f in src.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
    if not files:
        raise InputError("--source", f"a folder with images ({', '.join(sorted(IMAGE_EXTENSIONS))})", f"none in {src}")
    return files


@app.command()
def bench(
    source: Optional[Path] = typer.Option(None, help="folder of images, or 'demo' for the demo sample (default "
                                                     "$CRIBSIGHT_DATA or ../shared/data: syrip/images, else the demo sample)"),
    limit: int = typer.Option(100, min=1, help="images to time"),
    threads: Optional[int] = typer.Option(None, min=1, help="ONNX Runtime intra-op threads"),
    warmup: int = typer.Option(5, min=0, help="untimed warm-up frames"),
    cribnet_weights: Optional[str] = typer.Option(None, help=WEIGHTS_HELP),
):
    """Per-stage median and p90 milliseconds (decode, detect, landmarks, pose, network, total), for
    the full pipeline and, in the same run, the pretrained-only pipeline (reference)."""
    import cv2
    import numpy as np

    from .demo import ASSET
    from .io.images import read_image
    from .pipeline import Analyzer, AnalyzerConfig
    from .runtime import available_cores, default_threads

    src = _bench_source(source, data_root() / "syrip" / "images")
    full = _analyzer(threads=threads, cribnet_weights=cribnet_weights)
    ref = Analyzer(AnalyzerConfig(threads=threads, model="pretrained"))
    if src is not None:
        files = _bench_images(src, limit)
        label = str(src)
    else:
        # the demo portrait placed in a 1280x720 frame, written as a JPEG so decode is timed too
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "cribsight_bench_720p.jpg"
        canvas = np.full((720, 1280, 3), 90, np.uint8)
        canvas[104:616, 384:896] = cv2.imread(str(ASSET))
        cv2.imwrite(str(tmp), canvas)
        files = [tmp] * limit
        label = "demo sample in a 1280x720 frame" + ("" if source is not None else f" ({data_root() / 'syrip' / 'images'} absent)")
    stages = ("decode", "detect", "landmarks", "pose", "network", "total")
    rows = {a: {k: [] for k in stages} for a in ("full", "ref")}
    one_face: dict[str, dict[int, float]] = {"full": {}, "ref": {}}  # image index -> ms, frames where it found one face
    per_face_net: list[float] = []
    sizes = set()
    for i, f in enumerate([files[0]] * warmup + files):
        for name, an in (("full", full), ("ref", ref)):  # interleaved: both see the same machine state
            t0 = time.perf_counter()
            img = read_image(f)
            t1 = time.perf_counter()
            res = an.analyze_image(img, str(f))
            t2 = time.perf_counter()
            if i < warmup:
                continue
            sizes.add(img.shape[:2])
            tm = an.times
            r = rows[name]
            r["decode"].append((t1 - t0) * 1e3)
            r["detect"].append(tm.detect)
            r["landmarks"].append(tm.landmarks)
            r["pose"].append(tm.pose)
            r["network"].append(tm.network)
            r["total"].append((t2 - t0) * 1e3)
            if len(res.faces) == 1 and img.shape[:2] == (720, 1280):
                one_face[name][i] = (t2 - t0) * 1e3
            if name == "full" and len(res.faces) == 1:
                per_face_net.append(tm.network)
    import onnxruntime as ort

    t = Table(title=f"cribsight bench: {len(files)} images from {label}")
    for col in ("stage", "median ms", "p90 ms", "pretrained-only median", "pretrained-only p90"):
        t.add_column(col, justify="right" if "ms" in col or "median" in col or "p90" in col else "left")
    for k in stages:
        a, b = _stats(rows["full"][k]), _stats(rows["ref"][k])
        t.add_row(k, f"{a[0]:.2f}", f"{a[1]:.2f}", f"{b[0]:.2f}", f"{b[1]:.2f}")
    both = sorted(set(one_face["full"]) & set(one_face["ref"]))  # the same frames in both columns
    if both:
        a, b = _stats([one_face["full"][i] for i in both]), _stats([one_face["ref"][i] for i in both])
        t.add_row(f"total, 1280x720 frames where both find one face (n={len(both)})", f"{a[0]:.2f}", f"{a[1]:.2f}",
                  f"{b[0]:.2f}", f"{b[1]:.2f}")
    Console().print(t)
    if full.cribnet is not None and per_face_net:
        med_full, med_ref = _stats(rows["full"]["total"])[0], _stats(rows["ref"]["total"])[0]
        print(f"per-face network (crop + CribNet + decode): median {_stats(per_face_net)[0]:.2f} ms, "
              f"p90 {_stats(per_face_net)[1]:.2f} ms (frames with one face, n={len(per_face_net)})")
        print(f"full / pretrained-only frame time (medians, same run): {med_full / med_ref:.3f}")
    else:
        print("no CribNet weights shipped: both columns are the pretrained path")
    print(f"onnxruntime {ort.__version__}, intra_op_num_threads={threads or default_threads()}, inter_op_num_threads=1, "
          f"cores available={available_cores()}; image sizes: {len(sizes)} distinct, largest {max(sizes) if sizes else None}")


BENCHMARKS = {  # name -> (function name, default data folder under ../shared/data)
    "syrip": ("syrip", "syrip"),
    "utkface": ("utkface", "utkface"),
    "facemask": ("facemask", "facemask"),
    "aflw2000": ("aflw2000", "aflw2000_sample"),
    "aflw2000-so": ("aflw2000_so", "aflw2000_sample"),
    "robustness": ("robustness", "aflw2000_sample"),
    "syrip-dev": ("syrip_dev", "syrip"),
    "video-dev": ("video_dev", "video"),
    "synthetic": ("synthetic", "./out/shards/holdout"),  # built by: cribsight data build configs/data/holdout.yaml
}
MODELS = ("cribnet", "pretrained")


def _default_folder(name: str) -> Path:
    sub = BENCHMARKS[name][1]
    return Path(sub) if sub.startswith("./") else data_root() / sub


def _run_benchmark(name: str, folder: Path, predict, limit: int | None, export: Path | None,
                   weights: str | None = None) -> dict:
    from .eval import benchmarks as B

    fn_name, _ = BENCHMARKS[name]
    kwargs: dict = {}
    if name in ("utkface", "facemask", "synthetic"):
        kwargs["limit"] = limit
    if name == "synthetic" and weights is not None:  # it runs the network itself, not the Analyzer
        kwargs["model"] = weights
    if name in ("aflw2000-so", "robustness") and export is not None:
        kwargs["export"] = export / name
    with _progress() as prog:
        return getattr(B, fn_name)(folder, predict, _tracker(prog, name), **kwargs)


@app.command("eval")
def eval_cmd(
    benchmarks: Optional[list[str]] = typer.Argument(None, help=f"one or more of {', '.join(BENCHMARKS)}, or 'all'"),
    model: str = typer.Option("cribnet", help=f"model to evaluate: {', '.join(MODELS)} (cribnet falls back to pretrained when no weights ship)"),
    predictions: Optional[Path] = typer.Option(None, help="score these JSON Lines predictions (output contract) instead of running a model"),
    data: Optional[Path] = typer.Option(None, help="data folder (default $CRIBSIGHT_DATA or ../shared/data, /<benchmark folder>); one benchmark only"),
    limit: Optional[int] = typer.Option(None, min=1, help="utkface/facemask/synthetic: evaluate an evenly spaced subset"),
    report: Optional[Path] = typer.Option(None, help="write report.html, report.md, results.json and PNG plots here"),
    baseline: bool = typer.Option(True, help="with --model other than pretrained: show the pretrained pipeline beside it"),
    export: Optional[Path] = typer.Option(None, help="aflw2000-so/robustness: also write the altered images here, for other systems"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as JSON"),
    compare: Optional[tuple[Path, Path]] = typer.Option(None, help="compare two results JSON files (A B) instead of evaluating"),
    verify_face: Optional[float] = typer.Option(None, help=SECOND_STAGE_HELP),
    candidate_score: Optional[float] = typer.Option(None, help=CANDIDATE_HELP),
    reject_face: Optional[float] = typer.Option(None, help=REJECT_HELP),
    frame_candidate: Optional[bool] = typer.Option(None, help=FRAME_HELP),
    mirror_search: Optional[bool] = typer.Option(None, help=MIRROR_HELP),
    tiles: Optional[int] = typer.Option(None, help=TILES_HELP),
    cribnet_weights: Optional[str] = typer.Option(None, help=WEIGHTS_HELP),
    detector_weights: Optional[str] = typer.Option(None, help=DETECTOR_HELP),
    extra_detector: Optional[str] = typer.Option(None, help=EXTRA_HELP),
    extra_strict: Optional[bool] = typer.Option(None, help=EXTRA_STRICT_HELP),
):
    """Score a model (or given predictions) on benchmarks over the data folder ($CRIBSIGHT_DATA, else ../shared/data) and print the figures."""
    from .errors import CribsightError, InputError
    from .eval import benchmarks as B
    from .eval import report as R

    _check_eval_outputs(json_out, report, export, [p for p in (predictions, *(compare or ())) if p is not None])
    if compare is not None:
        given = [f for f, v in (("--cribnet-weights", cribnet_weights), ("--detector-weights", detector_weights),
                                ("--extra-detector", extra_detector), ("--extra-strict", extra_strict)) if v is not None]
        if given:  # --compare reads two results files: nothing is run
            error_line(f"{', '.join(given)}: expected a model run, found --compare (results files)")
            raise typer.Exit(2)
        a, b = (_read_results(p) for p in compare)
        if not any(m is not None for m in _match(a, b)):
            raise InputError(str(compare[1]), f"results of a benchmark in {compare[0]} "
                             f"({', '.join(str(r.get('benchmark')) for r in (a if isinstance(a, list) else [a]))})",
                             "none in common")
        t = Table(title=f"compare A={compare[0]} B={compare[1]}")
        for col in ("figure", "A", "A 95%", "B", "B 95%", "A - B"):
            t.add_column(col)
        for k, va, ia, vb, ib, d in R.compare(a, b):
            t.add_row(k, R._fmt(va), R._fmt(ia), R._fmt(vb), R._fmt(ib), "" if d is None else f"{d:+.4f}")
        Console().print(t)
        if report:
            R.write_report(a if isinstance(a, list) else [a], report, f"compare A = {compare[0]}, B = {compare[1]}",
                           baselines=_match(a, b), labels=("A", "B"))
            print(f"report: {report / 'report.html'}")
        return
    names = list(BENCHMARKS) if benchmarks in (None, []) or benchmarks == ["all"] else benchmarks
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        error_line(f"benchmark: expected one of {', '.join(BENCHMARKS)} or all, found {', '.join(unknown)}")
        raise typer.Exit(2)
    if model not in MODELS:
        error_line(f"--model: expected one of {', '.join(MODELS)}, found {model!r}")
        raise typer.Exit(2)
    if data is not None and len(names) != 1:
        error_line("--data: expected exactly one benchmark with it, found " + str(len(names)))
        raise typer.Exit(2)
    ignored = [flag for flag, v in (("--model", model != "cribnet"), ("--verify-face", verify_face), ("--candidate-score", candidate_score),
                                    ("--reject-face", reject_face), ("--frame-candidate", frame_candidate),
                                    ("--mirror-search", mirror_search), ("--tiles", tiles),
                                    ("--detector-weights", detector_weights), ("--extra-detector", extra_detector))
               if v is not None and v is not False]
    if extra_strict is not None:  # given either way (--no-extra-strict is the non-default one)
        ignored.append("--extra-strict" if extra_strict else "--no-extra-strict")
    if predictions is not None and ignored:  # nothing is run: a model option would be silently ignored
        error_line(f"{', '.join(ignored)}: expected a model run, found --predictions (a results file)")
        raise typer.Exit(2)
    if cribnet_weights is not None and (predictions is not None or model != "cribnet"):
        error_line("--cribnet-weights: expected --model cribnet, found "
                   + ("predictions" if predictions is not None else model))
        raise typer.Exit(2)
    if "video-dev" in names and predictions is not None:
        error_line("video-dev: expected a model to run on the decoded frames, found predictions "
                   "(they are matched by file name, and every frame of a video has the same one)")
        raise typer.Exit(2)
    if "synthetic" in names and (predictions is not None or model != "cribnet"):
        error_line("synthetic: expected a shipped trained model (--model cribnet), found "
                   + ("predictions" if predictions is not None else model))
        raise typer.Exit(2)
    if predictions is not None:
        predict = B.predictions_from_jsonl(predictions)
    else:
        predict = B.analyzer_predictor(_analyzer(model="auto" if model == "cribnet" else model,
                                                 verify_face=verify_face, candidate_score=candidate_score, reject_face=reject_face,
                                                 frame_candidate=frame_candidate, mirror_search=mirror_search, tiles=tiles,
                                                 cribnet_weights=cribnet_weights, detector_weights=detector_weights,
                                                 extra_detector=extra_detector, extra_strict=extra_strict))
    base_predict = None  # a trained model is shown against the pretrained pipeline
    if predictions is None and model != "pretrained" and baseline:
        from .pipeline import Analyzer, AnalyzerConfig

        base_predict = B.analyzer_predictor(Analyzer(AnalyzerConfig(model="pretrained")))
    results, bases, missing = [], [], []
    stopped = None  # the benchmark a Ctrl-C / SIGTERM stopped: the finished ones are still written
    for name in names:
        folder = data or _default_folder(name)
        if not folder.exists():
            hint = ("build it with: cribsight data build configs/data/holdout.yaml --out out/shards/holdout, "
                    "or pass --data" if name == "synthetic" else "set CRIBSIGHT_DATA to the data folder, or pass --data")
            error_line(f"{name}: expected data at {folder}, found nothing ({hint})")
            missing.append(name)
            continue
        try:  # a benchmark whose data is incomplete is one line; the others still run and are written
            if predictions is not None:
                predict.reset()
            counted = _Counting(predict)
            res = _run_benchmark(name, folder, counted, limit, export, cribnet_weights)
            if name != "synthetic" and counted.calls == 0:  # figures of nothing are not figures
                raise InputError(str(folder), f"{name}'s images or frames (see the data folder's README.md)",
                                 f"none to score ({len(res.get('failed') or [])} failed to load)")
            if predictions is not None and predict.misses:
                if not predict.hits:  # figures of nothing but misses would be wrong, not low
                    raise InputError(str(predictions), f"predictions for {name}'s images (matched by file name)",
                                     f"none of its {predict.misses}")
                error_line(f"{name}: {predict.misses} of {predict.hits + predict.misses} look-ups (images, or their "
                           f"variants) found no prediction in {predictions}: scored as misses", tag="[yellow]note[/yellow]")
            has_base = base_predict is not None and name != "synthetic"
            base = _run_benchmark(name, folder, base_predict, limit, None) if has_base else None
        except KeyboardInterrupt:
            stopped = name
            break
        except CribsightError as e:
            error_line(f"{name}: {e}")
            missing.append(name)
            continue
        except Exception as e:  # noqa: BLE001 - e.g. a corrupt annotation file: this benchmark fails, the others run
            error_line(f"{name}: {type(e).__name__}: {e}")
            missing.append(name)
            continue
        results.append(res)
        bases.append(base)
    if stopped is not None:
        left = names[names.index(stopped):]
        error_line(f"stopped during {stopped}: {', '.join(left)} not scored"
                   + (f"; the {len(results)} finished are written" if results else ""), tag="[yellow]note[/yellow]")
    if not results:
        raise typer.Exit(130 if stopped is not None else 2)
    text = json.dumps(results[0] if len(results) == 1 else results, indent=2)
    print(text)
    if json_out:
        json_out.write_text(text + "\n")
    if report and results:
        src = f"predictions {predictions}" if predictions else f"model {model}" + (f" ({cribnet_weights})" if cribnet_weights else "")
        page = R.write_report(results, report, f"cribsight evaluation ({src})", bases if any(bases) else None,
                              notes=[f"data: {data_root() if data is None else data}"])
        print(f"report: {page}")
    if stopped is not None:
        raise typer.Exit(130)
    if missing:
        raise typer.Exit(2)


class _Counting:
    """A ``predict`` callable that counts its calls: a benchmark that scored nothing is said."""

    def __init__(self, predict):
        self.predict, self.calls = predict, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.predict(*args, **kwargs)


def _check_eval_outputs(json_out: Path | None, report: Path | None, export: Path | None, inputs: list[Path]) -> None:
    """Before anything runs: ``--json`` a file path (its folder created), ``--report`` and ``--export``
    folders (created), none of them one of the inputs (a predictions or results file)."""
    from .errors import InputError, OutputError

    given = {p.resolve() for p in inputs}
    for flag, path in (("--json", json_out), ("--report", report), ("--export", export)):
        if path is None:
            continue
        if path.resolve() in given:
            raise InputError(flag, "an output that is not one of the inputs", f"{path} (an input: it would be overwritten)")
        if flag == "--json" and path.is_dir():
            raise OutputError(str(path), "a JSON file path", "a folder")
        if flag != "--json" and path.exists() and not path.is_dir():
            raise OutputError(str(path), "a folder", "an existing file")
        folder = path.parent if flag == "--json" else path
        _make_folder(folder)
        if not os.access(folder, os.W_OK) or (flag == "--json" and path.exists() and not os.access(path, os.W_OK)):
            raise OutputError(str(path), "a path this user can write", "no write permission")


def _read_results(path: Path):
    from .errors import InputError

    what = "a results JSON file written by cribsight eval --json (an object, or a list of them, with 'benchmark')"
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(str(path), what, f"{type(e).__name__}: {e}") from None
    items = d if isinstance(d, list) else [d]
    if not items or not all(isinstance(r, dict) and "benchmark" in r for r in items):
        raise InputError(str(path), what, f"JSON {json.dumps(d)[:80]}")
    return d


def _match(a, b):
    a_list = a if isinstance(a, list) else [a]
    b_list = b if isinstance(b, list) else [b]
    by = {r.get("benchmark"): r for r in b_list}
    return [by.get(r.get("benchmark")) for r in a_list]


data_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Training data: build shards, look at them, export.")
app.add_typer(data_app, name="data")


@data_app.command("build")
def data_build(
    config: Path = typer.Argument(..., help="YAML build config (see configs/data/)"),
    out: Path = typer.Option(..., "--out", help="output folder for shards and manifest.json"),
    samples: Optional[int] = typer.Option(None, min=1, help="override the config's sample count"),
):
    """Write training shards (real faces + synthetic occlusion, exact labels) and a manifest."""
    from .data.build import build, load_config
    from .errors import CribsightError

    try:
        cfg = load_config(config)
    except CribsightError as e:
        error_line(str(e))
        raise typer.Exit(2)
    if samples is not None:
        cfg.samples = samples
    with _progress() as prog:
        man = build(cfg, out, _tracker(prog, "generate"), log=lambda m: console.print(m, highlight=False))
    t = Table(title=f"cribsight data build: {man['samples']} samples ({man['split']}) in {out}")
    t.add_column("what")
    t.add_column("value", justify="right")
    for k, v in man["counts"]["per_source"].items():
        t.add_row(f"source {k}", str(v))
    for k, v in man["counts"]["per_family"].items():
        t.add_row(f"family {k}", str(v))
    for k, v in man["label_balance"].items():
        t.add_row(k, f"{v:.3f}")
    t.add_row("generation samples/s", str(man["samples_per_second"]))
    Console().print(t)


@data_app.command("show")
def data_show(
    directory: Path = typer.Argument(..., help="a shard folder"),
    out: Path = typer.Option(Path("sheet.png"), "--out", help="the sheet image (.png or .jpg)"),
    n: int = typer.Option(48, min=1, help="samples on the sheet"),
):
    """Contact sheet: landmarks coloured by visibility, occluder outline, family and part labels."""
    import cv2

    from .data.build import contact_sheet, load_shards
    from .errors import OutputError

    if out.suffix.lower() not in (".png", ".jpg", ".jpeg") or out.is_dir():
        raise OutputError(str(out), "an image path ending .png or .jpg", "a folder" if out.is_dir() else f"'{out.suffix}'")
    if not out.parent.is_dir():
        raise OutputError(str(out), "an image path in an existing folder", f"no folder {out.parent}")
    d = load_shards(directory, limit=n)
    shown = min(n, len(d["image"]))
    sheet = contact_sheet(d, n=n)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OutputError(str(out), "a writable image path", "cv2.imwrite failed")
    print(f"contact sheet: {out} ({shown} samples)")


@data_app.command("yolo")
def data_yolo(
    directory: Path = typer.Argument(..., help="a shard folder"),
    out: Path = typer.Option(..., "--out", help="folder for images/ and labels/ in YOLO layout"),
    limit: Optional[int] = typer.Option(None, min=1),
):
    """Export shard crops with seed-001 facial-part boxes as YOLO text labels."""
    import cv2

    from .data.build import load_shards
    from .data.parts import PART_CLASS_NAMES, part_boxes, write_yolo

    from .errors import OutputError

    if out.exists() and not out.is_dir():
        raise OutputError(str(out), "a folder for images/ and labels/", "an existing file")
    d = load_shards(directory, limit)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    S = d["image"].shape[1]
    for i in range(len(d["image"])):
        cv2.imwrite(str(out / "images" / f"{i:06d}.jpg"), cv2.cvtColor(d["image"][i], cv2.COLOR_RGB2BGR))
        write_yolo(out / "labels" / f"{i:06d}.txt", part_boxes(d["landmarks"][i], d["visibility"][i], image_size=(S, S)), S, S)
    (out / "classes.txt").write_text("\n".join(PART_CLASS_NAMES) + "\n")
    print(f"wrote {len(d['image'])} images and labels to {out}")


@data_app.command("bench")
def data_bench(
    samples: int = typer.Option(400, min=1, help="samples to generate"),
    size: int = typer.Option(160, min=16, help="crop size"),
    source: Optional[Path] = typer.Option(None, help="folder of face images, or 'demo' for the demo portrait (default "
                                                     "$CRIBSIGHT_DATA or ../shared/data: utkface, else the demo portrait)"),
    close_eyes_prob: float = typer.Option(0.2, min=0.0, max=1.0,
                                          help="share of crops whose eyes are shut (0.2 as in configs/data/train.yaml)"),
):
    """Synthetic-occlusion generation throughput on one core (samples per second)."""
    import cv2
    import numpy as np

    from .data.occluders import TextureBank
    from .data.sample import FaceSample
    from .data.synth import SynthConfig, synthesize
    from .data.teacher import Teacher
    from .demo import ASSET

    cv2.setNumThreads(1)
    src = _bench_source(source, data_root() / "utkface")
    files = _bench_images(src, 40) if src is not None else [ASSET]
    teacher = Teacher(None)
    pool = [t for t in (teacher.apply(FaceSample(path=f)) for f in files) if t is not None]
    if not pool:
        from .errors import InputError

        raise InputError("--source", "images in which the pretrained pipeline finds a face", f"none of {len(files)} in {src}")
    for p in pool:
        p.image_array = None
    cfg = SynthConfig(size=size, close_eyes_prob=close_eyes_prob)
    bank = TextureBank(0)
    t0 = time.perf_counter()
    for i in range(samples):
        rng = np.random.default_rng(i)
        s = pool[i % len(pool)]
        synthesize(s, rng, cfg, bank)
        s.image_array = None  # decode counted, as in a build
    dt = time.perf_counter() - t0
    print(f"{samples} samples at {size}x{size} from {len(pool)} faces ({src if src is not None else 'demo portrait'}): "
          f"{samples / dt:.1f} samples/s on one core ({dt / samples * 1e3:.2f} ms per sample, image decode included; "
          f"eyes shut in {close_eyes_prob:.0%})")


@app.command("train")
def train_cmd(
    config: Path = typer.Argument(..., help="YAML train config (configs/models/*.yaml)"),
    steps: Optional[int] = typer.Option(None, min=1, help="override the number of steps"),
    out: Optional[Path] = typer.Option(None, help="override the run folder"),
    fresh: bool = typer.Option(False, help="ignore an existing checkpoint and start over"),
    stop_after: Optional[int] = typer.Option(None, min=1, help="checkpoint and stop at this step (resume later)"),
):
    """Train a model on data-engine shards (needs the train extra). Resumes from the run's checkpoint."""
    from .errors import CribsightError

    try:
        from .train.trainer import load_train_config, train
        cfg = load_train_config(config)
    except CribsightError as e:
        error_line(str(e))
        raise typer.Exit(2)
    if steps is not None:
        cfg.steps = steps
    if out is not None:
        cfg.out = str(out)
    with _progress() as prog:
        run = train(cfg, resume=not fresh, log=lambda m: console.print(m, highlight=False),
                    progress=_tracker(prog, f"train {cfg.model}"), stop_after=stop_after)
    print(f"run: {run}")


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="a run folder with checkpoint.pt"),
    out: Optional[Path] = typer.Option(None, help="ONNX path (default RUN/<model>.onnx)"),
    install: bool = typer.Option(False, help="also copy it into cribsight/weights as the shipped model and update manifest.json"),
    install_as: Optional[str] = typer.Option(
        None, help="install it under this file name instead (<model>_<tag>.onnx): an opt-in alternative beside the "
                   "default model, chosen with --cribnet-weights"),
    fit_visibility: Optional[Path] = typer.Option(
        None, help="a shard folder of TRAINING crops: fit the landmark-visibility fusion (visibility head + "
                   "occluder mask) on it and store it in the manifest entry (docs/models.md)"),
    fit_samples: int = typer.Option(2000, help="crops of --fit-visibility to fit on"),
    flip_parts: bool = typer.Option(
        False, help="the runtime averages the part (occluded / covered) outputs over the crop and its mirror: "
                    "one more network run per face (manifest entry part_flip_average; docs/models.md, v2.14)"),
):
    """Export a trained run to ONNX with its manifest entry (JSON beside it)."""
    from .errors import InputError
    from .train.trainer import check_install_name, export_onnx, install_weights, yaml_load

    if install and install_as:
        raise InputError("--install / --install-as", "one of them (--install: as the default model; --install-as: "
                         "beside it under another name)", "both")
    if install_as and (run / "config.yaml").exists():  # before the export and the fit (a run without one: export's error)
        check_install_name(install_as, str(yaml_load(run / "config.yaml").get("model")))

    from .errors import OutputError

    run_model = yaml_load(run / "config.yaml").get("model") if (run / "config.yaml").is_file() else None
    final = Path(out) if out is not None else run / f"{run_model}.onnx" if run_model else None
    if final is None:  # not a run folder: export_onnx says what is missing
        export_onnx(run, None)
    if final.suffix.lower() != ".onnx" or final.is_dir():  # never the run's checkpoint.pt or config.yaml
        raise OutputError(str(final), "an ONNX file path ending .onnx", "a folder" if final.is_dir() else f"'{final.suffix}'")
    if not final.parent.is_dir():
        raise OutputError(str(final), "an ONNX file path in an existing folder", f"no folder {final.parent}")
    if final.with_suffix(".json").exists():  # the entry is written beside the ONNX file
        try:
            old = json.loads(final.with_suffix(".json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            old = None
        if not (isinstance(old, dict) and old.get("kind") == "face_analysis"):
            raise OutputError(str(final.with_suffix(".json")), "a manifest entry of an earlier export (or no file)",
                              "another file, which the export's manifest entry would replace")
    # written under temporary names and renamed at the end: a failing fit or check leaves nothing behind
    tmp = final.with_name(f".{final.stem}.export-tmp.onnx")
    try:
        export_onnx(run, tmp)
    except OSError as e:  # a folder that cannot be written
        tmp.unlink(missing_ok=True)
        raise OutputError(str(final), "a writable ONNX file path", f"{type(e).__name__}: {e.strerror or e}") from None
    try:
        entry = json.loads(tmp.with_suffix(".json").read_text())
        if flip_parts and entry.get("model") != "cribnet":  # bmtl's part heads are not four mirror-symmetric parts
            raise InputError("--flip-parts", "a cribnet run (four parts: eye_left, eye_right, nose, mouth)",
                             str(entry.get("model")))
        if fit_visibility is not None:
            from .analyze.calibrate import fit_visibility_fusion

            with _progress() as prog:
                entry["visibility_fusion"] = fusion = fit_visibility_fusion(
                    str(tmp), fit_visibility, fit_samples, _tracker(prog, "fit visibility"))
            print(f"visibility fusion: {fusion['visibility']:.3f} v + {fusion['mask']:.3f} m + {fusion['bias']:.3f}; AUROC "
                  f"on the fit crops {fusion['auroc_head_on_fit_data']:.4f} (head) -> {fusion['auroc_fused_on_fit_data']:.4f}")
        if flip_parts:
            entry["part_flip_average"] = True
        tmp.with_suffix(".json").write_text(json.dumps(entry, indent=2) + "\n")
        tmp.replace(final)
        tmp.with_suffix(".json").replace(final.with_suffix(".json"))
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".json").unlink(missing_ok=True)
    path = final
    print(f"onnx: {path}\nmanifest entry: {path.with_suffix('.json')}")
    if install or install_as:
        dest = install_weights(path, run, install_as)
        print(f"installed: {dest}")


def main() -> None:
    """The ``cribsight`` command: a typed error anywhere (bad file, bad argument, missing weights or
    data) is one red line on stderr and exit code 2, never a traceback."""
    import signal

    from .errors import CribsightError

    stopped: list[int] = []

    def terminate(signum, frame):  # a service manager's stop: end as Ctrl-C does, closing the outputs
        if stopped:  # a repeated stop must not break the closing of a render
            return
        stopped.append(signum)
        raise KeyboardInterrupt

    def record(signum, frame):  # once the command has ended: a stop changes the exit code, never raises
        stopped.append(signum)

    signal.signal(signal.SIGTERM, terminate)
    code: int | str | None = 0
    try:
        app()
    except CribsightError as e:
        signal.signal(signal.SIGTERM, record)
        error_line(str(e))
        code = 2
    except SystemExit as e:
        code = e.code
    finally:
        signal.signal(signal.SIGTERM, record)
    if stopped:  # the shell's convention, 128 + the signal: 143 for SIGTERM (Ctrl-C stays 130)
        error_line("stopped by SIGTERM; what was written so far is kept", tag="[yellow]note[/yellow]")
        sys.exit(128 + stopped[0])
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
