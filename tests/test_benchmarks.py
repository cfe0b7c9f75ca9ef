"""Benchmark scoring on tiny fixtures written in the real formats, with hand-computed figures."""
import json
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

from cribsight.eval import benchmarks as B
from cribsight.eval import metrics as M
from cribsight.types import Face, FrameResult, Landmarks, PartState


def _face(box, nose=None, eyes=None, score=0.9, covered=None):
    lm = np.zeros((68, 2))
    if nose is not None:
        lm[30] = nose
        lm[36:42] = eyes[0]
        lm[42:48] = eyes[1]
    parts = None
    if covered is not None:
        parts = {k: PartState(covered=covered if k in ("nose", "mouth") else 0.0) for k in ("eye_left", "eye_right", "nose", "mouth")}
    return Face(box=tuple(map(float, box)), score=score, detector="t",
                landmarks=Landmarks("ibug68", tuple(map(tuple, lm))), parts=parts)


@pytest.fixture()
def syrip_dir(tmp_path):
    (tmp_path / "images").mkdir()
    images, anns = [], []
    # keypoints: nose, left_eye, right_eye, left_ear, right_ear (x, y, v)
    kps = {
        "a.jpg": [50, 50, 2, 60, 40, 2, 40, 40, 2, 70, 45, 2, 30, 45, 2],
        "b.jpg": [150, 150, 2, 160, 140, 2, 140, 140, 2, 0, 0, 0, 0, 0, 0],
        "c.jpg": [50, 50, 2, 60, 40, 1, 40, 40, 2, 0, 0, 0, 0, 0, 0],  # an eye not visible: not scored
    }
    for i, (name, k) in enumerate(kps.items()):
        cv2.imwrite(str(tmp_path / "images" / name), np.zeros((200, 200, 3), np.uint8))
        images.append({"id": i, "file_name": name, "posture": "Supine" if i == 0 else "Prone", "width": 200, "height": 200})
        anns.append({"id": i, "image_id": i, "keypoints": k + [0] * 36, "bbox": [0, 0, 200, 200]})
    (tmp_path / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": []}))
    return tmp_path


def test_syrip_scoring_hand_values(syrip_dir, tmp_path):
    preds = [
        # a: one hit (contains nose and both eyes) with nose 3 px off and eyes swapped but exact, one false box
        FrameResult(str(syrip_dir / "images" / "a.jpg"), 0, 0, 200, 200, (
            _face([30, 30, 70, 70], nose=[53, 50], eyes=([60, 40], [40, 40]), score=0.8),
            _face([100, 100, 120, 120], score=0.6))),
        # b: a box that holds the nose and no eye -> a false box and a miss
        FrameResult(str(syrip_dir / "images" / "b.jpg"), 0, 0, 200, 200, (_face([145, 145, 155, 155], score=0.7),)),
        FrameResult(str(syrip_dir / "images" / "c.jpg"), 0, 0, 200, 200, ()),
    ]
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(p.to_json() for p in preds) + "\n")
    r = B.syrip(syrip_dir, B.predictions_from_jsonl(f))
    assert r["images_scored"] == 2
    assert r["recall"] == 0.5 and r["false_boxes_per_image"] == 1.0
    # 3-point error = (3 + 0 + 0) / 3 = 1 px; d = sqrt(40 * 10) of the five keypoints' box
    assert r["nme3_mean"] == pytest.approx(1 / np.sqrt(40 * 10))
    assert r["recall_by_posture"] == {"Prone": {"recall": 0.0, "recall_ci95": [0.0, pytest.approx(0.79346, abs=1e-5)], "images": 1},
                                      "Supine": {"recall": 1.0, "recall_ci95": [pytest.approx(0.20654, abs=1e-5), 1.0], "images": 1}}
    assert r["recall_ci95"] == M.wilson_interval(1, 2)
    fc = r["f1_confidence"]
    # at threshold 0.75 only the hit survives: precision 1, recall 0.5
    i = fc["confidence"].index(0.75)
    assert fc["precision"][i] == 1.0 and fc["recall"][i] == 0.5


