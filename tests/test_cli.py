import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "cribsight.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_demo_writes_results_and_rendered_video(tmp_path):
    proc = run("demo", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "demo.jsonl").read_text().splitlines()]
    assert len(rows) == 48
    ts = [r["timestamp_ms"] for r in rows]
    assert np.allclose(np.diff(ts), 1000 / 12, atol=1.0)  # container timestamps at 12 fps
    assert sum(len(r["faces"]) > 0 for r in rows[:6]) == 6  # unoccluded start: face found
    assert all(len(f["landmarks"]["xy"]) == 68 for r in rows for f in r["faces"])
    rendered = tmp_path / "rendered" / "demo_input.cribsight.mp4"
    assert rendered.stat().st_size > 10_000
    import av

    with av.open(str(rendered)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 48
    assert "results (JSONL)" in proc.stdout


def test_analyze_folder_with_render(tmp_path, portrait):
    import cv2

    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    cv2.imwrite(str(d / "a.jpg"), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(d / "sub" / "b.png"), np.full((100, 120, 3), 200, np.uint8))
    (d / "readme.txt").write_text("ignored: folders keep image and video files only")
    proc = run("analyze", str(d), "--out", str(tmp_path / "r.jsonl"), "--render", str(tmp_path / "render"))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [len(r["faces"]) for r in rows] == [1, 0]
    assert (tmp_path / "render" / "a.cribsight.jpg").exists() and (tmp_path / "render" / "b.cribsight.jpg").exists()


def test_renders_of_inputs_with_one_name_do_not_overwrite_each_other(tmp_path, portrait):
    import cv2

    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "in" / sub / "x.jpg"), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "in" / "y.png"), np.full((60, 60, 3), 90, np.uint8))
    proc = run("analyze", str(tmp_path / "in"), "--out", str(tmp_path / "r.jsonl"), "--render", str(tmp_path / "render"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "render").iterdir()) == ["0000_x.cribsight.jpg", "0001_x.cribsight.jpg", "y.cribsight.jpg"]


def test_one_frame_that_fails_does_not_stop_the_video_or_the_batch(tmp_path, portrait):
    """A frame the analyser cannot handle is reported with its index; the video's other frames and
    the next inputs are still written."""
    import cv2

    from cribsight.cli import run_analyze
    from cribsight.io.video import VideoWriter
    from cribsight.pipeline import Analyzer

    w = VideoWriter(tmp_path / "v.mp4", 5, 128, 96)
    for i in range(4):
        w.write(np.full((96, 128, 3), 40 * i, np.uint8))
    w.close()
    cv2.imwrite(str(tmp_path / "z.png"), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    real = Analyzer()

    class FailsOnFrame2:  # the real analyser, except that frame 2 of the video raises
        def analyze_image(self, img, source, index=0, ts=None):
            if source.endswith("v.mp4") and index == 2:
                raise RuntimeError("simulated failure")
            return real.analyze_image(img, source, index, ts)

    s = run_analyze([str(tmp_path / "v.mp4"), str(tmp_path / "z.png")], tmp_path / "r.jsonl", tmp_path / "render",
                    FailsOnFrame2())
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in rows if r["source"].endswith("v.mp4")] == [0, 1, 3]
    assert rows[-1]["source"].endswith("z.png") and len(rows[-1]["faces"]) == 1
    assert len(s["failed"]) == 1 and "frame 2" in s["failed"][0][0] and "RuntimeError: simulated failure" in s["failed"][0][1]
    assert (tmp_path / "render" / "v.cribsight.mp4").stat().st_size > 0 and (tmp_path / "render" / "z.cribsight.jpg").exists()


