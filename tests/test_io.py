import json
from fractions import Fraction
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cribsight.errors import DecodeError, InputError
from cribsight.io.images import read_image


@pytest.fixture(scope="module")
def files(tmp_path_factory, portrait):
    d = tmp_path_factory.mktemp("inputs")
    bgr = cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(d / "good.jpg"), bgr)
    jpg = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20)
    (d / "empty.png").write_bytes(b"")
    (d / "notes.jpg").write_text("this is not an image\n")
    cv2.imwrite(str(d / "png_named.jpeg"), bgr)  # wrong extension, valid content
    (d / "png_named.jpeg").rename(d / "png_named.bmp")
    cv2.imwrite(str(d / "gray.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(d / "sixteen.png"), (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 30))
    cv2.imwrite(str(d / "rgba.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    huge = np.zeros((10000, 10000, 3), np.uint8)
    huge[2500:7500, 2500:7500] = cv2.resize(bgr, (5000, 5000))  # the face ~1000 px wide
    cv2.imwrite(str(d / "huge.png"), huge)
    (d / "clip.xyz").write_bytes(b"\x00" * 100)
    return d


def test_read_image_variants(files):
    assert read_image(files / "good.jpg").shape == (512, 512, 3)
    assert read_image(files / "png_named.bmp").shape == (512, 512, 3)
    g = read_image(files / "gray.png")
    assert g.shape == (512, 512, 3) and np.array_equal(g[..., 0], g[..., 2])
    s = read_image(files / "sixteen.png")
    assert s.dtype == np.uint8 and s.max() >= 250 and s.min() <= 5  # stretched, not crushed to black
    assert read_image(files / "rgba.png").shape == (512, 512, 3)


@pytest.mark.parametrize("name, cls, words", [
    ("empty.png", DecodeError, "empty file"),
    ("corrupt.jpg", DecodeError, "does not decode"),
    ("notes.jpg", DecodeError, "text"),
    ("missing.jpg", InputError, "no such file"),
])
def test_read_image_errors(files, name, cls, words):
    with pytest.raises(cls) as e:
        read_image(files / name)
    msg = str(e.value)
    assert words in msg and "expected" in msg and "\n" not in msg


def test_cli_batch_survives_bad_inputs(files, tmp_path):
    out = tmp_path / "res.jsonl"
    names = ["good.jpg", "truncated.jpg", "corrupt.jpg", "empty.png", "notes.jpg", "png_named.bmp", "gray.png",
             "sixteen.png", "huge.png", "clip.xyz", "does_not_exist.jpg"]
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "analyze", *[str(files / n) for n in names],
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_name = {Path(r["source"]).name: r for r in rows}
    # every decodable input has its result, in input order, with a face where there is one
    for n in ("good.jpg", "png_named.bmp", "gray.png", "sixteen.png", "huge.png"):
        assert len(by_name[n]["faces"]) == 1, n
    assert by_name["huge.png"]["width"] == 10000
    hx1, hy1, hx2, hy2 = by_name["huge.png"]["faces"][0]["box"]
    assert 4000 <= hx1 and hx2 <= 5600 and 3000 <= hy1 and hy2 <= 4600  # the portrait's face, x20/2 + 2500
    # the failures are each one clear line on stderr
    for n in ("corrupt.jpg", "empty.png", "notes.jpg", "clip.xyz", "does_not_exist.jpg"):
        assert n not in by_name
        assert any(n in line and "expected" in line for line in proc.stderr.splitlines()), n
    # a truncated JPEG is either decoded partially (some decoder builds fill the rest) or reported
    # in one line; either way the batch went on
    assert "truncated.jpg" in by_name or any(
        "truncated.jpg" in line and "expected" in line for line in proc.stderr.splitlines())


@pytest.fixture(scope="module")
def videos(tmp_path_factory, portrait):
    """A good clip, the same clip cut to a third of its bytes, an audio-only container, an empty
    file and a text file named .mp4."""
    import av

    from cribsight.io.video import VideoWriter

    d = tmp_path_factory.mktemp("videos")
    small = cv2.resize(portrait, (256, 256))
    with VideoWriter(d / "good.mp4", 10, 256, 256) as w:
        for i in range(12):
            w.write(np.roll(small, 4 * i, axis=1))
    data = (d / "good.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    with av.open(str(d / "audio_only.mp4"), mode="w") as c:
        s = c.add_stream("aac", rate=16000)
        t = np.arange(16000, dtype=np.float32) / 16000
        frame = av.AudioFrame.from_ndarray(np.sin(2 * np.pi * 440 * t)[None].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in s.encode(frame):
            c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("not a video\n")
    return d


@pytest.mark.parametrize("name, words", [
    ("empty.mp4", "empty file"),
    ("notes.mp4", "expected a decodable video"),
    ("audio_only.mp4", "a container with audio only"),
    ("missing.mp4", "no such file"),
])
def test_bad_videos_are_typed_errors(videos, name, words):
    from cribsight.io.video import iter_video, video_info

    for call in (video_info, lambda p: list(iter_video(p))):
        with pytest.raises(InputError) as e:
            call(videos / name)
        assert words in str(e.value) and "expected" in str(e.value)


def test_cli_batch_survives_bad_videos(videos, tmp_path):
    from cribsight.io.video import video_info

    assert video_info(videos / "good.mp4")["frames"] == 12
    out = tmp_path / "res.jsonl"
    names = ["empty.mp4", "good.mp4", "notes.mp4", "audio_only.mp4", "truncated.mp4"]
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "analyze", *[str(videos / n) for n in names],
                           "--out", str(out), "--render", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    good = [r for r in rows if r["source"].endswith("good.mp4")]
    assert [r["frame"] for r in good] == list(range(12)) and all(len(r["faces"]) == 1 for r in good)
    assert (tmp_path / "r" / "good.cribsight.mp4").stat().st_size > 0
    for n in ("empty.mp4", "notes.mp4", "audio_only.mp4"):
        assert not any(r["source"].endswith(n) for r in rows)
        assert any(n in line and "expected" in line for line in proc.stderr.splitlines()), n
    # a cut file gives the frames before the cut, or one error line; the batch went on either way
    cut = [r for r in rows if r["source"].endswith("truncated.mp4")]
    assert len(cut) < 12 and (cut or any("truncated.mp4" in line for line in proc.stderr.splitlines()))


def _write_clip(path, indices, faststart=False, fps=12):
    """An MPEG-4 clip whose frame i carries timestamp i / fps and a grey level of its own; frames
    left out of ``indices`` leave a gap in the timestamps, as a stretch a decoder skipped does."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in indices:
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 5 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_frames_lost_from_a_video_are_counted_and_numbered_by_timestamp(tmp_path):
    from cribsight.io.video import iter_video

    _write_clip(tmp_path / "gap.mp4", [*range(12), *range(24, 40)])
    frames = list(iter_video(tmp_path / "gap.mp4"))
    assert [f.index for f in frames] == [*range(12), *range(24, 40)]  # not 0..27: the lost stretch shows
    assert [(f.index, f.missing_before) for f in frames if f.missing_before] == [(24, 12)]
    assert frames[12].timestamp_ms == pytest.approx(2000.0, abs=1)
    assert abs(int(frames[12].rgb.mean()) - 5 * 24) <= 3  # the frame itself is the 25th one written
    _write_clip(tmp_path / "whole.mp4", range(40))
    assert sum(f.missing_before for f in iter_video(tmp_path / "whole.mp4")) == 0


def test_a_video_cut_short_of_its_declared_frames_is_an_error_after_its_frames(tmp_path):
    from cribsight.io.video import iter_video, video_info

    _write_clip(tmp_path / "whole.mp4", range(40), faststart=True)  # the index first: a cut keeps it
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    assert video_info(tmp_path / "cut.mp4")["frames"] == 40
    got = []
    with pytest.raises(DecodeError, match="the 40 frames its container presents") as e:
        for f in iter_video(tmp_path / "cut.mp4"):
            got.append(f.index)
    assert 0 < len(got) < 40 and got == list(range(len(got))) and f"after frame {got[-1]}" in str(e.value)


def test_a_stream_copy_trimmed_video_is_not_reported_cut(tmp_path):
    """Trimming without re-encoding keeps the packets before the cut (they are needed to decode)
    and an edit list hides them: the container declares 40 frames and presents 35. That is whole."""
    import av

    from cribsight.io.video import iter_video, video_info

    _write_clip(tmp_path / "whole.mp4", range(40))
    with av.open(str(tmp_path / "whole.mp4")) as src, av.open(str(tmp_path / "trim.mp4"), "w") as dst:
        ist = src.streams.video[0]
        ost = dst.add_stream_from_template(ist)
        shift = int(round(Fraction(5, 12) / ist.time_base))  # the first 5 frames before the cut
        for pkt in src.demux(ist):
            if pkt.dts is None:
                continue
            pkt.pts, pkt.dts, pkt.stream = pkt.pts - shift, pkt.dts - shift, ost
            dst.mux(pkt)
    with av.open(str(tmp_path / "trim.mp4")) as c:
        assert c.streams.video[0].frames == 40
    assert [f.index for f in iter_video(tmp_path / "trim.mp4")] == list(range(35))
    assert video_info(tmp_path / "trim.mp4")["frames"] == 35  # the progress bar's total


def test_cli_reports_lost_and_missing_video_frames(tmp_path):
    _write_clip(tmp_path / "gap.mp4", [*range(12), *range(24, 40)])
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "analyze", str(tmp_path / "gap.mp4"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0  # a gap is said, not failed: a variable frame rate makes gaps too
    assert f"{tmp_path / 'gap.mp4'} frames 12-23: no frame decoded" in proc.stderr
    assert [json.loads(x)["frame"] for x in out.read_text().splitlines()] == [*range(12), *range(24, 40)]


def test_float_and_unknown_extension_inputs(tmp_path):
    """A single-channel float32 TIFF (thermal cameras) decodes, stretched; a video named .dat is
    analysed and rendered as a video, not as one image rewritten per frame."""
    ir = np.linspace(21.5, 36.5, 64 * 48, dtype=np.float32).reshape(48, 64)
    assert cv2.imwrite(str(tmp_path / "thermal.tiff"), ir)
    img = read_image(tmp_path / "thermal.tiff")
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img[0, 0, 0] <= 2 and img[-1, -1, 0] >= 253
    _write_clip(tmp_path / "clip.mp4", range(6))
    (tmp_path / "clip.mp4").rename(tmp_path / "clip.dat")
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "analyze", str(tmp_path / "clip.dat"), "--out", str(out),
                           "--render", str(tmp_path / "render")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["frame"] for x in out.read_text().splitlines()] == list(range(6))
    assert sorted(p.name for p in (tmp_path / "render").iterdir()) == ["clip.cribsight.mp4"]


def test_every_nth_video_frame(tmp_path):
    import av

    _write_clip(tmp_path / "gap.mp4", [*range(12), *range(24, 40)])
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "analyze", str(tmp_path / "gap.mp4"), "--out", str(out),
                           "--every", "5", "--render", str(tmp_path / "render")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "frames 12-23: no frame decoded" in proc.stderr  # still said, though 12-23 would be skipped
    assert [json.loads(x)["frame"] for x in out.read_text().splitlines()] == [0, 5, 10, 25, 30, 35]
    with av.open(str(tmp_path / "render" / "gap.cribsight.mp4")) as c:
        # frames keep the source's times (0, 5, 10, 25, 30, 35 / 12 s): the render plays as long as
        # the source, gap included (a fixed rate would squeeze it, rounded or not)
        assert [round(f.time * 12, 1) for f in c.decode(video=0)] == [0, 5, 10, 25, 30, 35]
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "analyze", str(tmp_path / "gap.mp4"), "--out", str(out),
                           "--every", "0"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("ext", [".pam", ".jp2", ".pfm", ".ras", ".hdr", ".webp", ".png", ".tiff"])
def test_unknown_extension_image_is_sniffed(tmp_path, ext, portrait):
    """An image whose name has no known extension is recognised by its first bytes (PAM, JPEG 2000,
    PFM, Sun raster, Radiance, WebP, PNG) and decoded as an image, not tried as a video first."""
    from cribsight.sources import _kind

    img = np.ascontiguousarray(portrait[::8, ::8, ::-1])
    if ext in (".pfm", ".hdr"):
        img = img.astype(np.float32) / 255
    ok, buf = cv2.imencode(ext, img)
    assert ok
    p = tmp_path / "frame.bin"
    p.write_bytes(buf.tobytes())
    assert _kind(p) == "image"
    assert read_image(p).shape == (64, 64, 3)


def test_unknown_extension_avi_is_a_video(tmp_path):
    """AVI and WebP are both RIFF files: the form type, not the first four bytes, tells them apart."""
    import av

    from cribsight.io.images import _sniff
    from cribsight.sources import _kind

    p = tmp_path / "clip.avi"
    with av.open(str(p), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    p.rename(tmp_path / "clip.rec")
    assert _sniff((tmp_path / "clip.rec").read_bytes()[:64]) == "AVI container"
    assert _kind(tmp_path / "clip.rec") == "video"


def test_failed_decodes_are_typed_errors_not_log_lines(tmp_path, capfd):
    """A float TIFF (whose colour decode fails first) and truncated BMP / PAM / JPEG 2000 files put
    nothing on stderr: the typed error is the whole report."""
    assert cv2.imwrite(str(tmp_path / "f.tiff"), np.ones((16, 16), np.float32))
    read_image(tmp_path / "f.tiff")
    img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    for ext in (".bmp", ".pam", ".jp2"):
        ok, buf = cv2.imencode(ext, img)
        (tmp_path / f"t{ext}").write_bytes(buf.tobytes()[: len(buf) // 2])
        with pytest.raises(DecodeError):
            read_image(tmp_path / f"t{ext}")
    assert capfd.readouterr().err == ""


def test_concurrent_tiff_decodes_restore_opencvs_log_level(tmp_path):
    """OpenCV's log is silenced while an image decodes, and many threads decoding at once leave
    the process's level as it was (a save/restore per call would leave it silenced)."""
    from concurrent.futures import ThreadPoolExecutor

    ir = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    assert cv2.imwrite(str(tmp_path / "t.tiff"), ir)
    assert cv2.imwrite(str(tmp_path / "p.png"), np.zeros((8, 8, 3), np.uint8))
    before = cv2.utils.logging.getLogLevel()
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING)
        with ThreadPoolExecutor(8) as ex:
            shapes = list(ex.map(lambda i: read_image(tmp_path / ("t.tiff" if i % 3 else "p.png")).shape, range(400)))
        assert set(shapes) == {(32, 32, 3), (8, 8, 3)}
        assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_WARNING
    finally:
        cv2.utils.logging.setLogLevel(before)


@pytest.mark.parametrize("only", [None, "mpeg4"])
def test_video_writer_keeps_variable_timing_and_odd_rates(tmp_path, monkeypatch, only):
    """A phone-style clip (30, then 60, then 15 fps) written with its timestamps plays as long as the
    source; an odd declared rate (119.88 fps / 7) still opens the MPEG-4 fallback, chosen before the
    first frame (an FFmpeg build without H.264 is simulated by refusing the other encoders)."""
    import av

    from cribsight.io.video import VideoWriter

    if only:
        real = VideoWriter._opens
        monkeypatch.setattr(VideoWriter, "_opens", lambda self, codec, size: codec == only and real(self, codec, size))
    ts = [i * 1000 / 30 for i in range(30)] + [1000 + i * 1000 / 60 for i in range(60)] + [2000 + i * 1000 / 15 for i in range(15)]
    with VideoWriter(tmp_path / "v.mp4", 120000 / 7007 / 7, 64, 48) as w:
        for i, t in enumerate(ts):
            w.write(np.full((48, 64, 3), i % 250, np.uint8), t)
    with av.open(str(tmp_path / "v.mp4")) as c:
        assert (c.streams.video[0].codec_context.name == "mpeg4") == (only == "mpeg4")
        times = [f.time for f in c.decode(video=0)]
    assert len(times) == len(ts) and np.allclose(times, np.array(ts) / 1000, atol=0.002)


def test_folder_walk_leaves_ambiguous_extensions_and_renders(tmp_path):
    """An ENVI / Analyze .hdr text header beside the images is not an input of a folder walk (nor is
    a render); the same Radiance-style name given on its own is still read by its signature."""
    from cribsight.sources import expand

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "scan.hdr").write_text("ENVI\nsamples = 8\nlines = 8\nbands = 1\n")
    cv2.imwrite(str(tmp_path / "a.cribsight.jpg"), np.zeros((8, 8, 3), np.uint8))
    inputs, problems = expand([str(tmp_path)])
    assert [i.path.name for i in inputs] == ["a.png"] and problems == []
    inputs, _ = expand([str(tmp_path / "a.cribsight.jpg")])
    assert [(i.path.name, i.kind) for i in inputs] == [("a.cribsight.jpg", "image")]


def test_a_gif_is_named_in_the_error(tmp_path):
    """GIF (which OpenCV does not decode) is still recognised by its signature, so the error names it."""
    (tmp_path / "a.gif").write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(DecodeError, match="found GIF of 46 bytes"):
        read_image(tmp_path / "a.gif")
