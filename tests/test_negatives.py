"""Non-face crops (data.negatives): they never hold the annotated face, carry no face labels, and a
build with a negative fraction writes them beside the faces."""
import json
import math
import subprocess
import sys

import cv2
import numpy as np

from cribsight.data.negatives import NegativeConfig, NegativePool, head_box, is_negative
from cribsight.data.sample import UNKNOWN, FaceSample
from cribsight.data.synth import SynthConfig


def scene_sample(image=None, face_xy=(300.0, 200.0), size=40.0) -> FaceSample:
    """A 640x480 scene whose five face keypoints sit around ``face_xy``; wrists and ankles far away."""
    img = np.full((480, 640, 3), 120, np.uint8) if image is None else image
    x, y = face_xy
    face5 = np.array([[x, y, 2], [x + size / 4, y - size / 5, 2], [x - size / 4, y - size / 5, 2],
                      [x + size / 2, y, 1], [x - size / 2, y, 1]], np.float32)
    kps = np.zeros((17, 3), np.float32)
    kps[:5] = face5
    kps[9] = [60, 400, 2]  # left wrist
    kps[10] = [580, 420, 2]  # right wrist
    kps[15] = [100, 60, 2]  # left ankle
    return FaceSample(image_array=img, extra={"coco_face5": face5, "coco_keypoints": kps})


def test_head_box_grows_the_keypoint_box():
    s = scene_sample()
    hb = head_box(s, margin=0.5)
    # keypoints span x 280..320 (40 px) and y 192..200: grown by 0.5 * 40 = 20 px on every side
    np.testing.assert_allclose(hb, [260, 172, 340, 220])
    assert head_box(FaceSample(image_array=s.image, extra={}), 0.5) is None


def test_is_negative_rejects_squares_holding_the_face():
    s = scene_sample()
    hb = head_box(s, 0.6)
    assert not is_negative((300, 200), 30, s, hb, 0.1)  # on the nose
    assert not is_negative((330, 200), 30, s, hb, 0.1)  # holds an ear keypoint
    assert is_negative((80, 400), 40, s, hb, 0.1)  # a wrist, far away
    # overlaps the head region (x 276..324 + margins) by more than 10% of its area, keypoint-free
    assert not is_negative((300, 245), 40, s, hb, 0.1)


def test_pool_draws_labelled_nonface_crops_that_avoid_the_face():
    rng_img = np.random.default_rng(0)
    img = rng_img.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    img[180:220, 280:320] = (255, 0, 0)  # the "face": pure red, to check no crop ever holds it
    s = scene_sample(img)
    cfg = NegativeConfig(fraction=1.0, sources=["x"], kinds={"body": 0.5, "random": 0.5})
    pool = NegativePool([s], cfg)
    synth = SynthConfig(size=64, infrared_prob=0, noise_prob=0, jpeg_prob=0, motion_blur_prob=0, low_res_prob=0)
    kinds = set()
    for i in range(40):
        out = pool.draw(np.random.default_rng(i), synth)
        assert out is not None
        kinds.add(out["negative_kind"])
        assert out["face"] == 0 and out["image"].shape == (64, 64, 3)
        assert (out["visibility"] == UNKNOWN).all() and (out["parts"] == -1).all() and out["eyes_open"] == -1
        assert np.isnan(out["pose"]).all() and out["mask"].sum() == 0 and out["face_mask"].sum() == 0
        red = (out["image"][..., 0] > 200) & (out["image"][..., 1] < 60) & (out["image"][..., 2] < 60)
        assert red.mean() < 0.02, i  # random pixels may be reddish; the red face block never appears
    assert kinds == {"body", "random"}


def test_detector_candidates_skip_the_annotated_face(analyzer, portrait):
    """On a scene holding the portrait, the detector's box on the face is never a candidate; every
    candidate is cropped away from the face."""
    from cribsight.data.negatives import detector_candidates

    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[100:580, 500:980] = cv2.resize(portrait, (480, 480))
    f = analyzer.analyze_image(canvas).faces[0]
    lm = np.asarray(f.landmarks.xy)
    s = scene_sample(canvas, tuple((lm[30] + lm[27]) / 2), size=float(np.ptp(lm[:, 0])))
    cfg = NegativeConfig()
    raw = analyzer.full(canvas, cfg.detector_score)
    on_face = [d for d in raw if d.box_xyxy[0] < lm[30, 0] < d.box_xyxy[2] and d.box_xyxy[1] < lm[30, 1] < d.box_xyxy[3]]
    assert on_face  # the detector sees the face at this score
    cands = detector_candidates(s, analyzer, cfg)
    hb = head_box(s, cfg.head_margin)
    for c in cands:
        assert is_negative(c.centre, c.side, s, hb, cfg.max_head_overlap) and c.kind == "detector"
        assert np.hypot(*(np.asarray(c.centre) - lm[30])) > c.side / 2


