"""`cribsight data build | show | yolo | bench` end to end on a tiny dataset written by the test."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "cribsight.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, portrait):
    root = tmp_path_factory.mktemp("tiny")
    bgr = cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR)
    for j, folder in enumerate(("with_mask", "without_mask")):
        (root / "data" / folder).mkdir(parents=True)
        for i in range(3):
            img = np.roll(bgr, 7 * i + 3 * j, axis=1)  # six distinct files
            cv2.imwrite(str(root / "data" / folder / f"{folder}-{i}.jpg"), img)
    cfg = root / "cfg.yaml"
    cfg.write_text(
        "samples: 24\nseed: 3\nsplit: train\nholdout_fraction: 0.0\nshard_size: 10\n"
        "teacher_cache: ./cache.jsonl\n"
        "sources:\n  - name: faces\n    adapter: class_folders\n    args: {dir: ./data}\n"
        "synth:\n  size: 96\n")
    return root, cfg


def test_build_show_yolo(tiny):
    root, cfg = tiny
    out = root / "shards"
    proc = run("data", "build", str(cfg), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["samples"] == 24 and man["shards"] == ["shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
    assert man["faces_per_source"] == {"faces": 6} and man["teacher"]["cache_misses"] == 6
    assert sum(man["counts"]["per_family"].values()) == 24
    with np.load(out / "shard-00000.npz") as z:
        assert z["image"].shape == (10, 96, 96, 3) and z["landmarks"].shape == (10, 68, 2)
        assert z["parts"].shape == (10, 4, 2) and z["mask"].shape == (10, 96, 96)
    # masked sources: nose and mouth covered in every sample drawn from with_mask files
    assert man["counts"]["covered"]["mouth"] >= man["counts"]["per_source"]["faces"] * 0.3
    # a rebuild re-uses the teacher cache
    proc = run("data", "build", str(cfg), "--out", str(root / "shards2"))
    man2 = json.loads((root / "shards2" / "manifest.json").read_text())
    assert man2["teacher"]["cache_misses"] == 0 and man2["teacher"]["cache_hits"] == 6
    with np.load(out / "shard-00001.npz") as a, np.load(root / "shards2" / "shard-00001.npz") as b:
        assert np.array_equal(a["image"], b["image"])  # deterministic
    sheet = root / "sheet.png"
    proc = run("data", "show", str(out), "--out", str(sheet), "--n", "16")
    assert proc.returncode == 0 and cv2.imread(str(sheet)).shape == (2 * 96 * 2, 8 * 96 * 2, 3)
    for args, says in ((("--out", str(root / "nodir" / "s.png")), "expected an image path in an existing folder"),
                       (("--out", str(root / "s.txt")), "expected an image path ending .png or .jpg"),
                       (("--n", "0"), "")):
        proc = run("data", "show", str(out), *args)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr
    proc = run("data", "show", str(out), "--out", str(sheet), "--n", "48")
    assert proc.returncode == 0 and "(24 samples)" in proc.stdout  # what the sheet holds, not what was asked
    proc = run("data", "yolo", str(out), "--out", str(root / "yolo"), "--limit", "5")
    assert proc.returncode == 0
    labels = sorted((root / "yolo" / "labels").glob("*.txt"))
    assert len(labels) == 5 and (root / "yolo" / "classes.txt").read_text().split()[0] == "eyes"
    for f in labels:
        for line in f.read_text().splitlines():
            k, *v = line.split()
            assert 0 <= int(k) < 10 and all(0 <= float(x) <= 1 for x in v)


def test_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("samples: 3\nsources: []\n")
    proc = run("data", "build", str(cfg), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "expected at least one source" in proc.stderr
    cfg.write_text("samples: 3\nwhat: 1\nsources: [{name: a, adapter: utkface}]\n")
    proc = run("data", "build", str(cfg), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "what" in proc.stderr
    for text, says in (("samples: 3\nsources: [{name: a, adapter: utkface, wieght: 1}]\n", "sources[0]: expected keys from"),
                       ("samples: 3\nsources: [{name: a, adapter: utkface}]\nsynth: {sise: 96}\n", "synth: expected keys from"),
                       ("samples: forty\nsources: [{name: a, adapter: utkface}]\n", "samples: expected int, found 'forty'"),
                       ("shard_size: '16'\nsources: [{name: a, adapter: utkface}]\n", "shard_size: expected int"),
                       ("samples: 0\nsources: [{name: a, adapter: utkface}]\n", "samples: expected a whole number >= 1"),
                       ("sources: {name: a}\n", "sources: expected list"),
                       ("- 1\n- 2\n", "a YAML list"), ("samples: [\n", "text YAML cannot read")):
        cfg.write_text(text)
        proc = run("data", "build", str(cfg), "--out", str(tmp_path / "o"))
        assert proc.returncode == 2 and says in proc.stderr.replace("\n", "") and "Traceback" not in proc.stderr, (text, proc.stderr)
    assert not (tmp_path / "o").exists()  # nothing written by a config that was refused


def test_a_rebuild_in_place_drops_the_old_manifest_first(tiny, tmp_path):
    """A build into an existing shard folder removes its manifest before it writes the first shard:
    stopped after that, the folder is not a shard set (no manifest) rather than an old manifest
    over new shards; stopped before, the old set is whole."""
    from cribsight.data.build import build, load_config, load_shards
    from cribsight.errors import InputError

    root, cfg = tiny
    out = tmp_path / "sh"
    c = load_config(cfg)
    c.samples = 24  # shards of 10: written at the 10th and 20th samples
    build(c, out, log=lambda m: None)
    old = load_shards(out)["image"]

    def stop_at(k):
        def stop(it):
            for i, x in enumerate(it):
                if i == k:
                    raise KeyboardInterrupt
                yield x
        return stop

    c.seed = 99  # the rebuild draws other crops: a replaced shard would show
    with pytest.raises(KeyboardInterrupt):
        build(c, out, progress=stop_at(3), log=lambda m: None)
    assert np.array_equal(load_shards(out)["image"], old)  # nothing was replaced
    with pytest.raises(KeyboardInterrupt):
        build(c, out, progress=stop_at(15), log=lambda m: None)
    with pytest.raises(InputError, match="no manifest"):
        load_shards(out)


def test_bench_prints_throughput(tmp_path):
    proc = run("data", "bench", "--samples", "20", "--source", "demo")
    assert proc.returncode == 0 and "samples/s on one core" in proc.stdout
    proc = run("data", "bench", "--samples", "20", "--source", str(tmp_path / "typo"))  # never silently the demo
    assert proc.returncode == 2 and "expected a folder of images or 'demo'" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not an image")
    proc = run("data", "bench", "--samples", "20", "--source", str(tmp_path / "notes"))  # text files are not faces
    assert proc.returncode == 2 and "expected a folder with images" in proc.stderr and "Traceback" not in proc.stderr
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "notes" / "grey.png"), np.full((64, 64, 3), 128, np.uint8))
    proc = run("data", "bench", "--samples", "20", "--source", str(tmp_path / "notes"))  # an image without a face
    assert proc.returncode == 2 and "finds a face" in proc.stderr and "Traceback" not in proc.stderr


def test_teacher_is_the_pretrained_path_and_ignores_cribnet_versions():
    """CribNet is trained on teacher labels, so the teacher must never be CribNet itself, and a new
    CribNet must not invalidate the teacher cache."""
    from cribsight.data.teacher import TEACHER_FILES, Teacher, teacher_version
    from cribsight.runtime import manifest

    t = Teacher()
    assert t.analyzer.cribnet is None
    assert "cribnet.onnx" not in TEACHER_FILES and set(TEACHER_FILES) <= set(manifest()["files"])
    assert t.version == teacher_version()


def test_teacher_label_must_hold_the_annotated_nose():
    from cribsight.data.sample import FaceSample
    from cribsight.data.teacher import holds_annotated_nose

    f5 = np.array([[50, 60, 2], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32)
    s = FaceSample(image_array=np.zeros((8, 8, 3), np.uint8), extra={"coco_face5": f5})
    assert holds_annotated_nose([40, 40, 70, 80], s)
    assert not holds_annotated_nose([100, 40, 170, 80], s)
    f5[0, 2] = 0  # nose not labelled: nothing to check against
    assert holds_annotated_nose([100, 40, 170, 80], s)
    assert holds_annotated_nose([0, 0, 1, 1], FaceSample(image_array=s.image_array))