def test_predictions_missing_an_image_count_as_failures(syrip_dir, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(FrameResult("a.jpg", 0, 0, 200, 200, ()).to_json() + "\n")
    r = B.syrip(syrip_dir, B.predictions_from_jsonl(f))
    assert r["recall"] == 0.0 and len(r["failed"]) == 1 and "b.jpg" in r["failed"][0]


def test_prediction_files_that_cannot_be_scored_are_typed_errors(tmp_path):
    from cribsight.errors import InputError

    f = tmp_path / "p.jsonl"
    with pytest.raises(InputError, match="readable JSON Lines"):
        B.predictions_from_jsonl(f)  # absent
    f.write_text(FrameResult("a/x.jpg", 0, 0, 9, 9, ()).to_json() + "\n" + '{"source": "y.jpg"}\n')
    with pytest.raises(InputError, match="line 2: expected a frame result"):
        B.predictions_from_jsonl(f)
    f.write_text(FrameResult("a/x.jpg", 0, 0, 9, 9, ()).to_json() + "\n" + FrameResult("b/x.jpg", 0, 0, 9, 9, ()).to_json() + "\n")
    with pytest.raises(InputError, match="one prediction per file name"):  # scored against the wrong image otherwise
        B.predictions_from_jsonl(f)


def test_facemask_covered_auroc(tmp_path):
    for folder in ("with_mask", "without_mask"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / folder / f"{folder}-{i}.jpg"), np.zeros((8, 8, 3), np.uint8))
    covered = {"with_mask": [0.9, 0.8, 0.3], "without_mask": [0.1, 0.4, None]}  # None: no face found
    lines = []
    for folder, vals in covered.items():
        for i, v in enumerate(vals):
            faces = () if v is None else (_face([0, 0, 8, 8], covered=v),)
            lines.append(FrameResult(f"{folder}-{i}.jpg", 0, 0, 8, 8, faces).to_json())
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(lines) + "\n")
    r = B.facemask(tmp_path, B.predictions_from_jsonl(f))
    assert r["groups"]["with_mask"]["detection_rate"] == 1.0
    assert r["groups"]["without_mask"]["detection_rate"] == pytest.approx(2 / 3)
    # scores: masked (.9, .8, .3), unmasked (.1, .4, 0): pairs won 3 + 3 + 2 = 8 of 9
    assert r["covered"]["auroc"] == pytest.approx(8 / 9)
    # DeLong: V10 = (1, 1, 2/3), V01 = (1, 2/3, 1); var = (1/27)/3 + (1/27)/3 = 2/81, above Hanley-McNeil's
    assert M.hanley_mcneil_var(8 / 9, 3, 3) < 2 / 81
    half = M.Z95 * np.sqrt(2 / 81) / (8 / 81)
    assert r["covered"]["auroc_ci95"] == [pytest.approx(1 / (1 + np.exp(-(np.log(8) - half)))),
                                          pytest.approx(1 / (1 + np.exp(-(np.log(8) + half))))]
    assert r["groups"]["without_mask"]["detection_rate_ci95"] == M.wilson_interval(2, 3)
    assert r["covered"]["confusion"] == {"tp": 2, "fp": 0, "fn": 1, "tn": 3}


def test_facemask_figures_on_the_never_trained_on_split(tmp_path):
    # names the data engine's hash puts in the held-out split (in_holdout at 0.1) and names it does not
    held = {"with_mask": [0, 13], "without_mask": [1, 3]}
    trained = {"with_mask": [1, 2], "without_mask": [0, 2]}
    score = {("with_mask", 0): 0.9, ("with_mask", 13): None, ("without_mask", 1): 0.2, ("without_mask", 3): 0.95}
    lines = []
    for folder in ("with_mask", "without_mask"):
        (tmp_path / folder).mkdir()
        for i in held[folder] + trained[folder]:
            cv2.imwrite(str(tmp_path / folder / f"{folder}-{i}.jpg"), np.zeros((8, 8, 3), np.uint8))
            v = score.get((folder, i), 0.99 if folder == "with_mask" else 0.01)  # the trained-on images: perfect
            faces = () if v is None else (_face([0, 0, 8, 8], covered=v),)
            lines.append(FrameResult(f"{folder}-{i}.jpg", 0, 0, 8, 8, faces).to_json())
    cv2.imwrite(str(tmp_path / "with_mask" / "with_mask-30.jpg"), np.zeros((8, 8, 3), np.uint8))  # held out, no prediction
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(lines) + "\n")
    r = B.facemask(tmp_path, B.predictions_from_jsonl(f))
    h = r["never_trained_on"]
    assert len(r["failed"]) == 1 and "with_mask-30" in r["failed"][0]
    # the failed held-out photo is a miss, as in the per-folder rate: 1 found of 3
    assert h["images"] == 5 and h["with_mask"] == 3 and h["with_mask_detection_rate"] == pytest.approx(1 / 3)
    assert r["groups"]["with_mask"]["detection_rate"] == pytest.approx(3 / 5)
    # masked (0.9, missed = 0) vs unmasked (0.2, 0.95): 1 pair of 4 won
    assert h["covered"]["auroc"] == pytest.approx(0.25) and h["covered"]["found_faces"] == 3
    assert r["covered"]["auroc"] > h["covered"]["auroc"]  # all images: the perfect trained-on ones lift it