def test_build_writes_negatives(tmp_path, portrait):
    root = tmp_path
    (root / "imgs").mkdir()
    ann = {"images": [], "annotations": [], "categories": [{"name": "person", "keypoints": [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear"] + [f"k{i}" for i in range(12)]}]}
    for i in range(2):
        canvas = np.full((480, 640, 3), 100 + 40 * i, np.uint8)
        canvas[100:356, 200:456] = cv2.resize(portrait, (256, 256))
        cv2.imwrite(str(root / "imgs" / f"s{i}.jpg"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        # the nose where the teacher finds the portrait's face (its label must hold the annotated nose)
        kp = scene_sample(face_xy=(312.0, 163.0), size=40.0).extra["coco_keypoints"]
        ann["images"].append({"id": i, "file_name": f"s{i}.jpg"})
        ann["annotations"].append({"image_id": i, "id": i, "keypoints": kp.ravel().tolist(), "bbox": [0, 0, 640, 480]})
    (root / "ann.json").write_text(json.dumps(ann))
    cfg = root / "cfg.yaml"
    cfg.write_text(
        "samples: 30\nseed: 1\nsplit: train\nholdout_fraction: 0.0\nshard_size: 100\n"
        "teacher_cache: ./cache.jsonl\n"
        "sources:\n  - name: scenes\n    adapter: coco_keypoints\n"
        "    args: {annotation_json: ./ann.json, image_dir: ./imgs}\n    clean: false\n"
        "synth:\n  size: 64\n"
        "negatives: {fraction: 0.5, sources: [scenes]}\n")
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "data", "build", str(cfg), "--out", str(root / "o")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    man = json.loads((root / "o" / "manifest.json").read_text())
    n_neg = sum(man["counts"]["nonface"].values())
    assert man["samples"] == 30 and man["face_samples"] == 30 - n_neg and 5 <= n_neg <= 25
    with np.load(root / "o" / "shard-00000.npz") as z:
        assert int((z["face"] == 0).sum()) == n_neg
        assert (z["parts"][z["face"] == 0] == -1).all()
    cfg.write_text(cfg.read_text().replace("sources: [scenes]", "sources: [nope]"))
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "data", "build", str(cfg), "--out", str(root / "p")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "negatives.sources" in proc.stderr and "nope" in proc.stderr
    assert math.isfinite(man["samples_per_second"])


def test_scene_crops_show_the_frame_with_at_most_a_small_face():
    """``scene`` negatives are the large centre squares the frame candidate looks at; they may hold
    the infant, but only when its face keypoints span at most ``scene_max_face`` of the side."""
    from cribsight.data.negatives import _random_candidate

    cfg = NegativeConfig(kinds={"scene": 1.0})
    small = scene_sample(size=40.0)  # a 40 px face in a 640x480 scene: at most 0.15 of 288..576 px
    big = scene_sample(size=200.0)  # a close-up: never a scene negative
    for i in range(30):
        rng = np.random.default_rng(i)
        c = _random_candidate(small, head_box(small, cfg.head_margin), "scene", rng, cfg)
        assert c is not None and c.kind == "scene" and 0.6 * 480 <= c.side <= 1.2 * 480
        assert abs(c.centre[0] - 320) <= 0.15 * 640 and abs(c.centre[1] - 240) <= 0.15 * 480
        assert _random_candidate(big, head_box(big, cfg.head_margin), "scene", rng, cfg) is None
    pool = NegativePool([small], cfg)
    out = pool.draw(np.random.default_rng(0), SynthConfig(size=64))
    assert out["negative_kind"] == "scene" and out["face"] == 0 and (out["parts"] == -1).all()
    # a pool of two close-ups and one small face: draws retry other scenes (up to 10), so nearly all
    # succeed (1 - (2/3)^10 = 98%); one scene per draw would succeed a third of the time
    mixed = NegativePool([big, big, small], cfg)
    assert sum(mixed.draw(np.random.default_rng(i), SynthConfig(size=64)) is not None for i in range(20)) >= 18
    assert NegativePool([big], cfg).draw(np.random.default_rng(0), SynthConfig(size=64)) is None  # close-ups only


def test_unknown_negative_kind_is_a_typed_error():
    import pytest

    from cribsight.data.build import BuildConfig
    from cribsight.errors import InputError

    with pytest.raises(InputError, match="kinds from .*scene"):
        BuildConfig.from_dict({"sources": [{"name": "s", "adapter": "utkface", "args": {}}],
                               "negatives": {"fraction": 0.1, "sources": ["s"], "kinds": {"frames": 1.0}}})