def test_bench_prints_stage_figures(tmp_path):
    proc = run("bench", "--source", "demo", "--limit", "3", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    for stage in ("decode", "detect", "landmarks", "pose", "network", "total"):
        assert stage in proc.stdout
    assert "intra_op_num_threads" in proc.stdout and "demo sample" in proc.stdout


def test_bench_bad_sources_are_one_line_errors(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not an image")
    for args, says in (((str(tmp_path / "typo"),), "expected a folder of images or 'demo'"),
                       ((str(tmp_path / "notes"),), "expected a folder with images"),
                       (("demo", "--limit", "0"), "--limit")):
        proc = run("bench", "--source", *args)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_eval_rejects_unknown_benchmark_and_missing_data(tmp_path):
    proc = run("eval", "nope")
    assert proc.returncode == 2 and "expected one of" in proc.stderr
    proc = run("eval", "syrip", "--data", str(tmp_path / "absent"))
    assert proc.returncode == 2 and "found nothing" in proc.stderr
    (tmp_path / "empty").mkdir()  # a folder without SyRIP's annotations
    proc = run("eval", "syrip", "--model", "pretrained", "--data", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "syrip annotations" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("eval", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert proc.returncode == 2 and "a results JSON file" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "p.jsonl").write_text("{not json\n")
    proc = run("eval", "syrip", "--predictions", str(tmp_path / "p.jsonl"), "--data", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "line 1" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("eval", "video-dev", "--predictions", str(tmp_path / "p.jsonl"))
    assert proc.returncode == 2 and "video-dev: expected a model" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("eval", "syrip", "--model", "pretrained", "--cribnet-weights", "cribnet_v216.onnx")
    assert proc.returncode == 2 and "--cribnet-weights: expected --model cribnet" in proc.stderr
    proc = run("analyze", str(tmp_path), "--cribnet-weights", "cribnet_v3.onnx")
    assert proc.returncode == 2 and "cribnet_weights" in proc.stderr and "cribnet_v216.onnx" in proc.stderr  # what ships
    proc = run("bench", "--source", "demo", "--limit", "1", "--warmup", "0", "--cribnet-weights", "cribnet_v3.onnx")
    assert proc.returncode == 2 and "cribnet_weights" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("eval", "syrip", "--cribnet-weights", "cribnet_v3.onnx", "--data", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "cribnet_weights" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("eval", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--cribnet-weights", "cribnet_v216.onnx")
    assert proc.returncode == 2 and "found --compare" in proc.stderr
    proc = run("analyze", str(tmp_path), "--extra-detector", "cribnet.onnx")
    assert proc.returncode == 2 and "expected a face detector" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("eval", "syrip", "--model", "pretrained", "--extra-detector", "face_detection_full_range_ft.onnx")
    assert proc.returncode == 2 and "second stage" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("analyze", str(tmp_path), "--detector-weights", "cribnet.onnx")
    assert proc.returncode == 2 and "expected a face detector" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("eval", "syrip", "--predictions", str(tmp_path / "p.jsonl"), "--detector-weights", "x.onnx")
    assert proc.returncode == 2 and "--detector-weights: expected a model run" in proc.stderr
    proc = run("eval", "syrip", "--predictions", str(tmp_path / "p.jsonl"), "--no-extra-strict")
    assert proc.returncode == 2 and "--no-extra-strict: expected a model run" in proc.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("model: cribnet\n")
    proc = run("export", str(tmp_path / "run"), "--install", "--install-as", "cribnet_x.onnx")
    assert proc.returncode == 2 and "one of them" in proc.stderr
    proc = run("export", str(tmp_path / "run"), "--install-as", "cribnet.x.onnx")  # refused before the export runs
    assert proc.returncode == 2 and "--install-as" in proc.stderr and "checkpoint" not in proc.stderr


def test_eval_synthetic_runs_the_chosen_weights(tmp_path, monkeypatch):
    from cribsight import cli
    from cribsight.eval import benchmarks as B

    seen = []
    monkeypatch.setattr(B, "synthetic", lambda folder, predict, progress, **kw: seen.append(kw) or {"benchmark": "synthetic"})
    cli._run_benchmark("synthetic", tmp_path, None, None, None, "cribnet_v216.onnx")
    cli._run_benchmark("synthetic", tmp_path, None, None, None)
    assert seen == [{"limit": None, "model": "cribnet_v216.onnx"}, {"limit": None}]  # the default: synthetic's own


def test_environment_and_option_typos_are_typed_errors(tmp_path, monkeypatch):
    from cribsight.errors import InputError
    from cribsight.pipeline import Analyzer
    from cribsight.runtime import default_threads

    monkeypatch.setenv("CRIBSIGHT_THREADS", "two")
    with pytest.raises(InputError, match="CRIBSIGHT_THREADS"):
        default_threads()
    monkeypatch.setenv("CRIBSIGHT_THREADS", "2")
    assert default_threads() == 2
    with pytest.raises(InputError, match="pose_from: expected pnp or cribnet"):
        Analyzer(pose_from="6d")


def test_bad_analyzer_options_are_one_line_errors(tmp_path):
    img = str(tmp_path / "x.png")
    import cv2

    cv2.imwrite(img, np.full((64, 64, 3), 128, np.uint8))
    for args, says in ((("--rotations", "45"), "rotations: expected degrees"),
                       (("--rotations", "abc"), "comma-separated degrees"),
                       (("--tiles", "2"), "grid size from 3 to 8"),
                       (("--tiles", "3", "--verify-face", "0"), "second stage")):
        proc = run("analyze", img, "-o", str(tmp_path / "r.jsonl"), *args)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr + proc.stdout, args


def test_outputs_never_destroy_inputs_or_earlier_results(tmp_path, portrait):
    """A mistyped path leaves the earlier results file as it was; a results file or a render that
    would overwrite an input is refused before anything is written (one line, exit 2); renders
    (``*.cribsight.jpg``) never replace a user's own file and are not analysed on the next run, even
    when the render folder is the input folder."""
    import cv2

    d = tmp_path / "in"
    d.mkdir()
    cv2.imwrite(str(d / "p.png"), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    (d / "p.jpg").write_bytes(b"the user's own p.jpg, not an image we analyse")
    (d / "notes.jpg.txt").write_text("not an input")
    photo = (d / "p.png").read_bytes()
    results = tmp_path / "results.jsonl"
    results.write_text('{"earlier": 1}\n{"earlier": 2}\n')
    proc = run("analyze", str(d / "typo.jpg"), "--out", str(results))
    assert proc.returncode == 1 and "typo.jpg: expected an existing file or folder" in proc.stderr
    assert results.read_text() == '{"earlier": 1}\n{"earlier": 2}\n'

    proc = run("analyze", str(d / "p.png"), "--out", str(d / "p.png"))
    assert proc.returncode == 2 and "--out: expected a results file that is not one of the inputs" in proc.stderr
    assert (d / "p.png").read_bytes() == photo and results.read_text().startswith('{"earlier"')

    for render in (d, d / "rendered"):  # the second run must not analyse the first run's render
        for _ in range(2):
            proc = run("analyze", str(d / "p.png"), "--out", str(results), "--render", str(render))
            assert proc.returncode == 0, proc.stderr
            assert [json.loads(x)["source"] for x in results.read_text().splitlines()] == [str(d / "p.png")]
            proc = run("analyze", str(d), "--out", str(results), "--render", str(render))
            assert proc.returncode == 1 and "p.jpg: expected a decodable image" in proc.stderr  # the user's p.jpg
            assert [json.loads(x)["source"] for x in results.read_text().splitlines()] == [str(d / "p.png")]
    assert (d / "p.jpg").read_bytes().startswith(b"the user's own") and (d / "p.png").read_bytes() == photo
    # p.png alone renders as p; in the folder beside p.jpg, as 0001_p (p.jpg failed: no render)
    assert sorted(p.name for p in d.iterdir()) == ["0001_p.cribsight.jpg", "notes.jpg.txt", "p.cribsight.jpg", "p.jpg",
                                                   "p.png", "rendered"]
    assert sorted(p.name for p in (d / "rendered").iterdir()) == ["0001_p.cribsight.jpg", "p.cribsight.jpg"]

    # a render given by name is analysed, and another input's render may not replace it
    proc = run("analyze", str(d / "p.cribsight.jpg"), "--out", str(results))
    assert proc.returncode == 0 and [json.loads(x)["source"] for x in results.read_text().splitlines()] == [
        str(d / "p.cribsight.jpg")]
    proc = run("analyze", str(d / "p.cribsight.jpg"), str(d / "p.png"), "--out", str(results), "--render", str(d))
    assert proc.returncode == 2 and "would overwrite" in proc.stderr and "Traceback" not in proc.stderr


def test_render_names_stay_unique():
    from cribsight.cli import render_names

    names = render_names([Path("0001_x.jpg"), Path("a/x.jpg"), Path("b/x.jpg"), Path("X.png"), Path("c/Y.jpg"), Path("y.mp4")])
    assert names == ["0001_x", "0001_x_2", "0002_x", "0003_X", "0004_Y", "0005_y"]
    assert len({n.lower() for n in names}) == len(names)


def test_unusable_output_paths_and_odd_names_are_one_line_errors(tmp_path):
    import cv2

    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 128, np.uint8))
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    for args, says in ((("--out", str(tmp_path / "adir")), "expected a JSON Lines file path, found a folder"),
                       (("--out", str(img / "r.jsonl")), "expected a folder that can be created"),
                       (("--render", str(tmp_path / "afile")), "expected a folder for the renders, found an existing file")):
        proc = run("analyze", str(img), *(("--out", str(tmp_path / "r.jsonl")) if args[0] != "--out" else ()), *args)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    # a file whose name looks like console markup is named as it is, once per line
    bad = tmp_path / "photo[bold].jpg"
    bad.write_bytes(b"")
    proc = run("analyze", str(bad), str(img), "--out", str(tmp_path / "r.jsonl"))
    line = next(x for x in proc.stderr.splitlines() if "empty file" in x)
    assert proc.returncode == 1 and line.count("photo[bold].jpg") == 1, line


def test_out_of_range_options_are_typed_errors(tmp_path):
    from cribsight.errors import InputError
    from cribsight.pipeline import Analyzer

    for opts in ({"score_thresh": 5}, {"score_thresh": -1}, {"score_thresh": float("nan")}, {"score_thresh": "high"},
                 {"verify_face": 2}, {"reject_face": 1.1}, {"presence_thresh": 3}, {"tile_verify": -0.5},
                 {"candidate_score": True}, {"threads": 0}, {"threads": 1.5}, {"refine": "yes"}):
        with pytest.raises(InputError, match=f"{next(iter(opts))}: expected"):
            Analyzer(**opts)
    Analyzer(score_thresh=1, verify_face=0, threads=1)  # the ends of the ranges are allowed
    img = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(img), np.full((64, 64, 3), 128, np.uint8))
    proc = run("analyze", str(img), "-o", str(tmp_path / "r.jsonl"), "--score-thresh", "5")
    assert proc.returncode == 2 and "score_thresh: expected a number from 0 to 1, found 5.0" in proc.stderr


def test_the_api_function_survives_importing_the_analyze_package():
    code = ("import numpy as np, cribsight\n"
            "from cribsight.analyze import decode\n"  # binds cribsight.analyze to the subpackage
            "from cribsight import analyze\n"
            "r = cribsight.analyze(np.zeros((64, 64, 3), np.uint8), 'blank')\n"
            "print(type(r).__name__, r.source, analyze is cribsight.analyze)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["FrameResult", "blank", "True"], out.stderr


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_sigterm_closes_the_rendered_video(tmp_path, portrait, stop):
    """A service manager's stop (SIGTERM) ends the run as Ctrl-C (SIGINT) does: the results so far
    and a playable render are left; the exit code is the shell's 128 + the signal."""
    import signal
    import time

    import av

    from cribsight.io.video import VideoWriter

    small = np.ascontiguousarray(portrait[::2, ::2])
    with VideoWriter(tmp_path / "v.mp4", 10, 256, 256) as w:
        for i in range(400):
            w.write(np.roll(small, i, axis=1))
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "cribsight.cli", "analyze", str(tmp_path / "v.mp4"), "--out", str(out),
                             "--render", str(tmp_path / "render")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            # a shell starts background jobs with SIGINT ignored, and the child would inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
        time.sleep(0.2)
    proc.send_signal(getattr(signal, stop))
    _, err = proc.communicate(timeout=120)
    n = len(out.read_text().splitlines())
    assert proc.returncode == 128 + getattr(signal, stop) and 5 <= n < 400, (proc.returncode, n, err.decode()[-2000:])
    assert ("stopped by SIGTERM" in err.decode()) == (stop == "SIGTERM")
    with av.open(str(tmp_path / "render" / "v.cribsight.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 5