def test_facemask_with_one_class_scored_says_so(tmp_path):
    for folder in ("with_mask", "without_mask"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / f"{folder}-0.jpg"), np.zeros((8, 8, 3), np.uint8))
    f = tmp_path / "p.jsonl"
    f.write_text(FrameResult("with_mask-0.jpg", 0, 0, 8, 8, (_face([0, 0, 8, 8], covered=0.9),)).to_json() + "\n")
    r = B.facemask(tmp_path, B.predictions_from_jsonl(f))  # the unmasked photo's prediction is missing
    assert r["covered"] is None and "only one class" in r["covered_note"]


def test_rates_at_the_threshold():
    r = B._rates_at([0.5, 0.49, 0.7, 0.2], [False, False, True, True], 0.5, "x")
    assert r["x_false_alarm_rate"] == 0.5 and r["x_recall"] == 0.5  # 0.5 itself counts as reported covered
    r = B._rates_at([0.9], [True], 0.5, "x")
    assert r["x_false_alarm_rate"] is None and r["x_false_alarm_rate_ci95"] is None and r["x_recall"] == 1.0


def test_facemask_split_fraction_is_the_training_builds():
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "data" / "train.yaml").read_text())
    assert cfg["holdout_fraction"] == B.TRAIN_HOLDOUT_FRACTION


def test_facemask_without_cover_probabilities_says_so(tmp_path):
    for folder in ("with_mask", "without_mask"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / f"{folder}-0.jpg"), np.zeros((8, 8, 3), np.uint8))
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(FrameResult(f"{d}-0.jpg", 0, 0, 8, 8, (_face([0, 0, 8, 8]),)).to_json()
                           for d in ("with_mask", "without_mask")) + "\n")
    r = B.facemask(tmp_path, B.predictions_from_jsonl(f))
    assert r["covered"] is None and "no part cover probability" in r["covered_note"]


def test_so_rectangles_geometry():
    gt = np.array([[10.0, 20.0], [110.0, 70.0]])  # box 100 x 50
    assert B.so_rectangle(gt, "left") == (10, 20, 50, 70)
    assert B.so_rectangle(gt, "right") == (70, 20, 110, 70)
    assert B.so_rectangle(gt, "top") == (10, 20, 110, 40)
    assert B.so_rectangle(gt, "bottom") == (10, 50, 110, 70)
    assert B.so_rectangle(gt, "middle") == (40, 35, 80, 55)
    img = np.full((100, 150, 3), 200, np.uint8)
    out = B.apply_so(img, gt, "left")
    assert out[30, 30].max() == 0 and out[30, 60].min() == 200 and img[30, 30].min() == 200


def test_corruptions_are_deterministic_and_monotone(portrait):
    a = B.corrupt(portrait, "noise_sigma", 20, seed=3)
    assert np.array_equal(a, B.corrupt(portrait, "noise_sigma", 20, seed=3))
    d = [np.abs(B.corrupt(portrait, "noise_sigma", s, 0).astype(float) - portrait).mean() for s in (0, 5, 20)]
    assert d[0] == 0 and d[0] < d[1] < d[2]
    ir = B.corrupt(portrait, "infrared_strength", 1.0, 0)
    assert np.array_equal(ir[..., 0], ir[..., 1])  # grey
    assert B.corrupt(portrait, "resolution_factor", 0.25, 0).shape == portrait.shape


