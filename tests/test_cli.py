import json
import subprocess
import sys

import numpy as np


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
    rendered = tmp_path / "rendered" / "demo_input.mp4"
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
    assert (tmp_path / "render" / "a.jpg").exists() and (tmp_path / "render" / "b.jpg").exists()


def test_bench_prints_stage_figures(tmp_path):
    proc = run("bench", "--source", str(tmp_path / "none"), "--limit", "3", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    for stage in ("decode", "detect", "landmarks", "pose", "network", "total"):
        assert stage in proc.stdout
    assert "intra_op_num_threads" in proc.stdout


def test_eval_rejects_unknown_benchmark_and_missing_data(tmp_path):
    proc = run("eval", "nope")
    assert proc.returncode == 2 and "expected one of" in proc.stderr
    proc = run("eval", "syrip", "--data", str(tmp_path / "absent"))
    assert proc.returncode == 2 and "found nothing" in proc.stderr


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