def test_report_and_compare(tmp_path):
    pytest.importorskip("matplotlib")
    from cribsight.eval import report as R

    res = {"benchmark": "aflw2000", "images": 2, "detected": 2, "nme_interocular_mean": 0.05, "nme_interocular_median": 0.05,
           "auc@0.08": 0.4, "failure_rate@0.08": 0.0, "nme_box_mean": 0.02, "pose_mae_yaw": 3.0, "pose_mae_pitch": 4.0,
           "pose_mae_roll": 2.0, "pose_mae_mean": 3.0, "ced_interocular": {"x": [0, 0.04, 0.08], "y": [0, 0.5, 1.0]}}
    worse = dict(res, nme_interocular_mean=0.07, pose_mae_mean=5.0)
    page = R.write_report([res], tmp_path / "rep", baselines=[worse])
    text = page.read_text()
    assert "data:image/png;base64," in text and "nme_interocular_mean" in text and "baseline" in text
    assert (tmp_path / "rep" / "aflw2000_ced.png").stat().st_size > 1000
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| nme_interocular_mean | 0.0500 |  | 0.0700 |  | -0.0200 |" in md  # no interval for NME
    rows = {k: (a, b, d) for k, a, _, b, _, d in R.compare(res, worse)}
    assert rows["aflw2000: pose_mae_mean"] == (3.0, 5.0, -2.0)  # A - B, as the report's difference
    dev = {"benchmark": "syrip-dev", "visible_face_recall": 0.9, "visible_face_recall_ci95": [0.77, 0.96]}
    dev_b = {"benchmark": "syrip-dev", "visible_face_recall": 0.8, "visible_face_recall_ci95": [0.65, 0.9]}
    rows = {k: r for k, *r in R.compare(dev, dev_b)}
    assert rows["syrip-dev: visible_face_recall"] == [0.9, [0.77, 0.96], 0.8, [0.65, 0.9], pytest.approx(0.1)]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(res))
    b.write_text(json.dumps(worse))
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "eval", "--compare", str(a), str(b), "--report",
                           str(tmp_path / "cmp")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "-2.0000" in proc.stdout
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "| pose_mae_mean | 3.0000 |  | 5.0000 |  | -2.0000 |" in md and "| figure | A | 95% interval | B |" in md
    for bad, says in (("[1, 2]", "expected a results JSON"), ('{"benchmark": "utkface"}', "expected results of a benchmark")):
        b.write_text(bad)
        proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "eval", "--compare", str(a), str(b)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr


def test_report_shows_the_intervals_beside_the_figures(tmp_path):
    pytest.importorskip("matplotlib")
    from cribsight.eval import report as R

    res = {"benchmark": "syrip-dev", "visible_faces": 40, "visible_face_recall": 0.9, "visible_face_recall_ci95": [0.7695, 0.9604],
           "mouth_covered_auroc": 1.0, "mouth_covered_auroc_ci95": None, "mouth_covered_positives": 3}
    R.write_report([res], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| visible_face_recall | 0.9000 | [0.769, 0.960] |" in md
    assert "| mouth_covered_auroc | 1.0000 | null |" in md  # interval not computable (perfect AUROC)
    assert "| visible_faces | 40 |  |" in md  # a count has no interval
    syn = {"benchmark": "synthetic", "covered_f1": {"eye_left": 0.901, "nose": 0.92}, "covered_f1_ci95": {"eye_left": [0.88, 0.92]}}
    assert R.interval(syn, "covered_f1.eye_left") == [0.88, 0.92]  # from the sibling mapping
    assert R.interval(syn, "covered_f1.nose") == ""  # no interval given for it
    assert R.interval(syn, "samples") == ""


def test_syrip_dev_scoring_hand_values(syrip_dir, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("# test\nfile_name,face,covered,eyes\n"
                      "a.jpg,visible,mouth;eyes,open\nb.jpg,visible,,closed\nc.jpg,turned_away,,unknown\n")
    covered_a = {"eye_left": 0.1, "eye_right": 0.7, "nose": 0.1, "mouth": 0.8}  # one eye covered: found
    parts_a = {k: PartState(occluded=0.9 if k == "mouth" else 0.1, covered=covered_a[k])
               for k in ("eye_left", "eye_right", "nose", "mouth")}
    parts_b = {k: PartState(occluded=0.1, covered=0.6) for k in ("eye_left", "eye_right", "nose", "mouth")}
    from cribsight.types import Probability

    def lms(mouth_visible):  # 68 points, the mouth's (48-67) visible with this probability, the rest 0.9
        return Landmarks("ibug68", tuple((0.0, 0.0) for _ in range(68)),
                         visible=tuple(mouth_visible if 48 <= i < 68 else 0.9 for i in range(68)))

    fa = Face(box=(30, 30, 70, 70), score=0.9, detector="t", parts=parts_a, eyes_open=Probability(0.9), landmarks=lms(0.2))
    fb = Face(box=(135, 135, 165, 165), score=0.9, detector="t", parts=parts_b, eyes_open=Probability(0.2), landmarks=lms(0.7))
    fc = Face(box=(0, 0, 10, 10), score=0.5, detector="t", parts=parts_b)  # turned away, reported all clear
    lines = [FrameResult("a.jpg", 0, 0, 200, 200, (fa,)), FrameResult("b.jpg", 0, 0, 200, 200, (fb,)),
             FrameResult("c.jpg", 0, 0, 200, 200, (fc,))]
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(x.to_json() for x in lines) + "\n")
    r = B.syrip_dev(syrip_dir, B.predictions_from_jsonl(f), labels=labels)
    assert r["visible_faces"] == 2 and r["visible_face_recall"] == 1.0
    assert r["mouth_covered_auroc"] == 1.0 and r["eyes_open_auroc"] == 1.0
    assert r["mouth_covered_auroc_ci95"] is None and r["eyes_open_auroc_ci95"] is None  # perfect on 2: no interval
    assert r["visible_face_recall_ci95"] == [pytest.approx(2 / (2 + M.Z95 ** 2)), 1.0]  # Wilson 2 of 2: n / (n + z^2)
    assert r["turned_away_or_face_down"] == 1 and r["all_clear_rate_when_turned_away"] == 1.0
    assert r["all_clear_rate_when_turned_away_ci95"] == M.wilson_interval(1, 1)
    assert r["all_clear_by_label"] == {"turned_away": {"all_clear": 1, "scored": 1, "rate_ci95": M.wilson_interval(1, 1)}}
    assert r["all_clear_files"] == ["c.jpg"]
    # b's uncovered mouth reported covered at 0.6 >= 0.5: a false alarm; a's covered mouth found (0.8)
    assert r["mouth_covered_false_alarm_rate"] == 1.0 and r["mouth_covered_recall"] == 1.0
    assert r["mouth_covered_false_alarm_rate_ci95"] == M.wilson_interval(1, 1)
    # by the landmarks: a's mouth 0.8 hidden (found), b's 0.3 (no false alarm)
    assert r["mouth_landmarks_hidden_auroc"] == 1.0
    assert r["mouth_landmarks_hidden_false_alarm_rate"] == 0.0 and r["mouth_landmarks_hidden_recall"] == 1.0
    # parts labelled uncovered on visible faces: a's nose (0.1), b's nose and mouth (0.1): none occluded
    assert r["nose_occluded_when_uncovered_scored"] == 2 and r["nose_occluded_when_uncovered_rate"] == 0.0
    assert r["mouth_occluded_when_uncovered_scored"] == 1 and r["mouth_occluded_when_uncovered_rate"] == 0.0
    # a's eyes labelled covered, found by its right eye (0.7; the left reads 0.1); b's uncovered eyes at 0.6: an alarm
    assert r["eyes_covered_recall"] == 1.0 and r["eyes_covered_false_alarm_rate"] == 1.0
    # noses labelled uncovered: a's at 0.1 (no alarm), b's at 0.6 (an alarm)
    assert r["nose_covered_false_alarm_rate"] == 0.5 and r["nose_covered_false_alarm_rate_ci95"] == M.wilson_interval(1, 2)
    assert r["nose_covered_recall"] is None
    # b's uncovered eyes (at 0.6) split by whether we saw them: closed, so 'seen'; a's are covered, not counted
    assert r["eyes_covered_when_uncovered_seen_rate"] == 1.0 and r["eyes_covered_when_uncovered_seen_scored"] == 1
    assert r["eyes_covered_when_uncovered_not_seen_scored"] == 0 and r["eyes_covered_when_uncovered_not_seen_rate"] is None
    labels.write_text(labels.read_text().replace("b.jpg,visible,,closed", "b.jpg,visible,,unknown"))
    r = B.syrip_dev(syrip_dir, B.predictions_from_jsonl(f), labels=labels)
    assert r["eyes_covered_when_uncovered_not_seen_rate"] == 1.0 and r["eyes_covered_when_uncovered_seen_scored"] == 0


def test_syrip_dev_auroc_is_null_with_one_class_scored(syrip_dir, tmp_path):
    labels = tmp_path / "labels.csv"  # no covered mouth, no closed eye among the scored faces
    labels.write_text("file_name,face,covered,eyes\na.jpg,visible,,open\nb.jpg,visible,,open\n")
    parts = {k: PartState(occluded=0.6 if k == "mouth" else 0.1, covered=None if k == "eye_right" else 0.7)
             for k in ("eye_left", "eye_right", "nose", "mouth")}
    from cribsight.types import Probability

    faces = [Face(box=(30, 30, 70, 70), score=0.9, detector="t", parts=parts, eyes_open=Probability(0.9)),
             Face(box=(135, 135, 165, 165), score=0.9, detector="t", parts=parts, eyes_open=Probability(0.8))]
    f = tmp_path / "p.jsonl"
    f.write_text("".join(FrameResult(n, 0, 0, 200, 200, (fc,)).to_json() + "\n" for n, fc in zip(("a.jpg", "b.jpg"), faces)))
    r = B.syrip_dev(syrip_dir, B.predictions_from_jsonl(f), labels=labels)
    assert r["mouth_covered_scored"] == 2 and r["mouth_covered_positives"] == 0
    assert r["mouth_covered_auroc"] is None and r["eyes_open_auroc"] is None  # undefined, not NaN
    assert r["mouth_covered_false_alarm_rate"] == 1.0 and r["mouth_covered_recall"] is None
    # both uncovered mouths reported occluded at 0.6, neither nose (0.1)
    assert r["mouth_occluded_when_uncovered_rate"] == 1.0 and r["nose_occluded_when_uncovered_rate"] == 0.0
    assert r["mouth_occluded_when_uncovered_rate_ci95"] == M.wilson_interval(2, 2)
    # an eye without a cover estimate leaves the eyes unscored; the nose's are scored
    assert r["eyes_covered_false_alarm_rate"] is None and r["nose_covered_false_alarm_rate"] == 1.0
    json.dumps(r, allow_nan=False)


def test_dev_labels_file_is_well_formed():
    rows = B.read_dev_labels()
    assert len(rows) == 390 and len({r["file_name"] for r in rows}) == 390
    assert {r["face"] for r in rows} <= {"visible", "turned_away", "face_down"}
    assert {r["eyes"] for r in rows} <= {"open", "closed", "unknown"}
    assert all(set(r["covered"]) <= {"eyes", "nose", "mouth"} for r in rows)


def test_plots_draw_the_baseline_beside_the_model():
    pytest.importorskip("matplotlib")
    from cribsight.eval import report as R

    so = {"benchmark": "aflw2000-so", "variants": {v: {"detected": 2, "nme_interocular_mean": 0.1 + i / 10,
                                                       "pose_mae_mean": 5.0 + i} for i, v in enumerate(("none", "left"))}}
    rob = {"benchmark": "robustness", "curves": {"noise_sigma": [{"level": 0, "detection_rate": 1.0, "nme_interocular_mean": 0.1},
                                                                 {"level": 10, "detection_rate": 0.5, "nme_interocular_mean": None}]}}
    fc = {"confidence": [0.0, 0.5, 1.0], "f1": [0.8, 0.7, 0.0], "precision": [0.9, 0.95, 1.0], "recall": [0.7, 0.5, 0.0],
          "best_threshold": 0.0, "best_f1": 0.8}
    sy = {"benchmark": "syrip", "f1_confidence": fc, "recall_by_posture": {"Prone": {"recall": 0.5, "images": 4}}}
    for res in (so, rob, sy):
        (_, fig), *_ = R.plots(res, res)
        labels = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
        assert any("baseline" in t for t in labels), res["benchmark"]
        (_, fig), *_ = R.plots(res, None)
        labels = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
        assert not any("baseline" in t for t in labels), res["benchmark"]


def test_one_sided_sources_are_those_never_labelled_uncovered():
    parts = np.full((5, 4, 2), -1, np.int8)
    parts[0, 3, 1] = 1  # syrip: covered or unknown only
    parts[2, 0, 1] = 0  # utk: an uncovered eye makes it two-sided
    parts[3, 1, 1] = 1
    shards = {"source": np.array(["syrip", "syrip", "utk", "utk", "nonface"]), "parts": parts,
              "face": np.array([1, 1, 1, 1, 0], np.int8)}
    assert B.one_sided_sources(shards) == {"syrip"}  # non-face crops are not a face source
    assert B.one_sided_sources({"parts": parts}) == set()  # shards without sources: nothing to drop


def _parts(**covered):
    """Four parts, covered as given (else 0.1), occluded 0.9 for the nose and 0.1 for the rest."""
    return {k: PartState(occluded=0.9 if k == "nose" else 0.1, covered=covered.get(k, 0.1))
            for k in ("eye_left", "eye_right", "nose", "mouth")}


def test_video_dev_scoring_hand_values(tmp_path):
    from cribsight.io.video import VideoWriter
    from cribsight.types import Probability

    (tmp_path / "v").mkdir()
    w = VideoWriter(tmp_path / "v" / "clip.mp4", 10, 64, 48)
    for i in range(12):  # a real encoded clip of 12 frames, frame i grey level 20 i
        w.write(np.full((48, 64, 3), 20 * i, np.uint8))
    w.close()
    (tmp_path / "v" / "bad.mp4").write_bytes(b"not a video")
    labels = tmp_path / "labels.csv"
    labels.write_text("# test\nvideo,frame,eye_left,eye_right,nose,mouth,eyes\n"
                      "clip.mp4,0,0,1,0,0,open\n"       # right eye covered, found (0.8)
                      "clip.mp4,5,0,0,0,1,open\n"       # mouth covered, missed (0.3); right eye's 0.6 a false alarm
                      "clip.mp4,8,0,0,0,0,open\n"       # no face reported
                      "clip.mp4,9,0,0,0,0,open\n"       # the prediction fails: not scored
                      "clip.mp4,10,0,0,0,0,closed\n"    # nose reported covered (0.7): a nose-or-mouth false alarm
                      "clip.mp4,11,0,0,0,-1,unknown\n"  # two faces, the higher-scoring one scored; mouth unsure
                      "clip.mp4,40,0,0,0,0,open\n"      # not in the 12-frame clip
                      "gone.mp4,0,0,0,0,0,open\n"       # no such video
                      "bad.mp4,0,0,0,0,0,open\nbad.mp4,3,0,0,0,0,open\n")  # not decodable: one line for both
    face = lambda parts, eo=0.9, score=0.9: Face(box=(0, 0, 10, 10), score=score, detector="t", parts=parts,
                                                 eyes_open=Probability(eo))
    results = {0: (face(_parts(eye_right=0.8)),), 5: (face(_parts(eye_right=0.6, mouth=0.3), eo=0.4),), 8: (),
               10: (face(_parts(nose=0.7), eo=0.2),), 11: (face(_parts(nose=0.7), score=0.3), face(_parts()))}
    calls = []

    def predict(path, image):
        i = int(round(image.mean() / 20))  # which frame was decoded, from its grey level
        calls.append((path.name, image.shape, i))
        if i == 9:
            raise RuntimeError("boom")
        return FrameResult(path.name, i, 0, 64, 48, results[i])

    r = B.video_dev(tmp_path / "v", predict, labels=labels)
    assert calls == [("clip.mp4", (48, 64, 3), i) for i in (0, 5, 8, 9, 10, 11)]  # the labelled frames, in order
    assert r["frames"] == 10 and r["videos"] == 3 and r["frames_failed"] == 5
    assert r["face_found_rate"] == 0.8 and r["frames_with_more_than_one_face"] == 1  # 4 of the 5 scored
    assert len(r["failed"]) == 4 and {"clip.mp4 frame 9: boom", "clip.mp4 frame 40: not in the video"} < set(r["failed"])
    assert any(f.startswith("gone.mp4, labelled frames from 0 on: ") and "nothing there" in f for f in r["failed"])
    assert any(f.startswith("bad.mp4, labelled frames from 0 on: ") for f in r["failed"])
    assert r["eye_right_covered_positives"] == 1 and r["eye_right_covered_scored"] == 4
    assert r["eye_right_covered_recall"] == 1.0 and r["eye_right_covered_false_alarm_rate"] == pytest.approx(1 / 3)
    assert r["eye_right_covered_auroc"] == 1.0 and r["eye_right_covered_auroc_ci95"] is None  # perfect: no interval
    assert r["mouth_covered_positives"] == 1 and r["mouth_covered_recall"] == 0.0 and r["mouth_covered_scored"] == 3
    assert r["nose_covered_false_alarm_rate"] == 0.25 and r["nose_covered_recall"] is None  # 11's 0.7 not the infant's
    # nose or mouth, the larger P: 0 negative 0.1, 5 positive 0.3, 10 negative 0.7; 11 not scored (mouth unsure)
    assert r["nose_or_mouth_covered_scored"] == 3 and r["nose_or_mouth_covered_recall"] == 0.0
    assert r["nose_or_mouth_covered_false_alarm_rate"] == 0.5 and r["nose_or_mouth_covered_auroc"] == 0.5
    assert r["nose_occluded_when_uncovered_rate"] == 1.0 and r["nose_occluded_when_uncovered_scored"] == 4
    assert r["mouth_occluded_when_uncovered_scored"] == 2 and r["mouth_occluded_when_uncovered_rate"] == 0.0
    # eyes: open 0.9 and 0.4, closed 0.2 (frame 11's unknown not scored)
    assert r["eyes_open_auroc"] == 1.0 and r["eyes_closed_scored"] == 1
    assert r["eyes_reported_open_when_open_rate"] == 0.5 and r["eyes_reported_open_when_open_scored"] == 2


def test_video_dev_labels_are_checked(tmp_path):
    bad = tmp_path / "bad.csv"
    for line in ("clip.mp4,x,0,0,0,0,open", "clip.mp4,1,0,2,0,0,open", "clip.mp4,1,0,0,0,open", "clip.mp4,1,0,0,0,0,shut",
                 "clip.mp4,0,0,0,0,0,open"):  # the last: frame 0 twice
        bad.write_text("video,frame,eye_left,eye_right,nose,mouth,eyes\nclip.mp4,0,0,0,0,0,open\n" + line + "\n")
        with pytest.raises(B.InputError, match="line 3"):
            B.read_video_labels(bad)
    rows = B.read_video_labels()  # the shipped labels parse: every 5th frame of the clip
    assert [r["frame"] for r in rows] == list(range(0, 300, 5))
    assert sum(r["covered"]["eye_right"] == 1 for r in rows) == 4 and sum(r["covered"]["mouth"] == 1 for r in rows) == 1


def test_eval_predictions_that_do_not_fit_are_said(tmp_path):
    """Predictions for none of a benchmark's images are an error (exit 2), for part of them a note;
    a value outside the contract's range is refused naming the line; an output path that is an input
    is refused and a --json in a new folder is written - all before anything is scored."""
    from .conftest import shared_path

    folder = shared_path("aflw2000_sample")
    images = sorted(folder.glob("*.jpg"))

    def line(name, score=0.9):
        face = Face(box=(10, 10, 100, 100), score=score, detector="x",
                    landmarks=Landmarks("ibug68", tuple((50.0 + i % 10, 50.0 + i // 10) for i in range(68))))
        return FrameResult(name, 0, 0.0, 450, 450, (face,)).to_json()

    def run(*args):
        return subprocess.run([sys.executable, "-m", "cribsight.cli", "eval", "aflw2000", "--data", str(folder), *args],
                              capture_output=True, text=True, timeout=300)

    p = tmp_path / "p.jsonl"
    p.write_text(line("elsewhere/other.jpg") + "\n")
    proc = run("--predictions", str(p))
    assert proc.returncode == 2 and "expected predictions for aflw2000's images (matched by file name), found none" in \
        proc.stderr.replace("\n", "")
    p.write_text("".join(line(str(f)) + "\n" for f in images[:5]))
    proc = run("--predictions", str(p), "--json", str(tmp_path / "new" / "r.json"))
    assert proc.returncode == 0 and f"{len(images) - 5} of {len(images)} look-ups (images, or their variants) found no prediction" in proc.stderr.replace("\n", "")
    assert json.loads((tmp_path / "new" / "r.json").read_text())["benchmark"] == "aflw2000"
    p.write_text(line(str(images[0])) + "\n" + line(str(images[1]), score=7.0) + "\n")
    proc = run("--predictions", str(p))
    assert proc.returncode == 2 and "line 2" in proc.stderr and "faces[0].score: expected a probability from 0 to 1" in proc.stderr
    before = p.read_text()
    proc = run("--predictions", str(p), "--json", str(p))
    assert proc.returncode == 2 and "--json: expected an output that is not one of the inputs" in proc.stderr
    assert p.read_text() == before


def test_eval_of_an_empty_data_folder_is_an_error(tmp_path):
    """A benchmark folder holding nothing to score (empty, or the parent folder given by mistake) is
    one line and exit 2, not figures of nothing with exit 0."""
    (tmp_path / "utkface").mkdir()
    proc = subprocess.run([sys.executable, "-m", "cribsight.cli", "eval", "utkface", "--data", str(tmp_path / "utkface"),
                           "--no-baseline"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "none to score" in proc.stderr and "Traceback" not in proc.stderr


def test_a_stopped_eval_writes_the_benchmarks_it_finished(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM) during the second benchmark: the first one's figures are still printed and
    written, the rest are named as not scored, and the exit code is 130."""
    from typer.testing import CliRunner

    from cribsight import cli

    (tmp_path / "aflw2000_sample").mkdir()
    (tmp_path / "utkface").mkdir()
    monkeypatch.setenv("CRIBSIGHT_DATA", str(tmp_path))

    def fake(name, folder, predict, *args, **kwargs):
        if name == "utkface":
            raise KeyboardInterrupt
        predict.calls += 1  # as if it had scored an image
        return {"benchmark": name, "images": 1, "failed": []}

    monkeypatch.setattr(cli, "_run_benchmark", fake)
    r = CliRunner().invoke(cli.app, ["eval", "aflw2000", "utkface", "--model", "pretrained", "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 130, r.output
    assert json.loads((tmp_path / "r.json").read_text())["benchmark"] == "aflw2000"
    assert "stopped during utkface: utkface not scored; the 1 finished are written" in r.output.replace("\n", " ")
